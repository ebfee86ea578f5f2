//! The MCP endpoint at `/mcp` over real HTTP: bearer-token authentication (401 without a valid
//! token), then a streamable-HTTP session of `initialize`, `tools/list` and `tools/call` whose
//! files are the same ones the REST API serves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{AUDIENCE, SECRET, api_config, install_crypto, serve};
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
    assert_eq!(init["result"]["capabilities"]["resources"]["subscribe"], false);

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

db_tests!(mcp_requires_a_valid_token, mcp_session_over_streamable_http);
