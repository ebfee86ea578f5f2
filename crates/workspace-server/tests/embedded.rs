//! The binary as an operator runs it: nothing configured, SQLite and files under `./data`, the
//! printed token works, commands run, and SIGTERM lets in-flight requests finish.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{ServerProcess, client, spawn};

fn clean_command(dir: &Path) -> Command {
    let mut cmd = common::clean_command();
    cmd.current_dir(dir);
    cmd
}

/// Starts `serve` with nothing configured but an ephemeral port.
fn start(dir: &Path) -> ServerProcess {
    spawn(clean_command(dir), true)
}

#[tokio::test]
async fn embedded_default_serves_with_the_printed_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let token = server.token.clone().expect("embedded mode prints a token");
    let client = client();
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(b"hello from the binary".to_vec()).file_name("hello.txt"));
    let r = client
        .post(format!("{}/api/workspace/files", server.base))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let info: serde_json::Value = r.json().await.unwrap();
    let id = info["id"].as_str().unwrap();
    let body = client
        .get(format!("{}/api/workspace/files/{id}/download", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "hello from the binary");
    assert!(dir.path().join("data/workspace.db").exists(), "SQLite lives under ./data");
    assert!(dir.path().join("data/files/objects").is_dir(), "files live under ./data/files");
    assert!(dir.path().join("data/jwt-secret").exists(), "the generated secret is kept");

    // `token` mints with the same secret, so its token works against the running server.
    let out = clean_command(dir.path()).args(["token", "--user", "local-user"]).output().unwrap();
    assert!(out.status.success());
    let minted = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let r = client.get(format!("{}/api/workspace/files/{id}", server.base)).bearer_auth(&minted).send().await.unwrap();
    assert_eq!(r.status(), 200);

    for args in [&["migrate"][..], &["gc"][..]] {
        let out = clean_command(dir.path()).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = clean_command(dir.path()).args(["token", "--user", ""]).output().unwrap();
    assert!(!out.status.success(), "an empty user id is refused");
    let out = clean_command(dir.path()).env("WS_MAX_FILE_SIZE", "lots").arg("migrate").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("WS_MAX_FILE_SIZE=lots"));
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_download_finish() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let token = server.token.clone().unwrap();
    let client = client();
    let data = vec![42u8; 16 * 1024 * 1024];
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(data.clone()).file_name("big.bin"));
    let info: serde_json::Value = client
        .post(format!("{}/api/workspace/files", server.base))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = info["id"].as_str().unwrap();
    let mut response = client
        .get(format!("{}/api/workspace/files/{id}/download", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let first = response.chunk().await.unwrap().unwrap();
    let status = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut received = first.len();
    while let Some(chunk) = response.chunk().await.unwrap() {
        received += chunk.len();
    }
    assert_eq!(received, data.len(), "the in-flight download completed after SIGTERM");
    let exit = tokio::task::spawn_blocking(move || {
        let status = server.child.wait().unwrap();
        (server, status)
    })
    .await
    .unwrap()
    .1;
    assert!(exit.success(), "clean exit after the shutdown: {exit:?}");
}
