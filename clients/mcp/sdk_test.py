"""The server through the official MCP Python SDK (PyPI `mcp`), over stdio and streamable HTTP.

Checks, on each transport: the tool listing (every tool has an input and an output schema and
annotations), structured output of every tool validated against its outputSchema (by the SDK, and
again here with jsonschema, error results included), resource links in results, and resources:
list (paged), templates, read by id and by path, and the error naming the slicing tool for a
large file; and subscriptions: a write to a subscribed path URI arrives as
`notifications/resources/updated` (through `subscriptions/listen` on a 2026-07-28 session,
`resources/subscribe` on an older one over stdio; stateless HTTP refuses that; listen is checked
on both transports with sessions opened by `server/discover`), a write elsewhere as `list_changed` only. Run by
scripts/mcp-sdk-test.sh.
"""

import asyncio
import os
import sys
import warnings

import jsonschema
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client
from mcp.client.subscriptions import listen
from mcp.shared.subscriptions import ResourcesListChanged, ResourceUpdated
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

NOTIFY_TIMEOUT = 10.0
# The legacy subscription calls are exercised on purpose (sessions opened with `initialize`).
warnings.filterwarnings("ignore", message=r"resources/(un)?subscribe is removed")

EXPECTED_TOOLS = {
    "list_workspace_files", "read_workspace_file", "write_workspace_file", "delete_workspace_file",
    "run_block", "list_workspace_versions", "restore_workspace_file", "workspace_usage",
    "move_workspace_file", "copy_workspace_file", "grep_workspace_files", "glob_workspace_files",
    "edit_workspace_file",
}
READ_ONLY = {"list_workspace_files", "read_workspace_file", "grep_workspace_files", "glob_workspace_files",
             "list_workspace_versions", "workspace_usage"}
DESTRUCTIVE = {"write_workspace_file", "edit_workspace_file", "move_workspace_file", "delete_workspace_file",
               "restore_workspace_file"}


def check(condition, message):
    if not condition:
        raise AssertionError(message)


class Notifications:
    """The session's message_handler: resource notifications of a legacy session, in order."""

    def __init__(self):
        self.queue: asyncio.Queue = asyncio.Queue()

    async def __call__(self, message) -> None:
        message = getattr(message, "root", message)
        method = getattr(message, "method", None)
        if method == "notifications/resources/updated":
            await self.queue.put(ResourceUpdated(uri=str(message.params.uri)))
        elif method == "notifications/resources/list_changed":
            await self.queue.put(ResourcesListChanged())


async def await_events(next_event, want) -> list:
    """Events until `want(events)` holds; fails after NOTIFY_TIMEOUT."""
    events = []
    async with asyncio.timeout(NOTIFY_TIMEOUT):
        while not want(events):
            events.append(await next_event())
    return events


async def subscriptions(session: ClientSession, folder: str, inbox: Notifications) -> None:
    watched = f"workspace://{folder}/watched.md"
    write = {"filename": "watched.md", "content": "v1"}
    check(not (await session.call_tool("write_workspace_file", write)).is_error, "watched.md written")

    def updated(events):
        return [e.uri for e in events if isinstance(e, ResourceUpdated)]

    async def changes(next_event):
        overwrite = dict(write, content="v2", overwrite=True)
        check(not (await session.call_tool("write_workspace_file", overwrite)).is_error, "overwrite")
        events = await await_events(next_event, lambda ev: updated(ev))
        check(updated(events) == [watched], f"updated for the subscribed uri: {events}")
        other = {"filename": "unwatched.md", "content": "x"}
        check(not (await session.call_tool("write_workspace_file", other)).is_error, "unwatched.md written")
        events = await await_events(next_event, lambda ev: any(isinstance(e, ResourcesListChanged) for e in ev))
        check(not updated(events), f"no updated for an unsubscribed uri: {events}")

    if session.protocol_version in MODERN_PROTOCOL_VERSIONS:
        async with listen(session, resources_list_changed=True, resource_subscriptions=[watched]) as sub:
            check(sub.honored.resource_subscriptions == [watched], f"honored: {sub.honored}")
            await asyncio.sleep(0.3)  # the server opens the feed right after its acknowledgment
            await changes(sub.__anext__)
    else:
        await session.subscribe_resource(watched)
        await changes(inbox.queue.get)
        await session.unsubscribe_resource(watched)


async def exercise(session: ClientSession, folder: str, inbox: Notifications, stateless: bool = False) -> None:
    init = session.initialize_result
    check(init.capabilities.resources is not None, "resources capability declared")
    check(init.capabilities.resources.subscribe is True, "subscriptions are declared")
    check(init.capabilities.resources.list_changed is True, "list_changed is declared")

    tools = {t.name: t for t in (await session.list_tools()).tools}
    check(set(tools) == EXPECTED_TOOLS, f"tool names: {sorted(tools)}")
    for tool in tools.values():
        check(tool.input_schema.get("type") == "object", f"{tool.name}: input schema")
        check(tool.output_schema and tool.output_schema.get("type") == "object", f"{tool.name}: output schema")
        jsonschema.Draft202012Validator.check_schema(tool.output_schema)
        check(tool.annotations.read_only_hint == (tool.name in READ_ONLY), f"{tool.name}: readOnlyHint")
        if tool.name in DESTRUCTIVE:
            check(tool.annotations.destructive_hint is True, f"{tool.name}: destructiveHint")

    results = {}

    async def call(name, args, ok=True):
        result = await session.call_tool(name, args)  # the SDK validates success results itself
        check(result.is_error == (not ok), f"{name}({args}): is_error={result.is_error} {result.content}")
        jsonschema.validate(result.structured_content, tools[name].output_schema)
        results[name] = result
        return result

    pad = "." * 30  # 3 000 lines of ~40 bytes: over the 32 KiB inline limit
    text = "".join(f"line {i} {pad} TODO\n" if i % 100 == 0 else f"line {i} {pad}\n" for i in range(1, 3001))
    written = await call("write_workspace_file", {"filename": "big.txt", "content": text})
    file = written.structured_content["file"]
    links = [c for c in written.content if c.type == "resource_link"]
    check(links and links[0].uri == written.structured_content["uri"], "a resource link to the file")
    await call("write_workspace_file", {"filename": "big.txt", "content": "line 3001 TODO\n", "append": True})
    sliced = await call("read_workspace_file", {"path": "big.txt", "start_line": 10, "end_line": 12})
    expected = "".join(f"{i}\tline {i} {pad}\n" for i in (10, 11, 12))
    check(sliced.structured_content["content"] == expected, f"numbered lines: {sliced.structured_content}")
    check(sliced.structured_content["total_lines"] == 3001, "total_lines")
    whole = await call("read_workspace_file", {"path": "big.txt"})
    check("total_lines" in whole.structured_content and whole.structured_content["truncated"], "large read")
    bad = await call("read_workspace_file", {"path": "big.txt", "start_line": 0}, ok=False)
    check("total_lines 3001" in bad.structured_content["message"], bad.structured_content)
    grep = await call("grep_workspace_files", {"pattern": "TODO$", "max_matches": 5})
    check(len(grep.structured_content["matches"]) == 5 and grep.structured_content["truncated"], "grep caps")
    check(grep.structured_content["matches"][0]["line"] == 100, grep.structured_content["matches"][0])
    await call("grep_workspace_files", {"pattern": "(unclosed"}, ok=False)
    await call("write_workspace_file", {"filename": "n.md", "content": "alpha\nbeta\n", "path": "notes/"})
    glob = await call("glob_workspace_files", {"pattern": "**/*.md"})
    check([f["path"] for f in glob.structured_content["files"]] == [f"{folder}/notes/n.md"], glob.structured_content)
    edit = await call("edit_workspace_file", {"path": "notes/n.md", "old_text": "beta", "new_text": "gamma"})
    check("-beta\n+gamma" in edit.structured_content["diff"], edit.structured_content["diff"])
    stale = await call("edit_workspace_file",
                       {"path": "notes/n.md", "old_text": "alpha", "new_text": "x",
                        "if_match": edit.structured_content["file"]["checksum"].replace("a", "b").replace("0", "1")},
                       ok=False)
    check(stale.structured_content["error"] == "precondition_failed", stale.structured_content)
    check(stale.structured_content["current_checksum"] == edit.structured_content["checksum"], "current checksum")
    await call("list_workspace_files", {})
    await call("list_workspace_versions", {"path": "notes/n.md"})
    await call("workspace_usage", {})
    await call("copy_workspace_file", {"path": "notes/n.md", "new_path": "copy.md"})
    await call("move_workspace_file", {"path": "copy.md", "new_path": "moved.md"})
    deleted = await call("delete_workspace_file", {"path": "moved.md"})
    await call("restore_workspace_file", {"file_id": deleted.structured_content["file"]["id"]})
    await call("run_block", {"block_id": "qr_code", "input": {"text": "hello"}})
    check(set(results) == EXPECTED_TOOLS, f"every tool called: {sorted(EXPECTED_TOOLS - set(results))}")
    largest = max(len(r.model_dump_json(by_alias=True)) for r in results.values())
    check(largest <= 2 * 40_000, f"largest result {largest}")

    templates = (await session.list_resource_templates()).resource_templates
    check({t.uri_template for t in templates} == {"workspace://{file_id}", "workspace:///{+path}"}, templates)
    listed = (await session.list_resources()).resources
    uris = {r.name: str(r.uri) for r in listed}
    check(f"{folder}/notes/n.md" in uris, uris)
    by_id = await session.read_resource(uris[f"{folder}/notes/n.md"])
    check(by_id.contents[0].text == "alpha\ngamma\n", by_id)
    by_path = await session.read_resource(f"workspace://{folder}/notes/n.md")
    check(by_path.contents[0].text == "alpha\ngamma\n", by_path)
    try:
        await session.read_resource(f"workspace://{file['id']}")
        raise AssertionError("a large resource must be refused")
    except Exception as err:  # McpError
        check("read_workspace_file" in str(err), f"the error names the slicing tool: {err}")

    if not stateless:
        await subscriptions(session, folder, inbox)
        return
    try:  # nothing outlives a stateless response to carry a legacy notification
        await session.subscribe_resource(f"workspace://{folder}/notes/n.md")
        raise AssertionError("resources/subscribe over stateless HTTP must be refused")
    except Exception as err:  # McpError
        check("subscriptions/listen" in str(err), f"the refusal points to subscriptions/listen: {err}")


async def over_stdio(binary: str, data_dir: str) -> None:
    params = StdioServerParameters(
        command=binary, args=["mcp", "--user", "alice", "--session", "py"],
        # Our warnings (a subscription that ended, a feed read that failed) reach the test's stderr;
        # rmcp's own warn of every error response (some are the test's point) does not.
        env={"WS_DATA_DIR": data_dir, "RUST_LOG": "warn,rmcp::service=error", "PATH": os.environ.get("PATH", "")},
    )
    inbox = Notifications()
    async with stdio_client(params) as (read, write), ClientSession(read, write, message_handler=inbox) as session:
        await session.initialize()
        await exercise(session, "/sessions/py", inbox)
    # The same over stdio on a 2026-07-28 session: subscriptions/listen.
    params.args = ["mcp", "--user", "alice", "--session", "py2"]
    inbox = Notifications()
    async with stdio_client(params) as (read, write), ClientSession(read, write, message_handler=inbox) as session:
        await session.discover()
        check(session.protocol_version in MODERN_PROTOCOL_VERSIONS, session.protocol_version)
        await subscriptions(session, "/sessions/py2", inbox)


async def over_http(url: str, token: str) -> None:
    client = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with client, streamable_http_client(f"{url}/mcp?session=web", http_client=client) as streams:
        read, write = streams[0], streams[1]
        inbox = Notifications()
        async with ClientSession(read, write, message_handler=inbox) as session:
            await session.initialize()
            await exercise(session, "/sessions/web", inbox, stateless=True)
    # A 2026-07-28 session (server/discover, no initialize): subscriptions/listen streams the
    # notifications on its own response, which stateless HTTP can carry.
    client = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with client, streamable_http_client(f"{url}/mcp?session=web2", http_client=client) as streams:
        read, write = streams[0], streams[1]
        inbox = Notifications()
        async with ClientSession(read, write, message_handler=inbox) as session:
            await session.discover()
            check(session.protocol_version in MODERN_PROTOCOL_VERSIONS, session.protocol_version)
            await subscriptions(session, "/sessions/web2", inbox)


async def main() -> None:
    binary, data_dir = sys.argv[1], sys.argv[2]
    await over_stdio(binary, data_dir)
    print("mcp-sdk-test: stdio ok")
    if len(sys.argv) > 4:
        await over_http(sys.argv[3], sys.argv[4])
        print("mcp-sdk-test: streamable HTTP ok")


asyncio.run(main())
