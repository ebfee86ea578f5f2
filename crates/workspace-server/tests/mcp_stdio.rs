//! `workspace-server mcp` as an MCP client launches it: JSON-RPC over stdin/stdout on embedded
//! SQLite under `WS_DATA_DIR`. The transcript checks every response; stdout must carry nothing but
//! protocol messages (logs go to stderr), and files outlive the process and the session.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_workspace-server");

struct McpProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl McpProcess {
    fn start(data_dir: &Path, session: &str) -> Self {
        Self::start_as(data_dir, "alice", session)
    }

    fn start_as(data_dir: &Path, user: &str, session: &str) -> Self {
        let mut child = Command::new(BIN)
            .args(["mcp", "--user", user, "--session", session])
            .current_dir(data_dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("WS_DATA_DIR", data_dir)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Self { child, stdin, lines }
    }

    fn send(&mut self, message: &Value) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{message}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next line on stdout, which must be one JSON-RPC message.
    fn receive(&self) -> Value {
        let line = self.lines.recv_timeout(Duration::from_secs(60)).expect("a response within a minute");
        let message: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
        assert_eq!(message["jsonrpc"], "2.0", "{message}");
        message
    }

    /// The next message within `timeout`, if any.
    fn receive_within(&self, timeout: Duration) -> Option<Value> {
        let line = self.lines.recv_timeout(timeout).ok()?;
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}")))
    }

    fn request(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let response = self.receive();
        assert_eq!(response["id"], id, "responses answer the request: {response}");
        response
    }

    fn call_tool(&mut self, id: u64, name: &str, arguments: Value) -> Value {
        let response = self.request(id, "tools/call", json!({"name": name, "arguments": arguments}));
        assert!(response.get("error").is_none(), "{response}");
        response["result"].clone()
    }

    fn initialize(&mut self) -> Value {
        let init = self.request(
            1,
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "transcript", "version": "1"}}),
        );
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        init
    }

    /// Closes stdin (the client goes away) and expects a clean exit with nothing more on stdout.
    fn finish(mut self) {
        drop(self.stdin.take());
        let status = wait_with_timeout(&mut self.child, Duration::from_secs(30));
        assert!(status.success(), "exit status {status}");
        assert!(self.lines.recv_timeout(Duration::from_millis(200)).is_err(), "nothing after the last response");
    }
}

impl Drop for McpProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(std::time::Instant::now() < deadline, "the server did not exit after stdin closed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn structured(result: &Value) -> Value {
    assert_eq!(result["isError"], false, "{result}");
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, result["structuredContent"]);
    text
}

#[test]
fn stdio_transcript_initialize_list_write_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut mcp = McpProcess::start(dir.path(), "s1");

    let init = mcp.initialize();
    let result = &init["result"];
    assert_eq!(result["protocolVersion"], "2025-06-18");
    assert_eq!(result["serverInfo"]["name"], "workspace-copilot");
    assert!(result["capabilities"]["tools"].is_object(), "{init}");
    assert!(result["instructions"].as_str().unwrap().contains("workspace"));

    let list = mcp.request(2, "tools/list", json!({}));
    let tools = list["result"]["tools"].as_array().unwrap();
    let names: Vec<_> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "list_workspace_files",
            "read_workspace_file",
            "write_workspace_file",
            "delete_workspace_file",
            "run_block",
            "list_workspace_versions",
            "restore_workspace_file",
            "workspace_usage",
            "move_workspace_file",
            "copy_workspace_file",
            "grep_workspace_files",
            "glob_workspace_files",
            "edit_workspace_file"
        ]
    );
    for tool in tools {
        assert_eq!(tool["inputSchema"]["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(tool["inputSchema"]["type"], "object");
        assert_eq!(tool["outputSchema"]["type"], "object");
    }
    assert_eq!(result["capabilities"]["resources"]["subscribe"], true, "{init}");
    assert_eq!(result["capabilities"]["resources"]["listChanged"], true, "{init}");
    let run_block = tools.iter().find(|t| t["name"] == "run_block").unwrap();
    assert!(run_block["description"].as_str().unwrap().contains("qr_code"), "the server registers the example blocks");

    let written = structured(&mcp.call_tool(
        3,
        "write_workspace_file",
        json!({"filename": "notes.txt", "content": "remember the milk"}),
    ));
    assert_eq!(written["file"]["path"], "/sessions/s1/notes.txt");
    assert_eq!(written["file"]["source"], "copilot");
    let id = written["file"]["id"].as_str().unwrap().to_owned();

    let read = structured(&mcp.call_tool(4, "read_workspace_file", json!({"path": "notes.txt"})));
    assert_eq!(read["content"], "remember the milk");
    assert_eq!(read["file"]["id"], id.as_str());
    let resources = mcp.request(40, "resources/list", json!({}));
    assert_eq!(resources["result"]["resources"][0]["uri"], format!("workspace://{id}"), "{resources}");
    let contents = mcp.request(41, "resources/read", json!({"uri": "workspace:///sessions/s1/notes.txt"}));
    assert_eq!(contents["result"]["contents"][0]["text"], "remember the milk", "{contents}");

    let qr = structured(&mcp.call_tool(5, "run_block", json!({"block_id": "qr_code", "input": {"text": "hello"}})));
    let image = qr["output"]["image"].as_str().unwrap();
    assert!(image.starts_with("workspace://") && image.ends_with("#image/png"), "{qr}");
    let png = mcp.call_tool(6, "read_workspace_file", json!({"file_id": image}));
    assert!(png["content"].as_array().unwrap().iter().any(|c| c["type"] == "image" && c["mimeType"] == "image/png"));

    // A tool failure is a result with isError, carrying the structured error.
    let failed = mcp.call_tool(7, "write_workspace_file", json!({"filename": "notes.txt", "content": "again"}));
    assert_eq!(failed["isError"], true);
    assert_eq!(failed["structuredContent"]["error"], "conflict");
    let failed = mcp.call_tool(8, "read_workspace_file", json!({"path": "x", "offset": -1}));
    assert_eq!(failed["structuredContent"]["error"], "invalid_input");
    mcp.finish();

    // A new process in another session reads the file by absolute path and by id.
    let mut later = McpProcess::start(dir.path(), "s2");
    later.initialize();
    let by_path = structured(&later.call_tool(2, "read_workspace_file", json!({"path": "/sessions/s1/notes.txt"})));
    assert_eq!(by_path["content"], "remember the milk");
    let by_id = structured(&later.call_tool(3, "read_workspace_file", json!({"file_id": id})));
    assert_eq!(by_id["content"], "remember the milk");
    let own = structured(&later.call_tool(4, "list_workspace_files", json!({})));
    assert_eq!(own["count"], 0, "session s2's folder is empty");
    later.finish();
}

#[test]
fn mcp_refuses_an_invalid_session() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args(["mcp", "--user", "alice", "--session", "a/b"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WS_DATA_DIR", dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "errors never go to stdout");
    assert!(String::from_utf8_lossy(&output.stderr).contains("session"));
}

/// The notifications that arrive within `window`, stopping early once `until` has one.
fn notifications(mcp: &McpProcess, window: Duration, until: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = std::time::Instant::now() + window;
    let mut got = Vec::new();
    while !until(&got) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Some(message) = mcp.receive_within(left) else { break };
        assert!(message.get("id").is_none(), "no response was pending: {message}");
        got.push(message);
    }
    got
}

fn updated_uris(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m["method"] == "notifications/resources/updated")
        .map(|m| m["params"]["uri"].as_str().unwrap().to_owned())
        .collect()
}

fn list_changes(messages: &[Value]) -> usize {
    messages.iter().filter(|m| m["method"] == "notifications/resources/list_changed").count()
}

/// SPEC §15/§16: a stdio session subscribed to a path URI hears of changes another process makes
/// to the same SQLite file (the feed's counter check), within seconds; a URI it did not subscribe
/// to and another user's changes give no `updated`; creates give `list_changed`; after
/// `resources/unsubscribe` nothing arrives.
#[test]
fn stdio_subscription_hears_changes_from_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = McpProcess::start(dir.path(), "w");
    writer.initialize();
    structured(&writer.call_tool(
        2,
        "write_workspace_file",
        json!({"filename": "watched.md", "path": "/notes/", "content": "v1"}),
    ));

    let mut watcher = McpProcess::start(dir.path(), "s");
    watcher.initialize();
    let watched = "workspace:///notes/watched.md";
    let subscribed = watcher.request(2, "resources/subscribe", json!({"uri": watched}));
    assert!(subscribed.get("error").is_none(), "{subscribed}");
    let bad = watcher.request(3, "resources/subscribe", json!({"uri": "file:///etc/passwd"}));
    assert!(bad.get("error").is_some(), "{bad}");

    // Another process overwrites the subscribed file.
    structured(&writer.call_tool(
        3,
        "write_workspace_file",
        json!({"filename": "watched.md", "path": "/notes/", "content": "v2", "overwrite": true}),
    ));
    let got = notifications(&watcher, Duration::from_secs(10), |m| !updated_uris(m).is_empty());
    assert_eq!(updated_uris(&got), [watched], "{got:?}");

    // An edit through the agent tool notifies too.
    structured(&writer.call_tool(
        30,
        "edit_workspace_file",
        json!({"path": "/notes/watched.md", "old_text": "v2", "new_text": "v2 edited"}),
    ));
    let got = notifications(&watcher, Duration::from_secs(10), |m| !updated_uris(m).is_empty());
    assert_eq!(updated_uris(&got), [watched], "{got:?}");
    let _ = notifications(&watcher, Duration::from_millis(500), |_| false);

    // A file nobody subscribed to: created (the listing changes) but no `updated`.
    let other = structured(&writer.call_tool(
        4,
        "write_workspace_file",
        json!({"filename": "other.md", "path": "/notes/", "content": "x"}),
    ));
    let got = notifications(&watcher, Duration::from_secs(10), |m| list_changes(m) > 0);
    assert!(list_changes(&got) >= 1, "list_changed on create: {got:?}");
    assert!(updated_uris(&got).is_empty(), "{got:?}");

    // An id URI hears its file moved (and the move changes the listing).
    let _ = notifications(&watcher, Duration::from_millis(500), |_| false);
    let by_id = format!("workspace://{}", other["file"]["id"].as_str().unwrap());
    watcher.send(&json!({"jsonrpc": "2.0", "id": 5, "method": "resources/subscribe", "params": {"uri": by_id}}));
    assert_eq!(watcher.receive()["id"], 5);
    structured(&writer.call_tool(
        40,
        "move_workspace_file",
        json!({"path": "/notes/other.md", "new_path": "/notes/moved.md"}),
    ));
    let got = notifications(&watcher, Duration::from_secs(10), |m| !updated_uris(m).is_empty() && list_changes(m) > 0);
    assert_eq!(updated_uris(&got), std::slice::from_ref(&by_id), "{got:?}");
    watcher.send(&json!({"jsonrpc": "2.0", "id": 6, "method": "resources/unsubscribe", "params": {"uri": by_id}}));
    assert_eq!(watcher.receive()["id"], 6);

    // Another user's change to the same path notifies nothing (first drain what the writes above
    // may still have on the way).
    let _ = notifications(&watcher, Duration::from_secs(1), |_| false);
    let mut bob = McpProcess::start_as(dir.path(), "bob", "s");
    bob.initialize();
    structured(&bob.call_tool(
        2,
        "write_workspace_file",
        json!({"filename": "watched.md", "path": "/notes/", "content": "bob's"}),
    ));
    let got = notifications(&watcher, Duration::from_secs(2), |_| false);
    assert!(got.is_empty(), "another user's change: {got:?}");
    bob.finish();

    // Deleting the subscribed file notifies; after unsubscribing nothing does.
    structured(&writer.call_tool(5, "delete_workspace_file", json!({"path": "/notes/watched.md"})));
    let got = notifications(&watcher, Duration::from_secs(10), |m| !updated_uris(m).is_empty());
    assert_eq!(updated_uris(&got), [watched], "{got:?}");
    let _ = notifications(&watcher, Duration::from_millis(500), |_| false);
    watcher.send(&json!({"jsonrpc": "2.0", "id": 4, "method": "resources/unsubscribe", "params": {"uri": watched}}));
    let answer = watcher.receive();
    assert_eq!(answer["id"], 4, "{answer}");
    structured(&writer.call_tool(
        6,
        "write_workspace_file",
        json!({"filename": "watched.md", "path": "/notes/", "content": "v3"}),
    ));
    let got = notifications(&watcher, Duration::from_secs(2), |_| false);
    assert!(got.is_empty(), "after unsubscribe: {got:?}");
    writer.finish();
    watcher.finish();
}
