//! `GET /api/workspace/events` (SPEC §16) against a real server: the JSON pages, the
//! Server-Sent Events stream read with reqwest (live events, `Last-Event-ID` resume, keep-alive
//! comments), and its refusals: 401, 400, 410 with the oldest id, 429 past the per-user bound.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Part, Server};
use futures::StreamExt;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;
use workspace_core::entity::workspace_event;
use workspace_http::RequestLimits;
use workspace_testkit::{TestEnv, db_tests};

db_tests!(
    json_pages_resume_and_keep_users_apart,
    the_stream_delivers_live_events_and_resumes_with_last_event_id,
    bad_requests_are_refused_clearly,
);

/// One frame of an event stream.
#[derive(Debug, Default, Clone, PartialEq)]
struct Frame {
    id: Option<String>,
    event: Option<String>,
    data: String,
    comments: Vec<String>,
}

/// Reads an SSE response frame by frame.
struct SseReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl SseReader {
    fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/event-stream"), "{content_type}");
        Self { body: response.bytes_stream().boxed(), buffer: String::new() }
    }

    /// The next frame (events and keep-alive comments alike), failing after `within`.
    async fn frame(&mut self, within: Duration) -> Frame {
        tokio::time::timeout(within, async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let raw: String = self.buffer.drain(..end + 2).collect();
                    let mut frame = Frame::default();
                    for line in raw.lines() {
                        if let Some(comment) = line.strip_prefix(':') {
                            frame.comments.push(comment.trim().to_owned());
                        } else if let Some((field, value)) = line.split_once(':') {
                            let value = value.strip_prefix(' ').unwrap_or(value);
                            match field {
                                "id" => frame.id = Some(value.to_owned()),
                                "event" => frame.event = Some(value.to_owned()),
                                "data" => frame.data.push_str(value),
                                _ => {}
                            }
                        }
                    }
                    return frame;
                }
                let chunk = self.body.next().await.expect("the stream stays open").unwrap();
                self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
            }
        })
        .await
        .expect("a frame in time")
    }

    /// The next event frame, skipping keep-alive comments.
    async fn event(&mut self, within: Duration) -> (u64, String, Value) {
        loop {
            let frame = self.frame(within).await;
            if let Some(id) = frame.id {
                let data: Value = serde_json::from_str(&frame.data).unwrap();
                assert_eq!(data["id"].as_u64().unwrap().to_string(), id, "id: matches the JSON");
                assert_eq!(data["type"].as_str(), frame.event.as_deref(), "event: is the type");
                return (id.parse().unwrap(), frame.event.unwrap(), data);
            }
        }
    }
}

async fn open_stream(s: &Server, user: &str, last_event_id: Option<&str>) -> reqwest::Response {
    let mut request = s.get(user, "/api/workspace/events").header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    request.send().await.unwrap()
}

async fn upload(s: &Server, user: &str, path: &str) {
    let response =
        s.upload(user, &[Part::text("path", path), Part::text("overwrite", "true"), Part::file("f.txt", b"hi")]).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

async fn json_pages_resume_and_keep_users_apart(env: TestEnv) {
    let s = Server::start(env).await;
    for i in 0..3 {
        upload(&s, "alice", &format!("/j{i}.txt")).await;
    }
    upload(&s, "bob", "/bob.txt").await;
    // No `after`: from the start of what is retained.
    let page: Value = s.get("alice", "/api/workspace/events?limit=2").send().await.unwrap().json().await.unwrap();
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    assert_eq!((page["next_after"].as_u64(), page["has_more"].as_bool()), (Some(2), Some(true)));
    assert_eq!(page["latest_id"].as_u64(), Some(3));
    let event = &page["events"][0];
    assert_eq!(
        (event["id"].as_u64(), event["type"].as_str(), event["path"].as_str()),
        (Some(1), Some("created"), Some("/j0.txt"))
    );
    assert_eq!(event["size_bytes"].as_u64(), Some(2));
    assert_eq!(event["checksum"].as_str().unwrap().len(), 64);
    let rest: Value =
        s.get("alice", "/api/workspace/events?after=2&limit=10").send().await.unwrap().json().await.unwrap();
    let ids: Vec<u64> = rest["events"].as_array().unwrap().iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!((ids, rest["has_more"].as_bool()), (vec![3], Some(false)));
    // Bob's feed is his own: one event, id 1, his path.
    let bob: Value = s.get("bob", "/api/workspace/events?after=0").send().await.unwrap().json().await.unwrap();
    assert_eq!(bob["events"].as_array().unwrap().len(), 1);
    assert_eq!(bob["events"][0]["path"].as_str(), Some("/bob.txt"));
    // Last-Event-ID works as `after` in the JSON form too.
    let resumed: Value = s
        .get("alice", "/api/workspace/events")
        .header("last-event-id", "2")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resumed["events"][0]["id"].as_u64(), Some(3));
}

async fn the_stream_delivers_live_events_and_resumes_with_last_event_id(env: TestEnv) {
    let s = Server::start(env).await;
    upload(&s, "alice", "/before.txt").await;
    let mut stream = SseReader::new(open_stream(&s, "alice", None).await);
    // From now on: the upload before the stream opened is not replayed.
    let writers = async {
        // Give the subscription a moment; events after it must all arrive.
        tokio::time::sleep(Duration::from_millis(100)).await;
        upload(&s, "bob", "/bob-secret.txt").await;
        for i in 0..5 {
            upload(&s, "alice", &format!("/live{i}.txt")).await;
        }
    };
    let reader = async {
        let mut seen = Vec::new();
        for _ in 0..5 {
            let (id, kind, data) = stream.event(Duration::from_secs(5)).await;
            assert_eq!(kind, "created");
            seen.push((id, data["path"].as_str().unwrap().to_owned()));
        }
        seen
    };
    let ((), seen) = tokio::join!(writers, reader);
    let expected: Vec<(u64, String)> = (0..5).map(|i| (i as u64 + 2, format!("/live{i}.txt"))).collect();
    assert_eq!(seen, expected, "alice's events only, in order");
    drop(stream);

    // Reconnect after id 3: exactly 4, 5, 6, then live.
    let mut resumed = SseReader::new(open_stream(&s, "alice", Some("3")).await);
    for expected in 4..=6 {
        assert_eq!(resumed.event(Duration::from_secs(5)).await.0, expected);
    }
    upload(&s, "alice", "/live0.txt").await;
    let (id, kind, data) = resumed.event(Duration::from_secs(5)).await;
    assert_eq!((id, kind.as_str(), data["path"].as_str()), (7, "overwritten", Some("/live0.txt")));
    // `?after=` starts a stream too (an EventSource cannot send headers on its first request).
    let response =
        s.get("alice", "/api/workspace/events?after=6").header("accept", "text/event-stream").send().await.unwrap();
    assert_eq!(SseReader::new(response).event(Duration::from_secs(5)).await.0, 7);
}

async fn bad_requests_are_refused_clearly(env: TestEnv) {
    let request =
        RequestLimits { max_event_streams: 2, event_keep_alive: Duration::from_secs(1), ..Default::default() };
    let s = Server::with_request_limits(env, request).await;
    let url = s.url("/api/workspace/events");
    // No token, a bad token: 401, stream or not.
    for accept in ["text/event-stream", "application/json"] {
        let r = s.client.get(&url).header("accept", accept).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let r = s.client.get(&url).header("accept", accept).bearer_auth("not.a.token").send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
    // Last-Event-ID that is not an id: 400 naming the rule.
    for bad in ["abc", "-1", "1.5", ""] {
        let r = open_stream(&s, "alice", Some(bad)).await;
        assert_eq!(r.status(), 400, "{bad:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_last_event_id");
        assert!(body["message"].as_str().unwrap().contains("non-negative integer"), "{body}");
    }
    let r = s.get("alice", "/api/workspace/events?limit=0").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = s.get("alice", "/api/workspace/events?after=-3").send().await.unwrap();
    assert_eq!(r.status(), 400);
    // An id beyond the latest: 400.
    let r = open_stream(&s, "alice", Some("7")).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_input");

    // Resume from before retention: 410 with the oldest id held, both forms.
    for i in 0..4 {
        upload(&s, "alice", &format!("/old{i}.txt")).await;
    }
    workspace_event::Entity::delete_many()
        .filter(workspace_event::Column::Id.lte(2))
        .exec(s.env.db.conn())
        .await
        .unwrap();
    for response in [
        open_stream(&s, "alice", Some("1")).await,
        s.get("alice", "/api/workspace/events?after=1").send().await.unwrap(),
    ] {
        assert_eq!(response.status(), 410);
        let body: Value = response.json().await.unwrap();
        assert_eq!((body["error"].as_str(), body["oldest_id"].as_u64()), (Some("events_expired"), Some(3)), "{body}");
    }

    // Keep-alive comments on an idle stream (1 s here, 15 s by default).
    let mut first = SseReader::new(open_stream(&s, "alice", None).await);
    let frame = first.frame(Duration::from_millis(2500)).await;
    assert_eq!((frame.id, frame.comments), (None, vec!["keep-alive".to_owned()]));
    // Two streams per user here: a third is 429, another user is not affected, and closing one
    // frees its slot.
    let second = open_stream(&s, "alice", None).await;
    assert_eq!(second.status(), 200);
    let third = open_stream(&s, "alice", None).await;
    assert_eq!(third.status(), 429);
    assert!(third.headers().contains_key("retry-after"));
    assert_eq!(third.json::<Value>().await.unwrap()["error"], "too_many_event_streams");
    let bobs = open_stream(&s, "bob", None).await;
    assert_eq!(bobs.status(), 200);
    drop(second);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let again = open_stream(&s, "alice", None).await;
        if again.status() == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the closed stream's slot was never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The open stream still works.
    upload(&s, "alice", "/still.txt").await;
    assert_eq!(first.event(Duration::from_secs(5)).await.0, 5);
}
