//! The change feed across processes (SPEC §16), with the real binary:
//! - two replicas on one PostgreSQL database: a change made through replica A reaches an SSE
//!   subscriber on replica B within a second (the measured latencies are printed); 1 000 changes
//!   made through both arrive in order, none lost or repeated, while the subscriber drops its
//!   connection mid-stream and resumes with `Last-Event-ID`;
//! - two servers on one SQLite file: a change made through one reaches a subscriber of the other
//!   within a second (the counter check, as for a stdio MCP process or the CLI); SIGTERM ends open
//!   streams, so the server exits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{ServerProcess, now, spawn};
use futures::StreamExt;
use workspace_core::UserId;
use workspace_http::JwtConfig;
use workspace_testkit::{DbKind, TestEnv};

const SECRET: &str = "feed-replica-secret-feed-replica-secret";

fn start(env: &TestEnv) -> ServerProcess {
    let mut cmd: Command = common::clean_command();
    cmd.env("WS_DATABASE_URL", env.database_url())
        .env("WS_JWT_SECRET", SECRET)
        .env("WS_MAX_CONCURRENT_UPLOADS", "64")
        .envs(env.storage_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    spawn(cmd, false)
}

fn token(user: &str) -> String {
    JwtConfig::new(SECRET.as_bytes(), None).unwrap().mint(&UserId::new(user).unwrap(), now() + 600).unwrap()
}

/// An SSE response read event by event: (id, type, path).
struct Events {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl Events {
    async fn open(client: &reqwest::Client, base: &str, user: &str, last_event_id: Option<u64>) -> Self {
        let mut request = client
            .get(format!("{base}/api/workspace/events"))
            .bearer_auth(token(user))
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        Self { body: response.bytes_stream().boxed(), buffer: String::new() }
    }

    async fn next(&mut self, within: Duration) -> (u64, String, String) {
        tokio::time::timeout(within, async {
            loop {
                while let Some(end) = self.buffer.find("\n\n") {
                    let frame: String = self.buffer.drain(..end + 2).collect();
                    let (mut id, mut kind, mut data) = (None, None, None);
                    for line in frame.lines() {
                        if let Some(v) = line.strip_prefix("id: ") {
                            id = Some(v.parse::<u64>().unwrap());
                        } else if let Some(v) = line.strip_prefix("event: ") {
                            kind = Some(v.to_owned());
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            data = Some(serde_json::from_str::<serde_json::Value>(v).unwrap());
                        }
                    }
                    if let (Some(id), Some(kind), Some(data)) = (id, kind, data) {
                        return (id, kind, data["path"].as_str().unwrap().to_owned());
                    }
                }
                let chunk = self.body.next().await.expect("the stream stays open").unwrap();
                self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
            }
        })
        .await
        .expect("an event in time")
    }
}

async fn upload(client: &reqwest::Client, base: &str, user: &str, path: &str) {
    let form = reqwest::multipart::Form::new()
        .text("path", path.to_owned())
        .text("overwrite", "true")
        .part("file", reqwest::multipart::Part::bytes(path.as_bytes().to_vec()).file_name("f.txt"));
    let response = client
        .post(format!("{base}/api/workspace/files"))
        .bearer_auth(token(user))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

/// Changes through `a` reach a subscriber of `b` within a second; returns the latencies.
async fn latencies(client: &reqwest::Client, a: &str, b: &str, rounds: usize) -> Vec<Duration> {
    let mut events = Events::open(client, b, "feed-user", None).await;
    let mut measured = Vec::new();
    for i in 0..rounds {
        let path = format!("/latency/{i}.txt");
        let started = Instant::now();
        upload(client, a, "feed-user", &path).await;
        let (_, kind, got) = events.next(Duration::from_secs(5)).await;
        let latency = started.elapsed();
        assert_eq!((kind.as_str(), got.as_str()), ("created", path.as_str()));
        measured.push(latency);
    }
    measured.sort();
    measured
}

fn summary(label: &str, measured: &[Duration]) {
    let median = measured[measured.len() / 2];
    let worst = measured[measured.len() - 1];
    println!(
        "{label}: change on replica A → SSE event on replica B: median {median:?}, worst {worst:?} ({} changes)",
        measured.len()
    );
    assert!(worst < Duration::from_secs(1), "{label}: a change took {worst:?} to cross replicas");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_replicas_share_one_feed() {
    let Some(env) = TestEnv::new(DbKind::Postgres).await else { return };
    let (a, b) = (start(&env), start(&env));
    let client = common::client();
    summary("PostgreSQL", &latencies(&client, &a.base, &b.base, 20).await);

    // 1 000 changes through both replicas, 8 clients at once; the subscriber on B reconnects
    // mid-stream with Last-Event-ID.
    let first = 21;
    const CHANGES: u64 = 1000;
    let mut events = Events::open(&client, &b.base, "feed-user", Some(first - 1)).await;
    let bases = [a.base.clone(), b.base.clone()];
    let writers: Vec<_> = (0..8u64)
        .map(|w| {
            let (client, bases) = (client.clone(), bases.clone());
            tokio::spawn(async move {
                for i in 0..CHANGES / 8 {
                    upload(&client, &bases[((w + i) % 2) as usize], "feed-user", &format!("/bulk/{w}/{i}.txt")).await;
                }
            })
        })
        .collect();
    let started = Instant::now();
    let mut ids = Vec::new();
    let mut reconnected = false;
    while (ids.len() as u64) < CHANGES {
        let (id, _, _) = events.next(Duration::from_secs(10)).await;
        ids.push(id);
        if ids.len() == 400 && !reconnected {
            // Drop the connection and resume after the last id seen.
            events = Events::open(&client, &b.base, "feed-user", Some(id)).await;
            reconnected = true;
        }
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let expected: Vec<u64> = (first..first + CHANGES).collect();
    assert_eq!(ids, expected, "every change once, in order, across the reconnect");
    println!("PostgreSQL: {CHANGES} changes through two replicas received in order in {:?}", started.elapsed());
    // Nothing more.
    let extra = tokio::time::timeout(Duration::from_millis(500), events.next(Duration::from_secs(1))).await;
    assert!(extra.is_err(), "no event beyond the last change");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_processes_share_one_feed() {
    let Some(env) = TestEnv::new(DbKind::Sqlite).await else { return };
    let (a, b) = (start(&env), start(&env));
    let client = common::client();
    summary("SQLite", &latencies(&client, &a.base, &b.base, 10).await);
    // The other direction too, and both at once: one ordered feed.
    let mut on_a = Events::open(&client, &a.base, "feed-user", Some(10)).await;
    let writers: Vec<_> = [a.base.clone(), b.base.clone()]
        .into_iter()
        .enumerate()
        .map(|(n, base)| {
            let client = client.clone();
            tokio::spawn(async move {
                for i in 0..25 {
                    upload(&client, &base, "feed-user", &format!("/both/{n}-{i}.txt")).await;
                }
            })
        })
        .collect();
    let mut ids = Vec::new();
    for _ in 0..50 {
        ids.push(on_a.next(Duration::from_secs(5)).await.0);
    }
    for writer in writers {
        writer.await.unwrap();
    }
    assert_eq!(ids, (11..=60).collect::<Vec<_>>());

    // SIGTERM with a stream open: the stream ends and the server exits (graceful shutdown waits
    // for open responses, so the feed must close them).
    let mut a = a;
    let status = Command::new("kill").args(["-TERM", &a.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let ended =
        tokio::time::timeout(Duration::from_secs(10), async { while let Some(Ok(_)) = on_a.body.next().await {} })
            .await;
    assert!(ended.is_ok(), "the event stream ended at shutdown");
    let exit = tokio::task::spawn_blocking(move || {
        let status = a.child.wait().unwrap();
        (a, status)
    });
    let (_a, exit) = tokio::time::timeout(Duration::from_secs(10), exit).await.expect("the server exits").unwrap();
    assert!(exit.success(), "clean exit after the shutdown: {exit:?}");
}
