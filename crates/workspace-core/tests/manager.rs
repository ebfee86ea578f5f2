//! The WorkspaceManager suite. Every test runs on SQLite and on PostgreSQL (each in a database of
//! its own), against the backend chosen by `WS_TEST_STORAGE` (local disk by default). After each
//! workload the store's invariants are checked from the outside (`TestEnv::assert_consistent`):
//! one current file per path, no orphan blob, no content without its blob, counters equal to the
//! rows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use workspace_core::entity::{user_workspace_file as file, workspace_content as content};
use workspace_core::gc::GcOptions;
use workspace_core::{
    BlobKey, ByteRange, Checksum, ContentId, Db, EventKind, FileId, FileRef, FileSource, HistoryPolicy, Limits,
    ListOptions, NewFile, PlaceOptions, Precondition, RestoreOptions, SessionId, Settings, SortKey, SortOrder, Storage,
    UserId, WorkspaceError, WorkspaceId, WorkspaceManager, Workspaces,
};
use workspace_testkit::{CountingBody, FaultyStorage, TestEnv, db_tests};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;
/// Bigger than the default inline threshold: stored as a blob.
const BLOB: usize = 80 * 1024;

async fn manager(env: &TestEnv, user: &str, session: Option<&str>) -> WorkspaceManager {
    manager_with(&env.workspaces(), user, session).await
}

async fn manager_with(workspaces: &Workspaces, user: &str, session: Option<&str>) -> WorkspaceManager {
    let session = session.map(|s| SessionId::new(s).unwrap());
    workspaces.manager(&UserId::new(user).unwrap(), session).await.unwrap()
}

fn with_limits(env: &TestEnv, limits: Limits) -> Workspaces {
    env.workspaces_with(Settings { limits, ..Settings::default() })
}

fn new_file(m: &WorkspaceManager, path: &str) -> NewFile {
    NewFile::new(m.resolve_path(path).unwrap())
}

fn path(m: &WorkspaceManager, p: &str) -> FileRef {
    FileRef::Path(m.resolve_path(p).unwrap())
}

/// `n` bytes that differ for every `seed` (so nothing deduplicates by accident).
fn body(seed: u64, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(1);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

async fn blob_keys(storage: &Storage) -> HashSet<String> {
    storage.list_all("workspaces/").await.unwrap().into_iter().map(|m| m.key.to_string()).collect()
}

async fn row_count(env: &TestEnv) -> u64 {
    file::Entity::find().count(env.db.conn()).await.unwrap()
}

db_tests!(
    write_then_read_back,
    concurrent_overwrites_keep_one_current_and_the_rest_as_versions,
    concurrent_overwrites_keep_at_most_max_versions,
    concurrent_writes_without_overwrite_give_one_success,
    quota_holds_under_concurrency_with_history,
    history_gives_way_to_live_bytes,
    versions_keep_their_ids_and_bytes,
    restoring_a_version_makes_a_new_current_version,
    delete_moves_to_the_trash_and_restore_brings_back,
    trash_restore_onto_a_taken_path_is_a_conflict,
    purge_and_empty_trash_remove_bytes_for_good,
    delete_restore_overwrite_races_keep_the_invariants,
    equal_content_is_stored_once,
    small_files_live_in_the_database,
    preconditions_guard_writes_and_deletes,
    every_change_appends_one_event,
    backend_failing_mid_stream_leaves_no_row,
    backend_failing_after_storing_leaves_no_blob,
    database_failure_after_blob_leaves_no_blob,
    cancelled_writes_leave_no_blob,
    unreachable_storage_fails_within_the_deadline,
    oversized_stream_stops_early_and_leaves_nothing,
    quota_stops_a_stream_early,
    staged_bodies_commit_where_told_or_leave_nothing,
    gc_removes_orphans_and_history_past_retention,
    gc_spares_a_write_in_flight,
    gc_lists_blobs_page_by_page,
    listing_pages_and_prefixes,
    listing_sorts_searches_and_pages_every_sort,
    a_name_search_examines_a_bounded_window_per_page,
    moves_keep_the_id_the_bytes_and_the_versions,
    moves_onto_a_taken_path_conflict_or_trash_the_occupant,
    copies_share_content_and_count_logically,
    folders_move_and_trash_all_or_nothing,
    folder_listing_shows_immediate_children_with_counts,
    concurrent_moves_onto_one_free_path_give_one_success,
    a_move_racing_an_overwrite_of_its_target_loses_no_bytes,
    overwriters_sharing_one_stale_if_match_give_one_success,
    a_folder_move_racing_writes_into_the_folder_keeps_every_file_once,
    mime_is_chosen_and_sniffed,
    workspace_creation_is_race_free,
    other_users_files_are_not_found,
    nfc_and_nfd_name_one_file,
    ranges_and_download_urls,
    migrations_run_down_and_up,
    write_commits_share_one_flush_before_they_are_acknowledged,
    writes_waiting_together_commit_together_as_if_one_after_another,
    a_write_dropped_while_it_waits_is_not_made,
    a_batch_that_fails_is_tried_one_write_at_a_time,
);

/// Holds the workspace's write lock (SQLite's write connection; on PostgreSQL the workspace row)
/// until the returned transaction ends, so writes queue up behind it.
async fn hold_workspace(env: &TestEnv, m: &WorkspaceManager) -> sea_orm::DatabaseTransaction {
    use sea_orm::ConnectionTrait;
    let txn = env.db.begin_write().await.unwrap();
    if env.kind == workspace_testkit::DbKind::Postgres {
        let lock = format!("SELECT 1 FROM user_workspace WHERE id = '{}' FOR UPDATE", m.workspace_id());
        txn.execute_unprepared(&lock).await.unwrap();
    }
    txn
}

/// Writes that wait for the workspace together commit in one transaction (they share its time),
/// each checked against what the writes before it left: creates, overwrites of one path, a
/// create-only race, equal content, and quota, all in one batch.
async fn writes_waiting_together_commit_together_as_if_one_after_another(env: TestEnv) {
    let m = manager_with(&with_limits(&env, Limits { max_file_size: MIB, quota_bytes: 24 * KIB }), "alice", None).await;
    m.write_bytes(new_file(&m, "/same.txt"), "v1").await.unwrap();
    let held = hold_workspace(&env, &m).await;
    // Staged first, so each commit joins the lane as soon as it is spawned, in spawn order.
    let stage = |bytes: Vec<u8>| {
        let m = m.clone();
        async move { m.stage(futures::stream::once(async move { Ok(Bytes::from(bytes)) }), m.stage_cap()).await.unwrap() }
    };
    let spawn = |new: NewFile, staged| {
        let m = m.clone();
        tokio::spawn(async move { m.commit(new, staged).await })
    };
    let mut distinct = Vec::new();
    let mut overwrites = Vec::new();
    let mut once = Vec::new();
    let mut equal = Vec::new();
    for i in 0..8u64 {
        distinct.push(spawn(new_file(&m, &format!("/d/{i}.bin")), stage(body(i, KIB as usize)).await));
        let v = format!("v{}", i + 2).into_bytes();
        overwrites.push(spawn(new_file(&m, "/same.txt").with_overwrite(true), stage(v).await));
        once.push(spawn(new_file(&m, "/once.txt"), stage(body(100 + i, 100)).await));
        equal.push(spawn(new_file(&m, &format!("/e/{i}.txt")), stage(b"equal content".to_vec()).await));
    }
    // Then more KiB-sized files than the quota has room for beside the 8 above (56 writes in all,
    // within one batch).
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut over = Vec::new();
    for i in 0..24u64 {
        over.push(spawn(new_file(&m, &format!("/q/{i}.bin")), stage(body(200 + i, KIB as usize)).await));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    held.rollback().await.unwrap();

    let mut times = HashSet::new();
    for task in distinct.into_iter().chain(equal) {
        times.insert(task.await.unwrap().unwrap().created_at);
    }
    let mut versions = Vec::new();
    for task in overwrites {
        let info = task.await.unwrap().unwrap();
        times.insert(info.created_at);
        versions.push((info.version, info.checksum));
    }
    versions.sort_unstable_by_key(|(version, _)| *version);
    assert_eq!(
        versions.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
        (2..=9).collect::<Vec<_>>(),
        "each overwrite saw the one before it"
    );
    let (read, bytes) = m.read(path(&m, "/same.txt")).await.unwrap();
    assert_eq!((read.version, &read.checksum), (9, &versions[7].1), "the last overwrite is current");
    assert_eq!(Checksum::of(&bytes), read.checksum);
    let (mut created, mut conflicts) = (0, 0);
    for task in once {
        match task.await.unwrap() {
            Ok(info) => {
                times.insert(info.created_at);
                created += 1;
            }
            Err(WorkspaceError::Conflict(path)) => {
                assert_eq!(path, "/once.txt");
                conflicts += 1;
            }
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!((created, conflicts), (1, 7), "one create-only write wins, the others see it");
    let (mut fit, mut refused) = (0, 0);
    for task in over {
        match task.await.unwrap() {
            Ok(info) => {
                times.insert(info.created_at);
                fit += 1;
            }
            Err(WorkspaceError::QuotaExceeded { .. }) => refused += 1,
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    let usage = m.usage().await.unwrap();
    assert!(usage.live_bytes <= 40 * KIB, "{usage:?}");
    assert!(fit > 0 && refused > 0 && fit + refused == 24, "{fit} fit, {refused} refused");
    // The first write to reach the lane may have been taken alone before the others queued.
    assert!(times.len() <= 2, "{} transactions for writes that waited together", times.len());

    let equal_rows = content::Entity::find()
        .filter(content::Column::Checksum.eq(Checksum::of(b"equal content").to_string()))
        .count(env.db.conn())
        .await
        .unwrap();
    assert_eq!(equal_rows, 1, "equal content written together is stored once");
    let events = m.events(0, 1000).await.unwrap();
    assert_eq!(events.len(), 1 + 8 + 8 + 1 + 8 + fit, "one event per write made");
    assert!(events.windows(2).all(|w| w[1].id == w[0].id + 1), "event ids follow each other");
    env.assert_consistent().await;
}

/// A statement failing for one write of a batch (an injected database failure) fails that write
/// only: the batch is tried again one write at a time, and its blob goes.
async fn a_batch_that_fails_is_tried_one_write_at_a_time(env: TestEnv) {
    env.fail_inserts_named("fails.bin").await;
    let m = manager(&env, "alice", None).await;
    let first = m.write_bytes(new_file(&m, "/first.txt"), "first").await.unwrap();
    let held = hold_workspace(&env, &m).await;
    let mut tasks = Vec::new();
    for (i, name) in ["a.bin", "fails.bin", "b.bin"].into_iter().enumerate() {
        let m = m.clone();
        let staged =
            m.stage(futures::stream::iter([Ok(Bytes::from(body(i as u64, BLOB)))]), m.stage_cap()).await.unwrap();
        tasks.push(tokio::spawn(async move { m.commit(new_file(&m, &format!("/{name}")), staged).await }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    held.rollback().await.unwrap();
    let [a, failed, b] = [tasks.remove(0), tasks.remove(0), tasks.remove(0)];
    let (a, b) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
    let err = failed.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("injected database failure"), "{err}");
    assert_ne!(a.created_at, first.created_at);
    let names: HashSet<String> =
        m.list(ListOptions::default()).await.unwrap().files.into_iter().map(|f| f.name).collect();
    assert_eq!(names, ["first.txt", "a.bin", "b.bin"].map(str::to_owned).into());
    assert_eq!(m.read(b.id).await.unwrap().1, body(2, BLOB));
    let snapshot = env.assert_consistent().await;
    assert_eq!(snapshot.blobs.len(), 2, "the failed write's blob is gone");
}

/// A write whose caller goes away while it waits for the workspace is not made.
async fn a_write_dropped_while_it_waits_is_not_made(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    let held = hold_workspace(&env, &m).await;
    let first = {
        let m = m.clone();
        tokio::spawn(async move { m.write_bytes(new_file(&m, "/first.txt"), "first").await })
    };
    // The lane's task takes the first write and waits for the lock with it; the next waits in line.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dropped = {
        let m = m.clone();
        tokio::spawn(async move { m.write_bytes(new_file(&m, "/dropped.bin"), body(1, BLOB)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    dropped.abort();
    assert!(dropped.await.unwrap_err().is_cancelled());
    held.rollback().await.unwrap();
    first.await.unwrap().unwrap();
    let after = m.write_bytes(new_file(&m, "/after.txt"), "after").await.unwrap();
    assert_eq!(after.version, 1);
    assert!(matches!(m.lookup(path(&m, "/dropped.bin")).await, Err(WorkspaceError::NotFound(_))));
    // Its staged blob went with it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let snapshot = env.assert_consistent().await;
    assert_eq!(snapshot.files.len(), 2);
    assert!(snapshot.blobs.is_empty(), "{:?}", snapshot.blobs);
}

/// `Db` group commit: a write transaction commits without waiting for the disk (so the next
/// writer of the workspace does not wait for this one's fsync) and `sync_commits` makes every
/// commit before it durable. On PostgreSQL the WAL is flushed past the commit when it returns.
async fn write_commits_share_one_flush_before_they_are_acknowledged(env: TestEnv) {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let postgres = env.kind == workspace_testkit::DbKind::Postgres;
    let (mode, not_waiting) = if postgres { ("SHOW synchronous_commit", "off") } else { ("PRAGMA synchronous", "1") };
    let txn = env.db.begin_write().await.unwrap();
    assert_eq!(scalar(&txn, mode).await, not_waiting, "a write transaction's commit does not wait for the disk");
    txn.execute_unprepared("CREATE TABLE flush_probe (x int); INSERT INTO flush_probe VALUES (1)").await.unwrap();
    txn.commit().await.unwrap();
    if postgres {
        let after_commit = scalar(env.db.conn(), "SELECT pg_current_wal_insert_lsn()::text").await;
        env.db.sync_commits().await.unwrap();
        let flushed = format!("SELECT (pg_current_wal_flush_lsn() >= '{after_commit}'::pg_lsn)::int::bigint");
        assert_eq!(
            scalar(env.db.conn(), &flushed).await,
            "1",
            "the WAL is flushed past the commit (at {after_commit})"
        );
        // Other transactions keep the server's setting.
        let other = env.db.conn().begin().await.unwrap();
        assert_eq!(scalar(&other, mode).await, "on");
    } else {
        env.db.sync_commits().await.unwrap();
    }
    assert_eq!(scalar(env.db.conn(), "SELECT count(*) FROM flush_probe").await, "1");
}

/// On PostgreSQL each execution of a prepared statement is planned for its values and for the
/// table as it is then: a generic plan kept from when a table was nearly empty (the server
/// never analyzing it) once made the write batch's path lookup scan the wrong index, slower with
/// every file. `EXPLAIN EXECUTE` shows a generic plan with its parameters (`$2`), a custom one
/// with the values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_plans_every_execution_of_a_prepared_statement_for_its_values() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let Some(env) = TestEnv::new(workspace_testkit::DbKind::Postgres).await else { return };
    // One transaction: one connection for the prepared statement.
    let txn = env.db.conn().begin().await.unwrap();
    assert_eq!(scalar(&txn, "SHOW plan_cache_mode").await, "force_custom_plan");
    txn.execute_unprepared(
        "CREATE TEMP TABLE plan_probe (w int NOT NULL, c int NOT NULL, p text NOT NULL); \
         CREATE INDEX plan_probe_wp ON plan_probe (w, p); \
         PREPARE plan_probe_q(int, text) AS SELECT p FROM plan_probe WHERE w = $1 AND p = $2",
    )
    .await
    .unwrap();
    // Past the five executions after which PostgreSQL would otherwise consider a generic plan.
    for _ in 0..8 {
        txn.execute_unprepared("EXECUTE plan_probe_q(1, 'a')").await.unwrap();
    }
    let plan = txn
        .query_all_raw(sea_orm::Statement::from_string(
            txn.get_database_backend(),
            "EXPLAIN EXECUTE plan_probe_q(1, 'p7')",
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(plan.contains("'p7'") && !plan.contains("$2"), "a plan for the values, not a generic one:\n{plan}");
    txn.rollback().await.unwrap();
}

/// A SQLite test database and its storage, twice: as the server opens them (reads on the calling
/// thread where they can be) and read only through the pool, to compare the two.
async fn direct_and_pooled() -> Option<(TestEnv, Workspaces, Workspaces)> {
    let env = TestEnv::new(workspace_testkit::DbKind::Sqlite).await?;
    let direct = env.workspaces();
    let pooled =
        Workspaces::new(Db::from_connection(env.db.conn().clone()), env.storage.clone(), Settings::default()).unwrap();
    Some((env, direct, pooled))
}

/// On a SQLite file, lookups, opens and a write's preflight read on the calling thread
/// (`direct.rs`), not through the pool. They must answer exactly what the pool answers, for
/// every kind of row (inline and blob content, versions, moved, trashed, metadata, sessions,
/// another user's file, no file), and must actually answer: a value they could not decode would
/// fall back to the pool silently, so the test also counts that none did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_on_the_calling_thread_answer_as_the_pool_does() {
    let Some((env, direct, pooled)) = direct_and_pooled().await else { return };
    assert!(pooled.db().direct_read_counts().is_none());

    let m = manager_with(&direct, "alice", Some("s1")).await;
    let mut meta = serde_json::Map::new();
    meta.insert("tag".into(), serde_json::json!({"n": 1, "s": "é\"<x>"}));
    let small = m
        .write_bytes(
            NewFile { metadata: meta, ..new_file(&m, "a/small.txt") }
                .with_source(FileSource::Copilot)
                .with_exec_id("e1"),
            "small",
        )
        .await
        .unwrap();
    let big_v1 = m.write_bytes(new_file(&m, "/big.bin"), body(1, BLOB)).await.unwrap();
    let big_v2 = m.write_bytes(new_file(&m, "/big.bin").with_overwrite(true), body(2, BLOB)).await.unwrap();
    let moved = m.write_bytes(new_file(&m, "/from.txt"), "moved").await.unwrap();
    let moved = m.move_file(moved.id, m.resolve_path("/to.txt").unwrap(), PlaceOptions::default()).await.unwrap();
    let trashed = m.write_bytes(new_file(&m, "/gone.txt"), "gone").await.unwrap();
    m.delete(trashed.id, Precondition::None).await.unwrap();
    let bob = manager_with(&direct, "bob", None).await;
    let bobs = bob.write_bytes(new_file(&bob, "/bob.txt"), "bob's").await.unwrap();

    let before = env.db.direct_read_counts().unwrap();
    let p = manager_with(&pooled, "alice", Some("s1")).await;
    let mut targets: Vec<FileRef> =
        [small.id, big_v1.id, big_v2.id, moved.id, trashed.id, bobs.id, FileId::new()].map(FileRef::Id).into();
    for at in ["a/small.txt", "/big.bin", "/to.txt", "/from.txt", "/gone.txt", "/bob.txt", "/none"] {
        targets.push(path(&m, at));
    }
    for target in &targets {
        let (ours, theirs) = (m.lookup(target.clone()).await, p.lookup(target.clone()).await);
        assert_eq!(format!("{ours:?}"), format!("{theirs:?}"), "lookup of {target}");
        let (ours, theirs) = (m.read(target.clone()).await, p.read(target.clone()).await);
        assert_eq!(format!("{ours:?}"), format!("{theirs:?}"), "read of {target}");
        if let FileRef::Path(at) = target {
            let new = NewFile::new(at.clone());
            let (ours, theirs) = (m.preflight(&new).await, p.preflight(&new).await);
            assert_eq!(format!("{ours:?}"), format!("{theirs:?}"), "preflight of {target}");
        }
    }
    // Spot checks that the comparison compared something.
    let (info, bytes) = m.read(small.id).await.unwrap();
    assert_eq!((info, &bytes[..]), (small.clone(), &b"small"[..]));
    let old = m.lookup(big_v1.id).await.unwrap();
    assert_eq!((old.is_current, old.current_id), (false, Some(big_v2.id)));
    assert!(matches!(m.lookup(bobs.id).await, Err(WorkspaceError::NotFound(_))));
    assert!(matches!(m.lookup(trashed.id).await, Err(WorkspaceError::NotFound(_))));

    let after = env.db.direct_read_counts().unwrap();
    assert_eq!(after.deferred, before.deferred, "every read answered on the calling thread");
    // At least a lookup and a read per target.
    assert!(after.answered - before.answered >= 2 * targets.len() as u64, "{before:?} -> {after:?}");
}

/// Each row of `table` in `workspace`, ordered by `order`, as text: every column's SQLite type,
/// then the values of `columns` (the ones two workspaces written alike must share).
async fn stored_rows(db: &Db, table: &str, order: &str, columns: &[&str], workspace: WorkspaceId) -> Vec<String> {
    use sea_orm::ConnectionTrait;
    let names: Vec<String> = db
        .conn()
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"),
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect();
    let mut parts: Vec<String> = names.iter().map(|c| format!("typeof({c})")).collect();
    parts.extend(columns.iter().map(|c| format!("quote({c})")));
    // Times as sqlx writes them: RFC 3339 with an offset.
    for time in names.iter().filter(|c| c.ends_with("_at") || c.as_str() == "history_since") {
        parts.push(format!("CAST(({time} IS NULL OR {time} LIKE '____-__-__T__:__:__%+00:00') AS TEXT)"));
    }
    let column_of = if table == "user_workspace" { "id" } else { "workspace_id" };
    let sql = format!(
        "SELECT {} FROM {table} WHERE {column_of} = ? ORDER BY {order}",
        parts.iter().map(|p| format!("COALESCE({p}, 'null')")).collect::<Vec<_>>().join(" || '|' || ")
    );
    db.conn()
        .query_all_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Sqlite,
            sql,
            [workspace.as_uuid().into()],
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect()
}

/// On a SQLite file, write batches commit on the calling thread (`direct.rs`'s writer), not
/// through the pool's writer. What they store must be what the pool stores, value for value
/// and type for type (ids as blobs, times as RFC 3339 text, JSON as text, flags as integers),
/// for new files, inline and blob content, an overwrite, deduplicated content, a session and an
/// exec id; and they must actually run there (the test counts that none went to the pool).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_batches_on_the_calling_thread_store_what_the_pool_stores() {
    let Some((env, direct, pooled)) = direct_and_pooled().await else { return };
    assert!(pooled.db().direct_write_counts().is_none());
    let before = env.db.direct_write_counts().unwrap();

    let mut meta = serde_json::Map::new();
    meta.insert("tag".into(), serde_json::json!({"n": 1, "s": "é\"<x>"}));
    let mut workspaces = Vec::new();
    for (workspaces_of, user) in [(&direct, "alice"), (&pooled, "bob")] {
        let m = manager_with(workspaces_of, user, Some("s1")).await;
        let new = NewFile { metadata: meta.clone(), ..new_file(&m, "a/small.txt") };
        let small = m.write_bytes(new.with_source(FileSource::Copilot).with_exec_id("e1"), "small").await.unwrap();
        m.write_bytes(new_file(&m, "/big.bin"), body(1, BLOB)).await.unwrap();
        m.write_bytes(new_file(&m, "/big.bin").with_overwrite(true), body(2, BLOB)).await.unwrap();
        m.write_bytes(new_file(&m, "/same.txt"), "small").await.unwrap();
        m.write_bytes(new_file(&m, "a/small.txt").with_overwrite(true), "smaller").await.unwrap();
        // Read back through the pool, as written.
        let p = manager_with(&pooled, user, Some("s1")).await;
        assert_eq!(p.lookup(small.id).await.unwrap().metadata, small.metadata);
        workspaces.push(m.workspace_id());
    }
    let after = env.db.direct_write_counts().unwrap();
    assert_eq!(after.deferred, before.deferred, "every batch committed on the calling thread");
    assert_eq!(after.answered - before.answered, 5, "alice's five writes: {before:?} -> {after:?}");

    let file_columns =
        ["name", "path", "mime_type", "size_bytes", "checksum", "is_deleted", "metadata", "source", "version"];
    let file_columns: Vec<&str> =
        file_columns.into_iter().chain(["source_session_id", "source_exec_id", "is_current"]).collect();
    let tables: [(&str, &str, &[&str]); 4] = [
        ("user_workspace_file", "path, version", &file_columns),
        ("workspace_content", "checksum", &["checksum", "size_bytes", "inline_data"]),
        ("workspace_event", "id", &["id", "kind", "path", "old_path", "size_bytes", "checksum"]),
        ("user_workspace", "id", &["live_bytes", "history_bytes", "file_count", "event_seq"]),
    ];
    for (table, order, columns) in tables {
        let ours = stored_rows(&env.db, table, order, columns, workspaces[0]).await;
        let theirs = stored_rows(&env.db, table, order, columns, workspaces[1]).await;
        assert!(!ours.is_empty(), "{table} has rows");
        assert_eq!(ours, theirs, "{table}");
    }
}

/// A batch that finds SQLite's write lock taken (by the pool's writer, or another process)
/// does not wait on the calling thread: it goes to the pool, which waits for the lock, and the
/// write succeeds once it is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_batch_that_finds_the_database_locked_goes_to_the_pool() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let Some((env, direct, _)) = direct_and_pooled().await else { return };
    let m = manager_with(&direct, "alice", None).await;
    m.write_bytes(new_file(&m, "/first.txt"), "first").await.unwrap();
    let before = env.db.direct_write_counts().unwrap();

    let lock = env
        .db
        .conn()
        .begin_with_options(sea_orm::TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await
        .unwrap();
    lock.execute_unprepared("UPDATE user_workspace SET updated_at = updated_at").await.unwrap();
    let write = tokio::spawn({
        let m = m.clone();
        async move { m.write_bytes(new_file(&m, "/second.txt"), "second").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!write.is_finished(), "the write waits for the lock");
    lock.commit().await.unwrap();
    let second = write.await.unwrap().unwrap();

    let after = env.db.direct_write_counts().unwrap();
    assert_eq!(after.deferred - before.deferred, 1, "{before:?} -> {after:?}");
    assert_eq!(m.read(second.id).await.unwrap().1, &b"second"[..]);
    // The lock free again, the next batch commits on the calling thread.
    m.write_bytes(new_file(&m, "/third.txt"), "third").await.unwrap();
    assert_eq!(env.db.direct_write_counts().unwrap().answered, after.answered + 1);
}

/// On a SQLite file a listing's pages are read on the calling thread too (`direct.rs`). Every
/// sort, order, page size, name search and folder listing must page exactly as through the pool,
/// cursors included (a cursor's time is compared with stored text, so it must be bound as sqlx
/// binds it), and none may fall back to the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_on_the_calling_thread_answer_as_the_pool_does() {
    let Some((env, direct, pooled)) = direct_and_pooled().await else { return };
    let m = manager_with(&direct, "alice", Some("s1")).await;
    let other_session = manager_with(&direct, "alice", Some("s2")).await;
    let mut meta = serde_json::Map::new();
    meta.insert("k".into(), serde_json::json!(["v", 2]));
    // Equal sizes (ties broken by path), blobs and inline content, metadata, a moved file, an
    // older version, a file in the trash, another session's file, nested folders.
    let specs: [(&str, usize); 9] = [
        ("/a/Report.md", 30),
        ("/a/b/notes.txt", 10),
        ("/a/b/c/deep.bin", BLOB),
        ("/c/report-final.md", 30),
        ("/c/zeta.bin", 5),
        ("/top.txt", 30),
        ("/x y/ünï.txt", 7),
        ("/a/b/more.md", 10),
        ("/z.md", 1),
    ];
    for (i, (at, size)) in specs.into_iter().enumerate() {
        let new = NewFile { metadata: meta.clone(), ..new_file(&m, at) };
        m.write_bytes(new, body(i as u64, size)).await.unwrap();
    }
    m.write_bytes(new_file(&m, "/top.txt").with_overwrite(true), body(99, 12)).await.unwrap();
    let gone = m.write_bytes(new_file(&m, "/a/gone.md"), "gone").await.unwrap();
    m.delete(gone.id, Precondition::None).await.unwrap();
    let moved = m.write_bytes(new_file(&m, "/from.md"), "moved").await.unwrap();
    m.move_file(moved.id, m.resolve_path("/a/moved.md").unwrap(), PlaceOptions::default()).await.unwrap();
    other_session.write_bytes(new_file(&other_session, "/other.md"), "other").await.unwrap();

    let p = manager_with(&pooled, "alice", Some("s1")).await;
    let pages = |m: WorkspaceManager, options: ListOptions| async move {
        let mut out = Vec::new();
        let mut options = options;
        loop {
            let page = m.list(options.clone()).await;
            let next = page.as_ref().ok().and_then(|page| page.next_cursor.clone());
            out.push(format!("{page:?}"));
            match next {
                Some(next) if out.len() < 50 => options.cursor = Some(next),
                _ => return out,
            }
        }
    };
    let before = env.db.direct_read_counts().unwrap();
    let mut listings = 0;
    let mut files_seen = 0;
    for sort in [SortKey::Path, SortKey::CreatedAt, SortKey::Size] {
        for order in [SortOrder::Asc, SortOrder::Desc] {
            for query in [None, Some("report"), Some("ZZZ")] {
                for (limit, all_sessions, prefix) in [(1, false, None), (3, true, None), (100, true, Some("/a"))] {
                    let options = ListOptions {
                        prefix: prefix.map(|at| m.resolve_prefix(at, all_sessions).unwrap()),
                        include_all_sessions: all_sessions,
                        limit,
                        sort,
                        order,
                        query: query.map(str::to_owned),
                        ..ListOptions::default()
                    };
                    let (ours, theirs) = (pages(m.clone(), options.clone()).await, pages(p.clone(), options).await);
                    assert_eq!(ours, theirs, "{sort:?} {order:?} {query:?} limit {limit} prefix {prefix:?}");
                    listings += ours.len();
                    files_seen += ours.iter().map(|page| page.matches("FileInfo {").count()).sum::<usize>();
                }
            }
        }
    }
    for (at, limit) in [("/", 1), ("/", 100), ("/a", 2), ("/a/b", 100)] {
        let options = ListOptions {
            prefix: Some(m.resolve_prefix(at, false).unwrap()),
            limit,
            delimiter: true,
            ..ListOptions::default()
        };
        let (ours, theirs) = (pages(m.clone(), options.clone()).await, pages(p.clone(), options).await);
        assert_eq!(ours, theirs, "folder listing of {at}, pages of {limit}");
        listings += ours.len();
    }
    // The comparison compared something: every order listed the files, each page read here.
    assert!(files_seen > 100, "{files_seen} files listed");
    let after = env.db.direct_read_counts().unwrap();
    assert_eq!(after.deferred, before.deferred, "every page answered on the calling thread");
    assert!(after.answered - before.answered >= listings as u64 / 2, "{listings} pages: {before:?} -> {after:?}");
}

/// A subscription from now reads the table after the latest event id it saw; when that read finds
/// nothing but the id has moved on meanwhile (a write committed between the two reads), the
/// events are there to read, not expired. Nothing is purged here, so no read may say expired.
/// (It once did, and a legacy MCP subscription ended on it: `events_expired`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_feed_opened_while_writes_commit_never_reports_expired_events() {
    use workspace_core::FeedStart;
    let Some(env) = TestEnv::new(workspace_testkit::DbKind::Sqlite).await else { return };
    let workspaces = env.workspaces();
    let m = manager_with(&workspaces, "alice", None).await;
    let workspace = workspaces.workspace_of(&UserId::new("alice").unwrap()).await.unwrap();
    let writer = {
        let m = m.clone();
        tokio::spawn(async move {
            for i in 0..400u64 {
                m.write_bytes(new_file(&m, &format!("/w/{i}")), body(i, 64)).await.unwrap();
            }
        })
    };
    let mut opened = 0;
    while !writer.is_finished() {
        let mut feed = workspaces.subscribe(workspace, FeedStart::Now).await.unwrap();
        // No event within the wait is fine; an error is not.
        if let Ok(next) = tokio::time::timeout(Duration::from_millis(20), feed.next()).await {
            assert!(next.is_ok(), "after {opened} feeds: {next:?}");
        }
        opened += 1;
    }
    writer.await.unwrap();
    assert!(opened > 10, "the feeds were opened while the writes went on ({opened})");
}

/// The one value `sql` answers, as text (integers formatted).
async fn scalar(conn: &impl sea_orm::ConnectionTrait, sql: &str) -> String {
    let row = conn.query_one_raw(sea_orm::Statement::from_string(conn.get_database_backend(), sql)).await.unwrap();
    let row = row.expect("a row");
    row.try_get_by_index::<String>(0).or_else(|_| row.try_get_by_index::<i64>(0).map(|v| v.to_string())).unwrap()
}

async fn write_then_read_back(env: TestEnv) {
    let m = manager(&env, "alice", Some("s1")).await;
    let info = m
        .write_bytes(new_file(&m, "notes/hello.txt").with_source(FileSource::Copilot).with_exec_id("exec-1"), "hello")
        .await
        .unwrap();
    assert_eq!(info.path, "/sessions/s1/notes/hello.txt");
    assert_eq!(info.name, "hello.txt");
    assert_eq!(info.size_bytes, 5);
    assert_eq!(info.checksum.as_str(), "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    assert_eq!(info.mime_type, "text/plain");
    assert_eq!(info.source, FileSource::Copilot);
    assert_eq!(info.source_session_id.as_deref(), Some("s1"));
    assert_eq!(info.source_exec_id.as_deref(), Some("exec-1"));
    assert_eq!((info.version, info.is_current, info.current_id), (1, true, None));
    assert_eq!(info.uri().to_string(), format!("workspace://{}#text/plain", info.id));

    let (by_path, bytes) = m.read(path(&m, "notes/hello.txt")).await.unwrap();
    assert_eq!(by_path, info);
    assert_eq!(bytes, "hello");
    assert_eq!(m.read(info.id).await.unwrap().1, "hello");
    // Another session of the same user reads it by absolute path and by id.
    let other = manager(&env, "alice", Some("s2")).await;
    assert_eq!(other.read(path(&other, "/sessions/s1/notes/hello.txt")).await.unwrap().1, "hello");
    assert_eq!(other.lookup(info.id).await.unwrap().id, info.id);
    assert!(matches!(other.read(path(&other, "notes/hello.txt")).await, Err(WorkspaceError::NotFound(_))));

    let usage = m.usage().await.unwrap();
    assert_eq!((usage.used_bytes, usage.live_bytes, usage.history_bytes), (5, 5, 0));
    assert_eq!((usage.file_count, usage.limit_bytes), (1, 250 * MIB));
    env.assert_consistent().await;
}

async fn concurrent_overwrites_keep_one_current_and_the_rest_as_versions(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    let tasks: Vec<_> = (0..20u64)
        .map(|i| {
            let m = m.clone();
            tokio::spawn(async move {
                let bytes = body(i, if i % 2 == 0 { BLOB } else { 100 });
                m.write_bytes(new_file(&m, "/same.bin").with_overwrite(true), bytes).await
            })
        })
        .collect();
    let mut written = Vec::new();
    for task in tasks {
        written.push(task.await.unwrap().expect("every overwrite succeeds"));
    }
    let snapshot = env.assert_consistent().await;
    assert_eq!(snapshot.current().count(), 1, "exactly one current file");
    assert_eq!(snapshot.files.len(), 20, "one current version and 19 older ones");
    let current = m.lookup(path(&m, "/same.bin")).await.unwrap();
    assert_eq!(current.version, 20, "versions are numbered 1 to 20 in commit order");
    let versions = m.versions(current.id).await.unwrap();
    assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), (1..=20).rev().collect::<Vec<_>>());
    // Every acknowledged write is still readable by its id, with its own bytes.
    for (i, info) in written.iter().enumerate() {
        let (_, bytes) = m.read(info.id).await.unwrap();
        assert_eq!(bytes, body(i as u64, if i % 2 == 0 { BLOB } else { 100 }));
    }
    let usage = m.usage().await.unwrap();
    assert_eq!(usage.live_bytes, current.size_bytes);
    assert_eq!(usage.used_bytes, written.iter().map(|w| w.size_bytes).sum::<u64>());
}

async fn concurrent_overwrites_keep_at_most_max_versions(env: TestEnv) {
    let settings = Settings { history: HistoryPolicy { days: 30, max_versions: 5 }, ..Settings::default() };
    let m = manager_with(&env.workspaces_with(settings), "alice", None).await;
    let tasks: Vec<_> = (0..16u64)
        .map(|i| {
            let m = m.clone();
            tokio::spawn(async move { m.write_bytes(new_file(&m, "/v.bin").with_overwrite(true), body(i, BLOB)).await })
        })
        .collect();
    let mut written = Vec::new();
    for task in tasks {
        written.push(task.await.unwrap().unwrap());
    }
    let snapshot = env.assert_consistent().await;
    assert_eq!(snapshot.files.len(), 5, "the current version and 4 older ones");
    assert_eq!(snapshot.blobs.len(), 5, "the purged versions' blobs are gone");
    written.sort_by_key(|w| w.version);
    for old in &written[..11] {
        assert!(matches!(m.lookup(old.id).await, Err(WorkspaceError::NotFound(_))), "version {} purged", old.version);
    }
    for kept in &written[11..] {
        m.read(kept.id).await.unwrap();
    }
}

async fn concurrent_writes_without_overwrite_give_one_success(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    let tasks: Vec<_> = (0..20u64)
        .map(|i| {
            let m = m.clone();
            tokio::spawn(async move { m.write_bytes(new_file(&m, "/once.bin"), body(i, BLOB)).await })
        })
        .collect();
    let (mut ok, mut conflicts) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(WorkspaceError::Conflict(path)) => {
                assert_eq!(path, "/once.bin");
                conflicts += 1;
            }
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!((ok, conflicts), (1, 19));
    let snapshot = env.assert_consistent().await;
    assert_eq!((snapshot.files.len(), snapshot.blobs.len()), (1, 1), "the losers' blobs were removed");
}

async fn quota_holds_under_concurrency_with_history(env: TestEnv) {
    let m = manager_with(&with_limits(&env, Limits { max_file_size: MIB, quota_bytes: 10 * KIB }), "alice", None).await;
    // History first: an overwritten file's old version counts until it is needed.
    m.write_bytes(new_file(&m, "/h"), body(99, KIB as usize)).await.unwrap();
    m.write_bytes(new_file(&m, "/h").with_overwrite(true), body(98, KIB as usize)).await.unwrap();
    assert_eq!(m.usage().await.unwrap().history_bytes, KIB);
    let tasks: Vec<_> = (0..20u64)
        .map(|i| {
            let m = m.clone();
            tokio::spawn(async move { m.write_bytes(new_file(&m, &format!("/f{i}")), body(i, KIB as usize)).await })
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
    assert_eq!((ok, over), (9, 11), "exactly as many files as fit beside /h, history giving way");
    let usage = m.usage().await.unwrap();
    assert_eq!((usage.live_bytes, usage.history_bytes, usage.used_bytes), (10 * KIB, 0, 10 * KIB));
    env.assert_consistent().await;
}

async fn history_gives_way_to_live_bytes(env: TestEnv) {
    let m = manager_with(&with_limits(&env, Limits { max_file_size: MIB, quota_bytes: 10 * KIB }), "alice", None).await;
    let six = body(1, 6 * KIB as usize);
    let first = m.write_bytes(new_file(&m, "/a"), six.clone()).await.unwrap();
    // 6 KiB live + 6 KiB of history would not fit: the old version is purged to make room.
    let second = m.write_bytes(new_file(&m, "/a").with_overwrite(true), body(2, 6 * KIB as usize)).await.unwrap();
    assert_eq!(second.version, 2);
    let usage = m.usage().await.unwrap();
    assert_eq!((usage.live_bytes, usage.history_bytes), (6 * KIB, 0));
    assert!(matches!(m.lookup(first.id).await, Err(WorkspaceError::NotFound(_))), "the old version gave way");
    // A smaller overwrite keeps its history while it fits.
    m.write_bytes(new_file(&m, "/a").with_overwrite(true), body(3, 2 * KIB as usize)).await.unwrap();
    assert_eq!(m.usage().await.unwrap().history_bytes, 6 * KIB);
    // Live bytes alone decide what is refused: 2 + 9 > 10.
    let err = m.write_bytes(new_file(&m, "/b"), body(4, 9 * KIB as usize)).await.unwrap_err();
    assert!(
        matches!(err, WorkspaceError::QuotaExceeded { used, needed, .. } if used == 2 * KIB && needed == 9 * KIB),
        "{err:?}"
    );
    // 2 + 8 fits once the history is purged; deleted files are history too and give way as well.
    m.delete(path(&m, "/a"), Precondition::None).await.unwrap();
    assert_eq!(m.usage().await.unwrap().history_bytes, 8 * KIB);
    m.write_bytes(new_file(&m, "/b"), body(5, 8 * KIB as usize)).await.unwrap();
    let usage = m.usage().await.unwrap();
    assert!(usage.used_bytes <= 10 * KIB, "{usage:?}");
    env.assert_consistent().await;
}

async fn versions_keep_their_ids_and_bytes(env: TestEnv) {
    let m = manager(&env, "alice", Some("chat")).await;
    let v1 = m.write_bytes(new_file(&m, "img.png"), body(1, BLOB)).await.unwrap();
    let v2 = m.write_bytes(new_file(&m, "img.png").with_overwrite(true), body(2, 500)).await.unwrap();
    let v3 = m.write_bytes(new_file(&m, "img.png").with_overwrite(true), body(3, BLOB)).await.unwrap();
    assert_eq!((v1.version, v2.version, v3.version), (1, 2, 3));
    // Yesterday's workspace:// id still names yesterday's bytes.
    let old = m.lookup(v1.id).await.unwrap();
    assert_eq!((old.is_current, old.current_id, old.version), (false, Some(v3.id), 1));
    assert_eq!(m.read(v1.id).await.unwrap().1, body(1, BLOB));
    assert_eq!(m.read(v2.id).await.unwrap().1, body(2, 500));
    assert_eq!(m.read(path(&m, "img.png")).await.unwrap().0.id, v3.id, "the path names the current version");
    let versions = m.versions(v1.id).await.unwrap();
    assert_eq!(versions.iter().map(|v| v.id).collect::<Vec<_>>(), [v3.id, v2.id, v1.id]);
    assert_eq!(versions.iter().map(|v| v.is_current).collect::<Vec<_>>(), [true, false, false]);
    assert_eq!(versions[2].checksum, v1.checksum);
    // Listings show current files only.
    let page = m.list(ListOptions::default()).await.unwrap();
    assert_eq!(page.files.iter().map(|f| f.id).collect::<Vec<_>>(), [v3.id]);
    // An older version cannot delete the file.
    assert!(matches!(m.delete(v1.id, Precondition::None).await, Err(WorkspaceError::NotCurrent(_))));
    env.assert_consistent().await;
}

async fn restoring_a_version_makes_a_new_current_version(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    let v1 = m.write_bytes(new_file(&m, "/doc.md"), "first draft").await.unwrap();
    let v2 = m.write_bytes(new_file(&m, "/doc.md").with_overwrite(true), "second draft").await.unwrap();
    let restored = m.restore(v1.id, RestoreOptions::default()).await.unwrap();
    assert_eq!((restored.version, restored.is_current), (3, true));
    assert_ne!(restored.id, v1.id, "a restore is a new version: nothing is lost");
    assert_eq!(restored.checksum, v1.checksum);
    assert_eq!(m.read(path(&m, "/doc.md")).await.unwrap().1, "first draft");
    assert_eq!(m.read(v2.id).await.unwrap().1, "second draft", "the replaced version is kept");
    assert_eq!(m.versions(restored.id).await.unwrap().len(), 3);
    // Restoring the current version changes nothing.
    assert_eq!(m.restore(restored.id, RestoreOptions::default()).await.unwrap().id, restored.id);
    // A version is restored at its file's path, not elsewhere.
    let elsewhere = RestoreOptions { path: Some(m.resolve_path("/other.md").unwrap()), ..RestoreOptions::default() };
    assert!(matches!(m.restore(v2.id, elsewhere).await, Err(WorkspaceError::InvalidInput(_))));
    let snapshot = env.assert_consistent().await;
    assert_eq!(snapshot.contents.len(), 2, "the restored version shares the first version's content");
}

async fn delete_moves_to_the_trash_and_restore_brings_back(env: TestEnv) {
    let m = manager(&env, "alice", Some("s")).await;
    let first = m.write_bytes(new_file(&m, "a.bin"), body(1, BLOB)).await.unwrap();
    let second = m.write_bytes(new_file(&m, "a.bin").with_overwrite(true), body(2, BLOB)).await.unwrap();
    let trashed = m.delete(second.id, Precondition::None).await.unwrap();
    assert!(trashed.deleted_at.is_some());
    for gone in [first.id, second.id] {
        assert!(matches!(m.lookup(gone).await, Err(WorkspaceError::NotFound(_))), "the trash answers 404");
        assert!(matches!(m.open(gone).await, Err(WorkspaceError::NotFound(_))));
    }
    assert!(matches!(m.read(path(&m, "a.bin")).await, Err(WorkspaceError::NotFound(_))));
    assert!(
        m.list(ListOptions { include_all_sessions: true, ..ListOptions::default() }).await.unwrap().files.is_empty()
    );
    assert!(matches!(m.delete(second.id, Precondition::None).await, Err(WorkspaceError::NotFound(_))), "twice");
    assert_eq!(blob_keys(&env.storage).await.len(), 2, "the trash keeps the bytes");
    let usage = m.usage().await.unwrap();
    assert_eq!((usage.file_count, usage.live_bytes, usage.history_bytes), (0, 0, 2 * BLOB as u64));

    let trash = m.trash(100, None).await.unwrap();
    assert_eq!(trash.files.len(), 1, "one entry per file: its versions travel with it");
    assert_eq!(trash.files[0].file.id, second.id);
    assert_eq!(trash.files[0].purge_at - trash.files[0].deleted_at, chrono::Duration::days(30));

    // The path is free at once.
    let other = m.write_bytes(new_file(&m, "a.bin"), "another").await.unwrap();
    m.delete(other.id, Precondition::None).await.unwrap();
    // Back with the same id, its versions with it.
    let back = m.restore(second.id, RestoreOptions::default()).await.unwrap();
    assert_eq!((back.id, back.path.as_str()), (second.id, "/sessions/s/a.bin"));
    assert_eq!(m.read(first.id).await.unwrap().1, body(1, BLOB));
    assert_eq!(m.versions(second.id).await.unwrap().len(), 2);
    assert_eq!(m.trash(100, None).await.unwrap().files.len(), 1, "the other deleted file stays in the trash");
    // A trashed file's older version is not what the trash lists.
    m.delete(second.id, Precondition::None).await.unwrap();
    assert!(matches!(m.restore(first.id, RestoreOptions::default()).await, Err(WorkspaceError::NotFound(_))));
    env.assert_consistent().await;
}

async fn trash_restore_onto_a_taken_path_is_a_conflict(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    let old = m.write_bytes(new_file(&m, "/report.txt"), "old").await.unwrap();
    m.delete(old.id, Precondition::None).await.unwrap();
    m.write_bytes(new_file(&m, "/report.txt"), "new").await.unwrap();
    let err = m.restore(old.id, RestoreOptions::default()).await.unwrap_err();
    assert!(matches!(&err, WorkspaceError::Conflict(p) if p == "/report.txt"), "{err:?}");
    let elsewhere = RestoreOptions { path: Some(m.resolve_path("/report (old).txt").unwrap()), ..Default::default() };
    let back = m.restore(old.id, elsewhere).await.unwrap();
    assert_eq!((back.id, back.path.as_str()), (old.id, "/report (old).txt"));
    assert_eq!(m.read(path(&m, "/report.txt")).await.unwrap().1, "new");
    env.assert_consistent().await;
}

async fn purge_and_empty_trash_remove_bytes_for_good(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    let a = m.write_bytes(new_file(&m, "/a"), body(1, BLOB)).await.unwrap();
    m.write_bytes(new_file(&m, "/a").with_overwrite(true), body(2, BLOB)).await.unwrap();
    let b = m.write_bytes(new_file(&m, "/b"), body(3, BLOB)).await.unwrap();
    let c = m.write_bytes(new_file(&m, "/c"), "small").await.unwrap();
    assert!(matches!(m.purge(b.id).await, Err(WorkspaceError::NotFound(_))), "only the trash can be purged");
    let a_now = m.lookup(path(&m, "/a")).await.unwrap();
    m.delete(a_now.id, Precondition::None).await.unwrap();
    m.purge(a_now.id).await.unwrap();
    assert!(matches!(m.restore(a_now.id, RestoreOptions::default()).await, Err(WorkspaceError::NotFound(_))));
    assert!(matches!(m.lookup(a.id).await, Err(WorkspaceError::NotFound(_))), "its versions went with it");
    assert_eq!(blob_keys(&env.storage).await.len(), 1, "only /b's blob remains");
    m.delete(b.id, Precondition::None).await.unwrap();
    m.delete(c.id, Precondition::None).await.unwrap();
    assert_eq!(m.empty_trash().await.unwrap(), 2);
    assert!(m.trash(100, None).await.unwrap().files.is_empty());
    assert_eq!(m.usage().await.unwrap().used_bytes, 0);
    let snapshot = env.assert_consistent().await;
    assert!(snapshot.files.is_empty() && snapshot.contents.is_empty() && snapshot.blobs.is_empty());
}

async fn delete_restore_overwrite_races_keep_the_invariants(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    for i in 0..4u64 {
        m.write_bytes(new_file(&m, &format!("/r{i}")), body(i, BLOB)).await.unwrap();
    }
    let tasks: Vec<_> = (0..24u64)
        .map(|i| {
            let m = m.clone();
            tokio::spawn(async move {
                let target = format!("/r{}", i % 4);
                match i % 3 {
                    0 => {
                        let bytes = body(100 + i, if i % 2 == 0 { BLOB } else { 64 });
                        m.write_bytes(new_file(&m, &target).with_overwrite(true), bytes).await.map(|_| ())
                    }
                    1 => m.delete(path(&m, &target), Precondition::None).await.map(|_| ()),
                    _ => match m.trash(100, None).await?.files.into_iter().next() {
                        Some(entry) => m.restore(entry.file.id, RestoreOptions::default()).await.map(|_| ()),
                        None => Ok(()),
                    },
                }
            })
        })
        .collect();
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) | Err(WorkspaceError::NotFound(_) | WorkspaceError::Conflict(_)) => {}
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    env.assert_consistent().await;
}

async fn equal_content_is_stored_once(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    let same = body(7, BLOB);
    let a = m.write_bytes(new_file(&m, "/a.bin"), same.clone()).await.unwrap();
    let b = m.write_bytes(new_file(&m, "/b.bin"), same.clone()).await.unwrap();
    assert_eq!(a.checksum, b.checksum);
    let snapshot = env.assert_consistent().await;
    assert_eq!((snapshot.contents.len(), snapshot.blobs.len()), (1, 1), "one blob for both files");
    assert_eq!(m.usage().await.unwrap().live_bytes, 2 * BLOB as u64, "quota counts logical bytes");
    // Concurrent writers of equal bytes also end with one blob.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (m, bytes) = (m.clone(), body(8, BLOB));
            tokio::spawn(async move { m.write_bytes(new_file(&m, &format!("/dup{i}")), bytes).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(env.assert_consistent().await.blobs.len(), 2);
    // The blob stays while any file, version or trash entry refers to it.
    m.delete(a.id, Precondition::None).await.unwrap();
    m.purge(a.id).await.unwrap();
    assert_eq!(m.read(b.id).await.unwrap().1, same);
    m.write_bytes(new_file(&m, "/b.bin").with_overwrite(true), "replaced").await.unwrap();
    assert_eq!(m.read(b.id).await.unwrap().1, same, "the version still has its bytes");
    let current = m.lookup(path(&m, "/b.bin")).await.unwrap();
    m.delete(current.id, Precondition::None).await.unwrap();
    m.purge(current.id).await.unwrap();
    let snapshot = env.assert_consistent().await;
    assert_eq!(snapshot.blobs.len(), 1, "the last reference to the shared bytes went, and so did its blob");
}

async fn small_files_live_in_the_database(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    let small = m.write_bytes(new_file(&m, "/small.txt"), "tiny").await.unwrap();
    let at_threshold = m.write_bytes(new_file(&m, "/edge.bin"), body(1, 64 * KIB as usize)).await.unwrap();
    let empty = m.write_bytes(new_file(&m, "/empty"), Bytes::new()).await.unwrap();
    let big = m.write_bytes(new_file(&m, "/big.bin"), body(2, 64 * KIB as usize + 1)).await.unwrap();
    assert!(small.is_inline() && at_threshold.is_inline() && empty.is_inline());
    assert!(!big.is_inline());
    assert_eq!(blob_keys(&env.storage).await.len(), 1, "only the file over 64 KiB has a blob");
    // Ranges, sizes and whole reads behave the same for both.
    let opened = m.open(small.id).await.unwrap();
    let range = opened.read(Some(ByteRange::Bounded { start: 1, end: 3 })).await.unwrap();
    assert_eq!((range.size, range.range.clone()), (4, 1..3));
    let chunks: Vec<Bytes> = range.stream.try_collect().await.unwrap();
    assert_eq!(chunks.concat(), b"in");
    assert!(matches!(
        opened.read(Some(ByteRange::From(4))).await,
        Err(WorkspaceError::Storage(workspace_core::StorageError::RangeNotSatisfiable { size: 4 }))
    ));
    assert!(m.open(empty.id).await.unwrap().read(Some(ByteRange::From(0))).await.is_err(), "nothing to range");
    assert_eq!(m.read(empty.id).await.unwrap().1.len(), 0);
    assert_eq!(m.download_url(&small, Duration::from_secs(60)).await.unwrap(), None, "served through the API");
    // The threshold is a setting; 0 turns inline content off.
    let blobs_only = env.workspaces_with(Settings { inline_max_bytes: 0, ..Settings::default() });
    let m2 = manager_with(&blobs_only, "bob", None).await;
    let tiny = m2.write_bytes(new_file(&m2, "/t.txt"), "tiny").await.unwrap();
    assert!(!tiny.is_inline());
    assert_eq!(m2.read(tiny.id).await.unwrap().1, "tiny");
    env.assert_consistent().await;
}

async fn preconditions_guard_writes_and_deletes(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    let v1 = m.write_bytes(new_file(&m, "/p.txt"), "one").await.unwrap();
    let stale = Checksum::parse(&"0".repeat(64)).unwrap();
    // If-Match on a write implies overwrite; a stale one changes nothing and names the current.
    let err = m
        .write_bytes(new_file(&m, "/p.txt").with_precondition(Precondition::IfMatch(stale.clone())), "two")
        .await
        .unwrap_err();
    match err {
        WorkspaceError::PreconditionFailed { current_checksum, .. } => {
            assert_eq!(current_checksum.as_deref(), Some(v1.checksum.as_str()));
        }
        other => panic!("{other:?}"),
    }
    let v2 = m
        .write_bytes(new_file(&m, "/p.txt").with_precondition(Precondition::IfMatch(v1.checksum.clone())), "two")
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    // If-Match on a free path fails (RFC 9110); If-None-Match: * needs a free path.
    let err = m.write_bytes(new_file(&m, "/free.txt").with_precondition(Precondition::IfMatch(stale.clone())), "x");
    assert!(matches!(err.await, Err(WorkspaceError::PreconditionFailed { current_checksum: None, .. })));
    let err = m.write_bytes(new_file(&m, "/p.txt").with_precondition(Precondition::IfNoneMatch), "x").await;
    assert!(matches!(err, Err(WorkspaceError::PreconditionFailed { .. })));
    m.write_bytes(new_file(&m, "/free.txt").with_precondition(Precondition::IfNoneMatch), "x").await.unwrap();
    // Delete and restore check the file named by the id.
    assert!(matches!(
        m.delete(v2.id, Precondition::IfMatch(stale.clone())).await,
        Err(WorkspaceError::PreconditionFailed { .. })
    ));
    m.delete(v2.id, Precondition::IfMatch(v2.checksum.clone())).await.unwrap();
    let stale_restore = RestoreOptions { precondition: Precondition::IfMatch(stale), ..Default::default() };
    assert!(matches!(m.restore(v2.id, stale_restore).await, Err(WorkspaceError::PreconditionFailed { .. })));
    assert!(Checksum::parse("not-a-checksum").is_err());
    env.assert_consistent().await;
}

async fn every_change_appends_one_event(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    let a = m.write_bytes(new_file(&m, "/e.txt"), "1").await.unwrap();
    let b = m.write_bytes(new_file(&m, "/e.txt").with_overwrite(true), "2").await.unwrap();
    assert!(m.write_bytes(new_file(&m, "/e.txt"), "3").await.is_err(), "a conflict changes nothing");
    m.delete(b.id, Precondition::None).await.unwrap();
    m.restore(b.id, RestoreOptions::default()).await.unwrap();
    m.delete(b.id, Precondition::None).await.unwrap();
    m.purge(b.id).await.unwrap();
    let events = m.events(0, 100).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
    use EventKind::*;
    assert_eq!(kinds, [Created, Overwritten, Deleted, Restored, Deleted, Purged, Purged]);
    assert_eq!(events.iter().map(|e| e.id).collect::<Vec<_>>(), (1..=7).collect::<Vec<_>>());
    assert_eq!((events[0].file_id, events[1].file_id), (a.id, b.id));
    assert_eq!(m.events(5, 100).await.unwrap().len(), 2, "after an id");
    // Another user's feed is their own.
    let bob = manager(&env, "bob", None).await;
    assert!(bob.events(0, 100).await.unwrap().is_empty());
}

async fn backend_failing_mid_stream_leaves_no_row(env: TestEnv) {
    let faulty = FaultyStorage::new(env.storage.clone());
    faulty.faults.fail_put_after_bytes.store(100 * KIB, Ordering::SeqCst);
    faulty.faults.fail_put_mid_stream.store(true, Ordering::SeqCst);
    let workspaces = Workspaces::new(env.db.clone(), Storage::new(faulty), Settings::default()).unwrap();
    let m = manager_with(&workspaces, "alice", None).await;
    let (_, stream) = CountingBody::new(MIB, 16 * 1024);
    let err = m.write(new_file(&m, "/big.bin"), stream).await.unwrap_err();
    assert!(matches!(err, WorkspaceError::Storage(_)), "{err:?}");
    assert_eq!(row_count(&env).await, 0, "no row");
    assert!(blob_keys(&env.storage).await.is_empty(), "no blob");
}

async fn backend_failing_after_storing_leaves_no_blob(env: TestEnv) {
    let faulty = FaultyStorage::new(env.storage.clone());
    faulty.faults.fail_put_after_storing.store(true, Ordering::SeqCst);
    let workspaces = Workspaces::new(env.db.clone(), Storage::new(faulty), Settings::default()).unwrap();
    let m = manager_with(&workspaces, "alice", None).await;
    let err = m.write_bytes(new_file(&m, "/x.bin"), body(1, BLOB)).await.unwrap_err();
    assert!(matches!(err, WorkspaceError::Storage(_)), "{err:?}");
    assert_eq!(row_count(&env).await, 0);
    assert!(blob_keys(&env.storage).await.is_empty(), "the stored blob was removed again");
}

async fn database_failure_after_blob_leaves_no_blob(env: TestEnv) {
    env.fail_inserts_named("db-fails.bin").await;
    let m = manager(&env, "alice", None).await;
    let err = m.write_bytes(new_file(&m, "/db-fails.bin"), body(1, BLOB)).await.unwrap_err();
    assert!(matches!(err, WorkspaceError::Database(_)), "{err:?}");
    assert!(err.to_string().contains("injected database failure"), "{err}");
    assert_eq!(row_count(&env).await, 0);
    assert!(blob_keys(&env.storage).await.is_empty(), "the blob stored before the failed commit is gone");
    // The failed overwrite keeps the old file intact.
    m.write_bytes(new_file(&m, "/keep.bin").with_name("db-ok.bin"), body(2, BLOB)).await.unwrap();
    let err = m.write_bytes(new_file(&m, "/keep.bin").with_name("db-fails.bin").with_overwrite(true), body(3, BLOB));
    assert!(err.await.is_err());
    assert_eq!(m.read(path(&m, "/keep.bin")).await.unwrap().1, body(2, BLOB));
    env.assert_consistent().await;
}

async fn cancelled_writes_leave_no_blob(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    // Writers dropped at random points of their work: mid-stream, in the transaction, at commit.
    let mut tasks = Vec::new();
    for i in 0..24u64 {
        let m = m.clone();
        tasks.push(tokio::spawn(async move {
            let bytes = Bytes::from(body(i, 256 * KIB as usize));
            let chunks: Vec<std::io::Result<Bytes>> =
                (0..8).map(|c| Ok(bytes.slice(c * 32 * 1024..(c + 1) * 32 * 1024))).collect();
            let slow = futures::stream::iter(chunks).then(|chunk| async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                chunk
            });
            let budget = Duration::from_millis(rand::random_range(0..30));
            tokio::time::timeout(budget, m.write(new_file(&m, &format!("/c{}", i % 6)).with_overwrite(true), slow))
                .await
        }));
    }
    for task in tasks {
        let _ = task.await.unwrap();
    }
    // Deterministically too: a writer dropped while its blob is stored but its put has not
    // returned (the backend holds the put after storing the object). The put finishes in a task
    // of its own; only then does the guard remove the blob, so nothing can land after it.
    let faulty = FaultyStorage::new(env.storage.clone());
    let faults = Arc::clone(&faulty.faults);
    faults.hold_put.store(true, Ordering::SeqCst);
    let held = manager_with(
        &Workspaces::new(env.db.clone(), Storage::new(faulty), Settings::default()).unwrap(),
        "alice",
        None,
    )
    .await;
    let writer = tokio::spawn({
        let held = held.clone();
        async move { held.write_bytes(new_file(&held, "/held.bin"), body(99, BLOB)).await }
    });
    faults.held.notified().await;
    writer.abort();
    assert!(writer.await.unwrap_err().is_cancelled());
    faults.hold_put.store(false, Ordering::SeqCst);
    faults.release.notify_one();
    // The guards' cleanup runs in the background: give it a moment, then nothing is orphaned,
    // without running gc.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let files = file::Entity::find().all(env.db.conn()).await.unwrap();
        let contents = content::Entity::find().all(env.db.conn()).await.unwrap();
        let expected: HashSet<String> = contents
            .iter()
            .filter(|c| c.inline_data.is_none())
            .map(|c| BlobKey::for_content(m.workspace_id(), ContentId::from_uuid(c.id)).to_string())
            .collect();
        if blob_keys(&env.storage).await == expected {
            assert!(files.len() <= 24);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "cancelled writes left blobs behind");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    env.assert_consistent().await;
}

async fn unreachable_storage_fails_within_the_deadline(env: TestEnv) {
    let faulty = FaultyStorage::new(env.storage.clone());
    let faults = Arc::clone(&faulty.faults);
    let storage = Storage::new(faulty).with_timeout(Duration::from_millis(400));
    let workspaces = Workspaces::new(env.db.clone(), storage, Settings::default()).unwrap();
    let m = manager_with(&workspaces, "alice", None).await;
    let stored = m.write_bytes(new_file(&m, "/before.bin"), body(1, BLOB)).await.unwrap();
    faults.hang.store(true, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let err = m.write_bytes(new_file(&m, "/during.bin"), body(2, BLOB)).await.unwrap_err();
    assert!(err.is_transient(), "a storage that does not answer is unavailable, not broken: {err:?}");
    let err = m.open(stored.id).await.unwrap().read(None).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "failed within the deadline: {:?}", started.elapsed());
    // Small files never touch storage: they keep working.
    m.write_bytes(new_file(&m, "/small.txt"), "still fine").await.unwrap();
    faults.hang.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    env.assert_consistent().await;
}

async fn oversized_stream_stops_early_and_leaves_nothing(env: TestEnv) {
    let m =
        manager_with(&with_limits(&env, Limits { max_file_size: 100 * MIB, quota_bytes: 1024 * MIB }), "alice", None)
            .await;
    let chunk = 64 * 1024;
    let (counter, stream) = CountingBody::new(200 * MIB, chunk);
    let err = m.write(new_file(&m, "/huge.bin"), stream).await.unwrap_err();
    assert!(matches!(err, WorkspaceError::TooLarge { limit } if limit == 100 * MIB), "{err:?}");
    let pulled = counter.pulled();
    assert!(pulled <= 100 * MIB + 2 * chunk as u64, "read {pulled} bytes, little more than the cap");
    assert!(pulled > 100 * MIB, "the cap itself is allowed through");
    assert_eq!(row_count(&env).await, 0);
    assert!(blob_keys(&env.storage).await.is_empty());
}

async fn quota_stops_a_stream_early(env: TestEnv) {
    let m = manager_with(&with_limits(&env, Limits { max_file_size: 100 * MIB, quota_bytes: 2 * MIB }), "alice", None)
        .await;
    m.write_bytes(new_file(&m, "/one"), vec![0u8; MIB as usize]).await.unwrap();
    let (counter, stream) = CountingBody::new(50 * MIB, 64 * 1024);
    let err = m.write(new_file(&m, "/two"), stream).await.unwrap_err();
    assert!(matches!(err, WorkspaceError::QuotaExceeded { used, .. } if used == MIB), "{err:?}");
    assert!(counter.pulled() < 2 * MIB, "stopped once past the room left, after {} bytes", counter.pulled());
    env.assert_consistent().await;
}

async fn staged_bodies_commit_where_told_or_leave_nothing(env: TestEnv) {
    let limits = Limits { max_file_size: 4 * MIB, quota_bytes: 6 * MIB };
    let m = manager_with(&with_limits(&env, limits), "alice", None).await;
    let stream = |bytes: Vec<u8>| futures::stream::once(async move { Ok(Bytes::from(bytes)) });
    // Before the path is known, the cap is the file limit (and never more than the quota).
    assert_eq!(m.stage_cap().bytes(), 4 * MIB);

    // Staged first, committed where the caller says afterwards.
    let staged = m.stage(stream(body(1, BLOB)), m.stage_cap()).await.unwrap();
    assert_eq!((staged.size(), staged.is_inline()), (BLOB as u64, false));
    assert_eq!(blob_keys(&env.storage).await.len(), 1, "the body is a blob before any row names it");
    let info = m.commit(new_file(&m, "/later.bin"), staged).await.unwrap();
    assert_eq!(m.read(info.id).await.unwrap().1, body(1, BLOB));

    // Committed onto a taken path without overwrite: Conflict, and the staged blob is gone.
    for bytes in [body(2, BLOB), b"small".to_vec()] {
        let staged = m.stage(stream(bytes), m.stage_cap()).await.unwrap();
        let err = m.commit(new_file(&m, "/later.bin"), staged).await.unwrap_err();
        assert!(matches!(err, WorkspaceError::Conflict(_)), "{err:?}");
        assert_eq!(blob_keys(&env.storage).await.len(), 1);
    }

    // Over the quota at commit (the cap did not count live bytes), then fitting as an overwrite.
    m.write_bytes(new_file(&m, "/big.bin"), body(3, 3 * MIB as usize)).await.unwrap();
    let staged = m.stage(stream(body(4, 3 * MIB as usize)), m.stage_cap()).await.unwrap();
    let err = m.commit(new_file(&m, "/more.bin"), staged).await.unwrap_err();
    assert!(matches!(err, WorkspaceError::QuotaExceeded { .. }), "{err:?}");
    let staged = m.stage(stream(body(4, 3 * MIB as usize)), m.stage_cap()).await.unwrap();
    m.commit(new_file(&m, "/big.bin").with_overwrite(true), staged).await.unwrap();

    // Past the cap while staging: TooLarge, nothing kept.
    let err = m.stage(stream(body(5, 5 * MIB as usize)), m.stage_cap()).await.unwrap_err();
    assert!(matches!(err, WorkspaceError::TooLarge { limit } if limit == 4 * MIB), "{err:?}");

    // With the path known first, the preflight refuses a conflict before any byte moves, and
    // caps the body at the room left under the quota.
    let err = m.preflight(&new_file(&m, "/later.bin")).await.unwrap_err();
    assert!(matches!(err, WorkspaceError::Conflict(_)), "{err:?}");
    let cap = m.preflight(&new_file(&m, "/new.bin")).await.unwrap();
    assert_eq!(cap.bytes(), 6 * MIB - BLOB as u64 - 3 * MIB);

    // Another workspace cannot commit it; dropped or discarded, a staged blob goes.
    let bob = manager_with(&with_limits(&env, limits), "bob", None).await;
    let kept = blob_keys(&env.storage).await;
    let staged = m.stage(stream(body(6, BLOB)), m.stage_cap()).await.unwrap();
    let err = bob.commit(NewFile::new(bob.resolve_path("/x.bin").unwrap()), staged).await.unwrap_err();
    assert!(matches!(err, WorkspaceError::InvalidInput(_)), "{err:?}");
    m.stage(stream(body(7, BLOB)), m.stage_cap()).await.unwrap().discard().await;
    drop(m.stage(stream(body(8, BLOB)), m.stage_cap()).await.unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while blob_keys(&env.storage).await != kept {
        assert!(std::time::Instant::now() < deadline, "a dropped staged body left its blob");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    env.assert_consistent().await;
}

async fn gc_removes_orphans_and_history_past_retention(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    let kept = m.write_bytes(new_file(&m, "/kept"), body(1, BLOB)).await.unwrap();
    let old = m.write_bytes(new_file(&m, "/v"), body(2, BLOB)).await.unwrap();
    m.write_bytes(new_file(&m, "/v").with_overwrite(true), body(3, BLOB)).await.unwrap();
    let gone = m.write_bytes(new_file(&m, "/gone"), body(4, BLOB)).await.unwrap();
    m.delete(gone.id, Precondition::None).await.unwrap();
    // A crash between storing a blob and committing its row leaves an orphan.
    let orphan = BlobKey::for_content(m.workspace_id(), ContentId::new());
    env.storage.put_bytes(&orphan, Bytes::from_static(b"orphan")).await.unwrap();
    assert_eq!(blob_keys(&env.storage).await.len(), 5);

    let young = env.workspaces().gc(GcOptions::default()).await.unwrap();
    assert_eq!((young.orphan_blobs_deleted, young.history_purged), (0, 0), "nothing is old enough yet");

    // With no history retention, gc purges the old version and the trashed file.
    let no_history =
        env.workspaces_with(Settings { history: HistoryPolicy { days: 0, max_versions: 20 }, ..Settings::default() });
    let report = no_history.gc(GcOptions { grace: Duration::ZERO, ..GcOptions::default() }).await.unwrap();
    assert_eq!(report.orphan_blobs_deleted, 1);
    assert_eq!(report.history_purged, 2, "{report:?}");
    assert!(matches!(m.lookup(old.id).await, Err(WorkspaceError::NotFound(_))));
    assert!(m.trash(100, None).await.unwrap().files.is_empty());
    assert_eq!(m.read(kept.id).await.unwrap().1, body(1, BLOB), "current files are untouched");
    let snapshot = env.assert_consistent().await;
    assert_eq!((snapshot.files.len(), snapshot.blobs.len()), (2, 2));
    let events = m.events(0, 100).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.kind == EventKind::Purged).count(), 2, "gc's purges are events too");
}

async fn gc_spares_a_write_in_flight(env: TestEnv) {
    let faulty = FaultyStorage::new(env.storage.clone());
    let faults = Arc::clone(&faulty.faults);
    faults.hold_put.store(true, Ordering::SeqCst);
    let workspaces = Workspaces::new(env.db.clone(), Storage::new(faulty), Settings::default()).unwrap();
    let m = manager_with(&workspaces, "alice", None).await;
    let writer = {
        let m = m.clone();
        tokio::spawn(async move { m.write_bytes(new_file(&m, "/slow.bin"), body(1, BLOB)).await })
    };
    // The blob is stored; its row is not committed yet.
    faults.held.notified().await;
    assert_eq!(blob_keys(&env.storage).await.len(), 1);
    assert_eq!(row_count(&env).await, 0);
    let report = env.workspaces().gc(GcOptions::default()).await.unwrap();
    assert_eq!(report.orphan_blobs_deleted, 0, "a young unreferenced blob is spared");
    faults.release.notify_one();
    let info = writer.await.unwrap().unwrap();
    assert_eq!(m.read(info.id).await.unwrap().1, body(1, BLOB));
    env.assert_consistent().await;
}

async fn gc_lists_blobs_page_by_page(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    for i in 0..12u64 {
        m.write_bytes(new_file(&m, &format!("/p{i}")), body(i, BLOB)).await.unwrap();
    }
    for _ in 0..3 {
        let orphan = BlobKey::for_content(m.workspace_id(), ContentId::new());
        env.storage.put_bytes(&orphan, Bytes::from_static(b"orphan")).await.unwrap();
    }
    // The listing is a stream of pages (GCS lists 1000 per page; local disk walks lazily); gc
    // checks 500 at a time, so memory does not grow with the number of blobs.
    let listed: Vec<_> = env.storage.list("workspaces/").try_collect().await.unwrap();
    assert_eq!(listed.len(), 15);
    let report = env.workspaces().gc(GcOptions { grace: Duration::ZERO, ..GcOptions::default() }).await.unwrap();
    assert_eq!((report.blobs_scanned, report.orphan_blobs_deleted), (15, 3));
    env.assert_consistent().await;
}

async fn listing_pages_and_prefixes(env: TestEnv) {
    let m = manager(&env, "abc-user", Some("abc")).await;
    for p in ["a.txt", "b.txt", "sub/c.txt", "/sessions/abc123/x.txt", "/sessions/abc0/y.txt", "/shared/z.txt"] {
        m.write_bytes(new_file(&m, p), "x").await.unwrap();
    }
    let list = |prefix: Option<&str>, all: bool, limit: u64, cursor: Option<String>| {
        let m = m.clone();
        let prefix = prefix.map(|p| m.resolve_prefix(p, all));
        async move {
            let prefix = match prefix {
                Some(Ok(p)) => Some(p),
                Some(Err(e)) => return Err(e),
                None => None,
            };
            m.list(ListOptions { prefix, include_all_sessions: all, limit, cursor, ..ListOptions::default() }).await
        }
    };
    let paths = |page: &workspace_core::FilePage| page.files.iter().map(|f| f.path.to_string()).collect::<Vec<_>>();
    let session = list(None, false, 100, None).await.unwrap();
    assert_eq!(paths(&session), ["/sessions/abc/a.txt", "/sessions/abc/b.txt", "/sessions/abc/sub/c.txt"]);
    assert_eq!(session.next_cursor, None);
    let sub = list(Some("sub"), false, 100, None).await.unwrap();
    assert_eq!(paths(&sub), ["/sessions/abc/sub/c.txt"]);
    let abs = list(Some("/sessions/abc"), false, 100, None).await.unwrap();
    assert_eq!(paths(&abs).len(), 3, "an absolute prefix is segment-aligned too: {:?}", paths(&abs));
    let all = list(None, true, 100, None).await.unwrap();
    assert_eq!(all.files.len(), 6);

    // Pages of two, following cursors, see every file once, in order.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = list(None, true, 2, cursor.clone()).await.unwrap();
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

    assert!(matches!(list(None, true, 0, None).await, Err(WorkspaceError::InvalidInput(_))));
    assert!(matches!(list(None, true, 1001, None).await, Err(WorkspaceError::InvalidInput(_))));
    assert!(matches!(list(None, true, 10, Some("zz-not-hex".into())).await, Err(WorkspaceError::InvalidInput(_))));
    assert!(matches!(list(Some("../x"), true, 10, None).await, Err(WorkspaceError::InvalidPath(_))));
    // LIKE metacharacters in a prefix are literal.
    m.write_bytes(new_file(&m, "/p%_/q.txt"), "x").await.unwrap();
    assert_eq!(list(Some("/p%_"), true, 10, None).await.unwrap().files.len(), 1);
    assert_eq!(list(Some("/p"), true, 10, None).await.unwrap().files.len(), 0);
}

/// SPEC §12, §18: a name search reads at most `SEARCH_WINDOW` rows per page; a window without
/// enough matches ends the page early with a cursor to go on from, and paging finds every match
/// once, in order, in every sort.
async fn a_name_search_examines_a_bounded_window_per_page(env: TestEnv) {
    use workspace_core::SEARCH_WINDOW;
    let m = manager(&env, "alice", None).await;
    let total = SEARCH_WINDOW + 50;
    // Two needles: one early, one past the first window (in path order and in creation order).
    for i in 0..total {
        let name =
            if i == 5 || i == SEARCH_WINDOW + 20 { format!("f{i:05}-Needle.txt") } else { format!("f{i:05}.txt") };
        m.write_bytes(new_file(&m, &format!("/s/{name}")), Bytes::from(i.to_string())).await.unwrap();
    }
    for (sort, order, expected) in [
        (
            SortKey::Path,
            SortOrder::Asc,
            ["/s/f00005-Needle.txt".to_owned(), format!("/s/f{:05}-Needle.txt", SEARCH_WINDOW + 20)],
        ),
        (
            SortKey::CreatedAt,
            SortOrder::Asc,
            ["/s/f00005-Needle.txt".to_owned(), format!("/s/f{:05}-Needle.txt", SEARCH_WINDOW + 20)],
        ),
        (
            SortKey::Path,
            SortOrder::Desc,
            [format!("/s/f{:05}-Needle.txt", SEARCH_WINDOW + 20), "/s/f00005-Needle.txt".to_owned()],
        ),
        // Sizes 1 to 4 bytes (the number written): the first window ends among the 3-byte files.
        (
            SortKey::Size,
            SortOrder::Asc,
            ["/s/f00005-Needle.txt".to_owned(), format!("/s/f{:05}-Needle.txt", SEARCH_WINDOW + 20)],
        ),
    ] {
        let reads_before = env.db.direct_read_counts();
        let mut pages = Vec::new();
        let mut cursor = None;
        loop {
            let options = ListOptions {
                limit: 10,
                cursor,
                sort,
                order,
                query: Some("needle".into()),
                include_all_sessions: true,
                ..ListOptions::default()
            };
            let page = m.list(options).await.unwrap();
            pages.push(page.files.iter().map(|f| f.path.to_string()).collect::<Vec<_>>());
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
            assert!(pages.len() < 10, "paging ends");
        }
        // The first window holds one needle; the page ends there, and the next page finds the other.
        assert_eq!(pages, [vec![expected[0].clone()], vec![expected[1].clone()]], "{sort:?} {order:?}");
        // On a SQLite file each page is two reads on the calling thread: where its window ends,
        // then its matches within.
        if let (Some(before), Some(after)) = (reads_before, env.db.direct_read_counts()) {
            assert_eq!(after.deferred, before.deferred, "{sort:?} {order:?}: no read went to the pool");
            assert_eq!(after.answered - before.answered, 2 * pages.len() as u64, "{sort:?} {order:?}");
        }
    }
    // A broad search fills its page from the first window.
    let broad =
        ListOptions { limit: 100, query: Some("F0".into()), include_all_sessions: true, ..ListOptions::default() };
    let page = m.list(broad).await.unwrap();
    assert_eq!(page.files.len(), 100);
    assert!(page.next_cursor.is_some());
}

async fn listing_sorts_searches_and_pages_every_sort(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    // Sizes and names chosen so that each order differs; equal sizes test the tie-break.
    let specs = [("/b/Report.md", 30), ("/a/notes.TXT", 10), ("/c/report-final.md", 30), ("/a/zeta.bin", 5)];
    for (p, size) in specs {
        m.write_bytes(new_file(&m, p), body(size, size as usize)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let all = |sort, order, query: Option<&str>, limit| {
        let m = m.clone();
        let query = query.map(str::to_owned);
        async move {
            let mut out = Vec::new();
            let mut cursor = None;
            loop {
                let options = ListOptions {
                    include_all_sessions: true,
                    limit,
                    cursor,
                    sort,
                    order,
                    query: query.clone(),
                    ..ListOptions::default()
                };
                let page = m.list(options).await.unwrap();
                out.extend(page.files.iter().map(|f| f.path.to_string()));
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => return out,
                }
            }
        }
    };
    for limit in [1, 2, 100] {
        assert_eq!(
            all(SortKey::CreatedAt, SortOrder::Desc, None, limit).await,
            ["/a/zeta.bin", "/c/report-final.md", "/a/notes.TXT", "/b/Report.md"],
            "newest first, in pages of {limit}"
        );
        assert_eq!(
            all(SortKey::Size, SortOrder::Desc, None, limit).await,
            ["/c/report-final.md", "/b/Report.md", "/a/notes.TXT", "/a/zeta.bin"],
            "largest first, ties by path in the same direction"
        );
        assert_eq!(
            all(SortKey::Size, SortOrder::Asc, None, limit).await,
            ["/a/zeta.bin", "/a/notes.TXT", "/b/Report.md", "/c/report-final.md"]
        );
        assert_eq!(
            all(SortKey::Path, SortOrder::Desc, None, limit).await,
            ["/c/report-final.md", "/b/Report.md", "/a/zeta.bin", "/a/notes.TXT"]
        );
    }
    assert_eq!(all(SortKey::Path, SortOrder::Asc, Some("report"), 1).await, ["/b/Report.md", "/c/report-final.md"]);
    assert_eq!(all(SortKey::Path, SortOrder::Asc, Some("NOTES.t"), 10).await, ["/a/notes.TXT"]);
    assert!(all(SortKey::Path, SortOrder::Asc, Some("%"), 10).await.is_empty(), "wildcards are literal");
    // A cursor of one sort is refused by another.
    let first = m
        .list(ListOptions { include_all_sessions: true, limit: 1, sort: SortKey::Size, ..ListOptions::default() })
        .await
        .unwrap();
    let wrong = ListOptions {
        include_all_sessions: true,
        cursor: first.next_cursor,
        sort: SortKey::CreatedAt,
        ..ListOptions::default()
    };
    assert!(matches!(m.list(wrong).await, Err(WorkspaceError::InvalidInput(_))));
}

fn wp(p: &str) -> workspace_core::WorkspacePath {
    workspace_core::WorkspacePath::parse(p).unwrap()
}

async fn moves_keep_the_id_the_bytes_and_the_versions(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    let v1 = m.write_bytes(new_file(&m, "/a/old.bin"), body(1, BLOB)).await.unwrap();
    let v2 = m.write_bytes(new_file(&m, "/a/old.bin").with_overwrite(true), body(2, BLOB)).await.unwrap();
    let blobs_before = blob_keys(&env.storage).await;
    let moved = m.move_file(v2.id, wp("/b/new.bin"), PlaceOptions::default()).await.unwrap();
    assert_eq!((moved.id, moved.path.as_str(), moved.name.as_str()), (v2.id, "/b/new.bin", "new.bin"));
    assert_eq!(blob_keys(&env.storage).await, blobs_before, "no storage I/O: the same blobs");
    assert_eq!(m.read(path(&m, "/b/new.bin")).await.unwrap().1, body(2, BLOB));
    assert!(matches!(m.lookup(path(&m, "/a/old.bin")).await, Err(WorkspaceError::NotFound(_))), "old path free");
    let old = m.lookup(v1.id).await.unwrap();
    assert_eq!((old.path.as_str(), old.current_id), ("/b/new.bin", Some(v2.id)), "the versions followed");
    m.write_bytes(new_file(&m, "/a/old.bin"), "new file at the old path").await.unwrap();
    // By path too; an older version cannot move the file; moving onto itself changes nothing.
    let by_path = m.move_file(path(&m, "/b/new.bin"), wp("/c.bin"), PlaceOptions::default()).await.unwrap();
    assert_eq!(by_path.id, v2.id);
    assert!(matches!(
        m.move_file(v1.id, wp("/d.bin"), PlaceOptions::default()).await,
        Err(WorkspaceError::NotCurrent(_))
    ));
    assert_eq!(m.move_file(v2.id, wp("/c.bin"), PlaceOptions::default()).await.unwrap().path, "/c.bin");
    let events = m.events(0, 100).await.unwrap();
    let moved_events: Vec<_> = events.iter().filter(|e| e.kind == EventKind::Moved).collect();
    assert_eq!(moved_events.len(), 2);
    assert_eq!(moved_events[0].old_path.as_deref(), Some("/a/old.bin"));
    env.assert_consistent().await;
}

async fn moves_onto_a_taken_path_conflict_or_trash_the_occupant(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    let mover = m.write_bytes(new_file(&m, "/mover.txt"), "mover").await.unwrap();
    let occupant = m.write_bytes(new_file(&m, "/taken.txt"), "occupant").await.unwrap();
    let err = m.move_file(mover.id, wp("/taken.txt"), PlaceOptions::default()).await.unwrap_err();
    assert!(matches!(&err, WorkspaceError::Conflict(p) if p == "/taken.txt"), "{err:?}");
    let stale = Precondition::IfMatch(Checksum::parse(&"1".repeat(64)).unwrap());
    let err = m.move_file(mover.id, wp("/x.txt"), PlaceOptions { precondition: stale, ..Default::default() }).await;
    assert!(matches!(err, Err(WorkspaceError::PreconditionFailed { .. })));
    let options = PlaceOptions { overwrite: true, precondition: Precondition::IfMatch(mover.checksum.clone()) };
    m.move_file(mover.id, wp("/taken.txt"), options).await.unwrap();
    assert_eq!(m.read(path(&m, "/taken.txt")).await.unwrap().1, "mover");
    let trash = m.trash(10, None).await.unwrap();
    assert_eq!(trash.files[0].file.id, occupant.id, "the replaced file is in the trash, restorable");
    let back = RestoreOptions { path: Some(wp("/occupant.txt")), ..Default::default() };
    assert_eq!(m.restore(occupant.id, back).await.unwrap().path, "/occupant.txt");
    env.assert_consistent().await;
}

async fn copies_share_content_and_count_logically(env: TestEnv) {
    let m =
        manager_with(&with_limits(&env, Limits { max_file_size: MIB, quota_bytes: 200 * KIB }), "alice", None).await;
    let source = m.write_bytes(new_file(&m, "/src.bin"), body(1, BLOB)).await.unwrap();
    let copy = m.copy_file(source.id, wp("/copy.bin"), PlaceOptions::default()).await.unwrap();
    assert_ne!(copy.id, source.id);
    assert_eq!((copy.checksum.clone(), copy.version), (source.checksum.clone(), 1));
    assert_eq!(m.read(copy.id).await.unwrap().1, body(1, BLOB));
    let snapshot = env.assert_consistent().await;
    assert_eq!(snapshot.blobs.len(), 1, "no bytes copied");
    assert_eq!(m.usage().await.unwrap().live_bytes, 2 * BLOB as u64, "quota counts logical bytes");
    // A copy does not follow its source afterwards.
    m.write_bytes(new_file(&m, "/src.bin").with_overwrite(true), "changed").await.unwrap();
    assert_eq!(m.read(path(&m, "/copy.bin")).await.unwrap().1, body(1, BLOB));
    // Onto a taken path: Conflict, or with overwrite a new version of the file there.
    let err = m.copy_file(copy.id, wp("/src.bin"), PlaceOptions::default()).await.unwrap_err();
    assert!(matches!(err, WorkspaceError::Conflict(_)));
    let over =
        m.copy_file(copy.id, wp("/src.bin"), PlaceOptions { overwrite: true, ..Default::default() }).await.unwrap();
    assert_eq!(over.version, 3, "the copied content is the file's newest version");
    // Copies count against the quota like writes.
    let err = m.copy_file(copy.id, wp("/third.bin"), PlaceOptions::default()).await.unwrap_err();
    assert!(matches!(err, WorkspaceError::QuotaExceeded { .. }), "{err:?}");
    // Another user's id is not found.
    let bob = manager(&env, "bob", None).await;
    assert!(matches!(
        bob.copy_file(copy.id, wp("/stolen.bin"), PlaceOptions::default()).await,
        Err(WorkspaceError::NotFound(_))
    ));
    assert!(matches!(
        bob.move_file(copy.id, wp("/stolen.bin"), PlaceOptions::default()).await,
        Err(WorkspaceError::NotFound(_))
    ));
    env.assert_consistent().await;
}

async fn folders_move_and_trash_all_or_nothing(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    for p in ["/proj/a.txt", "/proj/sub/b.txt", "/proj/sub/c.txt", "/project/keep.txt", "/proj"] {
        m.write_bytes(new_file(&m, p), p.to_owned()).await.unwrap();
    }
    m.write_bytes(new_file(&m, "/proj/a.txt").with_overwrite(true), "a v2").await.unwrap();
    m.write_bytes(new_file(&m, "/archive/proj/sub/c.txt"), "in the way").await.unwrap();
    // A destination taken by a file that stays: nothing moves, and the conflict names it.
    let err = m.move_folder(&wp("/proj"), &wp("/archive/proj")).await.unwrap_err();
    assert!(matches!(&err, WorkspaceError::Conflict(p) if p == "/archive/proj/sub/c.txt"), "{err:?}");
    assert_eq!(m.read(path(&m, "/proj/sub/c.txt")).await.unwrap().1, "/proj/sub/c.txt", "all or nothing");
    let moved = m.move_folder(&wp("/proj"), &wp("/done")).await.unwrap();
    assert_eq!(moved.files, 3, "files under /proj/ only: not the file /proj itself, nor /project");
    for (p, content) in [
        ("/done/a.txt", "a v2"),
        ("/done/sub/b.txt", "/proj/sub/b.txt"),
        ("/project/keep.txt", "/project/keep.txt"),
        ("/proj", "/proj"),
    ] {
        assert_eq!(m.read(path(&m, p)).await.unwrap().1, content);
    }
    assert_eq!(m.versions(path(&m, "/done/a.txt")).await.unwrap().len(), 2, "versions follow");
    assert!(matches!(m.move_folder(&wp("/done"), &wp("/done/inner")).await, Err(WorkspaceError::InvalidInput(_))));
    assert!(matches!(m.move_folder(&wp("/nothing"), &wp("/x")).await, Err(WorkspaceError::NotFound(_))));
    let trashed = m.delete_folder(&wp("/done")).await.unwrap();
    assert_eq!(trashed.files, 3);
    assert_eq!(m.trash(100, None).await.unwrap().files.len(), 3);
    assert!(matches!(m.delete_folder(&wp("/done")).await, Err(WorkspaceError::NotFound(_))));
    env.assert_consistent().await;
}

async fn folder_listing_shows_immediate_children_with_counts(env: TestEnv) {
    let m = manager(&env, "alice", Some("s1")).await;
    let files = [
        ("/r/a.txt", 1),
        ("/r/b/x.txt", 10),
        ("/r/b/y/z.txt", 100),
        ("/r/c.txt", 1000),
        ("/r/d/q.txt", 5),
        ("/r0/e.txt", 7),
        ("/ra/f.txt", 7),
        ("/r", 3),
    ];
    for (p, size) in files {
        m.write_bytes(new_file(&m, p), vec![b'x'; size]).await.unwrap();
    }
    let children = |prefix: &str, limit: u64, cursor: Option<String>| {
        let m = m.clone();
        let prefix = m.resolve_prefix(prefix, true).unwrap();
        async move {
            m.list(ListOptions {
                prefix: Some(prefix),
                limit,
                cursor,
                delimiter: true,
                include_all_sessions: true,
                ..Default::default()
            })
            .await
        }
    };
    let page = children("/r", 100, None).await.unwrap();
    assert_eq!(page.files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["/r/a.txt", "/r/c.txt"]);
    let folders: Vec<(&str, u64, u64)> =
        page.folders.iter().map(|f| (f.path.as_str(), f.file_count, f.size_bytes)).collect();
    assert_eq!(folders, [("/r/b", 2, 110), ("/r/d", 1, 5)], "counts cover everything beneath, recursively");
    // Pages count files and folders together, in path order.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = children("/r", 1, cursor).await.unwrap();
        assert_eq!(page.files.len() + page.folders.len(), 1);
        seen.extend(page.files.iter().map(|f| f.path.to_string()));
        seen.extend(page.folders.iter().map(|f| f.path.to_string()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ["/r/a.txt", "/r/b", "/r/c.txt", "/r/d"]);
    // The root: its files and folders; segment-aligned everywhere.
    let root = children("/", 100, None).await.unwrap();
    assert_eq!(root.files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["/r"]);
    let top: Vec<&str> = root.folders.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        top,
        ["/r", "/r0", "/ra", "/sessions"].iter().copied().filter(|p| *p != "/sessions").collect::<Vec<_>>()
    );
    let nested = children("/r/b", 100, None).await.unwrap();
    assert_eq!((nested.files.len(), nested.folders.len()), (1, 1));
    assert!(children("/r/none", 100, None).await.unwrap().files.is_empty());
    let bad = children("/r", 10, Some("00".into())).await;
    assert!(matches!(bad, Err(WorkspaceError::InvalidInput(_))), "a cursor outside the folder is refused");
    let searched = m.list(ListOptions { delimiter: true, query: Some("a".into()), ..Default::default() }).await;
    assert!(matches!(searched, Err(WorkspaceError::InvalidInput(_))));
}

async fn concurrent_moves_onto_one_free_path_give_one_success(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    let mut ids = Vec::new();
    for i in 0..12u64 {
        ids.push(m.write_bytes(new_file(&m, &format!("/m{i}.bin")), body(i, BLOB)).await.unwrap().id);
    }
    let tasks: Vec<_> = ids
        .iter()
        .map(|id| {
            let (m, id) = (m.clone(), *id);
            tokio::spawn(async move { m.move_file(id, wp("/target.bin"), PlaceOptions::default()).await })
        })
        .collect();
    let (mut ok, mut conflicts) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(WorkspaceError::Conflict(_)) => conflicts += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!((ok, conflicts), (1, 11));
    let page = m.list(ListOptions { include_all_sessions: true, ..Default::default() }).await.unwrap();
    assert_eq!(page.files.len(), 12, "no file lost");
    env.assert_consistent().await;
}

async fn a_move_racing_an_overwrite_of_its_target_loses_no_bytes(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    for round in 0..6u64 {
        let target = format!("/race{round}.bin");
        let mover = m.write_bytes(new_file(&m, &format!("/mover{round}.bin")), body(round, BLOB)).await.unwrap();
        let moving = {
            let (m, target) = (m.clone(), target.clone());
            tokio::spawn(async move {
                m.move_file(mover.id, wp(&target), PlaceOptions { overwrite: true, ..Default::default() }).await
            })
        };
        let writing = {
            let (m, target) = (m.clone(), target.clone());
            tokio::spawn(async move {
                m.write_bytes(new_file(&m, &target).with_overwrite(true), body(100 + round, BLOB)).await
            })
        };
        let (moved, written) = (moving.await.unwrap().unwrap(), writing.await.unwrap().unwrap());
        // One current file at the target; both contents still readable (current, version or trash).
        let current = m.lookup(path(&m, &target)).await.unwrap();
        assert!(current.id == moved.id || current.id == written.id);
        let held: HashSet<_> = [moved.id, written.id].into_iter().collect();
        assert!(held.contains(&current.id));
        let trash: Vec<_> = m.trash(100, None).await.unwrap().files.into_iter().map(|t| t.file.id).collect();
        for id in [moved.id, written.id] {
            assert!(m.read(id).await.is_ok() || trash.contains(&id), "{id} lost");
        }
    }
    env.assert_consistent().await;
}

async fn overwriters_sharing_one_stale_if_match_give_one_success(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    let base = m.write_bytes(new_file(&m, "/doc.txt"), "base").await.unwrap();
    let tasks: Vec<_> = (0..16u64)
        .map(|i| {
            let (m, etag) = (m.clone(), base.checksum.clone());
            tokio::spawn(async move {
                let new = new_file(&m, "/doc.txt").with_precondition(Precondition::IfMatch(etag));
                m.write_bytes(new, format!("edit {i}")).await
            })
        })
        .collect();
    let (mut ok, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(WorkspaceError::PreconditionFailed { current_checksum: Some(_), .. }) => refused += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!((ok, refused), (1, 15), "exactly one edit of the version everybody read wins");
    assert_eq!(m.versions(base.id).await.unwrap().len(), 2);
}

async fn a_folder_move_racing_writes_into_the_folder_keeps_every_file_once(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    for i in 0..10u64 {
        m.write_bytes(new_file(&m, &format!("/in/f{i}.txt")), format!("{i}")).await.unwrap();
    }
    let writers: Vec<_> = (10..30u64)
        .map(|i| {
            let m = m.clone();
            tokio::spawn(async move { m.write_bytes(new_file(&m, &format!("/in/f{i}.txt")), format!("{i}")).await })
        })
        .collect();
    let mover = {
        let m = m.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(rand::random_range(0..10))).await;
            m.move_folder(&wp("/in"), &wp("/out")).await
        })
    };
    for writer in writers {
        writer.await.unwrap().unwrap();
    }
    mover.await.unwrap().unwrap();
    // Every file is in exactly one place: moved before or after the move, never both or lost.
    let page = m.list(ListOptions { include_all_sessions: true, limit: 1000, ..Default::default() }).await.unwrap();
    let mut names: Vec<String> = page.files.iter().map(|f| f.name.clone()).collect();
    names.sort();
    let mut expected: Vec<String> = (0..30).map(|i| format!("f{i}.txt")).collect();
    expected.sort();
    assert_eq!(names, expected);
    assert!(page.files.iter().all(|f| f.path.as_str().starts_with("/in/") || f.path.as_str().starts_with("/out/")));
    env.assert_consistent().await;
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
            // A handle each, so no cache is shared: every task goes to the database.
            let workspaces = env.workspaces();
            tokio::spawn(async move { workspaces.workspace_of(&UserId::new("racer").unwrap()).await.unwrap() })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        ids.insert(task.await.unwrap());
    }
    assert_eq!(ids.len(), 1, "every caller got the one workspace");
    let other = env.workspaces().workspace_of(&UserId::new("someone-else").unwrap()).await.unwrap();
    assert!(!ids.contains(&other));
}

async fn other_users_files_are_not_found(env: TestEnv) {
    let alice = manager(&env, "alice", None).await;
    let bob = manager(&env, "bob", None).await;
    let secret = alice.write_bytes(new_file(&alice, "/secret.txt"), "alice only").await.unwrap();
    alice.write_bytes(new_file(&alice, "/secret.txt").with_overwrite(true), "v2").await.unwrap();
    let trashed = alice.write_bytes(new_file(&alice, "/trashed.txt"), "gone").await.unwrap();
    alice.delete(trashed.id, Precondition::None).await.unwrap();
    let nf = |r: Result<(), WorkspaceError>| assert!(matches!(r, Err(WorkspaceError::NotFound(_))), "{r:?}");
    nf(bob.lookup(secret.id).await.map(|_| ()));
    nf(bob.read(secret.id).await.map(|_| ()));
    nf(bob.open(secret.id).await.map(|_| ()));
    nf(bob.delete(secret.id, Precondition::None).await.map(|_| ()));
    nf(bob.versions(secret.id).await.map(|_| ()));
    nf(bob.restore(secret.id, RestoreOptions::default()).await.map(|_| ()));
    nf(bob.restore(trashed.id, RestoreOptions::default()).await.map(|_| ()));
    nf(bob.purge(trashed.id).await);
    nf(bob.read(path(&bob, "/secret.txt")).await.map(|_| ()));
    assert!(matches!(bob.download_url(&secret, Duration::from_secs(60)).await, Err(WorkspaceError::NotFound(_))));
    assert!(bob.list(ListOptions { include_all_sessions: true, ..Default::default() }).await.unwrap().files.is_empty());
    assert!(bob.trash(100, None).await.unwrap().files.is_empty());
    assert_eq!(bob.usage().await.unwrap().used_bytes, 0);
    assert_eq!(alice.read(secret.id).await.unwrap().1, "alice only", "bob's attempts did nothing");
    assert_eq!(alice.trash(100, None).await.unwrap().files.len(), 1);
}

async fn nfc_and_nfd_name_one_file(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    m.write_bytes(new_file(&m, "/cafe\u{301}.txt"), "nfd").await.unwrap();
    assert_eq!(m.read(path(&m, "/caf\u{e9}.txt")).await.unwrap().1, "nfd");
    let err = m.write_bytes(new_file(&m, "/caf\u{e9}.txt"), "nfc").await.unwrap_err();
    assert!(matches!(err, WorkspaceError::Conflict(_)), "one path, so a conflict: {err:?}");
}

async fn ranges_and_download_urls(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    let data: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let info = m.write_bytes(new_file(&m, "/r.bin"), data.clone()).await.unwrap();
    let opened = m.open(info.id).await.unwrap();
    let got = opened.read(Some(ByteRange::Bounded { start: 1000, end: 2000 })).await.unwrap();
    assert_eq!((got.size, got.range.clone()), (300_000, 1000..2000));
    let chunks: Vec<Bytes> = got.stream.try_collect().await.unwrap();
    assert_eq!(chunks.concat(), &data[1000..2000]);
    let tail = opened.read(Some(ByteRange::Suffix(1))).await.unwrap();
    assert_eq!(tail.range, 299_999..300_000);
    assert!(matches!(
        opened.read(Some(ByteRange::From(300_000))).await,
        Err(WorkspaceError::Storage(workspace_core::StorageError::RangeNotSatisfiable { size: 300_000 }))
    ));
    // Local disk and memory cannot sign URLs: callers serve through the API.
    if std::env::var("WS_TEST_STORAGE").as_deref() != Ok("gcs") {
        assert_eq!(m.download_url(&info, Duration::from_secs(60)).await.unwrap(), None);
    }
}

async fn migrations_run_down_and_up(env: TestEnv) {
    let m = manager(&env, "alice", None).await;
    m.write_bytes(new_file(&m, "/x"), "x").await.unwrap();
    workspace_migrations::rollback(env.db.conn(), None).await.unwrap();
    assert!(file::Entity::find().count(env.db.conn()).await.is_err(), "tables are gone after down");
    workspace_migrations::migrate(env.db.conn()).await.unwrap();
    assert_eq!(row_count(&env).await, 0);
    // The partial unique index is back: two current rows at one path are refused by the database.
    let m = manager(&env, "alice", None).await;
    m.write_bytes(new_file(&m, "/x"), "x").await.unwrap();
    let dup = file::Entity::find().one(env.db.conn()).await.unwrap().unwrap();
    let copy = file::Model { id: uuid::Uuid::new_v4(), chain_id: uuid::Uuid::new_v4(), ..dup.clone() };
    let copy = sea_orm::ActiveModelTrait::reset_all(file::ActiveModel::from(copy));
    assert!(file::Entity::insert(copy).exec(env.db.conn()).await.is_err(), "second current row at a path is refused");
    // Versions and trashed rows do not hold the path.
    for (is_current, is_deleted) in [(false, false), (true, true)] {
        let id = uuid::Uuid::new_v4();
        let row = file::Model { id, chain_id: id, is_current, is_deleted, ..dup.clone() };
        let row = sea_orm::ActiveModelTrait::reset_all(file::ActiveModel::from(row));
        file::Entity::insert(row).exec(env.db.conn()).await.expect("history does not hold the path");
    }
    // Content still referenced cannot be deleted (the foreign key guards it).
    assert!(content::Entity::delete_by_id(dup.content_id).exec(env.db.conn()).await.is_err());
}

/// v1 data (written with the v1 schema: one row per file, soft-deleted rows whose bytes v1
/// already removed) migrates in place: every live file reads back by id and by path, with its
/// blob where v1 put it, the counters match, and the files take part in history from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn v1_data_migrates_in_place_on_sqlite() {
    if let Some(env) = TestEnv::migrated(workspace_testkit::DbKind::Sqlite, Some(1)).await {
        v1_data_migrates_in_place(env).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn v1_data_migrates_in_place_on_postgres() {
    if let Some(env) = TestEnv::migrated(workspace_testkit::DbKind::Postgres, Some(1)).await {
        v1_data_migrates_in_place(env).await;
    }
}

async fn v1_data_migrates_in_place(env: TestEnv) {
    use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
    let conn = env.db.conn();
    let backend = conn.get_database_backend();
    let sql = |pg: &str| match backend {
        DbBackend::Postgres => pg.to_owned(),
        _ => {
            let mut out = pg.to_owned();
            for n in (1..=20).rev() {
                out = out.replace(&format!("${n}"), "?");
            }
            out
        }
    };
    let now = chrono::Utc::now();
    let ws = uuid::Uuid::new_v4();
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        sql("INSERT INTO user_workspace (id, user_id, created_at, updated_at) VALUES ($1, $2, $3, $4)"),
        [Value::from(ws), Value::from("legacy"), Value::from(now), Value::from(now)],
    ))
    .await
    .unwrap();
    let workspace = workspace_core::WorkspaceId::from_uuid(ws);
    let mut files = Vec::new();
    for (i, (p, live)) in
        [("/sessions/s1/a.txt", true), ("/b.bin", true), ("/c.md", true), ("/b.bin", false)].into_iter().enumerate()
    {
        let id = uuid::Uuid::new_v4();
        let bytes = body(i as u64, if i == 1 { BLOB } else { 300 });
        let checksum = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        let key = BlobKey::for_content(workspace, ContentId::from_uuid(id));
        let size = bytes.len() as i64;
        if live {
            env.storage.put_bytes(&key, Bytes::from(bytes.clone())).await.unwrap();
            files.push((id, p, bytes));
        }
        conn.execute_raw(Statement::from_sql_and_values(
            backend,
            sql("INSERT INTO user_workspace_file (id, workspace_id, name, path, storage_path, mime_type, size_bytes, \
                 checksum, is_deleted, deleted_at, metadata, source, source_session_id, source_exec_id, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"),
            [
                Value::from(id),
                Value::from(ws),
                Value::from(p.rsplit('/').next().unwrap()),
                Value::from(p),
                Value::from(env.storage.storage_path(&key)),
                Value::from("application/octet-stream"),
                Value::from(size),
                Value::from(checksum),
                Value::from(!live),
                Value::from(if live { None } else { Some(now) }),
                Value::from(serde_json::json!({})),
                Value::from("upload"),
                Value::from(Option::<String>::None),
                Value::from(Option::<String>::None),
                Value::from(now),
                Value::from(now),
            ],
        ))
        .await
        .unwrap();
    }

    workspace_migrations::migrate(conn).await.unwrap();
    let m = manager(&env, "legacy", None).await;
    assert_eq!(m.workspace_id(), workspace);
    let page = m.list(ListOptions { include_all_sessions: true, ..Default::default() }).await.unwrap();
    assert_eq!(page.files.len(), 3, "live v1 files only");
    for (id, p, bytes) in &files {
        let (info, read) = m.read(workspace_core::FileId::from_uuid(*id)).await.unwrap();
        assert_eq!((&read[..], info.path.as_str(), info.version, info.is_current), (&bytes[..], *p, 1, true));
        assert_eq!(m.read(path(&m, p)).await.unwrap().1, bytes);
    }
    let usage = m.usage().await.unwrap();
    assert_eq!(usage.live_bytes, files.iter().map(|f| f.2.len() as u64).sum::<u64>());
    assert_eq!((usage.file_count, usage.history_bytes), (3, 0));
    let snapshot = env.assert_consistent().await;
    assert_eq!(snapshot.blobs.len(), 3, "the blobs stayed where v1 put them");
    // From now on they have history like any file.
    let (b_id, _, b_bytes) = &files[1];
    m.write_bytes(new_file(&m, "/b.bin").with_overwrite(true), "new").await.unwrap();
    assert_eq!(m.read(workspace_core::FileId::from_uuid(*b_id)).await.unwrap().1, *b_bytes);
    env.assert_consistent().await;
}
