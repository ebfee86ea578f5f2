//! SPEC §7: faults answer fast and honestly. A storage or database that is unreachable, slow or
//! overloaded answers 503 with `Retry-After` within the storage deadline; a fault that retrying
//! will not fix (a bug, a misconfiguration) answers 500. Each kind is provoked for real.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Part, Server};
use serde_json::Value;
use workspace_core::{Limits, Storage};
use workspace_testkit::{DbKind, FaultyStorage, TestEnv, db_tests};

db_tests!(storage_that_does_not_answer_is_503_within_the_deadline, permanent_faults_are_500);

async fn storage_that_does_not_answer_is_503_within_the_deadline(env: TestEnv) {
    let faulty = FaultyStorage::new(env.storage.clone());
    let faults = std::sync::Arc::clone(&faulty.faults);
    let storage = Storage::new(faulty).with_timeout(Duration::from_millis(500));
    let s = Server::with_storage(env, storage, Limits::default()).await;
    let big = vec![7u8; 200 * 1024];
    let stored = s.upload_file("alice", "big.bin", &big).await;
    let id = stored["id"].as_str().unwrap().to_owned();

    faults.hang.store(true, Ordering::SeqCst);
    for attempt in ["upload", "download"] {
        let started = Instant::now();
        let r = match attempt {
            "upload" => s.upload("alice", &[Part::file("during.bin", &big)]).await,
            _ => s.get("alice", &format!("/api/workspace/files/{id}/download")).send().await.unwrap(),
        };
        assert_eq!(r.status(), 503, "{attempt}");
        assert_eq!(r.headers()["retry-after"], "5", "{attempt}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "unavailable", "{attempt}: {body}");
        assert!(started.elapsed() < Duration::from_secs(5), "{attempt} failed fast: {:?}", started.elapsed());
    }
    // Small files live in the database: they do not wait on storage at all.
    assert_eq!(s.upload("alice", &[Part::file("small.txt", b"fine")]).await.status(), 201);
    faults.hang.store(false, Ordering::SeqCst);
    let r = s.get("alice", &format!("/api/workspace/files/{id}/download")).send().await.unwrap();
    assert_eq!(r.status(), 200, "storage is back");
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.env.assert_consistent().await;
}

async fn permanent_faults_are_500(env: TestEnv) {
    // A database failure that is not transient (here a trigger refusing the insert) is ours to fix.
    env.fail_inserts_named("refused.txt").await;
    let faulty = FaultyStorage::new(env.storage.clone());
    let faults = std::sync::Arc::clone(&faulty.faults);
    let s = Server::with_storage(env, Storage::new(faulty), Limits::default()).await;
    let r = s.upload("alice", &[Part::file("refused.txt", b"x")]).await;
    assert_eq!(r.status(), 500);
    assert!(r.headers().get("retry-after").is_none());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "database_error");
    assert!(!body["message"].as_str().unwrap().contains("injected"), "internals stay in the log: {body}");
    // A storage failure that is not transient (the backend refusing the object) is too.
    faults.fail_put_after_storing.store(true, Ordering::SeqCst);
    let r = s.upload("alice", &[Part::file("blob.bin", &vec![1u8; 100 * 1024])]).await;
    assert_eq!(r.status(), 500);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "storage_error");
}

/// A database that cannot be reached (its connections cut, new ones refused) is transient: 503 +
/// Retry-After, within the pool's acquire deadline. The server reaches PostgreSQL through a TCP
/// proxy the test controls.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_database_is_503() {
    let Some(env) = TestEnv::new(DbKind::Postgres).await else { return };
    let url = env.postgres_url().unwrap().to_owned();
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let proxied = url.replacen("127.0.0.1:5432", &proxy.addr.to_string(), 1);
    assert_ne!(proxied, url);
    let db = workspace_core::Db::connect_with(&proxied, Duration::from_secs(3)).await.unwrap();
    let workspaces =
        workspace_core::Workspaces::new(db, env.storage.clone(), workspace_core::Settings::default()).unwrap();
    let state =
        workspace_http::AppState::new(workspaces, common::api_config(workspace_http::RequestLimits::default()), None);
    let addr = common::serve(state).await;
    let s = Server::start(env).await;
    let token = s.token("alice");
    let client = reqwest::Client::new();
    let usage = format!("http://{addr}/api/workspace/usage");
    assert_eq!(client.get(&usage).bearer_auth(&token).send().await.unwrap().status(), 200);

    proxy.stop();
    let started = Instant::now();
    let r = client.get(&usage).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "unavailable");
    assert!(started.elapsed() < Duration::from_secs(10), "within the database deadline: {:?}", started.elapsed());
}

/// A TCP proxy to `target`; `stop` closes its listener and every connection through it.
struct Proxy {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
    connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: &'static str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Default::default();
        let task = tokio::spawn({
            let connections = std::sync::Arc::clone(&connections);
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    let handle = tokio::spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    connections.lock().unwrap().push(handle);
                }
            }
        });
        Self { addr, task, connections }
    }

    fn stop(&self) {
        self.task.abort();
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}
