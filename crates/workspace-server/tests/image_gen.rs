//! The image-generation block of a real server process against a self-hosted, OpenAI-compatible
//! server on loopback (a fake one, started here), driven through `/mcp` as a chat client would:
//! `OPENAI_BASE_URL=http://127.0.0.1:PORT` works with nothing else configured, the image lands in
//! the session's folder as a `workspace://` reference, and every other non-public URL stays
//! refused — an image URL the API answers with that points elsewhere, and a URL a user or model
//! hands to a block — unless the operator allow-lists it with `WS_FETCH_ALLOW`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::routing::{get, post};
use serde_json::{Value, json};

use common::{ServerProcess, client, spawn};

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

const B64_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGMAAQAABQABDQottAAAAABJRU5ErkJggg==";

const SESSION: &str = "chat-7";

/// Binds a loopback port and serves `router` on it.
async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// Another service on loopback the API may point at; counts the requests that reach it.
async fn elsewhere() -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let router = axum::Router::new().route(
        "/fox.png",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { ([("content-type", "image/png")], PNG) }
        }),
    );
    (serve(router).await, hits)
}

#[derive(Clone)]
struct Api {
    own: String,
    elsewhere: String,
}

/// The fake OpenAI-compatible images API: `b64_json` for "a cat", a URL on itself for "a dog",
/// a URL on another loopback port for "a fox".
async fn fake_openai(elsewhere: SocketAddr) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let api = Api { own: format!("http://{addr}"), elsewhere: format!("http://{elsewhere}") };
    let router = axum::Router::new()
        .route(
            "/v1/images/generations",
            post(|State(api): State<Api>, Json(body): Json<Value>| async move {
                let data = match body["prompt"].as_str() {
                    Some("a cat") => json!({"b64_json": B64_PNG, "revised_prompt": "a small cat"}),
                    Some("a dog") => json!({"url": format!("{}/files/dog.png", api.own)}),
                    Some("a fox") => json!({"url": format!("{}/fox.png", api.elsewhere)}),
                    _ => json!({}),
                };
                Json(json!({"created": 0, "data": [data]}))
            }),
        )
        .route("/files/dog.png", get(|| async { ([("content-type", "image/png")], PNG) }))
        .with_state(api);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// `workspace-server serve` in embedded mode in `dir`, with `vars`.
fn start_server(dir: &Path, vars: &[(&str, String)]) -> ServerProcess {
    let mut cmd = common::clean_command();
    cmd.current_dir(dir).env("WS_DATA_DIR", dir.join("data"));
    for (name, value) in vars {
        cmd.env(name, value);
    }
    spawn(cmd, true)
}

/// One `tools/call` over the streamable-HTTP MCP endpoint; returns the tool result.
async fn call_tool(server: &ServerProcess, name: &str, arguments: Value) -> Value {
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}});
    let response = client()
        .post(format!("{}/mcp?session={SESSION}", server.base))
        .bearer_auth(server.token.as_deref().unwrap())
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-06-18")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let message: Value = response.json().await.unwrap();
    message["result"].clone()
}

async fn generate(server: &ServerProcess, prompt: &str) -> Value {
    call_tool(server, "run_block", json!({"block_id": "openai_image_generation", "input": {"prompt": prompt}})).await
}

/// The `workspace://` reference in a successful run_block result, checked to be the id form.
fn reference(result: &Value) -> (String, String) {
    assert_eq!(result["isError"], false, "{result}");
    let image = result["structuredContent"]["output"]["image"].as_str().unwrap().to_owned();
    let rest = image.strip_prefix("workspace://").unwrap_or_else(|| panic!("not a workspace reference: {image}"));
    let (id, mime) = rest.split_once('#').unwrap();
    assert_eq!(mime, "image/png");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "the id form, not a path and not base64: {image}");
    (image.clone(), id.to_owned())
}

fn refusal(result: &Value) -> String {
    assert_eq!(result["isError"], true, "{result}");
    assert_eq!(result["structuredContent"]["error"], "fetch_failed", "{result}");
    result["structuredContent"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_hosted_images_api_on_loopback_works_and_nothing_else_is_opened() {
    let (elsewhere_addr, elsewhere_hits) = elsewhere().await;
    let api = fake_openai(elsewhere_addr).await;
    let dir = tempfile::tempdir().unwrap();
    let base_url = ("OPENAI_BASE_URL", format!("http://{api}"));
    let server = start_server(dir.path(), &[base_url.clone(), ("OPENAI_API_KEY", "sk-local".into())]);
    let token = server.token.clone().unwrap();
    let http = client();

    // b64_json: stored in the session's folder, handed back as a workspace:// id.
    let cat = generate(&server, "a cat").await;
    let (_, cat_id) = reference(&cat);
    assert_eq!(cat["structuredContent"]["output"]["revised_prompt"], "a small cat");
    let info: Value = http
        .get(format!("{}/api/workspace/files/{cat_id}", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(info["path"].as_str().unwrap().starts_with(&format!("/sessions/{SESSION}/")), "{info}");
    assert_eq!(info["source"], "execution");
    let bytes = http
        .get(format!("{}/api/workspace/files/{cat_id}/download", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..], PNG);

    // A URL on the configured API's own origin is fetched (it is the operator's endpoint).
    let dog = generate(&server, "a dog").await;
    let (_, dog_id) = reference(&dog);

    // Both are listed in the session's folder.
    let listed = call_tool(&server, "list_workspace_files", json!({})).await;
    let ids: Vec<&str> =
        listed["structuredContent"]["files"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&cat_id.as_str()) && ids.contains(&dog_id.as_str()), "{listed}");

    // A URL on another loopback port, answered by the API: refused, never contacted.
    let message = refusal(&generate(&server, "a fox").await);
    assert!(message.contains("loopback"), "{message}");
    assert_eq!(elsewhere_hits.load(Ordering::SeqCst), 0);
    // A URL a model hands to a block gets no trust, even on the configured API's origin.
    let user_url = format!("http://{api}/files/dog.png");
    let message = refusal(
        &call_tool(&server, "run_block", json!({"block_id": "image_thumbnail", "input": {"image": user_url}})).await,
    );
    assert!(message.contains("loopback"), "{message}");
    drop(server);

    // The operator's allow-list opens the other port (for every URL, by design).
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), &[base_url, ("WS_FETCH_ALLOW", "127.0.0.1/32".into())]);
    reference(&generate(&server, "a fox").await);
    assert_eq!(elsewhere_hits.load(Ordering::SeqCst), 1);
}

/// Runs `serve` expecting it to refuse its configuration; returns stderr.
fn refused_start(vars: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = common::clean_command();
    cmd.current_dir(dir.path()).env("WS_DATA_DIR", dir.path().join("data")).env("WS_BIND", "127.0.0.1:0");
    for (name, value) in vars {
        cmd.env(name, value);
    }
    let mut child = cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the server started with {vars:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn unusable_fetch_settings_are_refused_at_start_naming_the_variable() {
    let stderr = refused_start(&[("WS_FETCH_ALLOW", "127.0.0.1/32,localhost")]);
    assert!(stderr.contains("WS_FETCH_ALLOW=127.0.0.1/32,localhost"), "{stderr}");
    assert!(stderr.contains("invalid IP range `localhost`"), "{stderr}");
    let stderr = refused_start(&[("OPENAI_BASE_URL", "ftp://models.internal")]);
    assert!(stderr.contains("OPENAI_BASE_URL=ftp://models.internal"), "{stderr}");
    assert!(stderr.contains("only http and https"), "{stderr}");
}
