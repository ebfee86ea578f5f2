//! The multipart upload in every part order (SPEC §7 "in any order"), over real HTTP on SQLite
//! and PostgreSQL: fields before `file` (checked before the body moves), `file` before its fields
//! (as generated clients send their forms: staged under a fresh content id, then committed where
//! the fields say), and what each refusal leaves behind (nothing: `assert_consistent`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::{Part, Server};
use serde_json::Value;
use workspace_core::{Limits, Storage};
use workspace_testkit::{FaultyStorage, TestEnv, db_tests};

const KIB: usize = 1024;

db_tests!(
    fields_first_upload,
    file_first_upload_applies_the_fields_after_it,
    file_first_conflict_leaves_no_blob,
    file_first_over_size_or_quota,
    file_first_large_body_streams_to_a_blob,
    parts_after_the_file_are_still_checked,
    small_uploads_never_touch_storage,
);

/// Bytes that do not repeat, so no two test bodies deduplicate by accident.
fn body(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u64).wrapping_mul(2_654_435_761).wrapping_add(u64::from(seed)).to_le_bytes()[3]).collect()
}

async fn download(s: &Server, user: &str, id: &str) -> Vec<u8> {
    let r = s.get(user, &format!("/api/workspace/files/{id}/download")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap().to_vec()
}

async fn blob_count(s: &Server) -> usize {
    s.env.storage.list_all("workspaces/").await.unwrap().len()
}

async fn fields_first_upload(env: TestEnv) {
    let s = Server::start(env).await;
    let r = s
        .upload(
            "alice",
            &[
                Part::text("session_id", "s1"),
                Part::text("path", "notes/a.txt"),
                Part::text("overwrite", "false"),
                Part::file("ignored.txt", b"fields first").typed("text/plain"),
            ],
        )
        .await;
    assert_eq!(r.status(), 201);
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["path"], "/sessions/s1/notes/a.txt");
    assert_eq!(info["source_session_id"], "s1");
    assert_eq!(download(&s, "alice", info["id"].as_str().unwrap()).await, b"fields first");
    // A conflict answers 409 in this order too (before the body moves when the body is over the
    // inline threshold; a body within it is held in memory and the commit refuses it).
    let r = s.upload("alice", &[Part::text("path", "/sessions/s1/notes/a.txt"), Part::file("x", b"again")]).await;
    assert_eq!(r.status(), 409);
    s.env.assert_consistent().await;
}

async fn file_first_upload_applies_the_fields_after_it(env: TestEnv) {
    let s = Server::start(env).await;
    // As generated clients send it: file, then the fields.
    let r = s
        .upload(
            "alice",
            &[
                Part::file("upload.bin", b"file first").typed("text/plain"),
                Part::text("path", "reports/r.txt"),
                Part::text("session_id", "s2"),
            ],
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["path"], "/sessions/s2/reports/r.txt", "the trailing fields decide the path");
    assert_eq!(first["source_session_id"], "s2");
    assert_eq!(first["name"], "r.txt");
    assert_eq!(first["mime_type"], "text/plain");
    assert_eq!(download(&s, "alice", first["id"].as_str().unwrap()).await, b"file first");

    // A trailing `overwrite` replaces the file; the old one becomes version 1.
    let r = s
        .upload(
            "alice",
            &[
                Part::file("r.txt", b"second"),
                Part::text("overwrite", "true"),
                Part::text("path", "/sessions/s2/reports/r.txt"),
            ],
        )
        .await;
    assert_eq!(r.status(), 201);
    let second: Value = r.json().await.unwrap();
    assert_eq!(second["version"], 2);
    assert_ne!(second["id"], first["id"]);
    assert_eq!(download(&s, "alice", second["id"].as_str().unwrap()).await, b"second");

    // Fields on both sides of the file: all of them apply.
    let r = s
        .upload(
            "alice",
            &[Part::text("session_id", "s3"), Part::file("both.txt", b"both"), Part::text("path", "sides.txt")],
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["path"], "/sessions/s3/sides.txt");

    // No fields at all: the file name is the path, as before.
    let r = s.upload("alice", &[Part::file("plain.txt", b"plain")]).await;
    assert_eq!(r.json::<Value>().await.unwrap()["path"], "/plain.txt");
    s.env.assert_consistent().await;
}

async fn file_first_conflict_leaves_no_blob(env: TestEnv) {
    let s = Server::start(env).await;
    // Large enough to be blobs (small files are kept in the database row).
    let original = body(1, 100 * KIB);
    let existing = s.upload("alice", &[Part::text("path", "/c.bin"), Part::file("c.bin", &original)]).await;
    assert_eq!(existing.status(), 201);
    assert_eq!(blob_count(&s).await, 1);

    for bytes in [body(2, 100 * KIB), b"small, kept inline".to_vec()] {
        let r = s.upload("alice", &[Part::file("other.bin", &bytes), Part::text("path", "/c.bin")]).await;
        assert_eq!(r.status(), 409, "the conflict is found at commit");
        let err: Value = r.json().await.unwrap();
        assert_eq!(err["error"], "conflict");
        assert!(err["message"].as_str().unwrap().contains("/c.bin"), "{err}");
        // The staged blob was removed before the answer went out.
        assert_eq!(blob_count(&s).await, 1);
        s.env.assert_consistent().await;
    }

    // A failed precondition at commit likewise (If-None-Match: * on a taken path).
    let (content_type, form) =
        common::multipart(&[Part::file("x.bin", &body(3, 90 * KIB)), Part::text("path", "/c.bin")]);
    let r = s
        .post("alice", "/api/workspace/files")
        .header("content-type", content_type)
        .header("if-none-match", "*")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "precondition_failed");
    assert_eq!(blob_count(&s).await, 1);

    let list: Value = s.get("alice", "/api/workspace/files").send().await.unwrap().json().await.unwrap();
    assert_eq!(list["files"].as_array().unwrap().len(), 1);
    let id = list["files"][0]["id"].as_str().unwrap();
    assert_eq!(download(&s, "alice", id).await, original, "the file at the path is untouched");
    s.env.assert_consistent().await;
}

async fn file_first_over_size_or_quota(env: TestEnv) {
    let limits = Limits { max_file_size: 100 * KIB as u64, quota_bytes: 150 * KIB as u64 };
    let s = Server::with_limits(env, limits).await;
    let r = s.upload("alice", &[Part::file("a.bin", &body(1, 90 * KIB)), Part::text("path", "/a.bin")]).await;
    assert_eq!(r.status(), 201);

    // Over the per-file limit: stopped while staging, whatever follows.
    let r = s.upload("alice", &[Part::file("big.bin", &body(2, 120 * KIB)), Part::text("path", "/big.bin")]).await;
    assert_eq!(r.status(), 413);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "too_large");

    // Fits the file limit but not the quota next to a.bin: refused at commit.
    let r = s.upload("alice", &[Part::file("b.bin", &body(3, 80 * KIB)), Part::text("path", "/b.bin")]).await;
    assert_eq!(r.status(), 413);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"], "quota_exceeded");
    assert!(err["message"].as_str().unwrap().contains("quota"), "{err}");
    s.env.assert_consistent().await;
    assert_eq!(blob_count(&s).await, 1);

    // The same 80 KiB replacing a.bin fits: staging did not count a.bin's bytes against it
    // before the fields said which file it replaces.
    let r = s
        .upload(
            "alice",
            &[Part::file("b.bin", &body(3, 80 * KIB)), Part::text("path", "/a.bin"), Part::text("overwrite", "true")],
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let usage: Value = s.get("alice", "/api/workspace/usage").send().await.unwrap().json().await.unwrap();
    assert_eq!(usage["live_bytes"], 80 * KIB);
    s.env.assert_consistent().await;
}

async fn file_first_large_body_streams_to_a_blob(env: TestEnv) {
    let s = Server::start(env).await;
    let bytes = body(7, 3 * 1024 * KIB + 17);
    let r = s
        .upload(
            "alice",
            &[
                Part::file("big.bin", &bytes).typed("application/octet-stream"),
                Part::text("session_id", "s1"),
                Part::text("path", "data/big.bin"),
            ],
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["path"], "/sessions/s1/data/big.bin");
    assert_eq!(info["size_bytes"], bytes.len());
    let id = info["id"].as_str().unwrap();
    assert_eq!(download(&s, "alice", id).await, bytes);
    let snapshot = s.env.assert_consistent().await;
    assert_eq!(snapshot.blobs.len(), 1, "stored as a blob, not in the database row");
    assert!(snapshot.contents.iter().all(|c| c.inline_data.is_none()));

    // A range of it, across the inline threshold.
    let r = s
        .get("alice", &format!("/api/workspace/files/{id}/download"))
        .header("range", "bytes=65530-65545")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap(), bytes[65530..=65545]);
}

async fn parts_after_the_file_are_still_checked(env: TestEnv) {
    let s = Server::start(env).await;
    let large = body(9, 200 * KIB);
    let cases: Vec<(Vec<Part<'_>>, &str)> = vec![
        (vec![Part::file("a.bin", &large), Part::file("b.bin", b"second")], "second `file` part"),
        (vec![Part::file("a.bin", &large), Part::text("colour", "blue")], "unknown field `colour`"),
        (vec![Part::file("a.bin", &large), Part::text("overwrite", "maybe")], "`overwrite` must be true or false"),
        (vec![Part::file("a.bin", &large), Part::text("path", "../up.bin")], ".."),
        (vec![Part::file("a.bin", &large), Part::text("session_id", "a/b")], "session"),
        (vec![Part::text("path", "/p.bin"), Part::file("a.bin", &large), Part::text("colour", "blue")], "colour"),
    ];
    for (parts, said) in cases {
        let r = s.upload("alice", &parts).await;
        assert_eq!(r.status(), 400);
        let err: Value = r.json().await.unwrap();
        assert!(err["message"].as_str().unwrap().contains(said), "{err} should say {said}");
        assert_eq!(blob_count(&s).await, 0, "the staged blob is gone when the answer arrives: {err}");
    }
    let many: Vec<Part<'_>> =
        std::iter::once(Part::file("a.bin", &large)).chain((0..8).map(|_| Part::text("path", "/p"))).collect();
    let r = s.upload("alice", &many).await;
    assert_eq!(r.status(), 400, "the part count is limited after the file too");
    assert_eq!(blob_count(&s).await, 0);
    let list: Value = s.get("alice", "/api/workspace/files").send().await.unwrap().json().await.unwrap();
    assert!(list["files"].as_array().unwrap().is_empty());
    s.env.assert_consistent().await;
}

/// SPEC §12, §13: a small write (within the inline threshold) never waits on object storage: not
/// one storage call for uploads in either part order, overwrites (the old content becomes a
/// version), many at once, and their reads. On PostgreSQL with `WS_TEST_STORAGE=gcs` this is the
/// GCS emulator's bucket that stays empty. A body over the threshold does reach storage, so the
/// counter counts.
async fn small_uploads_never_touch_storage(env: TestEnv) {
    let faulty = FaultyStorage::new(env.storage.clone());
    let faults = Arc::clone(&faulty.faults);
    let s = Server::with_storage(env, Storage::new(faulty), Limits::default()).await;
    let small = body(1, 4 * KIB);
    let r = s.upload("alice", &[Part::file("a.bin", &small)]).await;
    assert_eq!(r.status(), 201);
    let r = s.upload("alice", &[Part::text("path", "/b.bin"), Part::file("x", &small)]).await;
    assert_eq!(r.status(), 201, "fields first");
    let over = body(2, 64 * KIB);
    let r = s.upload("alice", &[Part::file("b.bin", &over), Part::text("overwrite", "true")]).await;
    assert_eq!(r.status(), 201, "an overwrite at the threshold");
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["version"], 2);
    let writers = (0..16).map(|i| {
        let s = &s;
        async move {
            let bytes = body(10 + i, 4 * KIB);
            s.upload_to("alice", &format!("/api/workspace/files?path=/many/{i}.bin"), &[Part::file("f", &bytes)]).await
        }
    });
    for r in futures::future::join_all(writers).await {
        assert_eq!(r.status(), 201);
    }
    assert_eq!(download(&s, "alice", info["id"].as_str().unwrap()).await, over);
    assert_eq!(faults.calls.load(Ordering::SeqCst), 0, "no storage call for small content");
    assert_eq!(blob_count(&s).await, 0, "no object stored");

    let big = body(3, 64 * KIB + 1);
    assert_eq!(s.upload("alice", &[Part::file("big.bin", &big)]).await.status(), 201);
    assert!(faults.calls.load(Ordering::SeqCst) > 0, "a body over the threshold is a blob");
    assert_eq!(blob_count(&s).await, 1);
    s.env.assert_consistent().await;
}
