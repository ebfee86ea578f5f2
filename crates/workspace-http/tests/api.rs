//! The HTTP API over real HTTP on loopback, on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Part, Server};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use workspace_core::Limits;
use workspace_testkit::{TestEnv, db_tests};

const MIB: u64 = 1024 * 1024;

db_tests!(
    upload_list_info_download_delete,
    upload_errors_are_clear,
    oversized_upload_is_refused_early,
    quota_is_enforced_over_http,
    other_users_files_answer_404,
    bad_tokens_answer_401,
    ranges_and_conditional_requests,
    ranges_of_an_empty_file_are_not_satisfiable,
    hostile_filenames_round_trip_safely,
    multipart_filenames_are_reduced_to_their_last_segment,
    active_content_is_never_inline,
    signed_links_work_without_a_header_and_fail_when_tampered,
    two_instances_share_one_database,
    health_metrics_and_openapi,
    history_over_http,
    preconditions_over_http,
    listing_sort_and_search_over_http,
    clients_that_disconnect_mid_upload_leave_no_blob,
    structure_over_http,
);

async fn upload_list_info_download_delete(env: TestEnv) {
    let s = Server::start(env).await;
    let response = s
        .upload("alice", &[Part::text("session_id", "s1"), Part::file("hello.txt", b"hello world").typed("text/plain")])
        .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let info: Value = response.json().await.unwrap();
    let id = info["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/workspace/files/{id}"));
    assert_eq!(info["path"], "/sessions/s1/hello.txt");
    assert_eq!(info["name"], "hello.txt");
    assert_eq!(info["size_bytes"], 11);
    assert_eq!(info["mime_type"], "text/plain");
    assert_eq!(info["source"], "upload");
    assert_eq!(info["uri"], format!("workspace://{id}#text/plain"));

    let list: Value = s.get("alice", "/api/workspace/files?session_id=s1").send().await.unwrap().json().await.unwrap();
    assert_eq!(list["files"].as_array().unwrap().len(), 1);
    assert_eq!(list["next_cursor"], Value::Null);
    let other_session: Value =
        s.get("alice", "/api/workspace/files?session_id=s2").send().await.unwrap().json().await.unwrap();
    assert!(other_session["files"].as_array().unwrap().is_empty());
    let all: Value =
        s.get("alice", "/api/workspace/files?include_all_sessions=true").send().await.unwrap().json().await.unwrap();
    assert_eq!(all["files"][0]["id"], id.as_str());

    let got: Value = s.get("alice", &format!("/api/workspace/files/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(got, info);

    let download = s.get("alice", &format!("/api/workspace/files/{id}/download")).send().await.unwrap();
    assert_eq!(download.status(), 200);
    let h = download.headers().clone();
    assert_eq!(h["content-type"], "text/plain");
    assert_eq!(h["content-length"], "11");
    assert_eq!(h["etag"], format!("\"{}\"", info["checksum"].as_str().unwrap()));
    assert_eq!(h["accept-ranges"], "bytes");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "private, no-store");
    assert!(h.contains_key("last-modified"));
    assert!(h.contains_key("x-request-id"), "every response carries a request id");
    assert_eq!(h["content-disposition"], "attachment; filename=\"hello.txt\"");
    assert_eq!(download.bytes().await.unwrap(), "hello world");
    let inline =
        s.get("alice", &format!("/api/workspace/files/{id}/download?disposition=inline")).send().await.unwrap();
    assert_eq!(inline.headers()["content-disposition"], "inline; filename=\"hello.txt\"");
    let bad = s.get("alice", &format!("/api/workspace/files/{id}/download?disposition=sideways")).send().await.unwrap();
    assert_eq!(bad.status(), 400);

    let usage: Value = s.get("alice", "/api/workspace/usage").send().await.unwrap().json().await.unwrap();
    assert_eq!(usage["used_bytes"], 11);
    assert_eq!(usage["file_count"], 1);
    assert_eq!(usage["limit_bytes"], 250 * MIB);

    let delete = s.delete("alice", &format!("/api/workspace/files/{id}")).send().await.unwrap();
    assert_eq!(delete.status(), 204);
    for path in [format!("/api/workspace/files/{id}"), format!("/api/workspace/files/{id}/download")] {
        let r = s.get("alice", &path).send().await.unwrap();
        assert_eq!(r.status(), 404);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "not_found");
        assert!(body["message"].as_str().unwrap().contains("not found"));
    }
    let again = s.delete("alice", &format!("/api/workspace/files/{id}")).send().await.unwrap();
    assert_eq!(again.status(), 404);
    // The path is free again: no ghost row.
    assert_eq!(
        s.upload("alice", &[Part::text("session_id", "s1"), Part::file("hello.txt", b"v2")]).await.status(),
        201
    );
}

async fn upload_errors_are_clear(env: TestEnv) {
    let s = Server::start(env).await;
    s.upload_file("alice", "a.txt", b"one").await;
    let conflict = s.upload("alice", &[Part::file("a.txt", b"two")]).await;
    assert_eq!(conflict.status(), 409);
    assert_eq!(conflict.json::<Value>().await.unwrap()["error"], "conflict");
    let overwrite = s.upload("alice", &[Part::text("overwrite", "true"), Part::file("a.txt", b"two")]).await;
    assert_eq!(overwrite.status(), 201);
    let by_query = s
        .upload_to("alice", "/api/workspace/files?overwrite=true&path=/q/x.txt", &[Part::file("ignored.txt", b"q")])
        .await;
    assert_eq!(by_query.status(), 201);
    assert_eq!(by_query.json::<Value>().await.unwrap()["path"], "/q/x.txt");

    let cases: Vec<(Vec<Part<'_>>, u16, &str)> = vec![
        (vec![Part::text("path", "../escape.txt"), Part::file("x", b"x")], 400, "invalid_path"),
        (vec![Part::text("path", "/a//b"), Part::file("x", b"x")], 400, "invalid_path"),
        (vec![Part::text("path", "/a\tb"), Part::file("x", b"x")], 400, "invalid_path"),
        (vec![Part::text("session_id", "a/b"), Part::file("x", b"x")], 400, "invalid_session"),
        (vec![Part::text("overwrite", "maybe"), Part::file("x", b"x")], 400, "invalid_input"),
        (vec![Part::text("path", "/only-a-path")], 400, "invalid_multipart"),
        (vec![Part::text("colour", "blue"), Part::file("x", b"x")], 400, "invalid_multipart"),
        (vec![Part::file("one.txt", b"x"), Part::file("two.txt", b"y")], 400, "invalid_multipart"),
        (vec![Part { name: "file", filename: None, content_type: None, body: b"x" }], 400, "invalid_multipart"),
    ];
    for (parts, status, code) in cases {
        let r = s.upload("alice", &parts).await;
        assert_eq!(r.status(), status);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], code, "{body}");
        assert!(!body["message"].as_str().unwrap().is_empty());
    }
    let nine_parts: Vec<Part<'_>> = (0..9).map(|_| Part::text("path", "/p")).collect();
    assert_eq!(s.upload("alice", &nine_parts).await.status(), 400, "part count is limited");

    // Not multipart at all, and multipart cut off in the middle of the file part.
    let r = s.client.post(s.url("/api/workspace/files")).bearer_auth(s.token("alice")).body("x").send().await.unwrap();
    assert_eq!(r.status(), 415);
    // Large enough to stream into a blob (small files are kept in the database).
    let (ct, body) = common::multipart(&[Part::file("cut.bin", &[7u8; 200_000])]);
    let truncated = body[..150_000].to_vec();
    let r = s
        .client
        .post(s.url("/api/workspace/files"))
        .bearer_auth(s.token("alice"))
        .header("content-type", ct)
        .body(truncated)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Nothing from the failed uploads was kept: only a.txt and /q/x.txt exist.
    let list: Value = s.get("alice", "/api/workspace/files").send().await.unwrap().json().await.unwrap();
    let paths: Vec<&str> = list["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/a.txt", "/q/x.txt"]);
    // No blob left by a failed upload: every blob belongs to a file (see testkit's invariants).
    s.env.assert_consistent().await;
}

async fn oversized_upload_is_refused_early(env: TestEnv) {
    let s = Server::with_limits(env, Limits { max_file_size: 100 * MIB, quota_bytes: 1024 * MIB }).await;
    // A raw socket, so we see exactly how much the server accepted before answering.
    let mut socket = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let total: u64 = 300 * MIB;
    let head = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\r\n",
        b = common::BOUNDARY
    );
    let request = format!(
        "POST /api/workspace/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary={}\r\nContent-Length: {}\r\n\r\n{head}",
        s.token("alice"),
        common::BOUNDARY,
        total + head.len() as u64
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = socket.into_split();
    let sender = tokio::spawn(async move {
        let chunk = vec![b'x'; 256 * 1024];
        let mut sent = 0u64;
        while sent < total {
            match tokio::time::timeout(Duration::from_secs(5), writer.write_all(&chunk)).await {
                Ok(Ok(())) => sent += chunk.len() as u64,
                _ => break,
            }
        }
        sent
    });
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(60), reader.read(&mut buf)).await.expect("server answers") {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                response.extend_from_slice(&buf[..n]);
                if response.windows(4).any(|w| w == b"\r\n\r\n") && response.ends_with(b"}") {
                    break;
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("\"too_large\""), "{text}");
    drop(reader);
    let sent = sender.await.unwrap();
    assert!(sent < 200 * MIB, "the server stopped reading near the cap; the client got {sent} bytes out");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(s.env.storage.list_all("workspaces/").await.unwrap().is_empty(), "the partial blob was removed");
}

async fn quota_is_enforced_over_http(env: TestEnv) {
    let s = Server::with_limits(env, Limits { max_file_size: 50 * 1024, quota_bytes: 100 * 1024 }).await;
    s.upload_file("alice", "a.bin", &[1u8; 40 * 1024]).await;
    s.upload_file("alice", "b.bin", &[1u8; 40 * 1024]).await;
    let r = s.upload("alice", &[Part::file("c.bin", &[1u8; 30 * 1024])]).await;
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "quota_exceeded");
    assert!(body["message"].as_str().unwrap().contains("quota"), "{body}");
    // Bob's workspace is empty: his large file breaks the per-file cap, not the quota.
    let r = s.upload("bob", &[Part::file("d.bin", &[1u8; 70 * 1024])]).await;
    assert_eq!(r.status(), 413);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "too_large");
    let usage: Value = s.get("alice", "/api/workspace/usage").send().await.unwrap().json().await.unwrap();
    assert_eq!(usage["used_bytes"], 80 * 1024);
}

async fn other_users_files_answer_404(env: TestEnv) {
    let s = Server::start(env).await;
    let id = s.upload_file("alice", "secret.txt", b"alice only").await["id"].as_str().unwrap().to_owned();
    let bob = s.token("bob");
    let requests = [
        s.client.get(s.url(&format!("/api/workspace/files/{id}"))),
        s.client.get(s.url(&format!("/api/workspace/files/{id}/download"))),
        s.client.delete(s.url(&format!("/api/workspace/files/{id}"))),
        s.client.post(s.url(&format!("/api/workspace/files/{id}/link"))),
    ];
    for request in requests {
        let r = request.bearer_auth(&bob).send().await.unwrap();
        assert_eq!(r.status(), 404, "another user's file is not found");
        let body: Value = r.json().await.unwrap();
        assert!(!body.to_string().contains("secret.txt"));
    }
    let list: Value = s.get("bob", "/api/workspace/files").send().await.unwrap().json().await.unwrap();
    assert!(list["files"].as_array().unwrap().is_empty());
    let r = s.get("alice", &format!("/api/workspace/files/{id}/download")).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap(), "alice only");
    assert_eq!(s.get("alice", "/api/workspace/files/not-a-uuid").send().await.unwrap().status(), 404);
}

fn forge(header: &str, claims: &str, secret: &[u8]) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

async fn bad_tokens_answer_401(env: TestEnv) {
    let s = Server::start(env).await;
    let now = chrono::Utc::now().timestamp();
    let hs = r#"{"alg":"HS256","typ":"JWT"}"#;
    let good = format!(r#"{{"sub":"alice","exp":{},"aud":"authenticated"}}"#, now + 60);
    assert_eq!(
        s.client
            .get(s.url("/api/workspace/usage"))
            .bearer_auth(forge(hs, &good, common::SECRET))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let tokens = [
        ("malformed", "not.a.jwt".to_owned()),
        ("bad signature", forge(hs, &good, b"some-other-secret-some-other")),
        (
            "expired",
            forge(hs, &format!(r#"{{"sub":"alice","exp":{},"aud":"authenticated"}}"#, now - 3600), common::SECRET),
        ),
        ("wrong aud", forge(hs, &format!(r#"{{"sub":"alice","exp":{},"aud":"anon"}}"#, now + 60), common::SECRET)),
        ("alg none", format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#), URL_SAFE_NO_PAD.encode(&good))),
        ("no exp", forge(hs, r#"{"sub":"alice","aud":"authenticated"}"#, common::SECRET)),
    ];
    for (what, token) in tokens {
        for request in [s.client.get(s.url("/api/workspace/usage")), s.client.get(s.url("/api/workspace/files"))] {
            let r = request.bearer_auth(&token).send().await.unwrap();
            assert_eq!(r.status(), 401, "{what}");
            assert_eq!(r.headers()["www-authenticate"], "Bearer");
            assert_eq!(r.json::<Value>().await.unwrap()["error"], "unauthorized", "{what}");
        }
    }
    let r = s.client.get(s.url("/api/workspace/files")).send().await.unwrap();
    assert_eq!(r.status(), 401, "missing token");
    let r = s.client.get(s.url("/api/workspace/files")).header("authorization", "Basic YTpi").send().await.unwrap();
    assert_eq!(r.status(), 401, "not a bearer token");
}

async fn ranges_and_conditional_requests(env: TestEnv) {
    let s = Server::start(env).await;
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let info = s.upload_file("alice", "r.bin", &data).await;
    let id = info["id"].as_str().unwrap();
    let etag = format!("\"{}\"", info["checksum"].as_str().unwrap());
    let path = format!("/api/workspace/files/{id}/download");
    let cases: [(&str, u16, Option<&str>, std::ops::Range<usize>); 9] = [
        ("bytes=0-0", 206, Some("bytes 0-0/1000"), 0..1),
        ("bytes=999-999", 206, Some("bytes 999-999/1000"), 999..1000),
        ("bytes=-10", 206, Some("bytes 990-999/1000"), 990..1000),
        ("bytes=500-", 206, Some("bytes 500-999/1000"), 500..1000),
        ("bytes=990-5000", 206, Some("bytes 990-999/1000"), 990..1000),
        ("bytes=5-1", 200, None, 0..1000),
        ("bytes=abc", 200, None, 0..1000),
        ("bytes=0-1,5-6", 200, None, 0..1000),
        ("lines=1-2", 200, None, 0..1000),
    ];
    for (range, status, content_range, slice) in cases {
        let r = s.get("alice", &path).header("range", range).send().await.unwrap();
        assert_eq!(r.status(), status, "{range}");
        assert_eq!(r.headers().get("content-range").map(|v| v.to_str().unwrap()), content_range, "{range}");
        assert_eq!(r.headers()["content-length"], slice.len().to_string().as_str());
        assert_eq!(r.bytes().await.unwrap(), &data[slice], "{range}");
    }
    for range in ["bytes=1000-", "bytes=2000-3000", "bytes=-0"] {
        let r = s.get("alice", &path).header("range", range).send().await.unwrap();
        assert_eq!(r.status(), 416, "{range}");
        assert_eq!(r.headers()["content-range"], "bytes */1000");
    }
    let r = s.get("alice", &path).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"], etag.as_str());
    assert!(r.bytes().await.unwrap().is_empty());
    let r = s.get("alice", &path).header("if-none-match", "\"other\", W/".to_owned() + &etag).send().await.unwrap();
    assert_eq!(r.status(), 304, "a list with a weak match");
    let r = s.get("alice", &path).header("if-none-match", "\"other\"").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = s.get("alice", &path).header("range", "bytes=0-9").header("if-range", "\"stale\"").send().await.unwrap();
    assert_eq!(r.status(), 200, "If-Range with another validator sends the whole file");
    let r = s.get("alice", &path).header("range", "bytes=0-9").header("if-range", &etag).send().await.unwrap();
    assert_eq!(r.status(), 206);
}

/// A preview of an empty file asks for its first bytes: 416 with `bytes */0`, and a message that
/// says why (the file has no such bytes), not that storage failed.
async fn ranges_of_an_empty_file_are_not_satisfiable(env: TestEnv) {
    let s = Server::start(env).await;
    let info = s.upload_file("alice", "empty.txt", b"").await;
    assert_eq!(info["size_bytes"], 0);
    let path = format!("/api/workspace/files/{}/download", info["id"].as_str().unwrap());
    for range in ["bytes=0-65535", "bytes=0-", "bytes=-1"] {
        let r = s.get("alice", &path).header("range", range).send().await.unwrap();
        assert_eq!(r.status(), 416, "{range}");
        assert_eq!(r.headers()["content-range"], "bytes */0", "{range}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "range_not_satisfiable", "{range}");
        let message = body["message"].as_str().unwrap();
        assert_eq!(message, "the requested range is not satisfiable for a file of 0 bytes", "{range}");
    }
    // Without a range the empty file downloads as such.
    let r = s.get("alice", &path).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "0");
    assert!(r.bytes().await.unwrap().is_empty());

    // The same wording for a file with bytes, where the range lies past its end.
    let one = s.upload_file("alice", "one.txt", b"1").await;
    let path = format!("/api/workspace/files/{}/download", one["id"].as_str().unwrap());
    let r = s.get("alice", &path).header("range", "bytes=5-9").send().await.unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */1");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "the requested range is not satisfiable for a file of 1 byte");
}

async fn hostile_filenames_round_trip_safely(env: TestEnv) {
    let s = Server::start(env).await;
    let long = "x".repeat(251) + ".txt";
    let names = [
        "quote\"d.txt",
        "semi;colon=1.txt",
        "emoji 😀.png",
        "rtl \u{202e}gpj.exe",
        "naïve café.txt",
        "%2e%2e.txt",
        "<b>bold</b>.txt",
        long.as_str(),
    ];
    for name in names {
        let info = s.upload_file("alice", name, b"x").await;
        let id = info["id"].as_str().unwrap();
        let stored = info["name"].as_str().unwrap().to_owned();
        assert_eq!(stored, name.rsplit('/').next().unwrap(), "the name is kept as sent, after its last `/`");
        let r = s.get("alice", &format!("/api/workspace/files/{id}/download")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let header = r.headers()["content-disposition"].to_str().expect("visible ASCII").to_owned();
        assert!(!header.contains(['\r', '\n', '\0']));
        assert!(header.starts_with("attachment; filename=\""), "{header}");
        let parsed = common::python::parse_disposition(std::slice::from_ref(&header));
        assert_eq!(parsed[0], stored, "{name}: {header}");
    }
}

/// SPEC §7: a multipart filename is reduced to its last segment (after `/` or `\\`) and then
/// meets the path rules; a name that breaks them is refused with the rule, and nothing is stored.
async fn multipart_filenames_are_reduced_to_their_last_segment(env: TestEnv) {
    let s = Server::start(env).await;
    let kept = [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("a\\..\\b.txt", "b.txt"),
        ("C:\\x\\y.txt", "y.txt"),
        ("/abs/olute.txt", "olute.txt"),
        ("..\\..\\win.ini", "win.ini"),
        ("dir/../é.txt", "é.txt"),
    ];
    for (raw, name) in kept {
        let r = s.upload("alice", &[Part::text("session_id", "s1"), Part::file(raw, b"x")]).await;
        assert_eq!(r.status(), 201, "{raw}");
        let info: Value = r.json().await.unwrap();
        assert_eq!(info["name"], name, "{raw}");
        assert_eq!(info["path"], format!("/sessions/s1/{name}"), "{raw}");
    }
    // Without a session the last segment lands at the root, never where the dots pointed.
    let info = s.upload_file("alice", "../../etc/passwd.txt", b"root").await;
    assert_eq!(info["path"], "/passwd.txt");

    let long = "y".repeat(300) + ".txt";
    let refused: [(&str, &str, &str); 8] = [
        ("..", "invalid_path", "`..` segments are not allowed"),
        ("a/..", "invalid_path", "`..` segments are not allowed"),
        ("x\\.", "invalid_path", "`.` segments are not allowed"),
        ("tab\there.txt", "invalid_path", "control character U+0009"),
        (long.as_str(), "invalid_path", "longer than the limit of 255"),
        ("dir/", "invalid_multipart", "no name after its last"),
        ("/", "invalid_multipart", "no name after its last"),
        ("", "invalid_multipart", "no name after its last"),
    ];
    for (raw, code, rule) in refused {
        let r = s.upload("alice", &[Part::text("session_id", "s2"), Part::file(raw, b"x")]).await;
        assert_eq!(r.status(), 400, "{raw:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], code, "{raw:?}: {body}");
        assert!(body["message"].as_str().unwrap().contains(rule), "{raw:?}: {body}");
    }
    // A `path` still wins over the filename, whatever the filename holds.
    let r = s.upload("alice", &[Part::text("path", "/given/name.txt"), Part::file("..", b"x")]).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["path"], "/given/name.txt");

    // Nothing was stored for the refused names.
    let list: Value =
        s.get("alice", "/api/workspace/files?include_all_sessions=true").send().await.unwrap().json().await.unwrap();
    let mut paths: Vec<&str> = list["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "/given/name.txt",
            "/passwd.txt",
            "/sessions/s1/b.txt",
            "/sessions/s1/olute.txt",
            "/sessions/s1/passwd.txt",
            "/sessions/s1/win.ini",
            "/sessions/s1/y.txt",
            "/sessions/s1/é.txt",
        ]
    );
    // No blob (nor content row) of a refused upload either.
    s.env.assert_consistent().await;
}

async fn active_content_is_never_inline(env: TestEnv) {
    let s = Server::start(env).await;
    let cases = [
        ("page.html", "text/html", &b"<script>alert(1)</script>"[..]),
        ("pic.svg", "image/svg+xml", &b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>"[..]),
        ("x.xhtml", "application/xhtml+xml", &b"<html/>"[..]),
        ("app.js", "text/javascript", &b"alert(1)"[..]),
    ];
    for (name, mime, body) in cases {
        let id = {
            let r = s.upload("alice", &[Part::file(name, body).typed(mime)]).await;
            assert_eq!(r.status(), 201);
            r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
        };
        let r = s.get("alice", &format!("/api/workspace/files/{id}/download?disposition=inline")).send().await.unwrap();
        let h = r.headers();
        assert!(h["content-disposition"].to_str().unwrap().starts_with("attachment;"), "{name}");
        assert_eq!(h["content-security-policy"], "sandbox", "{name}");
        assert_eq!(h["x-content-type-options"], "nosniff");
    }
    let png = s.upload("alice", &[Part::file("ok.png", b"\x89PNG\r\n\x1a\n").typed("image/png")]).await;
    let id = png.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let r = s.get("alice", &format!("/api/workspace/files/{id}/download?disposition=inline")).send().await.unwrap();
    assert!(r.headers()["content-disposition"].to_str().unwrap().starts_with("inline;"));
}

async fn signed_links_work_without_a_header_and_fail_when_tampered(env: TestEnv) {
    let s = Server::start(env).await;
    let id = s.upload_file("alice", "cat.png", b"\x89PNG\r\n\x1a\nmeow").await["id"].as_str().unwrap().to_owned();
    let link = |ttl: u64| {
        let s = &s;
        let id = id.clone();
        async move {
            let r = s
                .client
                .post(s.url(&format!("/api/workspace/files/{id}/link?expires_in={ttl}")))
                .bearer_auth(s.token("alice"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["url"].as_str().unwrap().to_owned()
        }
    };
    let url = link(60).await;
    let r = s.client.get(s.url(&url)).send().await.unwrap();
    assert_eq!(r.status(), 200, "no Authorization header needed");
    assert!(r.headers()["cache-control"].to_str().unwrap().starts_with("private, max-age="));
    assert_eq!(r.bytes().await.unwrap(), &b"\x89PNG\r\n\x1a\nmeow"[..]);

    // Change any one character of the query: the link stops working and says nothing of the file.
    let query_start = url.find('?').unwrap() + 1;
    for i in query_start..url.len() {
        let mut bytes = url.clone().into_bytes();
        let c = bytes[i];
        if c == b'=' || c == b'&' {
            continue;
        }
        bytes[i] = if c == b'1' { b'2' } else { b'1' };
        let tampered = String::from_utf8(bytes).unwrap();
        let r = s.client.get(s.url(&tampered)).send().await.unwrap();
        // A changed value fails the signature (403); a changed parameter name leaves no link at
        // all, so the request is an unauthenticated one (401).
        assert!([400, 401, 403].contains(&r.status().as_u16()), "{tampered} -> {}", r.status());
        let body = r.text().await.unwrap();
        assert!(!body.contains("cat.png") && !body.contains("meow"), "{body}");
    }
    let too_long = s
        .client
        .post(s.url(&format!("/api/workspace/files/{id}/link?expires_in=99999999")))
        .bearer_auth(s.token("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(too_long.status(), 400);

    let short = link(1).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = s.client.get(s.url(&short)).send().await.unwrap();
    assert_eq!(r.status(), 403, "expired");
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_link");
    // A link for a deleted file stops working too.
    let live = link(60).await;
    s.delete("alice", &format!("/api/workspace/files/{id}")).send().await.unwrap();
    assert_eq!(s.client.get(s.url(&live)).send().await.unwrap().status(), 404);
}

async fn two_instances_share_one_database(env: TestEnv) {
    let first = Server::start(env).await;
    // A second instance with its own connection pool to the same database and the same storage.
    let db = match first.env.postgres_url() {
        Some(url) => workspace_core::Db::connect(url).await.unwrap(),
        None => first.env.db.clone(),
    };
    let workspaces = workspace_core::Workspaces::new(db, first.env.storage.clone(), Default::default()).unwrap();
    let state =
        workspace_http::AppState::new(workspaces, common::api_config(workspace_http::RequestLimits::default()), None);
    let second = common::serve(state).await;
    let id = first.upload_file("alice", "shared.txt", b"from one").await["id"].as_str().unwrap().to_owned();
    let client = reqwest::Client::new();
    let list: Value = client
        .get(format!("http://{second}/api/workspace/files"))
        .bearer_auth(first.token("alice"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["files"][0]["id"], id.as_str());
    let body = client
        .get(format!("http://{second}/api/workspace/files/{id}/download"))
        .bearer_auth(first.token("alice"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body, "from one");
}

async fn health_metrics_and_openapi(env: TestEnv) {
    let s = Server::start(env).await;
    assert_eq!(s.client.get(s.url("/healthz")).send().await.unwrap().text().await.unwrap(), "ok");
    let ready = s.client.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    s.upload_file("alice", "m.txt", b"metrics").await;
    let metrics = s.client.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(r#"workspace_http_requests_total{method="POST",route="/api/workspace/files",status="201"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("workspace_http_request_duration_seconds_bucket{route=\"/api/workspace/files\",le=\"+Inf\"}")
    );
    assert!(metrics.contains("workspace_files_written_total 1"));
    assert!(metrics.contains("workspace_bytes_in_total 7"));

    let spec: Value = s.client.get(s.url("/api/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    for (method, path) in workspace_http::ROUTES {
        assert!(spec["paths"][path][method].is_object(), "{method} {path} is documented");
        // And the route really exists: no 404/405 from the router for it.
        let url = s.url(&path.replace("{id}", "00000000-0000-4000-8000-000000000000"));
        let request = match *method {
            "get" => s.client.get(url),
            "post" => s.client.post(url),
            "delete" => s.client.delete(url),
            other => panic!("unexpected method {other}"),
        };
        let r = request.bearer_auth(s.token("alice")).send().await.unwrap();
        assert_ne!(r.status(), 405, "{method} {path}");
        if r.status() == 404 {
            let body: Value = r.json().await.unwrap();
            assert_ne!(body["message"], "no such route", "{method} {path}");
        }
    }
    let unknown = s.client.get(s.url("/nope")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.json::<Value>().await.unwrap()["error"], "not_found");
}

async fn history_over_http(env: TestEnv) {
    let s = Server::start(env).await;
    let first = s.upload_file("alice", "draft.md", b"first").await;
    let (content_type, body) = common::multipart(&[Part::text("overwrite", "true"), Part::file("draft.md", b"second")]);
    let r =
        s.post("alice", "/api/workspace/files").header("content-type", content_type).body(body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let second: Value = r.json().await.unwrap();
    let (v1, v2) = (first["id"].as_str().unwrap(), second["id"].as_str().unwrap());
    assert_eq!((second["version"].as_u64(), second["is_current"].as_bool()), (Some(2), Some(true)));

    // The old id still names the old bytes, and says which version is current.
    let old: Value = s.get("alice", &format!("/api/workspace/files/{v1}")).send().await.unwrap().json().await.unwrap();
    assert_eq!((old["is_current"].as_bool(), old["current_id"].as_str()), (Some(false), Some(v2)));
    let bytes = s.get("alice", &format!("/api/workspace/files/{v1}/download")).send().await.unwrap().bytes().await;
    assert_eq!(bytes.unwrap(), "first");
    let versions: Value =
        s.get("alice", &format!("/api/workspace/files/{v1}/versions")).send().await.unwrap().json().await.unwrap();
    let listed: Vec<(&str, bool)> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["id"].as_str().unwrap(), v["is_current"].as_bool().unwrap()))
        .collect();
    assert_eq!(listed, [(v2, true), (v1, false)]);

    // Restoring a version makes a new current version with its bytes.
    let r = s.post("alice", &format!("/api/workspace/files/{v1}/restore")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let restored: Value = r.json().await.unwrap();
    assert_eq!((restored["version"].as_u64(), restored["checksum"].as_str()), (Some(3), first["checksum"].as_str()));
    let v3 = restored["id"].as_str().unwrap().to_owned();

    // Delete → trash → restore → delete → purge.
    assert_eq!(s.delete("alice", &format!("/api/workspace/files/{v1}")).send().await.unwrap().status(), 409);
    assert_eq!(s.delete("alice", &format!("/api/workspace/files/{v3}")).send().await.unwrap().status(), 204);
    assert_eq!(s.get("alice", &format!("/api/workspace/files/{v3}")).send().await.unwrap().status(), 404);
    let trash: Value = s.get("alice", "/api/workspace/trash").send().await.unwrap().json().await.unwrap();
    assert_eq!(trash["files"].as_array().unwrap().len(), 1);
    assert_eq!(trash["files"][0]["id"], v3.as_str());
    assert!(trash["files"][0]["deleted_at"].is_string() && trash["files"][0]["purge_at"].is_string());
    let usage: Value = s.get("alice", "/api/workspace/usage").send().await.unwrap().json().await.unwrap();
    assert_eq!((usage["live_bytes"].as_u64(), usage["file_count"].as_u64()), (Some(0), Some(0)));
    assert_eq!(usage["history_bytes"].as_u64(), Some(5 + 6 + 5));
    assert_eq!(usage["used_bytes"].as_u64(), Some(16));
    // Another user's id is 404 on every history route.
    for (method, path) in [
        (reqwest::Method::GET, format!("/api/workspace/files/{v1}/versions")),
        (reqwest::Method::POST, format!("/api/workspace/files/{v3}/restore")),
        (reqwest::Method::DELETE, format!("/api/workspace/trash/{v3}")),
    ] {
        let r = s.client.request(method.clone(), s.url(&path)).bearer_auth(s.token("bob")).send().await.unwrap();
        assert_eq!(r.status(), 404, "{method} {path}");
    }
    // Restore onto a taken path is a conflict naming it; another path works.
    s.upload_file("alice", "draft.md", b"squatter").await;
    let r = s.post("alice", &format!("/api/workspace/files/{v3}/restore")).send().await.unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("/draft.md"));
    let r = s
        .post("alice", &format!("/api/workspace/files/{v3}/restore"))
        .header("content-type", "application/json")
        .body(r#"{"path": "/draft (restored).md"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["path"], "/draft (restored).md");
    let r = s.post("alice", &format!("/api/workspace/files/{v3}/restore")).body("{not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    // Only the trash can be purged; purge and empty it.
    assert_eq!(s.delete("alice", &format!("/api/workspace/trash/{v3}")).send().await.unwrap().status(), 404);
    assert_eq!(s.delete("alice", &format!("/api/workspace/files/{v3}")).send().await.unwrap().status(), 204);
    assert_eq!(s.delete("alice", &format!("/api/workspace/trash/{v3}")).send().await.unwrap().status(), 204);
    assert_eq!(s.get("alice", &format!("/api/workspace/files/{v1}")).send().await.unwrap().status(), 404);
    let squatter: Value =
        s.get("alice", "/api/workspace/files?path_prefix=/draft.md").send().await.unwrap().json().await.unwrap();
    let id = squatter["files"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(s.delete("alice", &format!("/api/workspace/files/{id}")).send().await.unwrap().status(), 204);
    let emptied: Value = s.delete("alice", "/api/workspace/trash").send().await.unwrap().json().await.unwrap();
    assert_eq!(emptied["purged"], 1);
    s.env.assert_consistent().await;
}

async fn preconditions_over_http(env: TestEnv) {
    let s = Server::start(env).await;
    let info = s.upload_file("alice", "p.txt", b"one").await;
    let (id, etag) = (info["id"].as_str().unwrap().to_owned(), format!("\"{}\"", info["checksum"].as_str().unwrap()));
    let stale = format!("\"{}\"", "0".repeat(64));
    let upload = |headers: Vec<(&'static str, String)>, body: &'static [u8]| {
        let (content_type, bytes) = common::multipart(&[Part::text("path", "/p.txt"), Part::file("p.txt", body)]);
        let mut request = s.post("alice", "/api/workspace/files").header("content-type", content_type).body(bytes);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    // A stale If-Match changes nothing and names the current checksum.
    let r = upload(vec![("if-match", stale.clone())], b"two").await.unwrap();
    assert_eq!(r.status(), 412);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["error"].as_str(), body["current_checksum"].as_str()),
        (Some("precondition_failed"), info["checksum"].as_str())
    );
    // The right one implies overwrite.
    let r = upload(vec![("if-match", etag.clone())], b"two").await.unwrap();
    assert_eq!(r.status(), 201);
    let two: Value = r.json().await.unwrap();
    assert_eq!(upload(vec![("if-none-match", "*".into())], b"x").await.unwrap().status(), 412);
    for bad in ["W/\"abc\"", "abc", "\"nothex\""] {
        assert_eq!(upload(vec![("if-match", bad.into())], b"x").await.unwrap().status(), 400, "{bad}");
    }
    assert_eq!(upload(vec![("if-none-match", "\"x\"".into())], b"x").await.unwrap().status(), 400);
    // Delete checks the file named by the id.
    let two_id = two["id"].as_str().unwrap();
    let r = s.delete("alice", &format!("/api/workspace/files/{two_id}")).header("if-match", etag).send().await.unwrap();
    assert_eq!(r.status(), 412);
    let two_etag = format!("\"{}\"", two["checksum"].as_str().unwrap());
    let r = s.delete("alice", &format!("/api/workspace/files/{two_id}")).header("if-match", two_etag).send().await;
    assert_eq!(r.unwrap().status(), 204);
    assert_eq!(
        s.get("alice", &format!("/api/workspace/files/{id}")).send().await.unwrap().status(),
        404,
        "in the trash"
    );
}

async fn listing_sort_and_search_over_http(env: TestEnv) {
    let s = Server::start(env).await;
    for (name, size) in [("b-report.md", 300usize), ("a-notes.txt", 100), ("c-Report.txt", 200)] {
        s.upload_file("alice", name, &vec![b'x'; size]).await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let names = |q: &'static str| {
        let request = s.get("alice", &format!("/api/workspace/files?{q}"));
        async move {
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), 200, "{q}");
            let page: Value = r.json().await.unwrap();
            page["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
        }
    };
    assert_eq!(names("sort=created_at&order=desc").await, ["c-Report.txt", "a-notes.txt", "b-report.md"]);
    assert_eq!(names("sort=size&order=desc").await, ["b-report.md", "c-Report.txt", "a-notes.txt"]);
    assert_eq!(names("q=REPORT").await, ["b-report.md", "c-Report.txt"]);
    assert_eq!(names("q=report&sort=size").await, ["c-Report.txt", "b-report.md"]);
    for bad in ["sort=name", "order=up"] {
        let r = s.get("alice", &format!("/api/workspace/files?{bad}")).send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_query");
    }
}

/// SPEC §7: a client that disconnects mid-upload leaves no blob behind, without gc: the write
/// path is cancellation-safe. Clients cut their connection at random points of their upload
/// (mid-body, right at its end, while the server commits); afterwards every blob in storage
/// belongs to a stored file. Runs on local disk and, in the GCS pass, on the emulator.
async fn clients_that_disconnect_mid_upload_leave_no_blob(env: TestEnv) {
    let s = Server::start(env).await;
    let token = s.token("alice");
    let tasks: Vec<_> = (0..16u64)
        .map(|i| {
            let (addr, token) = (s.addr, token.clone());
            tokio::spawn(async move {
                let data = vec![(i % 251) as u8 + 1; 600 * 1024];
                let (content_type, body) = common::multipart(&[
                    Part::text("path", &format!("/cut/{}.bin", i % 5)),
                    Part::text("overwrite", "true"),
                    Part::file("x.bin", &data),
                ]);
                let head = format!(
                    "POST /api/workspace/files HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n\
                     Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                stream.write_all(head.as_bytes()).await.unwrap();
                // Cut after a random share of the body: some mid-body, some after all of it.
                let send = rand::random_range(0..=body.len() + body.len() / 2).min(body.len());
                for chunk in body[..send].chunks(64 * 1024) {
                    if stream.write_all(chunk).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
                tokio::time::sleep(std::time::Duration::from_millis(rand::random_range(0..20))).await;
                drop(stream);
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // The server notices each disconnect and its guards clean up in the background; an upload
    // the server was still making when its client left may land after the clients are done, and
    // is then removed. So: one blob per stored content, and no other, for a whole second.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut settled = 0;
    while settled < 10 {
        use sea_orm::EntityTrait;
        let contents = workspace_core::entity::workspace_content::Entity::find().all(s.env.db.conn()).await.unwrap();
        let expected: std::collections::HashSet<String> = contents
            .iter()
            .filter(|c| c.inline_data.is_none())
            .map(|c| {
                use workspace_core::{BlobKey, ContentId, WorkspaceId};
                BlobKey::for_content(WorkspaceId::from_uuid(c.workspace_id), ContentId::from_uuid(c.id)).to_string()
            })
            .collect();
        let blobs: std::collections::HashSet<String> =
            s.env.storage.list_all("workspaces/").await.unwrap().into_iter().map(|m| m.key.to_string()).collect();
        settled = if blobs == expected { settled + 1 } else { 0 };
        assert!(std::time::Instant::now() < deadline, "{} blobs for {} stored contents", blobs.len(), expected.len());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    s.env.assert_consistent().await;
}

async fn structure_over_http(env: TestEnv) {
    let s = Server::start(env).await;
    let a = s.upload_file("alice", "a.txt", b"alpha").await;
    let a_id = a["id"].as_str().unwrap().to_owned();
    let json_post = |user: &str, path: String, body: &'static str| {
        s.post(user, &path).header("content-type", "application/json").body(body).send()
    };
    // Move: same id, new path; the old path is free.
    let r = json_post("alice", format!("/api/workspace/files/{a_id}/move"), r#"{"path": "/docs/alpha.txt"}"#)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let moved: Value = r.json().await.unwrap();
    assert_eq!((moved["id"].as_str(), moved["path"].as_str()), (Some(a_id.as_str()), Some("/docs/alpha.txt")));
    // Copy: a new id sharing the content.
    let r =
        json_post("alice", format!("/api/workspace/files/{a_id}/copy"), r#"{"path": "/docs/beta.txt"}"#).await.unwrap();
    assert_eq!(r.status(), 201);
    assert!(r.headers().contains_key("location"));
    let copy: Value = r.json().await.unwrap();
    assert_ne!(copy["id"], moved["id"]);
    assert_eq!(copy["checksum"], moved["checksum"]);
    // Taken destinations, bad input, preconditions, other users.
    let r =
        json_post("alice", format!("/api/workspace/files/{a_id}/move"), r#"{"path": "/docs/beta.txt"}"#).await.unwrap();
    assert_eq!(r.status(), 409);
    let r = json_post("alice", format!("/api/workspace/files/{a_id}/move"), r#"{"path": "/docs/../x"}"#).await.unwrap();
    assert_eq!((r.status().as_u16(), r.json::<Value>().await.unwrap()["error"].as_str()), (400, Some("invalid_path")));
    let r = json_post("alice", format!("/api/workspace/files/{a_id}/move"), r#"{"to": "/x"}"#).await.unwrap();
    assert_eq!(r.status(), 400);
    let r = s
        .post("alice", &format!("/api/workspace/files/{a_id}/move"))
        .header("if-match", format!("\"{}\"", "f".repeat(64)))
        .body(r#"{"path": "/z.txt"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    let r = json_post("bob", format!("/api/workspace/files/{a_id}/move"), r#"{"path": "/mine.txt"}"#).await.unwrap();
    assert_eq!(r.status(), 404, "another user's id");
    // Folder listing with a delimiter.
    s.upload_file("alice", "top.txt", b"t").await;
    let list: Value = s.get("alice", "/api/workspace/files?delimiter=/").send().await.unwrap().json().await.unwrap();
    assert_eq!(list["files"].as_array().unwrap().len(), 1);
    assert_eq!(list["folders"][0]["path"], "/docs");
    assert_eq!(
        (list["folders"][0]["file_count"].as_u64(), list["folders"][0]["size_bytes"].as_u64()),
        (Some(2), Some(10))
    );
    assert_eq!(s.get("alice", "/api/workspace/files?delimiter=x").send().await.unwrap().status(), 400);
    let plain: Value = s.get("alice", "/api/workspace/files").send().await.unwrap().json().await.unwrap();
    assert!(plain.get("folders").is_none(), "no folders field without a delimiter");
    // Folder move and folder delete.
    let r = s
        .post("alice", "/api/workspace/folders/move")
        .body(r#"{"from": "/docs", "to": "/docs/inner"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "into itself");
    let r = s
        .post("alice", "/api/workspace/folders/move")
        .body(r#"{"from": "/nothing", "to": "/x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "not a folder");
    let r = s
        .post("alice", "/api/workspace/folders/move")
        .body(r#"{"from": "/docs", "to": "/archive"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["files"], 2);
    let r = s.delete("alice", "/api/workspace/folders?path=/archive").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["files"], 2);
    let trash: Value = s.get("alice", "/api/workspace/trash").send().await.unwrap().json().await.unwrap();
    assert_eq!(trash["files"].as_array().unwrap().len(), 2);
    s.env.assert_consistent().await;
}
