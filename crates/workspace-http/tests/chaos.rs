//! Fault injection under load: 32 clients upload, overwrite, read, delete and list through a
//! real server while the storage backend fails at random (before, during and after writes, on
//! reads and deletes, with delays) and, on PostgreSQL, every database session is terminated
//! several times mid-run. Afterwards, with gc run: every acknowledged write is readable with its
//! checksum, no acknowledged delete is visible, no blob lacks a live row, no path has two live
//! rows, usage equals the sum of live sizes, and every request got a well-formed answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Server;
use rand::Rng;
use sea_orm::ConnectionTrait;
use serde_json::Value;
use sha2::{Digest, Sha256};
use workspace_core::gc::GcOptions;
use workspace_core::{Limits, Storage};
use workspace_testkit::{FaultyStorage, TestEnv, db_tests};

const CLIENTS: usize = 32;
const OPS_PER_CLIENT: usize = 12;

db_tests!(storage_and_database_faults_under_load_lose_nothing);

#[derive(Default)]
struct Ledger {
    /// Acknowledged uploads to paths of their own: id → (path, sha256).
    unique: HashMap<String, (String, String)>,
    /// Ids whose delete was attempted (whatever the answer), and those acknowledged with 204.
    delete_attempted: HashSet<String>,
    deleted: HashSet<String>,
    statuses: HashMap<u16, u32>,
}

async fn storage_and_database_faults_under_load_lose_nothing(env: TestEnv) {
    let faulty = FaultyStorage::new(env.storage.clone());
    let faults = Arc::clone(&faulty.faults);
    let pg_url = env.postgres_url().map(str::to_owned);
    let s = Arc::new(Server::with_storage(env, Storage::new(faulty), Limits::default()).await);
    faults.chaos_permille.store(150, Ordering::SeqCst);
    let ledger: Arc<Mutex<Ledger>> = Arc::default();

    // On PostgreSQL, cut every session of the test database a few times during the run.
    let killer = pg_url.map(|url| {
        tokio::spawn(async move {
            let (base, name) = url.rsplit_once('/').unwrap();
            let admin = sea_orm::Database::connect(format!("{base}/postgres")).await.unwrap();
            let mut killed = 0;
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let sql = format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                );
                killed += admin.query_all_raw(sea_orm::Statement::from_string(admin.get_database_backend(), sql))
                    .await
                    .unwrap()
                    .len();
            }
            killed
        })
    });

    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (s, ledger) = (Arc::clone(&s), Arc::clone(&ledger));
            tokio::spawn(async move {
                let token = s.token("chaos");
                for op in 0..OPS_PER_CLIENT {
                    let roll = rand::rng().random_range(0..10u8);
                    // Half the bodies are kept inline in the database, half go to storage as blobs.
                    let body: Vec<u8> = (0..rand::rng().random_range(1..128 * 1024)).map(|_| rand::random()).collect();
                    let checksum = hex::encode(Sha256::digest(&body));
                    let (request, kind) = match roll {
                        0..=3 => {
                            let path = format!("/unique/c{c}-{op}.bin");
                            (upload(&s, &token, &path, false, body), Kind::Unique(path, checksum))
                        }
                        4 | 5 => {
                            let path = format!("/shared/p{}.bin", rand::rng().random_range(0..6));
                            (upload(&s, &token, &path, true, body), Kind::Other)
                        }
                        6 | 7 => {
                            let Some(id) = pick(&ledger) else { continue };
                            (
                                s.client.get(s.url(&format!("/api/workspace/files/{id}/download"))).bearer_auth(&token),
                                Kind::Read(id),
                            )
                        }
                        8 => {
                            let Some(id) = pick(&ledger) else { continue };
                            ledger.lock().unwrap().delete_attempted.insert(id.clone());
                            (
                                s.client.delete(s.url(&format!("/api/workspace/files/{id}"))).bearer_auth(&token),
                                Kind::Delete(id),
                            )
                        }
                        _ => (
                            s.client
                                .get(s.url("/api/workspace/files?include_all_sessions=true&limit=50"))
                                .bearer_auth(&token),
                            Kind::Other,
                        ),
                    };
                    let response = request.send().await.expect("the server answers every request");
                    let status = response.status().as_u16();
                    let bytes = response.bytes().await.expect("whole responses");
                    assert!([200, 201, 204, 404, 409, 500, 503].contains(&status), "unexpected {status}");
                    if status >= 400 {
                        let json: Value = serde_json::from_slice(&bytes).expect("errors are JSON");
                        assert!(json["error"].is_string() && json["message"].is_string(), "{json}");
                    }
                    let mut ledger = ledger.lock().unwrap();
                    *ledger.statuses.entry(status).or_default() += 1;
                    match (kind, status) {
                        (Kind::Unique(path, checksum), 201) => {
                            let json: Value = serde_json::from_slice(&bytes).unwrap();
                            assert_eq!(json["checksum"], checksum.as_str());
                            ledger.unique.insert(json["id"].as_str().unwrap().to_owned(), (path, checksum));
                        }
                        (Kind::Read(id), 200) => {
                            let expected = &ledger.unique[&id].1;
                            assert_eq!(
                                &hex::encode(Sha256::digest(&bytes)),
                                expected,
                                "a read returns the stored bytes"
                            );
                        }
                        (Kind::Delete(id), 204) => {
                            ledger.deleted.insert(id);
                        }
                        _ => {}
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    if let Some(killer) = killer {
        assert!(killer.await.unwrap() > 0, "database sessions were terminated mid-run");
    }
    faults.chaos_permille.store(0, Ordering::SeqCst);
    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    assert!(ledger.statuses.get(&201).copied().unwrap_or(0) > 20, "{:?}", ledger.statuses);
    assert!(ledger.statuses.keys().any(|s| *s >= 500), "faults were injected: {:?}", ledger.statuses);

    let workspaces = common::workspaces(&s.env, s.env.storage.clone(), Limits::default());
    let report = workspaces.gc(GcOptions { grace: Duration::ZERO, ..GcOptions::default() }).await.unwrap();
    let token = s.token("chaos");
    for (id, (path, checksum)) in &ledger.unique {
        let response = s
            .client
            .get(s.url(&format!("/api/workspace/files/{id}/download")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if ledger.deleted.contains(id) {
            assert_eq!(response.status(), 404, "acknowledged delete of {path} is not visible");
        } else if !ledger.delete_attempted.contains(id) {
            assert_eq!(response.status(), 200, "acknowledged write {path} is readable");
            assert_eq!(&hex::encode(Sha256::digest(response.bytes().await.unwrap())), checksum, "{path}");
        }
    }
    // After gc: nothing orphaned, nothing lost, counters right (see workspace_testkit::invariants).
    let snapshot = s.env.assert_consistent().await;
    let usage: Value = s.get("chaos", "/api/workspace/usage").send().await.unwrap().json().await.unwrap();
    let live: i64 = snapshot.current().map(|row| row.size_bytes).sum();
    assert_eq!(usage["live_bytes"].as_i64().unwrap(), live, "usage equals the sum of current sizes ({report:?})");
    assert_eq!(usage["file_count"].as_u64().unwrap(), snapshot.current().count() as u64);
}

enum Kind {
    Unique(String, String),
    Read(String),
    Delete(String),
    Other,
}

fn pick(ledger: &Mutex<Ledger>) -> Option<String> {
    let ledger = ledger.lock().unwrap();
    let ids: Vec<&String> = ledger.unique.keys().collect();
    (!ids.is_empty()).then(|| ids[rand::rng().random_range(0..ids.len())].clone())
}

fn upload(s: &Server, token: &str, path: &str, overwrite: bool, body: Vec<u8>) -> reqwest::RequestBuilder {
    let (content_type, bytes) = common::multipart(&[
        common::Part::text("path", path),
        common::Part::text("overwrite", if overwrite { "true" } else { "false" }),
        common::Part::file("f.bin", &body),
    ]);
    s.client.post(s.url("/api/workspace/files")).bearer_auth(token).header("content-type", content_type).body(bytes)
}
