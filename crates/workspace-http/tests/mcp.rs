//! The MCP endpoint at `/mcp` over real HTTP: bearer-token authentication (401 without a valid
//! token), then a streamable-HTTP session of `initialize`, `tools/list` and `tools/call` whose
//! files are the same ones the REST API serves; resource subscriptions (`subscriptions/listen`)
//! that hear of changes made through the REST API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{AUDIENCE, Part, SECRET, api_config, install_crypto, multipart, serve};
use futures::StreamExt;
use serde_json::{Value, json};
use workspace_copilot::Copilot;
use workspace_core::{Limits, UserId};
use workspace_exec::{BlockRegistry, ExecConfig, ExecEnv};
use workspace_http::{AppState, JwtConfig, RequestLimits};
use workspace_testkit::{TestEnv, db_tests};

struct Mcp {
    base: String,
    client: reqwest::Client,
    jwt: JwtConfig,
    _env: TestEnv,
    _tmp: tempfile::TempDir,
}

impl Mcp {
    async fn start(env: TestEnv) -> Self {
        install_crypto();
        let tmp = tempfile::tempdir().unwrap();
        let workspaces = common::workspaces(&env, env.storage.clone(), Limits::default());
        let copilot =
            Copilot::new(workspaces.clone(), BlockRegistry::new(), ExecEnv::new(ExecConfig::new(tmp.path()))).unwrap();
        let state = AppState::new(workspaces, api_config(RequestLimits::default()), Some(copilot));
        let addr = serve(state).await;
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            jwt: JwtConfig::new(SECRET, Some(AUDIENCE.into())).unwrap(),
            _env: env,
            _tmp: tmp,
        }
    }

    fn token(&self, user: &str) -> String {
        self.jwt.mint(&UserId::new(user).unwrap(), chrono::Utc::now().timestamp() + 600).unwrap()
    }

    fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base))
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(body.to_string())
    }

    /// One JSON-RPC request as `user`; returns the response message.
    async fn rpc(&self, user: &str, path: &str, id: u64, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let response = self
            .post(path, &body)
            .bearer_auth(self.token(user))
            .header("mcp-protocol-version", "2025-06-18")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{method}");
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        let text = response.text().await.unwrap();
        let message: Value = if content_type.starts_with("application/json") {
            serde_json::from_str(&text).unwrap()
        } else {
            // An SSE answer: the last `data:` line carries the response.
            let data = text.lines().filter_map(|l| l.strip_prefix("data:")).rfind(|d| !d.trim().is_empty());
            serde_json::from_str(data.unwrap_or_else(|| panic!("no data in {text}")).trim()).unwrap()
        };
        assert_eq!(message["jsonrpc"], "2.0");
        assert_eq!(message["id"], id, "{message}");
        message
    }

    async fn call_tool(&self, user: &str, path: &str, id: u64, name: &str, arguments: Value) -> Value {
        let message = self.rpc(user, path, id, "tools/call", json!({"name": name, "arguments": arguments})).await;
        message["result"].clone()
    }
}

impl Mcp {
    /// Opens a `subscriptions/listen` stream (protocol 2026-07-28) as `user` for `uri` and
    /// `list_changed`.
    async fn listen(&self, user: &str, uri: &str) -> Messages {
        let listen = json!({
            "jsonrpc": "2.0",
            "id": 10,
            "method": "subscriptions/listen",
            "params": {
                "notifications": {"resourcesListChanged": true, "resourceSubscriptions": [uri]},
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientInfo": {"name": "http-test", "version": "1"},
                    "io.modelcontextprotocol/clientCapabilities": {}
                }
            }
        });
        let response = self
            .post("/mcp", &listen)
            .bearer_auth(self.token(user))
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "subscriptions/listen")
            .send()
            .await
            .unwrap();
        Messages::new(response).await
    }

    /// Uploads `body` to `path` through the REST API as `user` (overwriting).
    async fn upload(&self, user: &str, path: &str, body: &[u8]) {
        let (content_type, body) =
            multipart(&[Part::text("path", path), Part::text("overwrite", "true"), Part::file("f.txt", body)]);
        let response = self
            .client
            .post(format!("{}/api/workspace/files", self.base))
            .bearer_auth(self.token(user))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }
}

/// The JSON-RPC messages of an SSE response, one `data:` frame at a time.
struct Messages {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl Messages {
    async fn new(response: reqwest::Response) -> Self {
        if response.status() != 200 {
            panic!("{}: {}", response.status(), response.text().await.unwrap());
        }
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/event-stream"), "{content_type}");
        Self { body: response.bytes_stream().boxed(), buffer: String::new() }
    }

    /// The next message within `within`, or None.
    async fn next(&mut self, within: Duration) -> Option<Value> {
        tokio::time::timeout(within, async {
            loop {
                while let Some(end) = self.buffer.find("\n\n") {
                    let raw: String = self.buffer.drain(..end + 2).collect();
                    let data: String =
                        raw.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim_start).collect();
                    if !data.trim().is_empty() {
                        return serde_json::from_str::<Value>(&data).unwrap();
                    }
                }
                let chunk = self.body.next().await.expect("the stream stays open").unwrap();
                self.buffer.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .ok()
    }

    /// The messages within `window`, stopping early once `until` holds.
    async fn collect(&mut self, window: Duration, until: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + window;
        let mut got = Vec::new();
        while !until(&got) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(message) = self.next(left).await else { break };
            got.push(message);
        }
        got
    }
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

fn initialize_params() -> Value {
    json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "http-test", "version": "1"}})
}

async fn mcp_requires_a_valid_token(env: TestEnv) {
    let mcp = Mcp::start(env).await;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": initialize_params()});
    let cases = [
        None,
        Some("not-a-jwt".to_owned()),
        Some(
            JwtConfig::new(b"some-other-secret-0123456789", Some(AUDIENCE.into()))
                .unwrap()
                .mint(&UserId::new("alice").unwrap(), chrono::Utc::now().timestamp() + 600)
                .unwrap(),
        ),
        Some(mcp.jwt.mint(&UserId::new("alice").unwrap(), chrono::Utc::now().timestamp() - 3600).unwrap()),
    ];
    for token in cases {
        let mut request = mcp.post("/mcp", &body);
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "token {token:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], "unauthorized");
    }
    // GET and DELETE are refused too before reaching the protocol.
    let response = mcp.client.get(format!("{}/mcp", mcp.base)).send().await.unwrap();
    assert_eq!(response.status(), 401);
}

async fn mcp_session_over_streamable_http(env: TestEnv) {
    let mcp = Mcp::start(env).await;
    let path = "/mcp?session=web-1";

    let init = mcp.rpc("alice", path, 1, "initialize", initialize_params()).await;
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(init["result"]["serverInfo"]["name"], "workspace-copilot");
    assert!(init["result"]["capabilities"]["tools"].is_object());

    // The notification is accepted without a body.
    let notification = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = mcp.post(path, &notification).bearer_auth(mcp.token("alice")).send().await.unwrap();
    assert_eq!(response.status(), 202);

    let list = mcp.rpc("alice", path, 2, "tools/list", json!({})).await;
    let names: Vec<_> =
        list["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
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
    for tool in list["result"]["tools"].as_array().unwrap() {
        assert_eq!(tool["inputSchema"]["type"], "object");
        assert_eq!(tool["outputSchema"]["type"], "object", "{}", tool["name"]);
        assert!(tool["annotations"]["readOnlyHint"].is_boolean(), "{}", tool["name"]);
        assert!(tool["description"].as_str().unwrap().len() > 50);
    }
    assert_eq!(init["result"]["capabilities"]["resources"]["subscribe"], true);

    let written = mcp
        .call_tool(
            "alice",
            path,
            3,
            "write_workspace_file",
            json!({"filename": "hello.txt", "content": "hi over http"}),
        )
        .await;
    assert_eq!(written["isError"], false, "{written}");
    assert_eq!(written["structuredContent"]["file"]["path"], "/sessions/web-1/hello.txt");
    let id = written["structuredContent"]["file"]["id"].as_str().unwrap().to_owned();
    let text: Value = serde_json::from_str(written["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, written["structuredContent"], "the text content carries the same JSON");

    let read = mcp.call_tool("alice", path, 4, "read_workspace_file", json!({"path": "hello.txt"})).await;
    assert_eq!(read["structuredContent"]["content"], "hi over http");
    let link =
        read["content"].as_array().unwrap().iter().find(|c| c["type"] == "resource_link").expect("a resource link");
    assert_eq!(link["uri"], written["structuredContent"]["uri"]);

    // The same file as a resource: listed in the session's folder, read by id and by path.
    let resources = mcp.rpc("alice", path, 40, "resources/list", json!({})).await;
    let listed = resources["result"]["resources"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{resources}");
    assert_eq!(listed[0]["uri"], format!("workspace://{id}"));
    let by_id = mcp.rpc("alice", path, 41, "resources/read", json!({"uri": format!("workspace://{id}")})).await;
    assert_eq!(by_id["result"]["contents"][0]["text"], "hi over http", "{by_id}");
    let by_path =
        mcp.rpc("alice", path, 42, "resources/read", json!({"uri": "workspace:///sessions/web-1/hello.txt"})).await;
    assert_eq!(by_path["result"]["contents"][0]["text"], "hi over http", "{by_path}");
    let templates = mcp.rpc("alice", path, 43, "resources/templates/list", json!({})).await;
    assert_eq!(templates["result"]["resourceTemplates"].as_array().unwrap().len(), 2, "{templates}");
    let theirs = mcp.rpc("bob", path, 44, "resources/read", json!({"uri": format!("workspace://{id}")})).await;
    assert!(theirs["error"].is_object(), "bob cannot read alice's resource: {theirs}");

    // The REST API sees the same file for the same user.
    let info: Value = mcp
        .client
        .get(format!("{}/api/workspace/files/{id}", mcp.base))
        .bearer_auth(mcp.token("alice"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["source"], "copilot");

    // The user comes from the token: bob cannot read alice's file, and gets a tool error result.
    let theirs = mcp.call_tool("bob", path, 5, "read_workspace_file", json!({"file_id": id})).await;
    assert_eq!(theirs["isError"], true);
    assert_eq!(theirs["structuredContent"]["error"], "not_found");

    // Without `?session=` the default session is used.
    let default =
        mcp.call_tool("alice", "/mcp", 6, "write_workspace_file", json!({"filename": "d.txt", "content": "d"})).await;
    assert_eq!(default["structuredContent"]["file"]["path"], "/sessions/default/d.txt");

    // Bad arguments are a tool error the model can read; an unknown tool is a protocol error.
    let bad = mcp.call_tool("alice", path, 7, "list_workspace_files", json!({"limit": 1000})).await;
    assert_eq!(bad["isError"], true);
    assert_eq!(bad["structuredContent"]["error"], "invalid_input");
    let unknown = mcp.rpc("alice", path, 8, "tools/call", json!({"name": "rm_rf", "arguments": {}})).await;
    assert!(unknown["error"]["code"].is_i64(), "{unknown}");
}

/// SPEC §15: over stateless streamable HTTP a `subscriptions/listen` request (protocol
/// 2026-07-28) streams `notifications/resources/updated` for its URIs and `list_changed` when
/// files are created, for changes made through the REST API; other URIs and other users' changes
/// notify nothing. The legacy `resources/subscribe` is refused here with a pointer to listen.
async fn mcp_subscriptions_hear_rest_changes(env: TestEnv) {
    let mcp = Mcp::start(env).await;
    let init = mcp.rpc("alice", "/mcp", 1, "initialize", initialize_params()).await;
    assert_eq!(init["result"]["capabilities"]["resources"]["subscribe"], true, "{init}");
    assert_eq!(init["result"]["capabilities"]["resources"]["listChanged"], true, "{init}");
    let legacy = mcp.rpc("alice", "/mcp", 2, "resources/subscribe", json!({"uri": "workspace:///a.txt"})).await;
    assert!(legacy["error"]["message"].as_str().unwrap().contains("subscriptions/listen"), "{legacy}");

    mcp.upload("alice", "/notes/watched.txt", b"v1").await;
    let watched = "workspace:///notes/watched.txt";
    let mut stream = mcp.listen("alice", watched).await;
    let ack = stream.next(Duration::from_secs(10)).await.expect("an acknowledgment");
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged", "{ack}");
    assert_eq!(ack["params"]["notifications"]["resourceSubscriptions"], json!([watched]), "{ack}");
    // The feed opens right after the acknowledgment: let it.
    tokio::time::sleep(Duration::from_millis(300)).await;

    mcp.upload("alice", "/notes/watched.txt", b"v2").await;
    let got = stream.collect(Duration::from_secs(10), |m| !updated_uris(m).is_empty()).await;
    assert_eq!(updated_uris(&got), [watched], "{got:?}");

    mcp.upload("alice", "/notes/other.txt", b"x").await;
    let got = stream.collect(Duration::from_secs(10), |m| list_changes(m) > 0).await;
    assert!(list_changes(&got) >= 1, "list_changed on create: {got:?}");
    assert!(updated_uris(&got).is_empty(), "{got:?}");

    let _ = stream.collect(Duration::from_millis(500), |_| false).await;
    mcp.upload("bob", "/notes/watched.txt", b"bob's").await;
    let got = stream.collect(Duration::from_secs(2), |_| false).await;
    assert!(got.is_empty(), "another user's change: {got:?}");
    drop(stream);

    // Streams are bounded per user, and a client that goes away frees its place.
    for round in 0..3 * workspace_copilot::subscriptions::MAX_LISTENS_PER_USER {
        let mut stream = mcp.listen("alice", watched).await;
        let ack = stream.next(Duration::from_secs(10)).await.unwrap_or_else(|| panic!("ack in round {round}"));
        assert_eq!(ack["method"], "notifications/subscriptions/acknowledged", "round {round}: {ack}");
    }
    // A dropped stream frees its place once the server sees the connection go, and rmcp
    // acknowledges before the handler takes a place: a stream counts as held when no refusal
    // follows its acknowledgment within a second, and refused ones are retried until the places
    // free up (they must, within the deadline).
    let mut open: Vec<Messages> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while open.len() < workspace_copilot::subscriptions::MAX_LISTENS_PER_USER {
        assert!(tokio::time::Instant::now() < deadline, "closed streams free their places: {} held", open.len());
        let missing = workspace_copilot::subscriptions::MAX_LISTENS_PER_USER - open.len();
        let tries = futures::future::join_all((0..missing).map(|_| async {
            let mut stream = mcp.listen("alice", watched).await;
            stream.next(Duration::from_secs(10)).await.expect("an acknowledgment");
            let answer = stream.collect(Duration::from_secs(1), |m| m.iter().any(|m| m.get("id").is_some())).await;
            (stream, answer.into_iter().find(|m| m.get("id").is_some()))
        }))
        .await;
        for (stream, answer) in tries {
            match answer {
                None => open.push(stream),
                Some(answer) => assert!(error_says_streams_open(&answer), "{answer}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut refused = mcp.listen("alice", watched).await;
    // rmcp acknowledges before the handler runs; the refusal is the response that follows.
    let answer = refused
        .collect(Duration::from_secs(10), |m| m.iter().any(|m| m.get("id").is_some()))
        .await
        .pop()
        .expect("an answer");
    assert!(error_says_streams_open(&answer), "{answer}");
    drop(open);
}

fn error_says_streams_open(answer: &Value) -> bool {
    answer["error"]["message"].as_str().is_some_and(|m| m.contains("streams open"))
}

db_tests!(mcp_requires_a_valid_token, mcp_session_over_streamable_http, mcp_subscriptions_hear_rest_changes);
