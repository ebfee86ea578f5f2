//! Limits that protect the server, each attacked over real TCP on loopback: oversized headers,
//! oversized bodies, too many concurrent uploads, slow-loris heads, stalled upload bodies and
//! clients that stop reading a download. After each attack the server still serves others.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{AUDIENCE, BOUNDARY, Part, SECRET};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use workspace_core::{Limits, UserId};
use workspace_http::{AppState, JwtConfig, RequestLimits, ServeLimits};
use workspace_testkit::{DbKind, TestEnv};

struct Limited {
    addr: SocketAddr,
    client: reqwest::Client,
    _env: TestEnv,
}

impl Limited {
    async fn start(serve: ServeLimits, request: RequestLimits) -> Option<Self> {
        common::install_crypto();
        let env = TestEnv::new(DbKind::Sqlite).await?;
        let workspaces = common::workspaces(&env, env.storage.clone(), Limits::default());
        let state = AppState::new(workspaces, common::api_config(request), None);
        let addr = common::serve_with(state, serve).await;
        Some(Self { addr, client: reqwest::Client::new(), _env: env })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn upload(&self, user: &str, name: &str, bytes: &[u8]) -> reqwest::Response {
        let (content_type, body) = common::multipart(&[Part::file(name, bytes)]);
        self.client
            .post(self.url("/api/workspace/files"))
            .bearer_auth(token(user))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    async fn healthy(&self) {
        let r = self.client.get(self.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200, "the server keeps serving others");
    }

    async fn file_count(&self, user: &str) -> usize {
        let r = self
            .client
            .get(self.url("/api/workspace/files?include_all_sessions=true"))
            .bearer_auth(token(user))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["files"].as_array().unwrap().len()
    }

    /// An upload whose head and first bytes are sent, then nothing: the handler runs and waits.
    async fn stalled_upload(&self, user: &str) -> TcpStream {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        let preamble = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.bin\"\r\n\r\nfirst bytes"
        );
        let head = format!(
            "POST /api/workspace/files HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\n\
             Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: 1000000\r\n\r\n{preamble}",
            token(user)
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream
    }
}

fn token(user: &str) -> String {
    let jwt = JwtConfig::new(SECRET, Some(AUDIENCE.into())).unwrap();
    jwt.mint(&UserId::new(user).unwrap(), chrono::Utc::now().timestamp() + 600).unwrap()
}

/// Reads until the server closes the connection (or it errors); returns what arrived.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut received = Vec::new();
    let result = tokio::time::timeout(within, async {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(result.is_ok(), "the server did not close the connection within {within:?}");
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_headers_are_refused_and_others_still_served() {
    let limits = ServeLimits { max_header_bytes: 16 * 1024, ..ServeLimits::default() };
    let Some(s) = Limited::start(limits, RequestLimits::default()).await else { return };
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    let big = "a".repeat(256 * 1024);
    let request = format!("GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: {big}\r\n\r\n");
    // The server may close while we are still writing; that is a refusal too.
    let _ = stream.write_all(request.as_bytes()).await;
    let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "oversized head must be refused with 431 or a closed connection: {answer}"
    );
    // A normal request with a real-sized header (a bearer token) still works.
    let r = s.client.get(s.url("/api/workspace/usage")).bearer_auth(token("alice")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    s.healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn request_bodies_are_bounded_except_the_streamed_upload() {
    let request = RequestLimits { max_body_bytes: 64 * 1024, ..RequestLimits::default() };
    let Some(s) = Limited::start(ServeLimits::default(), request).await else { return };
    let big = vec![b'x'; 1024 * 1024];
    for (method, path) in [
        (reqwest::Method::POST, "/api/workspace/files/00000000-0000-0000-0000-000000000000/link"),
        (reqwest::Method::GET, "/api/workspace/usage"),
        (reqwest::Method::DELETE, "/api/workspace/files/00000000-0000-0000-0000-000000000000"),
        (reqwest::Method::POST, "/no/such/route"),
    ] {
        let r = s
            .client
            .request(method.clone(), s.url(path))
            .bearer_auth(token("alice"))
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413, "{method} {path}");
        assert_eq!(r.headers()["content-type"], "application/json");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "body_too_large", "{body}");
    }
    // A small body on the same routes is not refused for its size.
    let r = s.client.get(s.url("/api/workspace/usage")).bearer_auth(token("alice")).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The upload is not bound by it: it streams and is capped by the file size limit instead.
    let r = s.upload("alice", "big.bin", &big).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn excess_uploads_wait_for_a_slot_then_get_429_and_slots_are_released() {
    let request = RequestLimits {
        max_concurrent_uploads: 2,
        max_queued_uploads: 1,
        upload_queue_timeout: Duration::from_secs(1),
        ..RequestLimits::default()
    };
    let Some(s) = Limited::start(ServeLimits::default(), request).await else { return };
    // Uploads whose request is over the inline threshold (64 KiB by default) take slots; smaller
    // ones skip the line (checked below).
    let large = |tag: u8| vec![tag; 80 * 1024];
    let first = s.stalled_upload("alice").await;
    let mut second = s.stalled_upload("alice").await;
    // Wait until both slow uploads hold their slots: a third then waits its bounded time in line
    // and is answered 429.
    let deadline = Instant::now() + Duration::from_secs(5);
    let refused = loop {
        let started = Instant::now();
        let r = s.upload("alice", "third.txt", &large(3)).await;
        if r.status() == 429 {
            assert!(started.elapsed() >= Duration::from_millis(900), "it waited in line first");
            break r;
        }
        assert!(Instant::now() < deadline, "a third concurrent upload was never refused: {}", r.status());
        // A success here means a slow upload had not started yet; remove it and try again.
        let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
        s.client.delete(s.url(&format!("/api/workspace/files/{id}"))).bearer_auth(token("alice")).send().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(refused.headers()["retry-after"], "5");
    assert_eq!(refused.headers()["content-type"], "application/json");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "too_many_uploads", "{body}");

    // A small upload (its whole request within the inline threshold) is held in memory for its
    // row: it does not wait in line, even with every slot taken.
    let started = Instant::now();
    let r = s.upload("alice", "small.txt", b"small").await;
    assert_eq!(r.status(), 201, "a small upload skips the line");
    assert!(started.elapsed() < Duration::from_millis(800), "without waiting");
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    s.client.delete(s.url(&format!("/api/workspace/files/{id}"))).bearer_auth(token("alice")).send().await.unwrap();

    // The line is bounded too: with one upload already waiting, another is refused at once.
    let waiting = tokio::spawn({
        let (client, url) = (s.client.clone(), s.url("/api/workspace/files"));
        let (content_type, body) = common::multipart(&[Part::file("waiting.txt", &large(4))]);
        async move {
            client.post(url).bearer_auth(token("alice")).header("content-type", content_type).body(body).send().await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let r = s.upload("alice", "fourth.txt", &large(5)).await;
    assert_eq!(r.status(), 429);
    assert!(started.elapsed() < Duration::from_millis(800), "a full line refuses without waiting");
    assert_eq!(waiting.await.unwrap().unwrap().status(), 429, "the waiting one timed out");

    // Another user is not affected.
    assert_eq!(s.upload("bob", "bob.txt", b"bob").await.status(), 201);

    // A client that goes away frees its slot for the next in line.
    let next = tokio::spawn({
        let (client, url) = (s.client.clone(), s.url("/api/workspace/files"));
        let (content_type, body) = common::multipart(&[Part::file("after-disconnect.txt", &large(6))]);
        async move {
            client.post(url).bearer_auth(token("alice")).header("content-type", content_type).body(body).send().await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(first);
    assert_eq!(next.await.unwrap().unwrap().status(), 201, "the waiting upload got the freed slot");
    // A failed upload frees its slot too: end the second one with a malformed body.
    second.write_all(b"\r\n--not-the-boundary--\r\n").await.unwrap();
    second.shutdown().await.unwrap();
    let answer = read_until_closed(&mut second, Duration::from_secs(5)).await;
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 400"), "{}", String::from_utf8_lossy(&answer));
    for (tag, name) in [(7, "a.txt"), (8, "b.txt")] {
        let r = s.upload("alice", name, &large(tag)).await;
        assert_eq!(r.status(), 201, "both slots are free again");
    }
    assert_eq!(s.file_count("alice").await, 3, "nothing of the stalled uploads was stored");
}

/// SPEC §7: back-pressure never breaks the concurrency rules. With the default limits, 16 and 32
/// concurrent writers of one user all proceed: 201 or 409, never 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_and_thirty_two_writers_of_one_user_proceed_with_the_defaults() {
    let Some(s) = Limited::start(ServeLimits::default(), RequestLimits::default()).await else { return };
    for (writers, overwrite) in [(32usize, false), (16, true), (32, true)] {
        let tasks: Vec<_> = (0..writers)
            .map(|i| {
                let (client, url) = (s.client.clone(), s.url("/api/workspace/files"));
                // Over the inline threshold, so every writer streams a blob.
                let bytes = vec![i as u8; 100 * 1024];
                tokio::spawn(async move {
                    let (content_type, body) = common::multipart(&[
                        Part::text("path", "/same.bin"),
                        Part::text("overwrite", if overwrite { "true" } else { "false" }),
                        Part::file("same.bin", &bytes),
                    ]);
                    let r =
                        client.post(url).bearer_auth(token("alice")).header("content-type", content_type).body(body);
                    r.send().await.unwrap().status().as_u16()
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await.unwrap());
        }
        let created = statuses.iter().filter(|s| **s == 201).count();
        assert!(statuses.iter().all(|s| [201, 409].contains(s)), "{writers} writers: {statuses:?}");
        if overwrite {
            assert_eq!(created, writers, "every overwrite is a new version");
        } else {
            assert_eq!(created, 1, "one writer creates the file, the others conflict");
        }
    }
    s._env.assert_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_loris_request_heads_are_cut_off() {
    let limits = ServeLimits { header_read_timeout: Duration::from_secs(1), ..ServeLimits::default() };
    let Some(s) = Limited::start(limits, RequestLimits::default()).await else { return };
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n").await.unwrap();
    let started = Instant::now();
    // One header line now and then, never the end of the head.
    let trickle = async {
        for i in 0..20 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if stream.write_all(format!("X-Slow-{i}: a\r\n").as_bytes()).await.is_err() {
                break;
            }
        }
    };
    trickle.await;
    let answer = read_until_closed(&mut stream, Duration::from_secs(3)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(6));
    s.healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stalled_upload_bodies_fail_and_store_nothing() {
    let limits = ServeLimits { body_idle_timeout: Duration::from_secs(1), ..ServeLimits::default() };
    let request = RequestLimits { max_concurrent_uploads: 1, ..RequestLimits::default() };
    let Some(s) = Limited::start(limits, request).await else { return };
    let mut stream = s.stalled_upload("alice").await;
    let started = Instant::now();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(900), "not before the idle timeout");
    assert_eq!(s.file_count("alice").await, 0, "nothing is stored");
    // Its slot (the only one) is free again (for an upload over the inline threshold, which
    // takes one).
    let r = s.upload("alice", "next.txt", &vec![b'n'; 80 * 1024]).await;
    assert_eq!(r.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn downloads_to_clients_that_stop_reading_are_closed() {
    let limits = ServeLimits { write_idle_timeout: Duration::from_secs(1), ..ServeLimits::default() };
    let Some(s) = Limited::start(limits, RequestLimits::default()).await else { return };
    let size = 48 * 1024 * 1024;
    let bytes = vec![7u8; size];
    let r = s.upload("alice", "big.bin", &bytes).await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();

    // A small receive window, and then the client reads nothing.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(s.addr).await.unwrap();
    let request = format!(
        "GET /api/workspace/files/{id}/download HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\n\r\n",
        token("alice")
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    // The server gave up: reading now ends before the whole file arrived.
    let received = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(received.starts_with(b"HTTP/1.1 200"));
    assert!(received.len() < size, "the connection was closed early ({} of {size} bytes)", received.len());
    s.healthy().await;
}

/// Early answers (a 409 after the upload's fields, a 413 for a declared length) reach a client
/// that is still sending, and the connection is never reused after one: many rounds on one
/// pooled reqwest client, each followed by an ordinary request on the same client.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn early_answers_reach_clients_that_are_still_sending() {
    let request = RequestLimits { max_body_bytes: 64 * 1024, ..RequestLimits::default() };
    let Some(s) = Limited::start(ServeLimits::default(), request).await else { return };
    let (content_type, body) = common::multipart(&[Part::text("path", "/taken.bin"), Part::file("x.bin", b"first")]);
    let r =
        s.client.post(s.url("/api/workspace/files")).bearer_auth(token("alice")).header("content-type", &content_type);
    assert_eq!(r.body(body).send().await.unwrap().status(), 201);
    let big = vec![b'x'; 4 * 1024 * 1024];
    let (_, conflicting) = common::multipart(&[Part::text("path", "/taken.bin"), Part::file("x.bin", &big)]);
    for round in 0..20 {
        let r = s
            .client
            .post(s.url("/api/workspace/files"))
            .bearer_auth(token("alice"))
            .header("content-type", &content_type)
            .body(conflicting.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: the 409 did not reach the client: {e:?}"));
        assert_eq!(r.status(), 409, "round {round}");
        assert_eq!(r.headers()["connection"], "close", "round {round}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "conflict");

        let r = s
            .client
            .post(s.url("/api/workspace/files/00000000-0000-0000-0000-000000000000/link"))
            .bearer_auth(token("alice"))
            .body(big.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: the 413 did not reach the client: {e:?}"));
        assert_eq!(r.status(), 413, "round {round}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "body_too_large");

        let r = s.client.get(s.url("/api/workspace/usage")).bearer_auth(token("alice")).send().await;
        assert_eq!(r.unwrap_or_else(|e| panic!("round {round}: next request failed: {e:?}")).status(), 200);
    }
}

/// A raw client that keeps writing its body after the server answered still reads the whole
/// answer (status, `Connection: close`, JSON error), and is not reset mid-read.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_raw_client_that_keeps_sending_reads_the_whole_early_answer() {
    let Some(s) = Limited::start(ServeLimits::default(), RequestLimits::default()).await else { return };
    assert_eq!(s.upload("alice", "taken.bin", b"first").await.status(), 201);
    for round in 0..5 {
        let mut stream = TcpStream::connect(s.addr).await.unwrap();
        let fields = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\ntaken.bin\r\n\
             --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.bin\"\r\n\r\n"
        );
        let length = fields.len() + 8 * 1024 * 1024;
        let head = format!(
            "POST /api/workspace/files HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\n\
             Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\n\r\n{fields}",
            token("alice")
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let (mut read, mut write) = stream.into_split();
        // Keep sending the body in pieces, whatever comes back, until the server stops reading.
        let sender = tokio::spawn(async move {
            let chunk = vec![b'y'; 64 * 1024];
            for _ in 0..128 {
                if write.write_all(&chunk).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            write
        });
        let mut answer = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        let read_all = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match read.read(&mut buf).await {
                    Ok(0) => return Ok(()),
                    Ok(n) => answer.extend_from_slice(&buf[..n]),
                    Err(e) => return Err(e),
                }
            }
        })
        .await
        .expect("the server closed the connection in time");
        let text = String::from_utf8_lossy(&answer).to_string();
        read_all.unwrap_or_else(|e| panic!("round {round}: reset while reading the answer ({e}); got {text}"));
        assert!(text.starts_with("HTTP/1.1 409"), "round {round}: {text}");
        assert!(text.to_ascii_lowercase().contains("connection: close"), "round {round}: {text}");
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        let json: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("round {round}: {e}: {body}"));
        assert_eq!(json["error"], "conflict");
        drop(sender.await.unwrap());
    }
    s.healthy().await;
}
