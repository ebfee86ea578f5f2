//! Two server processes on different ports share one PostgreSQL database and one bucket (or one
//! directory), as replicas behind a load balancer do. Eight clients upload, overwrite, delete and
//! list through both at once while `gc` runs from a third process; afterwards every live row has
//! its blob with the right checksum, no blob lacks a live row (after a final gc), and no path has
//! two live rows. Run with `WS_TEST_STORAGE=gcs` for the production topology.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{ServerProcess, now, spawn};
use rand::Rng;
use sha2::{Digest, Sha256};
use workspace_core::UserId;
use workspace_http::JwtConfig;
use workspace_testkit::{DbKind, TestEnv};

const SECRET: &str = "replica-test-secret-replica-test-secret";

fn command(env: &TestEnv) -> Command {
    let mut cmd = common::clean_command();
    cmd.env("WS_DATABASE_URL", env.database_url())
        .env("WS_JWT_SECRET", SECRET)
        // Eight clients of one user upload at once through two replicas.
        .env("WS_MAX_CONCURRENT_UPLOADS", "64")
        .envs(env.storage_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    cmd
}

fn start(env: &TestEnv) -> ServerProcess {
    spawn(command(env), false)
}

fn multipart(path: &str, overwrite: bool, body: Vec<u8>) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .text("path", path.to_owned())
        .text("overwrite", overwrite.to_string())
        .part("file", reqwest::multipart::Part::bytes(body).file_name("f.bin"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_share_one_database_and_one_bucket() {
    let Some(env) = TestEnv::new(DbKind::Postgres).await else { return };
    let replicas = [start(&env), start(&env)];
    let bases: Vec<String> = replicas.iter().map(|r| r.base.clone()).collect();
    let token = JwtConfig::new(SECRET.as_bytes(), None)
        .unwrap()
        .mint(&UserId::new("replica-user").unwrap(), now() + 600)
        .unwrap();
    let client = common::client();
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let statuses: Arc<Mutex<HashMap<u16, u32>>> = Arc::default();

    // gc from a third process, with the default grace period, while the clients run.
    let gc_runs: Vec<Command> = (0..3)
        .map(|_| {
            let mut cmd = command(&env);
            cmd.arg("gc");
            cmd
        })
        .collect();
    let gc = std::thread::spawn(move || {
        for mut gc_run in gc_runs {
            std::thread::sleep(Duration::from_millis(400));
            let out = gc_run.output().unwrap();
            assert!(out.status.success(), "gc: {}", String::from_utf8_lossy(&out.stderr));
        }
    });

    let clients: Vec<_> = (0..8)
        .map(|i| {
            let (client, bases, token) = (client.clone(), bases.clone(), token.clone());
            let (acknowledged, statuses) = (Arc::clone(&acknowledged), Arc::clone(&statuses));
            tokio::spawn(async move {
                for op in 0..25usize {
                    let base = &bases[(i + op) % 2];
                    let roll: u8 = rand::rng().random_range(0..10);
                    let size = rand::rng().random_range(1..128 * 1024);
                    let body: Vec<u8> = (0..size).map(|_| rand::random::<u8>()).collect();
                    let response = match roll {
                        0..=4 => {
                            let path = format!("/shared/p{}", rand::rng().random_range(0..4));
                            client.post(format!("{base}/api/workspace/files")).multipart(multipart(&path, true, body))
                        }
                        5 | 6 => {
                            let path = format!("/shared/q{}", rand::rng().random_range(0..4));
                            client.post(format!("{base}/api/workspace/files")).multipart(multipart(&path, false, body))
                        }
                        7 | 8 => {
                            let id = {
                                let ids = acknowledged.lock().unwrap();
                                if ids.is_empty() {
                                    continue;
                                } else {
                                    ids[rand::rng().random_range(0..ids.len())].clone()
                                }
                            };
                            client.delete(format!("{base}/api/workspace/files/{id}"))
                        }
                        _ => client.get(format!("{base}/api/workspace/files?include_all_sessions=true")),
                    }
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                    let status = response.status().as_u16();
                    *statuses.lock().unwrap().entry(status).or_default() += 1;
                    if status == 201 {
                        let info: serde_json::Value = response.json().await.unwrap();
                        acknowledged.lock().unwrap().push(info["id"].as_str().unwrap().to_owned());
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    gc.join().unwrap();
    let statuses = statuses.lock().unwrap().clone();
    for status in statuses.keys() {
        assert!([200, 201, 204, 404, 409].contains(status), "unexpected status {status}: {statuses:?}");
    }
    assert!(statuses.get(&201).copied().unwrap_or(0) > 20, "the workload wrote files: {statuses:?}");

    // A final gc with no grace: nothing is in flight any more.
    let out = command(&env).args(["gc", "--grace-minutes", "0"]).output().unwrap();
    assert!(out.status.success());

    // Nothing orphaned, nothing lost, counters right (see workspace_testkit::invariants).
    let snapshot = env.assert_consistent().await;
    for row in snapshot.current() {
        // Every current file downloads, through either replica, with its recorded checksum.
        for base in &bases {
            let bytes = client
                .get(format!("{base}/api/workspace/files/{}/download", row.id))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(hex::encode(Sha256::digest(&bytes)), row.checksum, "{}", row.path);
        }
    }
    drop(replicas);
}

/// SPEC §14 across replicas: concurrent moves onto one free path through two processes give one
/// success, and overwriters sharing one stale If-Match give one success; nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn structure_races_across_two_replicas() {
    let Some(env) = TestEnv::new(DbKind::Postgres).await else { return };
    let replicas = [start(&env), start(&env)];
    let bases: Vec<String> = replicas.iter().map(|r| r.base.clone()).collect();
    let token =
        JwtConfig::new(SECRET.as_bytes(), None).unwrap().mint(&UserId::new("mover").unwrap(), now() + 600).unwrap();
    let client = common::client();
    let upload = |path: String, body: Vec<u8>, etag: Option<String>| {
        let (client, base, token) = (client.clone(), bases[0].clone(), token.clone());
        async move {
            let mut r = client
                .post(format!("{base}/api/workspace/files"))
                .bearer_auth(&token)
                .multipart(multipart(&path, false, body));
            if let Some(etag) = etag {
                r = r.header("if-match", etag);
            }
            r.send().await.unwrap()
        }
    };
    let mut ids = Vec::new();
    for i in 0..12u8 {
        let r = upload(format!("/m/{i}.bin"), vec![i; 100 * 1024], None).await;
        ids.push(r.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
    }
    let moves: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let (client, base, token) = (client.clone(), bases[i % 2].clone(), token.clone());
            let url = format!("{base}/api/workspace/files/{id}/move");
            tokio::spawn(async move {
                let r = client.post(url).bearer_auth(&token).header("content-type", "application/json");
                r.body(r#"{"path": "/target.bin"}"#).send().await.unwrap().status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for m in moves {
        statuses.push(m.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [vec![200], vec![409; 11]].concat(), "one move wins");

    let base = upload("/doc.txt".into(), b"base".to_vec(), None).await.json::<serde_json::Value>().await.unwrap();
    let etag = format!("\"{}\"", base["checksum"].as_str().unwrap());
    let writers: Vec<_> = (0..16)
        .map(|i| {
            let (client, base, token, etag) = (client.clone(), bases[i % 2].clone(), token.clone(), etag.clone());
            tokio::spawn(async move {
                client
                    .post(format!("{base}/api/workspace/files"))
                    .bearer_auth(&token)
                    .header("if-match", etag)
                    .multipart(multipart("/doc.txt", false, format!("edit {i}").into_bytes()))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for w in writers {
        statuses.push(w.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [vec![201], vec![412; 15]].concat(), "one edit of the shared version wins");
    let snapshot = env.assert_consistent().await;
    assert_eq!(snapshot.current().count(), 13, "12 moved-or-not files and the document: none lost");
    drop(replicas);
}
