//! The example blocks end to end on a real database (SQLite and PostgreSQL) and local storage:
//! outputs are read back through the manager with the right MIME type. The image API is a stub
//! server this test starts on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../crates/workspace-exec/tests/common/mod.rs"]
mod common;

use base64::Engine;
use common::{Reply, TestServer};
use image::GenericImageView;
use serde_json::{Value, json};
use workspace_core::{FileId, SessionId, UserId, WorkspaceManager, WorkspaceUri};
use workspace_examples::{ImageGenConfig, registry};
use workspace_exec::{
    BlockRegistry, ExecConfig, ExecEnv, ExecError, ExecutionContext, FetchConfig, GraphExecId, GraphRun,
};
use workspace_testkit::{TestEnv, db_tests};

struct World {
    manager: WorkspaceManager,
    ctx: ExecutionContext,
    bare: ExecutionContext,
    _temp: tempfile::TempDir,
}

/// Loopback in the fetcher's allow-list, as an operator's `WS_FETCH_ALLOW=127.0.0.1/32` would do.
async fn world(env: &TestEnv) -> World {
    world_with(env, FetchConfig { allowed_ranges: vec!["127.0.0.1/32".parse().unwrap()], ..FetchConfig::default() })
        .await
}

async fn world_with(env: &TestEnv, fetch: FetchConfig) -> World {
    let temp = tempfile::tempdir().unwrap();
    let mut config = ExecConfig::new(temp.path());
    config.fetch = fetch;
    let exec = ExecEnv::new(config);
    let user = UserId::new("author").unwrap();
    let manager = env.workspaces().manager(&user, Some(SessionId::new("s1").unwrap())).await.unwrap();
    let run = GraphRun {
        user_id: user,
        graph_id: "g".into(),
        graph_version: 1,
        graph_exec_id: GraphExecId::new("x1").unwrap(),
    };
    let bare = ExecutionContext::new(&exec, run).for_node("node", "node-exec");
    let ctx = bare.clone().with_workspace(manager.clone()).unwrap();
    World { manager, ctx, bare, _temp: temp }
}

fn file_id(output: &Value) -> FileId {
    match WorkspaceUri::parse(output.as_str().unwrap()).unwrap() {
        WorkspaceUri::File { id, .. } => id,
        other => panic!("expected an id reference, got {other}"),
    }
}

fn data_uri_bytes(output: &Value) -> (String, Vec<u8>) {
    let text = output.as_str().unwrap();
    let (head, payload) = text.strip_prefix("data:").unwrap().split_once(',').unwrap();
    let mime = head.split(';').next().unwrap().to_owned();
    (mime, base64::engine::general_purpose::STANDARD.decode(payload).unwrap())
}

fn blocks(base_url: &str) -> BlockRegistry {
    registry(Some(ImageGenConfig { base_url: base_url.into(), api_key: Some("sk-test".into()), model: "img-1".into() }))
        .unwrap()
}

fn sample_png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

db_tests!(
    qr_block_stores_a_png,
    thumbnail_block_reads_a_workspace_reference,
    image_generation_block_stores_both_answers,
    image_generation_trusts_its_configured_endpoint_and_nothing_else
);

async fn qr_block_stores_a_png(env: TestEnv) {
    let w = world(&env).await;
    let out = blocks("http://unused").run("qr_code", json!({"text": "hello", "module_size": 4}), &w.ctx).await.unwrap();
    assert!(out["image"].as_str().unwrap().ends_with("#image/png"), "{out}");
    let (info, bytes) = w.manager.read(file_id(&out["image"])).await.unwrap();
    assert_eq!((info.mime_type.as_ref(), info.path.as_str()), ("image/png", "/sessions/s1/qr.png"));
    let image = image::load_from_memory(&bytes).unwrap();
    // "hello" fits a version-1 code: 21 modules plus a quiet zone of 4 on each side, 4 px each.
    assert_eq!(image.dimensions(), ((21 + 8) * 4, (21 + 8) * 4));
    assert_eq!(image.get_pixel(0, 0).0[0], 255, "the quiet zone is white");
    assert_eq!(image.get_pixel(16, 16).0[0], 0, "the finder pattern's corner is dark");

    let err = blocks("http://unused").run("qr_code", json!({"txt": "typo"}), &w.ctx).await.unwrap_err();
    assert!(matches!(err, ExecError::InvalidInput(_)), "{err}");
}

async fn thumbnail_block_reads_a_workspace_reference(env: TestEnv) {
    let w = world(&env).await;
    let registry = blocks("http://unused");
    let source = workspace_exec::MediaFile::from_bytes(&sample_png(300, 150), "image/png", Some("wide.png"));
    let stored = workspace_exec::store_media_file(&source, &w.ctx, workspace_exec::MediaReturnFormat::ForBlockOutput)
        .await
        .unwrap();
    for (format, mime) in [("png", "image/png"), ("jpeg", "image/jpeg")] {
        let input = json!({"image": stored, "max_size": 60, "format": format});
        let out = registry.run("image_thumbnail", input, &w.ctx).await.unwrap();
        assert_eq!((out["width"].as_u64(), out["height"].as_u64()), (Some(60), Some(30)), "{format}");
        let (info, bytes) = w.manager.read(file_id(&out["thumbnail"])).await.unwrap();
        assert_eq!(info.mime_type, mime);
        assert_eq!(workspace_core::mime::sniff(&bytes), Some(mime), "the bytes really are {mime}");
        assert_eq!(image::load_from_memory(&bytes).unwrap().dimensions(), (60, 30));
    }
    let err = registry.run("image_thumbnail", json!({"image": "data:text/plain,hello"}), &w.ctx).await.unwrap_err();
    assert!(matches!(err, ExecError::InvalidInput(_)), "{err}");
}

async fn image_generation_block_stores_both_answers(env: TestEnv) {
    let w = world(&env).await;
    let png = sample_png(8, 8);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    let port = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(0));
    let port_in_handler = port.clone();
    let png_for_server = png.clone();
    let server = TestServer::start(move |req| {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        match (req.method.as_str(), req.path.as_str(), body["prompt"].as_str()) {
            ("POST", "/v1/images/generations", Some("a cat")) => Reply::ok(
                "application/json",
                json!({"data": [{"b64_json": b64, "revised_prompt": "a cute cat"}]}).to_string(),
            ),
            ("POST", "/v1/images/generations", Some("a dog")) => {
                let url = format!(
                    "http://127.0.0.1:{}/files/dog.png",
                    port_in_handler.load(std::sync::atomic::Ordering::SeqCst)
                );
                Reply::ok("application/json", json!({"data": [{"url": url}]}).to_string())
            }
            ("POST", "/v1/images/generations", _) => Reply::Full {
                status: 400,
                headers: vec![],
                body: json!({"error": {"message": "prompt rejected"}}).to_string().into_bytes(),
            },
            ("GET", "/files/dog.png", _) => Reply::ok("image/png", png_for_server.clone()),
            _ => Reply::status(404),
        }
    })
    .await;
    port.store(server.port(), std::sync::atomic::Ordering::SeqCst);
    let registry = blocks(&format!("http://127.0.0.1:{}/", server.port()));

    let out =
        registry.run("openai_image_generation", json!({"prompt": "a cat", "size": "256x256"}), &w.ctx).await.unwrap();
    assert_eq!(out["revised_prompt"], "a cute cat");
    let (info, bytes) = w.manager.read(file_id(&out["image"])).await.unwrap();
    assert_eq!((info.mime_type.as_ref(), &bytes[..]), ("image/png", &png[..]));
    let request = &server.recorded()[0];
    assert_eq!(request.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    let sent: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        (sent["model"].as_str(), sent["size"].as_str(), sent["n"].as_u64()),
        (Some("img-1"), Some("256x256"), Some(1))
    );

    let out = registry.run("openai_image_generation", json!({"prompt": "a dog"}), &w.ctx).await.unwrap();
    let (info, bytes) = w.manager.read(file_id(&out["image"])).await.unwrap();
    assert_eq!((info.mime_type.as_ref(), info.name.as_str(), &bytes[..]), ("image/png", "dog.png", &png[..]));
    assert_eq!(server.recorded().last().unwrap().path, "/files/dog.png");

    // Outside a workspace the same answers come back as data URIs.
    let out = registry.run("openai_image_generation", json!({"prompt": "a dog"}), &w.bare).await.unwrap();
    assert_eq!(data_uri_bytes(&out["image"]), ("image/png".into(), png.clone()));

    let err = registry.run("openai_image_generation", json!({"prompt": "forbidden"}), &w.ctx).await.unwrap_err();
    assert!(matches!(&err, ExecError::Block(m) if m.contains("400") && m.contains("prompt rejected")), "{err}");
}

/// The default fetch policy (no allow-list) with the images API on loopback, as a self-hosted
/// OpenAI-compatible server runs: the configured endpoint is reachable, image URLs on it too, and
/// every other non-public URL stays refused, whether the API answers with it or a user gives it.
async fn image_generation_trusts_its_configured_endpoint_and_nothing_else(env: TestEnv) {
    let w = world_with(&env, FetchConfig::default()).await;
    let png = sample_png(8, 8);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    let elsewhere = TestServer::start({
        let png = png.clone();
        move |_| Reply::ok("image/png", png.clone())
    })
    .await;
    let elsewhere_url = elsewhere.url("/fox.png");
    let port = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(0));
    let port_in_handler = port.clone();
    let png_for_server = png.clone();
    let api = TestServer::start(move |req| {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let own = |path: &str| {
            format!("http://127.0.0.1:{}{path}", port_in_handler.load(std::sync::atomic::Ordering::SeqCst))
        };
        let url = |url: String| Reply::ok("application/json", json!({"data": [{"url": url}]}).to_string());
        match (req.path.as_str(), body["prompt"].as_str()) {
            ("/v1/images/generations", Some("a cat")) => {
                Reply::ok("application/json", json!({"data": [{"b64_json": b64}]}).to_string())
            }
            ("/v1/images/generations", Some("a dog")) => url(own("/files/dog.png")),
            ("/v1/images/generations", Some("a fox")) => url(elsewhere_url.clone()),
            ("/v1/images/generations", Some("metadata")) => url("http://169.254.169.254/latest/meta-data/".into()),
            ("/v1/images/generations", Some("redirect")) => url(own("/redirect")),
            ("/redirect", _) => Reply::redirect(302, &elsewhere_url),
            ("/files/dog.png", _) => Reply::ok("image/png", png_for_server.clone()),
            _ => Reply::status(404),
        }
    })
    .await;
    port.store(api.port(), std::sync::atomic::Ordering::SeqCst);
    let registry = blocks(&format!("http://127.0.0.1:{}", api.port()));

    let cat = registry.run("openai_image_generation", json!({"prompt": "a cat"}), &w.ctx).await.unwrap();
    assert_eq!(w.manager.read(file_id(&cat["image"])).await.unwrap().1, png);
    let dog = registry.run("openai_image_generation", json!({"prompt": "a dog"}), &w.ctx).await.unwrap();
    let (info, bytes) = w.manager.read(file_id(&dog["image"])).await.unwrap();
    assert_eq!((info.name.as_str(), &bytes[..]), ("dog.png", &png[..]));

    // URLs in the API's answers that lead anywhere else are refused: another loopback port, the
    // metadata address, and a redirect from the trusted origin to another port.
    for (prompt, reason) in [("a fox", "loopback"), ("metadata", "link-local"), ("redirect", "loopback")] {
        let err = registry.run("openai_image_generation", json!({"prompt": prompt}), &w.ctx).await.unwrap_err();
        assert!(matches!(&err, ExecError::Fetch(workspace_exec::FetchError::BlockedAddress { .. })), "{prompt}: {err}");
        assert!(err.to_string().contains(reason), "{prompt}: {err}");
    }
    assert_eq!(elsewhere.connections.load(std::sync::atomic::Ordering::SeqCst), 0);

    // A URL a user (or a model) hands to another block, or to store_media_file, gets no trust,
    // even when it points at the configured endpoint.
    let dog_url = format!("http://127.0.0.1:{}/files/dog.png", api.port());
    let err = registry.run("image_thumbnail", json!({"image": dog_url}), &w.ctx).await.unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
    let file = workspace_exec::MediaFile::new(dog_url.clone());
    let err = workspace_exec::store_media_file(&file, &w.ctx, workspace_exec::MediaReturnFormat::ForBlockOutput)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
    assert_eq!(w.manager.usage().await.unwrap().file_count, 2, "only the cat and the dog were stored");

    // With loopback allow-listed by the operator, the other port is fine too.
    let allowed = world(&env).await;
    let fox = registry.run("openai_image_generation", json!({"prompt": "a fox"}), &allowed.ctx).await.unwrap();
    assert_eq!(allowed.manager.read(file_id(&fox["image"])).await.unwrap().1, png);
}

#[tokio::test]
async fn offline_blocks_return_data_uris_without_a_workspace() {
    let env = TestEnv::new(workspace_testkit::DbKind::Sqlite).await.unwrap();
    let w = world(&env).await;
    let registry = blocks("http://unused");
    let qr = registry.run("qr_code", json!({"text": "no workspace"}), &w.bare).await.unwrap();
    let (mime, png) = data_uri_bytes(&qr["image"]);
    assert_eq!(mime, "image/png");
    assert!(image::load_from_memory(&png).is_ok());
    let thumb = registry.run("image_thumbnail", json!({"image": qr["image"], "max_size": 32}), &w.bare).await.unwrap();
    let (mime, bytes) = data_uri_bytes(&thumb["thumbnail"]);
    assert_eq!((mime.as_str(), image::load_from_memory(&bytes).unwrap().dimensions()), ("image/png", (32, 32)));
    assert_eq!(w.manager.usage().await.unwrap().file_count, 0);
}

#[test]
fn executor_example_runs_two_blocks_through_a_workspace_reference() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_executor")).arg("test text").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("qr_code         -> workspace://"), "{stdout}");
    assert!(stdout.contains("image_thumbnail -> workspace://") && stdout.contains("(64x64)"), "{stdout}");
    assert!(stdout.contains("/sessions/demo/qr.png  image/png"), "{stdout}");
    assert!(stdout.contains("/sessions/demo/thumbnail.jpg  image/jpeg"), "{stdout}");
}
