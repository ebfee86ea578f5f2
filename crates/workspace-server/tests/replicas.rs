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
