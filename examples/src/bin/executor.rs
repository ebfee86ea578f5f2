//! An executor in one file: runs the QR-code block, then the thumbnail block on the QR code
//! through its `workspace://` reference, on SQLite + local storage in a temp directory, and
//! prints what it stored.
//!
//! Usage: `cargo run -p workspace-examples --bin executor [TEXT]`

use anyhow::Context;
use serde_json::json;
use workspace_core::{Db, SessionId, Settings, Storage, UserId, Workspaces};
use workspace_exec::{ExecConfig, ExecEnv, ExecutionContext, GraphExecId, GraphRun};
use workspace_storage::LocalStorage;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let text = std::env::args().nth(1).unwrap_or_else(|| "https://example.com/hello".to_owned());
    let dir = tempfile::tempdir().context("creating a temp directory")?;

    // The executor's world: a database, storage, and the execution environment.
    let db = Db::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("demo.db").display())).await?;
    workspace_migrations::migrate(db.conn()).await?;
    let storage = Storage::new(LocalStorage::new(dir.path().join("blobs"))?);
    let user = UserId::new("demo-user")?;
    let workspaces = Workspaces::new(db, storage, Settings::default())?;
    let workspace = workspaces.manager(&user, Some(SessionId::new("demo")?)).await?;
    let env = ExecEnv::new(ExecConfig::new(dir.path().join("tmp")));
    let registry = workspace_examples::registry(None)?;

    // One graph execution with two nodes.
    let exec_id = GraphExecId::new("demo-exec-1")?;
    let run = GraphRun {
        user_id: user,
        graph_id: "qr-then-thumbnail".into(),
        graph_version: 1,
        graph_exec_id: exec_id.clone(),
    };
    let graph = ExecutionContext::new(&env, run).with_workspace(workspace.clone())?;

    let qr = registry.run("qr_code", json!({ "text": text }), &graph.for_node("qr", "qr-exec-1")).await?;
    let qr_image = qr["image"].as_str().context("the QR block returned no image")?;
    println!("qr_code         -> {qr_image}");

    let thumb_input = json!({ "image": qr_image, "max_size": 64, "format": "jpeg" });
    let thumb = registry.run("image_thumbnail", thumb_input, &graph.for_node("thumb", "thumb-exec-1")).await?;
    let thumbnail = thumb["thumbnail"].as_str().context("the thumbnail block returned no image")?;
    println!("image_thumbnail -> {thumbnail} ({}x{})", thumb["width"], thumb["height"]);

    env.cleanup(&exec_id).await?;
    println!("stored in the workspace:");
    for file in workspace.list(workspace_core::ListOptions::default()).await?.files {
        println!("  {}  {}  {} bytes  {}", file.path, file.mime_type, file.size_bytes, file.uri());
    }
    Ok(())
}
