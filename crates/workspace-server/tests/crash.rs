//! Crash consistency: the server is killed with SIGKILL in the middle of large uploads, several
//! times, at random points. After a restart and gc, every acknowledged upload reads back with its
//! checksum, nothing partial is visible, no unfinished temp file is left, and storage holds
//! exactly the live rows' blobs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{ServerProcess, now, spawn};
use rand::Rng;
use sha2::{Digest, Sha256};
use workspace_core::UserId;
use workspace_http::JwtConfig;

const SECRET: &str = "crash-test-secret-crash-test-secret";

fn command(dir: &Path) -> Command {
    let mut cmd = common::clean_command();
    cmd.env("WS_DATA_DIR", dir)
        .env("WS_JWT_SECRET", SECRET)
        .env("WS_MAX_FILE_SIZE", "200MiB")
        .env("WS_QUOTA_BYTES", "10GiB");
    cmd
}

fn start(dir: &Path) -> (ServerProcess, String) {
    let server = spawn(command(dir), false);
    let base = server.base.clone();
    (server, base)
}

/// A multipart body of `size` bytes sent in small pieces with pauses, so a kill lands mid-body.
fn slow_upload(path: String, size: usize) -> (reqwest::Body, String) {
    let data: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
    let checksum = hex::encode(Sha256::digest(&data));
    let head = format!(
        "--b0undary\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\n{path}\r\n--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n"
    );
    let mut pieces: Vec<Vec<u8>> = vec![head.into_bytes()];
    pieces.extend(data.chunks(256 * 1024).map(<[u8]>::to_vec));
    pieces.push(b"\r\n--b0undary--\r\n".to_vec());
    let stream = futures::stream::iter(pieces).then(|piece| async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok::<_, std::io::Error>(piece)
    });
    (reqwest::Body::wrap_stream(stream), checksum)
}

use futures::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_upload_leaves_nothing_partial() {
    let dir = tempfile::tempdir().unwrap();
    let token =
        JwtConfig::new(SECRET.as_bytes(), None).unwrap().mint(&UserId::new("crash").unwrap(), now() + 600).unwrap();
    let client = common::client();
    let mut acknowledged: HashMap<String, String> = HashMap::new();

    for round in 0..4 {
        let (mut server, base) = start(dir.path());
        let uploads: Vec<_> = (0..3)
            .map(|i| {
                let (client, token, base) = (client.clone(), token.clone(), base.clone());
                let path = format!("/round{round}/file{i}.bin");
                // One small upload per round finishes before the kill; the large ones are cut.
                let size = if i == 0 { 64 * 1024 } else { 24 * 1024 * 1024 };
                let (body, checksum) = slow_upload(path.clone(), size);
                tokio::spawn(async move {
                    let response = client
                        .post(format!("{base}/api/workspace/files"))
                        .bearer_auth(&token)
                        .header("content-type", "multipart/form-data; boundary=b0undary")
                        .body(body)
                        .send()
                        .await;
                    match response {
                        Ok(r) if r.status() == 201 => {
                            let json: serde_json::Value = r.json().await.unwrap();
                            assert_eq!(json["checksum"], checksum.as_str());
                            Some((path, checksum))
                        }
                        _ => None,
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(rand::rng().random_range(150..600))).await;
        server.child.kill().unwrap(); // SIGKILL: no shutdown, no cleanup.
        server.child.wait().unwrap();
        for upload in uploads {
            if let Some((path, checksum)) = upload.await.unwrap() {
                acknowledged.insert(path, checksum);
            }
        }
    }

    // Restart, collect what the crashes left, and check what the user sees.
    let out = command(dir.path()).args(["gc", "--grace-minutes", "0"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_server, base) = start(dir.path());
    let list: serde_json::Value = client
        .get(format!("{base}/api/workspace/files?limit=1000"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let files = list["files"].as_array().unwrap();
    let listed: HashMap<String, String> = files
        .iter()
        .map(|f| (f["path"].as_str().unwrap().to_owned(), f["checksum"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(listed, acknowledged, "exactly the acknowledged uploads are visible");
    for file in files {
        let bytes = client
            .get(format!("{base}/api/workspace/files/{}/download", file["id"].as_str().unwrap()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(hex::encode(Sha256::digest(&bytes)), file["checksum"].as_str().unwrap());
    }
    let tmp: Vec<_> = std::fs::read_dir(dir.path().join("files/tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "gc removed the crashes' unfinished temp files: {tmp:?}");
    let mut objects = 0;
    let mut dirs = vec![dir.path().join("files/objects")];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(d).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                dirs.push(entry.path());
            } else {
                objects += 1;
            }
        }
    }
    // Files up to 64 KiB live in the database; larger ones have one blob per distinct content
    // (equal bytes are stored once).
    let blob_contents: std::collections::HashSet<&str> = files
        .iter()
        .filter(|f| f["size_bytes"].as_u64().unwrap() > 64 * 1024)
        .map(|f| f["checksum"].as_str().unwrap())
        .collect();
    assert_eq!(objects, blob_contents.len(), "one blob per stored large content, no orphans");
}
