//! The WorkspaceManager suite. Every test runs on SQLite and on PostgreSQL (each in a database of
//! its own), against the backend chosen by `WS_TEST_STORAGE` (local disk by default).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use workspace_core::entity::user_workspace_file as file;
use workspace_core::gc::{self, GcOptions};
use workspace_core::{
    BlobKey, ByteRange, FileId, FileSource, Limits, NewFile, SessionId, Storage, UserId, WorkspaceError,
    WorkspaceManager,
};
use workspace_migrations::{Migrator, MigratorTrait};
use workspace_testkit::{CountingBody, FaultyStorage, TestEnv, db_tests};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

async fn manager(env: &TestEnv, user: &str, session: Option<&str>) -> WorkspaceManager {
    manager_on(env, env.storage.clone(), user, session).await
}

async fn manager_on(env: &TestEnv, storage: Storage, user: &str, session: Option<&str>) -> WorkspaceManager {
    let session = session.map(|s| SessionId::new(s).unwrap());
    WorkspaceManager::for_user(env.db.clone(), storage, UserId::new(user).unwrap(), session).await.unwrap()
}

fn new_file(m: &WorkspaceManager, path: &str) -> NewFile {
    NewFile::new(m.resolve_path(path).unwrap())
}

async fn blob_keys(storage: &Storage) -> HashSet<String> {
    storage.list("workspaces/").await.unwrap().into_iter().map(|m| m.key.to_string()).collect()
}

async fn live_keys(env: &TestEnv) -> HashSet<String> {
    file::Entity::find()
        .filter(file::Column::IsDeleted.eq(false))
        .all(env.db.conn())
        .await
        .unwrap()
        .into_iter()
        .map(|row| BlobKey::for_file(row.workspace_id.into(), row.id.into()).to_string())
        .collect()
}

async fn row_count(env: &TestEnv) -> u64 {
    file::Entity::find().count(env.db.conn()).await.unwrap()
}

db_tests!(
    write_then_read_back,
    concurrent_overwrites_leave_one_live_row_and_its_blob,
    concurrent_writes_without_overwrite_give_one_success,
    quota_holds_under_concurrency,
    overwrite_is_not_counted_twice,
    backend_failing_mid_stream_leaves_no_row,
    backend_failing_after_storing_leaves_no_blob,
    database_failure_after_blob_leaves_no_blob,
    delete_then_write_same_path_and_deleted_files_are_invisible,
    oversized_stream_stops_early_and_leaves_nothing,
    quota_stops_a_stream_early,
    gc_removes_orphans_and_expired_rows,
    gc_spares_a_write_in_flight,
    listing_pages_and_prefixes,
    mime_is_chosen_and_sniffed,
    workspace_creation_is_race_free,
    other_users_files_are_not_found,
    nfc_and_nfd_name_one_file,
    ranges_and_download_urls,
    migrations_run_down_and_up,
);

async fn write_then_read_back(env: TestEnv) {
    let m = manager(&env, "alice", Some("s1")).await;
    let info = m
        .write_bytes(new_file(&m, "notes/hello.txt").with_source(FileSource::Copilot).with_exec_id("exec-1"), "hello")
        .await
        .unwrap();
    assert_eq!(info.path, "/sessions/s1/notes/hello.txt");
    assert_eq!(info.name, "hello.txt");
    assert_eq!(info.size_bytes, 5);
    assert_eq!(info.checksum, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    assert_eq!(info.mime_type, "text/plain");
    assert_eq!(info.source, FileSource::Copilot);
    assert_eq!(info.source_session_id.as_deref(), Some("s1"));
    assert_eq!(info.source_exec_id.as_deref(), Some("exec-1"));
    assert_eq!(info.uri().to_string(), format!("workspace://{}#text/plain", info.id));

    let (by_path, bytes) = m.read_file("notes/hello.txt").await.unwrap();
    assert_eq!(by_path, info);
    assert_eq!(bytes, "hello");
    let (_, bytes) = m.read_file_by_id(info.id).await.unwrap();
    assert_eq!(bytes, "hello");
    // Another session of the same user reads it by absolute path and by id.
    let other = manager(&env, "alice", Some("s2")).await;
    assert_eq!(other.read_file("/sessions/s1/notes/hello.txt").await.unwrap().1, "hello");
    assert_eq!(other.get_file_info(info.id).await.unwrap().id, info.id);
    assert!(matches!(other.read_file("notes/hello.txt").await, Err(WorkspaceError::NotFound(_))));

    let usage = m.usage().await.unwrap();
    assert_eq!((usage.used_bytes, usage.file_count, usage.limit_bytes), (5, 1, 250 * MIB));
}

async fn concurrent_overwrites_leave_one_live_row_and_its_blob(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let m = m.clone();
            tokio::spawn(async move {
                m.write_bytes(new_file(&m, "/same.txt").with_overwrite(true), format!("writer {i}")).await
            })
        })
        .collect();
    let mut written = Vec::new();
    for task in tasks {
        written.push(task.await.unwrap().expect("every overwrite succeeds"));
    }
    let live = live_keys(&env).await;
    assert_eq!(live.len(), 1, "exactly one live row");
    assert_eq!(blob_keys(&env.storage).await, live, "storage holds exactly the live rows' blobs");
    let (info, bytes) = m.read_file("/same.txt").await.unwrap();
    assert!(written.iter().any(|w| w.id == info.id));
    assert_eq!(bytes, format!("writer {}", written.iter().position(|w| w.id == info.id).unwrap()));
    assert_eq!(m.usage().await.unwrap().used_bytes, info.size_bytes);
}

async fn concurrent_writes_without_overwrite_give_one_success(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let m = m.clone();
            tokio::spawn(async move { m.write_bytes(new_file(&m, "/once.txt"), format!("writer {i}")).await })
        })
        .collect();
    let (mut ok, mut conflicts) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(WorkspaceError::Conflict(path)) => {
                assert_eq!(path, "/once.txt");
                conflicts += 1;
            }
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!((ok, conflicts), (1, 19));
    let live = live_keys(&env).await;
    assert_eq!(live.len(), 1);
    assert_eq!(blob_keys(&env.storage).await, live, "losers' blobs were removed");
}

async fn quota_holds_under_concurrency(env: TestEnv) {
    let m = manager(&env, "alice", None).await.with_limits(Limits { max_file_size: MIB, quota_bytes: 10 * KIB });
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let m = m.clone();
            tokio::spawn(async move { m.write_bytes(new_file(&m, &format!("/f{i}")), vec![0u8; KIB as usize]).await })
        })
        .collect();
    let (mut ok, mut over) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(WorkspaceError::QuotaExceeded { limit, .. }) => {
                assert_eq!(limit, 10 * KIB);
                over += 1;
            }
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!((ok, over), (10, 10), "exactly as many files as fit");
    let usage = m.usage().await.unwrap();
    assert_eq!(usage.used_bytes, 10 * KIB);
    assert_eq!(blob_keys(&env.storage).await, live_keys(&env).await);
}

async fn overwrite_is_not_counted_twice(env: TestEnv) {
    let m = manager(&env, "alice", None).await.with_limits(Limits { max_file_size: MIB, quota_bytes: 10 * KIB });
    let six = vec![1u8; 6 * KIB as usize];
    m.write_bytes(new_file(&m, "/a"), six.clone()).await.unwrap();
    m.write_bytes(new_file(&m, "/a").with_overwrite(true), six.clone()).await.expect("replacing 6 KiB with 6 KiB fits");
    assert_eq!(m.usage().await.unwrap().used_bytes, 6 * KIB);
    let err = m.write_bytes(new_file(&m, "/b"), six).await.unwrap_err();
    assert!(
        matches!(err, WorkspaceError::QuotaExceeded { used, needed, .. } if used == 6 * KIB && needed == 6 * KIB),
        "{err:?}"
    );
    assert_eq!(m.usage().await.unwrap().file_count, 1);
}

async fn backend_failing_mid_stream_leaves_no_row(env: TestEnv) {
    let faulty = FaultyStorage::new(env.storage.clone());
    faulty.faults.fail_put_after_bytes.store(100 * KIB, Ordering::SeqCst);
    faulty.faults.fail_put_mid_stream.store(true, Ordering::SeqCst);
    let m = manager_on(&env, Storage::new(faulty), "alice", None).await;
    let (_, body) = CountingBody::new(MIB, 16 * 1024);
    let err = m.write_file(new_file(&m, "/big.bin"), body).await.unwrap_err();
    assert!(matches!(err, WorkspaceError::Storage(_)), "{err:?}");
    assert_eq!(row_count(&env).await, 0, "no row");
    assert!(blob_keys(&env.storage).await.is_empty(), "no blob");
}

async fn backend_failing_after_storing_leaves_no_blob(env: TestEnv) {
    let faulty = FaultyStorage::new(env.storage.clone());
    faulty.faults.fail_put_after_storing.store(true, Ordering::SeqCst);
    let m = manager_on(&env, Storage::new(faulty), "alice", None).await;
    let err = m.write_bytes(new_file(&m, "/x.txt"), "data").await.unwrap_err();
    assert!(matches!(err, WorkspaceError::Storage(_)), "{err:?}");
    assert_eq!(row_count(&env).await, 0);
    assert!(blob_keys(&env.storage).await.is_empty(), "the stored blob was removed again");
}

async fn database_failure_after_blob_leaves_no_blob(env: TestEnv) {
    env.fail_inserts_named("db-fails.txt").await;
    let m = manager(&env, "alice", None).await;
    let err = m.write_bytes(new_file(&m, "/db-fails.txt"), "data").await.unwrap_err();
    assert!(matches!(err, WorkspaceError::Database(_)), "{err:?}");
    assert!(err.to_string().contains("injected database failure"), "{err}");
    assert_eq!(row_count(&env).await, 0);
    assert!(blob_keys(&env.storage).await.is_empty(), "the blob stored before the failed commit is gone");
    // The failed overwrite keeps the old file intact.
    m.write_bytes(new_file(&m, "/keep.txt").with_name("db-ok.txt"), "old").await.unwrap();
    let err = m.write_bytes(new_file(&m, "/keep.txt").with_name("db-fails.txt").with_overwrite(true), "new").await;
    assert!(err.is_err());
    assert_eq!(m.read_file("/keep.txt").await.unwrap().1, "old");
    assert_eq!(blob_keys(&env.storage).await, live_keys(&env).await);
}

async fn delete_then_write_same_path_and_deleted_files_are_invisible(env: TestEnv) {
    let m = manager(&env, "alice", Some("s")).await;
    let first = m.write_bytes(new_file(&m, "a.txt"), "one").await.unwrap();
    m.delete_file(first.id).await.unwrap();
    assert!(matches!(m.get_file_info(first.id).await, Err(WorkspaceError::NotFound(_))));
    assert!(matches!(m.read_file("a.txt").await, Err(WorkspaceError::NotFound(_))));
    assert!(matches!(m.read_file_by_id(first.id).await, Err(WorkspaceError::NotFound(_))));
    assert!(matches!(m.open_read(first.id, None).await, Err(WorkspaceError::NotFound(_))));
    assert!(m.list_files(None, true, 100, None).await.unwrap().files.is_empty());
    assert!(matches!(m.delete_file(first.id).await, Err(WorkspaceError::NotFound(_))), "second delete");
    assert!(blob_keys(&env.storage).await.is_empty(), "the blob went with the delete");

    let second = m.write_bytes(new_file(&m, "a.txt"), "two").await.expect("no ghost row holds the path");
    assert_ne!(second.id, first.id);
    assert_eq!(m.read_file("a.txt").await.unwrap().1, "two");
    assert_eq!(m.usage().await.unwrap().used_bytes, 3);
    let deleted = m.delete_file_by_path("a.txt").await.unwrap();
    assert_eq!(deleted.id, second.id);
    assert_eq!(m.usage().await.unwrap().file_count, 0);
}

async fn oversized_stream_stops_early_and_leaves_nothing(env: TestEnv) {
    let m =
        manager(&env, "alice", None).await.with_limits(Limits { max_file_size: 100 * MIB, quota_bytes: 1024 * MIB });
    let chunk = 64 * 1024;
    let (counter, body) = CountingBody::new(200 * MIB, chunk);
    let err = m.write_file(new_file(&m, "/huge.bin"), body).await.unwrap_err();
    assert!(matches!(err, WorkspaceError::TooLarge { limit } if limit == 100 * MIB), "{err:?}");
    let pulled = counter.pulled();
    assert!(pulled <= 100 * MIB + 2 * chunk as u64, "read {pulled} bytes, little more than the cap");
    assert!(pulled > 100 * MIB, "the cap itself is allowed through");
    assert_eq!(row_count(&env).await, 0);
    assert!(blob_keys(&env.storage).await.is_empty());
}

async fn quota_stops_a_stream_early(env: TestEnv) {
    let m = manager(&env, "alice", None).await.with_limits(Limits { max_file_size: 100 * MIB, quota_bytes: 2 * MIB });
    m.write_bytes(new_file(&m, "/one"), vec![0u8; MIB as usize]).await.unwrap();
    let (counter, body) = CountingBody::new(50 * MIB, 64 * 1024);
    let err = m.write_file(new_file(&m, "/two"), body).await.unwrap_err();
    assert!(matches!(err, WorkspaceError::QuotaExceeded { used, .. } if used == MIB), "{err:?}");
    assert!(counter.pulled() < 2 * MIB, "stopped once past the room left, after {} bytes", counter.pulled());
    assert_eq!(blob_keys(&env.storage).await, live_keys(&env).await);
}

async fn gc_removes_orphans_and_expired_rows(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    let kept = m.write_bytes(new_file(&m, "/kept"), "kept").await.unwrap();
    let gone = m.write_bytes(new_file(&m, "/gone"), "gone").await.unwrap();
    // A crash between storing a blob and committing its row leaves an orphan.
    let orphan = BlobKey::for_file(m.workspace_id(), FileId::new());
    env.storage.put_bytes(&orphan, Bytes::from_static(b"orphan")).await.unwrap();
    // A delete whose blob removal failed leaves a blob behind a deleted row.
    let faulty = FaultyStorage::new(env.storage.clone());
    faulty.faults.fail_deletes.store(true, Ordering::SeqCst);
    let failing = manager_on(&env, Storage::new(faulty), "alice", None).await;
    failing.delete_file(gone.id).await.expect("the row is deleted even when the blob removal fails");
    assert_eq!(blob_keys(&env.storage).await.len(), 3);

    let young = gc::run(
        &env.db,
        &env.storage,
        GcOptions { retention: Duration::from_secs(3600), grace: Duration::from_secs(3600) },
    )
    .await
    .unwrap();
    assert_eq!(young.orphan_blobs_deleted, 0, "nothing is old enough yet");
    assert_eq!(young.rows_purged, 0);

    let report =
        gc::run(&env.db, &env.storage, GcOptions { retention: Duration::ZERO, grace: Duration::ZERO }).await.unwrap();
    assert_eq!(report.orphan_blobs_deleted, 2);
    assert_eq!(report.rows_purged, 1, "the soft-deleted row past retention is purged");
    assert_eq!(blob_keys(&env.storage).await, live_keys(&env).await);
    assert_eq!(m.read_file_by_id(kept.id).await.unwrap().1, "kept", "live files are untouched");
    assert_eq!(row_count(&env).await, 1);
}

async fn gc_spares_a_write_in_flight(env: TestEnv) {
    let faulty = FaultyStorage::new(env.storage.clone());
    let faults = Arc::clone(&faulty.faults);
    faults.hold_put.store(true, Ordering::SeqCst);
    let m = manager_on(&env, Storage::new(faulty), "alice", None).await;
    let writer = {
        let m = m.clone();
        tokio::spawn(async move { m.write_bytes(new_file(&m, "/slow.txt"), "in flight").await })
    };
    // The blob is stored; its row is not committed yet.
    faults.held.notified().await;
    assert_eq!(blob_keys(&env.storage).await.len(), 1);
    assert_eq!(row_count(&env).await, 0);
    let report = gc::run(&env.db, &env.storage, GcOptions::default()).await.unwrap();
    assert_eq!(report.orphan_blobs_deleted, 0, "a young unreferenced blob is spared");
    faults.release.notify_one();
    let info = writer.await.unwrap().unwrap();
    assert_eq!(m.read_file_by_id(info.id).await.unwrap().1, "in flight");
}

async fn listing_pages_and_prefixes(env: TestEnv) {
    let m = manager(&env, "alice", Some("abc")).await;
    for path in ["a.txt", "b.txt", "sub/c.txt", "/sessions/abc123/x.txt", "/sessions/abc0/y.txt", "/shared/z.txt"] {
        m.write_bytes(new_file(&m, path), "x").await.unwrap();
    }
    let paths = |page: &workspace_core::FilePage| page.files.iter().map(|f| f.path.clone()).collect::<Vec<_>>();
    let session = m.list_files(None, false, 100, None).await.unwrap();
    assert_eq!(paths(&session), ["/sessions/abc/a.txt", "/sessions/abc/b.txt", "/sessions/abc/sub/c.txt"]);
    assert_eq!(session.next_cursor, None);
    let sub = m.list_files(Some("sub"), false, 100, None).await.unwrap();
    assert_eq!(paths(&sub), ["/sessions/abc/sub/c.txt"]);
    let abs = m.list_files(Some("/sessions/abc"), false, 100, None).await.unwrap();
    assert_eq!(paths(&abs).len(), 3, "an absolute prefix is segment-aligned too: {:?}", paths(&abs));
    let all = m.list_files(None, true, 100, None).await.unwrap();
    assert_eq!(all.files.len(), 6);

    // Pages of two, following cursors, see every file once, in order.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = m.list_files(None, true, 2, cursor.as_deref()).await.unwrap();
        assert!(page.files.len() <= 2);
        seen.extend(paths(&page));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, paths(&all));
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);

    assert!(matches!(m.list_files(None, true, 0, None).await, Err(WorkspaceError::InvalidInput(_))));
    assert!(matches!(m.list_files(None, true, 1001, None).await, Err(WorkspaceError::InvalidInput(_))));
    assert!(matches!(m.list_files(None, true, 10, Some("zz-not-hex")).await, Err(WorkspaceError::InvalidInput(_))));
    assert!(matches!(m.list_files(Some("../x"), true, 10, None).await, Err(WorkspaceError::InvalidPath(_))));
    // LIKE metacharacters in a prefix are literal.
    m.write_bytes(new_file(&m, "/p%_/q.txt"), "x").await.unwrap();
    assert_eq!(m.list_files(Some("/p%_"), true, 10, None).await.unwrap().files.len(), 1);
    assert_eq!(m.list_files(Some("/p"), true, 10, None).await.unwrap().files.len(), 0);
}

async fn mime_is_chosen_and_sniffed(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";
    let declared = m.write_bytes(new_file(&m, "/a.bin").with_mime_type("image/png"), &png[..]).await.unwrap();
    assert_eq!(declared.mime_type, "image/png");
    assert_eq!(declared.metadata, serde_json::json!({}), "no note when the content agrees");
    let by_ext = m.write_bytes(new_file(&m, "/photo.jpg"), &png[..]).await.unwrap();
    assert_eq!(by_ext.mime_type, "image/jpeg");
    assert_eq!(by_ext.metadata["sniffed_mime_type"], "image/png", "the disagreement is recorded");
    let unknown = m.write_bytes(new_file(&m, "/README"), "plain words").await.unwrap();
    assert_eq!(unknown.mime_type, "application/octet-stream");
    let bad = m.write_bytes(new_file(&m, "/x.txt").with_mime_type("nonsense"), "x").await.unwrap();
    assert_eq!(bad.mime_type, "text/plain", "an invalid declared type falls back to the extension");
}

async fn workspace_creation_is_race_free(env: TestEnv) {
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let db = env.db.clone();
            tokio::spawn(async move {
                WorkspaceManager::get_or_create_workspace(&db, &UserId::new("racer").unwrap()).await.unwrap()
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        ids.insert(task.await.unwrap());
    }
    assert_eq!(ids.len(), 1, "every caller got the one workspace");
    let other =
        WorkspaceManager::get_or_create_workspace(&env.db, &UserId::new("someone-else").unwrap()).await.unwrap();
    assert!(!ids.contains(&other));
}

async fn other_users_files_are_not_found(env: TestEnv) {
    let alice = manager(&env, "alice", None).await;
    let bob = manager(&env, "bob", None).await;
    let secret = alice.write_bytes(new_file(&alice, "/secret.txt"), "alice only").await.unwrap();
    assert!(matches!(bob.get_file_info(secret.id).await, Err(WorkspaceError::NotFound(_))));
    assert!(matches!(bob.read_file_by_id(secret.id).await, Err(WorkspaceError::NotFound(_))));
    assert!(matches!(bob.open_read(secret.id, None).await, Err(WorkspaceError::NotFound(_))));
    assert!(matches!(bob.delete_file(secret.id).await, Err(WorkspaceError::NotFound(_))));
    assert!(matches!(bob.get_download_url(secret.id, Duration::from_secs(60)).await, Err(WorkspaceError::NotFound(_))));
    assert!(matches!(bob.read_file("/secret.txt").await, Err(WorkspaceError::NotFound(_))));
    assert!(bob.list_files(None, true, 100, None).await.unwrap().files.is_empty());
    assert_eq!(bob.usage().await.unwrap().used_bytes, 0);
    assert_eq!(alice.read_file_by_id(secret.id).await.unwrap().1, "alice only", "bob's delete did nothing");
}

async fn nfc_and_nfd_name_one_file(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    m.write_bytes(new_file(&m, "/cafe\u{301}.txt"), "nfd").await.unwrap();
    assert_eq!(m.read_file("/caf\u{e9}.txt").await.unwrap().1, "nfd");
    let err = m.write_bytes(new_file(&m, "/caf\u{e9}.txt"), "nfc").await.unwrap_err();
    assert!(matches!(err, WorkspaceError::Conflict(_)), "one path, so a conflict: {err:?}");
}

async fn ranges_and_download_urls(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    let data: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let info = m.write_bytes(new_file(&m, "/r.bin"), data.clone()).await.unwrap();
    let (_, got) = m.open_read(info.id, Some(ByteRange::Bounded { start: 1000, end: 2000 })).await.unwrap();
    assert_eq!((got.size, got.range.clone()), (300_000, 1000..2000));
    let chunks: Vec<Bytes> = got.stream.try_collect().await.unwrap();
    assert_eq!(chunks.concat(), &data[1000..2000]);
    let (_, tail) = m.open_read(info.id, Some(ByteRange::Suffix(1))).await.unwrap();
    assert_eq!(tail.range, 299_999..300_000);
    assert!(matches!(
        m.open_read(info.id, Some(ByteRange::From(300_000))).await,
        Err(WorkspaceError::Storage(workspace_core::StorageError::RangeNotSatisfiable { size: 300_000 }))
    ));
    // Local disk and memory cannot sign URLs: callers serve through the API.
    assert_eq!(m.get_download_url(info.id, Duration::from_secs(60)).await.unwrap(), None);
}

async fn migrations_run_down_and_up(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    m.write_bytes(new_file(&m, "/x"), "x").await.unwrap();
    Migrator::down(env.db.conn(), None).await.unwrap();
    assert!(file::Entity::find().count(env.db.conn()).await.is_err(), "tables are gone after down");
    Migrator::up(env.db.conn(), None).await.unwrap();
    assert_eq!(row_count(&env).await, 0);
    // The partial unique index is back: two live rows at one path are refused by the database.
    let m = manager(&env, "alice", None).await;
    m.write_bytes(new_file(&m, "/x"), "x").await.unwrap();
    let dup = file::Entity::find().one(env.db.conn()).await.unwrap().unwrap();
    let mut copy: file::ActiveModel = file::Model { id: uuid::Uuid::new_v4(), ..dup.clone() }.into();
    copy = sea_orm::ActiveModelTrait::reset_all(copy);
    assert!(file::Entity::insert(copy).exec(env.db.conn()).await.is_err(), "second live row at a path is refused");
    let ghost = file::Model { id: uuid::Uuid::new_v4(), is_deleted: true, ..dup };
    let ghost: file::ActiveModel = sea_orm::ActiveModelTrait::reset_all(file::ActiveModel::from(ghost));
    file::Entity::insert(ghost).exec(env.db.conn()).await.expect("deleted rows do not hold the path");
}
