//! Short reads of a SQLite file, and its write batches, run on the calling thread, without the
//! trip to a connection's own thread that every statement through the pool takes.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands it every statement over a
//! channel: a lookup that SQLite answers in microseconds costs two thread wake-ups, which under
//! load are most of the request's context switches (a 1 MiB range request took 8, ~60 % of them
//! on its one `SELECT`; `bench/NOTES.md`), and a statement that returns rows sends each row
//! as a message of its own. The reads here — a file by id or path, with its content when that
//! is kept in the database, a workspace's counters, and the rows of a listing's page — run
//! instead on connections of this module's own, on whatever thread asks, as the local store
//! opens a blob's file on it. Each is one indexed lookup, or one bounded range of an index (a
//! page is at most `MAX_PAGE_SIZE` + 1 rows; a name search examines at most `SEARCH_WINDOW`
//! index entries), of pages the OS has cached for a database in use.
//!
//! Every read here is an optimisation, never the only way: it answers `None` when it could not
//! run (the database busy, a connection that would not open, a value in a form it does not
//! decode), and the caller then asks the pool, which answers as before and reports any fault.
//! So a read here is never the one that fails, and a value it cannot decode is never guessed.
//!
//! Reads outside any transaction: each statement reads the latest commit (WAL mode), so a
//! write acknowledged before the read began is seen, as through the pool. A read inside a
//! change's transaction must see that transaction, so it goes through the transaction.
//!
//! One write runs here too: a batch of the write lanes ([`DirectWriter`]), whole, in a
//! transaction of its own, on the same terms (when it cannot run here, the pool runs it).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::config::DbConfig;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row};
use uuid::Uuid;

use crate::entity::user_workspace_file as file;
use crate::ids::WorkspaceId;
use crate::model::FileRef;
use crate::txn::Counters;

/// Idle connections kept for the next read: one per runtime worker and a few for the blocking
/// pool is plenty; a read that finds none opens one and keeps it if there is room.
const KEEP_IDLE: usize = 4;

/// The columns of a file row, in [`file::Model`]'s order (read back by [`file_row`]).
macro_rules! file_columns {
    () => {
        "f.id, f.workspace_id, f.name, f.path, f.storage_path, f.mime_type, f.size_bytes, f.checksum, \
         f.is_deleted, f.deleted_at, f.metadata, f.source, f.source_session_id, f.source_exec_id, \
         f.created_at, f.updated_at, f.content_id, f.chain_id, f.version, f.is_current, f.history_since"
    };
}

/// The names of [`file_columns`], as a statement built by `file::Entity::find()` names them.
const FILE_COLUMN_NAMES: [&str; 21] = [
    "id",
    "workspace_id",
    "name",
    "path",
    "storage_path",
    "mime_type",
    "size_bytes",
    "checksum",
    "is_deleted",
    "deleted_at",
    "metadata",
    "source",
    "source_session_id",
    "source_exec_id",
    "created_at",
    "updated_at",
    "content_id",
    "chain_id",
    "version",
    "is_current",
    "history_since",
];

/// Rows of the workspace outside the trash (`rows::visible`), with the flags written as the
/// partial indexes write them.
const FILE_BY_ID: &str = concat!(
    "SELECT ",
    file_columns!(),
    ", c.inline_data FROM user_workspace_file f LEFT JOIN workspace_content c ON c.id = f.content_id \
     WHERE f.id = ?1 AND f.workspace_id = ?2 AND f.is_deleted = false"
);

/// The current file at a path (`rows::current`).
const FILE_AT_PATH: &str = concat!(
    "SELECT ",
    file_columns!(),
    ", c.inline_data FROM user_workspace_file f LEFT JOIN workspace_content c ON c.id = f.content_id \
     WHERE f.workspace_id = ?2 AND f.path = ?1 AND f.is_current = true AND f.is_deleted = false"
);

const COUNTERS: &str = "SELECT live_bytes, history_bytes, file_count, event_seq FROM user_workspace WHERE id = ?1";

/// Reads of one SQLite file on the calling thread. See the module docs.
#[derive(Debug)]
pub(crate) struct DirectReads {
    file: PathBuf,
    idle: Mutex<Vec<Connection>>,
    closed: AtomicBool,
    answered: AtomicU64,
    deferred: AtomicU64,
}

/// How many reads [`DirectReads`] answered and how many it left to the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirectReadCounts {
    /// Reads answered on the calling thread.
    pub answered: u64,
    /// Reads that could not run there and went to the pool.
    pub deferred: u64,
}

impl DirectReads {
    /// Reads of the database file `file` (already created and migrated by the pool).
    pub(crate) fn new(file: PathBuf) -> Self {
        Self {
            file,
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            answered: AtomicU64::new(0),
            deferred: AtomicU64::new(0),
        }
    }

    /// The reads answered and deferred so far.
    pub(crate) fn counts(&self) -> DirectReadCounts {
        DirectReadCounts {
            answered: self.answered.load(Ordering::Relaxed),
            deferred: self.deferred.load(Ordering::Relaxed),
        }
    }

    /// The file `target` names in `workspace`, outside the trash, and with `with_content` its
    /// content's bytes when they are kept in the database. `Some(None)`: there is no such file;
    /// `None`: ask the pool.
    pub(crate) fn file(
        &self,
        workspace: WorkspaceId,
        target: &FileRef,
        with_content: bool,
    ) -> Option<Option<(file::Model, Option<Vec<u8>>)>> {
        self.run(|conn| {
            let id;
            let (sql, key): (&str, &dyn rusqlite::ToSql) = match target {
                FileRef::Id(file) => {
                    id = file.as_uuid().into_bytes();
                    (FILE_BY_ID, &id)
                }
                FileRef::Path(path) => (FILE_AT_PATH, &path.as_str()),
            };
            conn.prepare_cached(sql)?
                .query_row((key, workspace.as_uuid().as_bytes().as_slice()), |row| {
                    // The content's bytes are only read (and copied) when asked for.
                    let content = if with_content { row.get::<_, Option<Vec<u8>>>(21)? } else { None };
                    Ok((file_row(row)?, content))
                })
                .optional()
        })
    }

    /// The file rows `statement` selects: a `SELECT` of a file row's columns in the entity's
    /// order (as `file::Entity::find()` builds it for SQLite), as many rows as it names. `None`:
    /// ask the pool (also for a statement whose columns are not those, or with a value this
    /// module does not bind exactly as sqlx does).
    pub(crate) fn files(&self, statement: &sea_orm::Statement) -> Option<Vec<file::Model>> {
        self.select(statement, Some(&FILE_COLUMN_NAMES), file_row)
    }

    /// The rows `statement` (built for SQLite) selects, each read by `decode`. `None`: ask the
    /// pool (also for a value this module does not bind exactly as sqlx does).
    pub(crate) fn rows<T>(
        &self,
        statement: &sea_orm::Statement,
        decode: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Option<Vec<T>> {
        self.select(statement, None, decode)
    }

    /// [`rows`](Self::rows), refusing a statement whose columns are not named `columns`.
    fn select<T>(
        &self,
        statement: &sea_orm::Statement,
        columns: Option<&[&str]>,
        decode: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Option<Vec<T>> {
        // A value not bound here: to the pool, without counting a read that could not run.
        let values = values_of(statement).ok()?;
        self.run(|conn| query(conn, &statement.sql, values, columns, decode))
    }

    /// The workspace's counters, as its row holds them now. `Some(None)`: no such workspace;
    /// `None`: ask the pool.
    pub(crate) fn counters(&self, workspace: WorkspaceId) -> Option<Option<Counters>> {
        self.run(|conn| counters_of(conn, workspace))
    }

    /// No read runs here any more; the connections close.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// Runs `read` on an idle connection (or a new one); `None` if it could not.
    fn run<T>(&self, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Option<T> {
        let answer = self.try_run(read);
        let counter = if answer.is_some() { &self.answered } else { &self.deferred };
        counter.fetch_add(1, Ordering::Relaxed);
        answer
    }

    fn try_run<T>(&self, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Option<T> {
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => match self.connect() {
                Ok(conn) => conn,
                Err(err) => {
                    tracing::debug!(error = %err, "a direct SQLite connection did not open; reading through the pool");
                    return None;
                }
            },
        };
        match read(&conn) {
            Ok(value) => {
                let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
                if idle.len() < KEEP_IDLE && !self.closed.load(Ordering::Acquire) {
                    idle.push(conn);
                }
                Some(value)
            }
            Err(err) => {
                // The connection is dropped: whatever went wrong, the next read starts afresh.
                tracing::debug!(error = %err, "a direct SQLite read did not answer; reading through the pool");
                None
            }
        }
    }

    /// A connection that only reads (see [`open`]).
    fn connect(&self) -> rusqlite::Result<Connection> {
        let conn = open(&self.file)?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    }
}

/// Write batches of a SQLite file committed on the calling thread (`writes.rs`), on a connection
/// of this module's own, beside the pool's writer connection.
///
/// Through the pool, a batch of small writes is about seven statements (begin, the workspace's
/// counters, the current rows at its paths, the content with its checksums, the new rows, the
/// events and counters, commit), each a trip to the writer connection's thread and back: two
/// thread wake-ups per statement, which `perf` of 16 writers showed as the largest part of the
/// server's CPU (`bench/NOTES.md`). Here the batch runs whole where its lane's task runs.
///
/// Like the reads above, a batch here is an optimisation, never the only way: the connection
/// never waits for SQLite's write lock (busy: the pool's writer, or another process, holds it),
/// and any statement that fails rolls the batch back; either way [`DirectWriter::transaction`]
/// answers [`Direct::NotRun`] and the batch runs through the pool, which waits, and reports
/// each write's error as it always did. Only a failed `COMMIT` is reported from here.
///
/// The connection commits with `synchronous=NORMAL`, as the pool's writer does: the group
/// flush (`Db::sync_commits`) makes a batch durable before it is acknowledged.
#[derive(Debug)]
pub(crate) struct DirectWriter {
    file: PathBuf,
    conn: Mutex<Option<Connection>>,
    closed: AtomicBool,
    committed: AtomicU64,
    deferred: AtomicU64,
}

/// Statements the [`DirectWriter`]'s connection keeps prepared: a write batch's are the same
/// few whatever its size (`writes.rs`, `DirectSql`); the rest is room for whatever else runs
/// here.
const WRITER_STATEMENTS: usize = 32;

/// How a transaction of [`DirectWriter`] ended.
#[derive(Debug)]
pub(crate) enum Direct<T> {
    /// Committed, with what the work returned.
    Committed(T),
    /// Not made (rolled back, or never begun): run it through the pool.
    NotRun,
    /// The `COMMIT` failed: the transaction may or may not have committed.
    CommitFailed(rusqlite::Error),
}

/// The statements of a [`DirectWriter`] transaction: SQL as sea-query builds it for SQLite, with
/// the values to bind in its order (bound as sqlx binds them, see [`bound`]).
#[derive(Debug)]
pub(crate) struct WriteConn<'c>(&'c Connection);

impl WriteConn<'_> {
    /// The workspace's counters as this transaction sees them; `None` if there is no such row.
    pub(crate) fn counters(&self, workspace: WorkspaceId) -> rusqlite::Result<Option<Counters>> {
        counters_of(self.0, workspace)
    }

    /// The file rows `sql` selects with `values` (a file row's columns in the entity's order).
    pub(crate) fn files(&self, sql: &str, values: Vec<sea_orm::Value>) -> rusqlite::Result<Vec<file::Model>> {
        query(self.0, sql, bound_all(values)?, Some(&FILE_COLUMN_NAMES), file_row)
    }

    /// The rows `sql` selects with `values`, each read by `decode`.
    pub(crate) fn rows<T>(
        &self,
        sql: &str,
        values: Vec<sea_orm::Value>,
        decode: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Vec<T>> {
        query(self.0, sql, bound_all(values)?, None, decode)
    }

    /// Runs `sql`, which returns no rows, with `values`.
    pub(crate) fn execute(&self, sql: &str, values: Vec<sea_orm::Value>) -> rusqlite::Result<()> {
        self.0.prepare_cached(sql)?.execute(rusqlite::params_from_iter(bound_all(values)?))?;
        Ok(())
    }
}

impl DirectWriter {
    /// Batches of the database file `file` (already created and migrated by the pool).
    pub(crate) fn new(file: PathBuf) -> Self {
        Self {
            file,
            conn: Mutex::new(None),
            closed: AtomicBool::new(false),
            committed: AtomicU64::new(0),
            deferred: AtomicU64::new(0),
        }
    }

    /// Transactions committed here, and those left to the pool.
    pub(crate) fn counts(&self) -> DirectReadCounts {
        DirectReadCounts {
            answered: self.committed.load(Ordering::Relaxed),
            deferred: self.deferred.load(Ordering::Relaxed),
        }
    }

    /// Runs `work` in a transaction holding SQLite's write lock, and commits what it returns;
    /// `Ok(None)` from it, an error, the write lock held elsewhere or no connection: rolled back,
    /// [`Direct::NotRun`]. One transaction at a time: another caller waits for it.
    pub(crate) fn transaction<T>(&self, work: impl FnOnce(&WriteConn<'_>) -> rusqlite::Result<Option<T>>) -> Direct<T> {
        let answer = self.try_transaction(work);
        let counter = if matches!(answer, Direct::NotRun) { &self.deferred } else { &self.committed };
        counter.fetch_add(1, Ordering::Relaxed);
        answer
    }

    fn try_transaction<T>(&self, work: impl FnOnce(&WriteConn<'_>) -> rusqlite::Result<Option<T>>) -> Direct<T> {
        if self.closed.load(Ordering::Acquire) {
            return Direct::NotRun;
        }
        // Another lane's batch may hold it: for as long as that takes (the same statements, none
        // waiting), which costs this thread less than the pool's busy wait for SQLite's lock.
        let mut slot = match self.conn.lock() {
            Ok(slot) => slot,
            Err(poisoned) => {
                // A batch panicked in its transaction: closing the connection rolls it back.
                let mut slot = poisoned.into_inner();
                *slot = None;
                self.conn.clear_poison();
                slot
            }
        };
        if slot.is_none() {
            match self.connect() {
                Ok(conn) => *slot = Some(conn),
                Err(err) => {
                    tracing::debug!(error = %err, "the direct SQLite writer did not open; writing through the pool");
                    return Direct::NotRun;
                }
            }
        }
        let Some(conn) = slot.as_ref() else { return Direct::NotRun };
        if let Err(err) = conn.execute_batch("BEGIN IMMEDIATE") {
            // Busy: the pool's writer (or another process) is writing.
            tracing::trace!(error = %err, "the direct SQLite writer did not begin; writing through the pool");
            return Direct::NotRun;
        }
        match work(&WriteConn(conn)) {
            Ok(Some(value)) => match conn.execute_batch("COMMIT") {
                Ok(()) => Direct::Committed(value),
                Err(err) => {
                    // Whatever state it is in, the connection goes; the next batch opens another.
                    let _ = conn.execute_batch("ROLLBACK");
                    *slot = None;
                    Direct::CommitFailed(err)
                }
            },
            outcome => {
                if let Err(err) = outcome {
                    tracing::debug!(error = %err, "a direct SQLite write batch failed; writing it through the pool");
                }
                if conn.execute_batch("ROLLBACK").is_err() {
                    *slot = None;
                }
                Direct::NotRun
            }
        }
    }

    /// No batch runs here any more; the connection closes.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        *self.conn.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// A connection as the pool's writer is (see `db::sqlite_settings`): commits that do not
    /// wait for the disk (the group flush does), foreign keys, stable query plans, the same
    /// checkpoint length; but no busy wait (see [`open`]), so that this thread never sleeps on
    /// the write lock.
    fn connect(&self) -> rusqlite::Result<Connection> {
        let conn = open(&self.file)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "wal_autocheckpoint", crate::db::WAL_CHECKPOINT_PAGES)?;
        // rusqlite keeps 16.
        conn.set_prepared_statement_cache_capacity(WRITER_STATEMENTS);
        Ok(conn)
    }
}

/// A connection of this module's to the database `file`: no busy wait (whatever would wait goes
/// to the pool instead of holding this thread), and query plans that do not depend on bound
/// values, as on the pool's connections (see `db::keep_query_plans`). Read-write without create:
/// the database exists, and a read-only connection could not recover a WAL index left by a
/// crash (the pool's connections could).
fn open(file: &std::path::Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(Duration::ZERO)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(conn)
}

/// The values of `statement`, bound as sqlx binds them (see [`bound`]); an error for a kind of
/// value not bound here.
fn values_of(statement: &sea_orm::Statement) -> rusqlite::Result<Vec<rusqlite::types::Value>> {
    bound_all(statement.values.as_ref().map(|values| values.0.clone()).unwrap_or_default())
}

/// `values`, each bound as sqlx binds it (see [`bound`]); an error for a kind of value not bound
/// here.
fn bound_all(values: Vec<sea_orm::Value>) -> rusqlite::Result<Vec<rusqlite::types::Value>> {
    values.into_iter().map(bound).collect::<Option<Vec<_>>>().ok_or(rusqlite::Error::InvalidQuery)
}

/// The rows `sql` selects on `conn` with `values` bound, each read by `decode`; with `columns`,
/// refusing a statement whose columns are not named so.
fn query<T>(
    conn: &Connection,
    sql: &str,
    values: Vec<rusqlite::types::Value>,
    columns: Option<&[&str]>,
    decode: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut select = conn.prepare_cached(sql)?;
    if let Some(expected) = columns
        && select.column_names() != expected
    {
        return Err(rusqlite::Error::InvalidQuery);
    }
    select.query_map(rusqlite::params_from_iter(values), decode)?.collect()
}

/// A workspace's counters as its row holds them; `None` if there is no such row.
fn counters_of(conn: &Connection, workspace: WorkspaceId) -> rusqlite::Result<Option<Counters>> {
    conn.prepare_cached(COUNTERS)?
        .query_row([workspace.as_uuid().as_bytes().as_slice()], |row| {
            Ok(Counters::stored(row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .optional()
}

/// A file row from the columns of [`file_columns`], decoded as sqlx stores them on SQLite:
/// ids as 16-byte blobs, times as RFC 3339 text, metadata as JSON text, flags as integers.
fn file_row(row: &Row<'_>) -> rusqlite::Result<file::Model> {
    Ok(file::Model {
        id: uuid_at(row, 0)?,
        workspace_id: uuid_at(row, 1)?,
        name: row.get(2)?,
        path: row.get(3)?,
        storage_path: row.get(4)?,
        mime_type: row.get(5)?,
        size_bytes: row.get(6)?,
        checksum: row.get(7)?,
        is_deleted: row.get(8)?,
        deleted_at: time_at(row, 9)?,
        metadata: {
            let text = row.get_ref(10)?.as_str()?;
            serde_json::from_str(text).map_err(|e| conversion(10, e))?
        },
        source: row.get(11)?,
        source_session_id: row.get(12)?,
        source_exec_id: row.get(13)?,
        created_at: required_time_at(row, 14)?,
        updated_at: required_time_at(row, 15)?,
        content_id: uuid_at(row, 16)?,
        chain_id: uuid_at(row, 17)?,
        version: row.get(18)?,
        is_current: row.get(19)?,
        history_since: time_at(row, 20)?,
    })
}

/// A value bound as sqlx binds it on SQLite (ids as 16-byte blobs, times as RFC 3339 text with
/// an offset, flags as integers, JSON as text), so that comparisons with stored values agree
/// and rows written here read back as rows written through the pool; `None` for a kind of
/// value none of our statements here binds.
fn bound(value: sea_orm::Value) -> Option<rusqlite::types::Value> {
    use rusqlite::types::Value as Sql;
    use sea_orm::Value;
    let value = match value {
        Value::Bool(b) => b.map(|b| Sql::Integer(i64::from(b))),
        Value::TinyInt(i) => i.map(|i| Sql::Integer(i64::from(i))),
        Value::SmallInt(i) => i.map(|i| Sql::Integer(i64::from(i))),
        Value::Int(i) => i.map(|i| Sql::Integer(i64::from(i))),
        Value::BigInt(i) => i.map(Sql::Integer),
        Value::TinyUnsigned(i) => i.map(|i| Sql::Integer(i64::from(i))),
        Value::SmallUnsigned(i) => i.map(|i| Sql::Integer(i64::from(i))),
        Value::Unsigned(i) => i.map(|i| Sql::Integer(i64::from(i))),
        Value::BigUnsigned(i) => match i {
            Some(i) => Some(Sql::Integer(i64::try_from(i).ok()?)),
            None => None,
        },
        Value::String(s) => s.map(Sql::Text),
        Value::Bytes(b) => b.map(Sql::Blob),
        Value::Uuid(u) => u.map(|u| Sql::Blob(u.as_bytes().to_vec())),
        Value::ChronoDateTimeUtc(t) => t.map(|t| Sql::Text(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false))),
        // JSON as sqlx stores it on SQLite: its text.
        Value::Json(j) => j.map(|j| Sql::Text(j.to_string())),
        _ => return None,
    };
    Some(value.unwrap_or(Sql::Null))
}

/// The id in column `i`, stored as sqlx stores ids on SQLite (a 16-byte blob).
pub(crate) fn uuid_at(row: &Row<'_>, i: usize) -> rusqlite::Result<Uuid> {
    Uuid::from_slice(row.get_ref(i)?.as_blob()?).map_err(|e| conversion(i, e))
}

/// A time as sqlx writes a `DateTime<Utc>` on SQLite (RFC 3339 with an offset); anything else
/// is refused, and the read goes to the pool.
fn time_at(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match row.get_ref(i)? {
        ValueRef::Null => Ok(None),
        value => {
            let text = value.as_str()?;
            let time = DateTime::parse_from_rfc3339(text).map_err(|e| conversion(i, e))?;
            Ok(Some(time.with_timezone(&Utc)))
        }
    }
}

/// [`time_at`] of a column that is never NULL (a NULL there is refused like any other value
/// this module does not decode).
pub(crate) fn required_time_at(row: &Row<'_>, i: usize) -> rusqlite::Result<DateTime<Utc>> {
    time_at(row, i)?.ok_or_else(|| conversion(i, "a time that is never null is null"))
}

fn conversion(i: usize, err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, err.into())
}
