//! `Db`: the database handle: a connection pool, and how a write transaction is serialised and
//! made durable on each of the two supported databases. It holds no domain state (the usage
//! counters are rows, updated inside each change's transaction; see [`crate::txn`]).
//!
//! Both databases use group commit for the transactions of [`Db::begin_write`]: the commit itself
//! does not wait for the disk, [`Db::sync_commits`] then makes durable, in one flush, every commit
//! that returned before the flush started, and only then returns. A change is acknowledged after
//! `sync_commits`, so it is as durable as with a synchronous commit, but N concurrent writers
//! share one flush instead of paying one each.
//!
//! - On a SQLite file, changes commit through a pool of one connection (writers queue in
//!   process instead of sleeping in SQLite's busy handler) with `synchronous=NORMAL`, and write
//!   batches, where they can, on a connection of [`crate::direct`]'s on the calling thread, with
//!   the same setting; the flush is an fsync of the WAL, whichever connection committed.
//! - On PostgreSQL, the transaction commits with `synchronous_commit = off`, which also releases
//!   its locks (the workspace row, held `FOR UPDATE`) without waiting for the WAL fsync: the next
//!   writer of the workspace starts while this one's commit reaches the disk. The flush is a tiny
//!   transaction that writes WAL (a transactional `pg_logical_emit_message`, a no-op outside
//!   logical decoding) and commits with the server's own `synchronous_commit`: its commit flushes
//!   the WAL up to itself, so every earlier commit too. A server where that function cannot run
//!   keeps synchronous commits.
//!
//! On PostgreSQL every connection also plans each execution of a prepared statement for its
//! values and the table as it is then (`plan_cache_mode = force_custom_plan`), see
//! [`postgres_settings`]; a write batch's transaction keeps its plans instead (see
//! `txn::Plans::Kept`).
//!
//! A commit is visible to other readers (and replicas) from the moment it returns, before its
//! flush, exactly as a SQLite commit with `synchronous=NORMAL`: after a crash of the database
//! in between, a change that was never acknowledged can be gone though someone saw it.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::sea_query::{Alias, CommonTableExpression, SubQueryStatement, WithClause};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

pub use crate::direct::DirectReadCounts;
use crate::direct::{DirectReads, DirectWriter};

/// Default of the longest wait for a database connection.
pub const DEFAULT_DATABASE_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection pool to SQLite or PostgreSQL, chosen by URL.
#[derive(Debug, Clone)]
pub struct Db {
    conn: DatabaseConnection,
    /// SQLite file only: the write connection and its group commit.
    writer: Option<Arc<Writer>>,
    /// PostgreSQL only, when the flush statement runs: write transactions commit without waiting
    /// for the WAL fsync, and this flushes for all of them.
    pg_flush: Option<Arc<GroupSync>>,
    /// SQLite file only: short reads on the calling thread (see [`crate::direct`]).
    direct: Option<Arc<DirectReads>>,
}

/// The flush of PostgreSQL's group commit: a transaction that writes WAL and commits
/// synchronously (see the module docs).
const PG_FLUSH: &str = "SELECT pg_logical_emit_message(true, 'workspace', 'flush')";

/// Group commit for a SQLite file in WAL mode.
#[derive(Debug)]
struct Writer {
    /// One connection with `synchronous=NORMAL`: commits append to the WAL without fsync.
    conn: DatabaseConnection,
    /// The `-wal` file next to the database.
    wal: PathBuf,
    group: GroupSync,
    /// A checkpoint beside the writer is scheduled or running (see [`Writer::checkpoint_beside`]).
    checkpointing: AtomicBool,
    /// Write batches on the calling thread (see [`crate::direct::DirectWriter`]).
    direct: DirectWriter,
}

/// Tickets of commits that returned before they were durable, and the one flush at a time that
/// makes them durable.
#[derive(Debug, Default)]
struct GroupSync {
    /// Tickets handed out: a ticket is taken after its commit returned.
    requested: AtomicU64,
    /// Highest ticket known durable; held while a flush runs, so flushes never overlap.
    synced: tokio::sync::Mutex<u64>,
}

impl GroupSync {
    /// Returns once every commit that returned before this call is durable, running `flush`
    /// unless a flush that started after this call's commit already finished.
    async fn sync<E, F: Future<Output = Result<(), E>>>(&self, flush: impl FnOnce() -> F) -> Result<(), E> {
        let ticket = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let mut synced = self.synced.lock().await;
        if *synced >= ticket {
            return Ok(());
        }
        // Every ticket up to here belongs to a commit that already returned.
        let upto = self.requested.load(Ordering::SeqCst);
        flush().await?;
        *synced = upto;
        Ok(())
    }
}

impl Writer {
    /// Returns once every commit that returned before this call is on disk.
    async fn sync(&self) -> std::io::Result<()> {
        self.group
            .sync(|| async {
                let wal = self.wal.clone();
                tokio::task::spawn_blocking(move || match std::fs::File::open(&wal) {
                    Ok(file) => file.sync_data(),
                    // No WAL: the last connection closed, which checkpointed (and synced) the database.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(e),
                })
                .await
                .map_err(std::io::Error::other)?
            })
            .await
    }
}

/// How long after a group flush the checkpoint beside the writer runs (see
/// [`Writer::checkpoint_beside`]): at most one per interval while writes go on, and one after
/// they stop.
const CHECKPOINT_BESIDE_AFTER: Duration = Duration::from_millis(250);

impl Writer {
    /// Schedules a passive checkpoint on a connection of `pool`, unless one is already scheduled
    /// or running. A checkpoint copies the WAL's pages into the database and fsyncs it; run by the
    /// writer's own automatic checkpoint, it stops every write (the writer's thread is the serial
    /// part of small writes) for as long as that takes, fsync included. Run beside it, on another
    /// connection, it copies while the writer goes on: a passive checkpoint takes no write lock.
    /// The WAL can only start over from its beginning when a checkpoint has copied all of it and
    /// no write came in between, which under a steady stream of writes only the writer's own
    /// checkpoint achieves: that still runs, every [`WAL_CHECKPOINT_PAGES`], but finds nearly
    /// every page already copied.
    fn checkpoint_beside(self: &Arc<Self>, pool: &DatabaseConnection) {
        if self.checkpointing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (writer, pool) = (Arc::clone(self), pool.clone());
        tokio::spawn(async move {
            tokio::time::sleep(CHECKPOINT_BESIDE_AFTER).await;
            if let Err(err) = pool.execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)").await {
                // The writer's own checkpoint still bounds the WAL.
                tracing::debug!(error = %err, "checkpoint beside the writer failed");
            }
            writer.checkpointing.store(false, Ordering::Release);
        });
    }
}

/// The WAL's length, in pages, past which the commit that passes it copies the WAL into the
/// database (SQLite's automatic checkpoint; its default is 1 000, ~4 MiB). The pages writes
/// change most (the ends of the file and event tables and their indexes, the workspace's row)
/// are in the WAL many times over and the checkpoint writes each once, so a longer WAL means
/// less copying per write, on the writer's thread, the serial part of small writes (about +20 %
/// for 16 writers of 4 KiB files, p99 unchanged: A/B in `bench/NOTES.md`). The WAL file then
/// stays up to ~20 MiB on disk with [`SQLITE_PAGE_SIZE`] pages (~40 MiB in a file made with
/// 4 KiB pages), and peak RSS measured ~6 MiB higher (with 4 KiB pages).
pub(crate) const WAL_CHECKPOINT_PAGES: u32 = 10_000;

/// The page size of a SQLite file this server creates (SQLite's default is 4 096). A write of a
/// small file changes a few pages of each index it is in and of the tables (~6 per write with 16
/// writers), and every commit appends each page it changed whole to the WAL, which the group
/// flush then waits on: smaller pages mean fewer bytes written and checksummed per write. A/B
/// with files created at each size (`bench/NOTES.md`), 16 writers of 4 KiB: 2 048 took +9–21 %
/// writes/s over 4 096 in four rounds, 1 024 +22–42 %, 8 192 −21 to −25 %, 16 384 −42 to −46 %;
/// reads of 4 KiB files the same at every size; a listing page over 20 000 files the same at
/// 2 048 and −15 % at 1 024 (more pages to walk), hence 2 048. Applies only when the file is
/// created: an existing database keeps the page size it was made with (SQLite cannot change it
/// in WAL mode).
pub(crate) const SQLITE_PAGE_SIZE: u32 = 2048;

/// What every SQLite connection of ours is: [`SQLITE_PAGE_SIZE`] for a new file, WAL journaling,
/// `synchronous` as given (`Full` for the pool, `Normal` for the group-committing writer), a busy
/// timeout so writers wait for each other, foreign keys, stable query plans, and checkpoints every
/// [`WAL_CHECKPOINT_PAGES`].
fn sqlite_settings(options: &mut ConnectOptions, synchronous: SqliteSynchronous) {
    options
        .map_sqlx_sqlite_opts(move |o| {
            o.page_size(SQLITE_PAGE_SIZE)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(synchronous)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true)
                .pragma("wal_autocheckpoint", WAL_CHECKPOINT_PAGES.to_string())
        })
        .map_sqlx_sqlite_pool_opts(|o| o.after_connect(keep_query_plans));
}

/// What every PostgreSQL connection of ours is: one that plans each execution of a prepared
/// statement anew (`plan_cache_mode = force_custom_plan`). By default, after five executions,
/// PostgreSQL may keep one generic plan for a prepared statement until the table's statistics
/// change. A server that never analyzes (autovacuum off, as on the machine the benchmarks run
/// on) then keeps, for the life of the connection, a plan chosen while the table was nearly
/// empty, when every index reading `(workspace_id, …, path)` cost the same: the write batch's
/// lookup of current rows by path was seen (`auto_explain`) scanning the workspace's whole
/// `(workspace_id, created_at, path, name)` index for each path, slower with every file. A custom
/// plan costs the planner a few microseconds per statement and sizes the table as it is now.
/// Set by a statement when the connection opens rather than as a startup option, which
/// connection poolers such as PgBouncer refuse.
fn postgres_settings(options: &mut ConnectOptions) {
    options.map_sqlx_postgres_pool_opts(|o| {
        o.after_connect(|conn, _| {
            Box::pin(async move {
                use sea_orm::sqlx::Executor;
                conn.execute("SET plan_cache_mode = force_custom_plan").await.map(drop)
            })
        })
    });
}

/// Turns on SQLite's query planner stability guarantee (`SQLITE_DBCONFIG_ENABLE_QPSG`) on a new
/// connection: a statement's plan then never depends on the values bound to it. Without it,
/// SQLite 3.51 plans `LIMIT ?` (every sea-orm `one()`, every page) and flags compared with a
/// partial index's condition from their bound values, and re-prepares the cached statement at
/// every execution to plan again: about 360 000 instructions of the ~750 000 of a 4 KiB read, in
/// callgrind (`bench/profile.sh`). Our statements are written for the indexes, not for values.
fn keep_query_plans(
    conn: &mut sea_orm::sqlx::SqliteConnection,
    _: sea_orm::sqlx::pool::PoolConnectionMetadata,
) -> futures::future::BoxFuture<'_, Result<(), sea_orm::sqlx::Error>> {
    Box::pin(async move {
        let mut handle = conn.lock_handle().await?;
        let db = handle.as_raw_handle().as_ptr();
        let on: std::ffi::c_int = 1;
        // SAFETY: `db` is this connection's open handle, locked for the duration of the call;
        // SQLITE_DBCONFIG_ENABLE_QPSG takes an int (1 turns it on) and an int pointer for the
        // resulting setting, which may be null.
        #[allow(unsafe_code)]
        let rc = unsafe {
            libsqlite3_sys::sqlite3_db_config(
                db,
                libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
                on,
                std::ptr::null_mut::<std::ffi::c_int>(),
            )
        };
        if rc != libsqlite3_sys::SQLITE_OK {
            return Err(sea_orm::sqlx::Error::Configuration(
                format!("SQLITE_DBCONFIG_ENABLE_QPSG failed with SQLite code {rc}").into(),
            ));
        }
        Ok(())
    })
}

/// A statement of a change not yet written out for a database: sea-query's own, so that
/// [`execute_all`] can make several into one on PostgreSQL.
pub(crate) type Pending = SubQueryStatement;

/// `statement` written out for `backend`.
fn build(backend: DbBackend, statement: &Pending) -> sea_orm::Statement {
    match statement {
        SubQueryStatement::SelectStatement(s) => backend.build(s),
        SubQueryStatement::InsertStatement(s) => backend.build(s),
        SubQueryStatement::UpdateStatement(s) => backend.build(s),
        SubQueryStatement::DeleteStatement(s) => backend.build(s),
        SubQueryStatement::WithStatement(s) => backend.build(s),
    }
}

/// The statements that insert `models` without reading them back (no column of ours takes a
/// database default); none without models. On PostgreSQL that is one multi-row `INSERT`. On
/// SQLite it is one single-row `INSERT` per model, which [`execute_all`] sends together: inside
/// a transaction, SQLite keeps a *statement journal* for a statement that changes several rows
/// and may fail half way (any multi-row `INSERT` into a table with a foreign key or a unique
/// index, as all of ours have), holding every page the statement changes so that it alone can
/// be undone; past 64 KiB it goes to a temporary file. A write batch's rows for sixteen 4 KiB
/// files passed that every time: a file created, written and deleted per batch, about a tenth
/// of the writer's thread. A single-row `INSERT` checks every constraint before it changes
/// anything, so it needs no statement journal; a failing one still fails the call, with earlier
/// rows in the caller's transaction, which then rolls back as it would after a multi-row
/// statement.
pub(crate) fn insert_statements<A>(backend: DbBackend, models: Vec<A>) -> Vec<Pending>
where
    A: sea_orm::ActiveModelTrait,
{
    use sea_orm::{EntityTrait, QueryTrait};
    if models.is_empty() {
        return Vec::new();
    }
    if backend != DbBackend::Sqlite {
        return vec![A::Entity::insert_many(models).into_query().into()];
    }
    models.into_iter().map(|model| A::Entity::insert(model).into_query().into()).collect()
}

/// Runs `statements` (none returning rows) in order, in as few trips to the database as it
/// allows; a failing statement fails its call and the caller's transaction then rolls back.
///
/// - On SQLite they go together, up to [`SQLITE_STATEMENTS_PER_CALL`] per call: each call is a
///   trip to the connection's thread and back, and a change's statements (a write batch's new
///   content and rows, events and counters) are most of its trips.
/// - On PostgreSQL they are one statement ([`combined`]): one round trip, one parse and plan,
///   instead of one each. Its parts run on one snapshot, in no order PostgreSQL promises, so
///   none may depend on what another changes (a unique index one part frees and another fills,
///   a count of rows another inserts); foreign keys are checked once the whole statement has
///   run, so a row may refer to one another part inserts.
pub(crate) async fn execute_all<C: ConnectionTrait>(conn: &C, statements: Vec<Pending>) -> Result<(), DbErr> {
    let backend = conn.get_database_backend();
    if backend != DbBackend::Sqlite {
        for statement in combined(statements) {
            conn.execute_raw(build(backend, &statement)).await?;
        }
        return Ok(());
    }
    let mut statements = statements.into_iter().peekable();
    while statements.peek().is_some() {
        let mut sql = String::new();
        let mut values = Vec::new();
        for statement in statements.by_ref().take(SQLITE_STATEMENTS_PER_CALL) {
            let statement = build(backend, &statement);
            if !sql.is_empty() {
                sql.push_str("; ");
            }
            sql.push_str(&statement.sql);
            values.extend(statement.values.map(|v| v.0).unwrap_or_default());
        }
        conn.execute_raw(sea_orm::Statement::from_sql_and_values(backend, sql, values)).await?;
    }
    Ok(())
}

/// `statements` as one PostgreSQL statement: the last, with each one before it a data-modifying
/// part of its `WITH` clause (`WITH s0 AS (INSERT …), s1 AS (UPDATE …) SELECT …`); the statement
/// itself when it is alone. Otherwise each stays a statement of its own: a `SELECT` part would
/// not run (PostgreSQL runs a `SELECT` part only for the query that reads it), and a statement
/// with a `WITH` clause of its own can neither be a part nor take data-modifying parts. See
/// [`execute_all`] for what the parts may not do.
pub(crate) fn combined(statements: Vec<Pending>) -> Vec<Pending> {
    let mut statements = statements;
    let Some(last) = statements.pop() else { return statements };
    let parts_modify = statements.iter().all(|s| {
        matches!(
            s,
            SubQueryStatement::InsertStatement(_)
                | SubQueryStatement::UpdateStatement(_)
                | SubQueryStatement::DeleteStatement(_)
        )
    });
    if statements.is_empty() || !parts_modify || matches!(last, SubQueryStatement::WithStatement(_)) {
        statements.push(last);
        return statements;
    }
    let mut with = WithClause::new();
    for (i, statement) in statements.into_iter().enumerate() {
        with.cte(CommonTableExpression::new().query(statement).table_name(Alias::new(format!("s{i}"))).to_owned());
    }
    vec![with.query(last).into()]
}

/// Most statements [`execute_all`] sends in one call on SQLite. The connection keeps each
/// distinct query prepared (sqlx's statement cache), one program per statement in it, so every
/// mix of statements up to this count is a shape it may keep: bounded at 16, a write batch of
/// ~8 new files sends its content and file rows in one call, and a batch of 64 (the most a write
/// lane takes) its 128 rows in 8.
const SQLITE_STATEMENTS_PER_CALL: usize = 16;

/// The file of a `sqlite:` URL, or `None` for an in-memory database.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path.contains(":memory:") || query.contains("mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

impl Db {
    /// Connects by URL: `sqlite://path?mode=rwc`, `sqlite::memory:` or `postgres://…`.
    ///
    /// SQLite gets WAL journaling, `synchronous=FULL` (a commit is durable when it returns) and a
    /// busy timeout so concurrent writers wait for each other instead of failing.
    pub async fn connect(url: &str) -> Result<Self, DbErr> {
        Self::connect_with(url, DEFAULT_DATABASE_TIMEOUT).await
    }

    /// [`connect`](Self::connect), with `timeout` as the longest a statement waits for a
    /// connection (`WS_DATABASE_TIMEOUT_SECS`): with the database unreachable, a request fails
    /// (as unavailable) within it.
    pub async fn connect_with(url: &str, timeout: Duration) -> Result<Self, DbErr> {
        let mut options = ConnectOptions::new(url.to_owned());
        options.sqlx_logging(false).connect_timeout(timeout.min(Duration::from_secs(10))).acquire_timeout(timeout);
        if url.starts_with("sqlite:") {
            sqlite_settings(options.max_connections(8), SqliteSynchronous::Full);
        } else {
            postgres_settings(options.max_connections(16));
        }
        let conn = Database::connect(options).await?;
        let file = sqlite_file(url);
        let direct = file.clone().map(|file| Arc::new(DirectReads::new(file)));
        let writer = match file {
            Some(file) => {
                let mut options = ConnectOptions::new(url.to_owned());
                options
                    .sqlx_logging(false)
                    .connect_timeout(timeout.min(Duration::from_secs(10)))
                    .acquire_timeout(timeout.saturating_mul(2))
                    .max_connections(1);
                sqlite_settings(&mut options, SqliteSynchronous::Normal);
                let mut wal = file.clone().into_os_string();
                wal.push("-wal");
                Some(Arc::new(Writer {
                    conn: Database::connect(options).await?,
                    wal: wal.into(),
                    group: GroupSync::default(),
                    checkpointing: AtomicBool::new(false),
                    direct: DirectWriter::new(file),
                }))
            }
            None => None,
        };
        let pg_flush = match conn.get_database_backend() {
            DbBackend::Postgres => match conn.execute_unprepared(PG_FLUSH).await {
                Ok(_) => Some(Arc::new(GroupSync::default())),
                Err(err) => {
                    tracing::warn!(error = %err, "pg_logical_emit_message cannot run: writes commit synchronously, one WAL fsync each");
                    None
                }
            },
            _ => None,
        };
        Ok(Self { conn, writer, pg_flush, direct })
    }

    /// Wraps an existing connection (its settings are the caller's responsibility).
    pub fn from_connection(conn: DatabaseConnection) -> Self {
        Self { conn, writer: None, pg_flush: None, direct: None }
    }

    /// The underlying connection.
    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// Short reads on the calling thread, on a SQLite file (see [`crate::direct`]); each answers
    /// `None` when the pool must answer instead.
    pub(crate) fn direct(&self) -> Option<&DirectReads> {
        self.direct.as_deref()
    }

    /// How many reads ran on the calling thread and how many went to the pool instead; `None`
    /// where reads always go to the pool (PostgreSQL, in-memory SQLite).
    pub fn direct_read_counts(&self) -> Option<DirectReadCounts> {
        self.direct.as_ref().map(|direct| direct.counts())
    }

    /// Write batches on the calling thread, on a SQLite file (see [`crate::direct::DirectWriter`]).
    pub(crate) fn direct_writer(&self) -> Option<&DirectWriter> {
        self.writer.as_ref().map(|writer| &writer.direct)
    }

    /// How many write batches committed on the calling thread and how many went to the pool's
    /// writer instead; `None` where every batch goes to the pool (PostgreSQL, in-memory SQLite).
    pub fn direct_write_counts(&self) -> Option<DirectReadCounts> {
        self.direct_writer().map(DirectWriter::counts)
    }

    /// Which database this is.
    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// Begins a transaction that will write; after its commit, call [`Db::sync_commits`]. On SQLite it
    /// takes the write lock up front (`BEGIN IMMEDIATE`), so two writers never both read and then
    /// fail to upgrade; on PostgreSQL callers lock the rows they depend on (`SELECT … FOR UPDATE`).
    pub async fn begin_write(&self) -> Result<DatabaseTransaction, DbErr> {
        let txn = self.begin_write_unset().await?;
        if self.commits_later() {
            txn.execute_unprepared("SET LOCAL synchronous_commit = off").await?;
        }
        Ok(txn)
    }

    /// [`Db::begin_write`] without its setting on PostgreSQL: when [`Db::commits_later`], the
    /// caller's first statement sets `synchronous_commit` to `off` for the transaction
    /// (`set_config('synchronous_commit', 'off', true)`), which saves the round trip of a
    /// statement of its own.
    pub(crate) async fn begin_write_unset(&self) -> Result<DatabaseTransaction, DbErr> {
        let options = TransactionOptions {
            sqlite_transaction_mode: (self.backend() == DbBackend::Sqlite).then_some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        match &self.writer {
            Some(writer) => writer.conn.begin_with_options(options).await,
            None => self.conn.begin_with_options(options).await,
        }
    }

    /// Whether write transactions on PostgreSQL commit without waiting for the WAL, the group
    /// flush then making them durable (see the module docs).
    pub(crate) fn commits_later(&self) -> bool {
        self.pg_flush.is_some()
    }

    /// Returns once every write transaction that committed before this call is durable: the
    /// group fsync of a SQLite file's WAL, or PostgreSQL's group flush (see the module docs);
    /// elsewhere commits are durable when they return and this does nothing. Call it after
    /// committing a transaction from [`Db::begin_write`], before acknowledging the write.
    pub async fn sync_commits(&self) -> Result<(), DbErr> {
        if let Some(writer) = &self.writer {
            writer.sync().await.map_err(|e| DbErr::Custom(format!("fsync of the SQLite WAL failed: {e}")))?;
            writer.checkpoint_beside(&self.conn);
        }
        if let Some(group) = &self.pg_flush {
            group.sync(|| async { self.conn.execute_unprepared(PG_FLUSH).await.map(drop) }).await?;
        }
        Ok(())
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.conn.ping().await
    }

    /// Closes the pool.
    pub async fn close(self) -> Result<(), DbErr> {
        if let Some(direct) = &self.direct {
            direct.close();
        }
        if let Some(writer) = &self.writer {
            writer.direct.close();
            writer.conn.clone().close().await?;
        }
        self.conn.close().await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use uuid::Uuid;

    /// Inserts `models` (see [`insert_statements`]), then `then` (a statement that returns no rows),
    /// on SQLite in the same call as the last rows (see [`execute_all`]).
    async fn insert_all_then<A, C>(conn: &C, models: Vec<A>, then: Option<Pending>) -> Result<(), DbErr>
    where
        A: sea_orm::ActiveModelTrait,
        C: ConnectionTrait,
    {
        let mut statements = insert_statements(conn.get_database_backend(), models);
        statements.extend(then);
        execute_all(conn, statements).await
    }

    /// Reads `SQLITE_DBCONFIG_ENABLE_QPSG` of one connection of `conn`'s pool.
    async fn query_plans_kept(conn: &DatabaseConnection) -> bool {
        let mut pooled = conn.get_sqlite_connection_pool().acquire().await.unwrap();
        let mut handle = pooled.lock_handle().await.unwrap();
        let mut setting: std::ffi::c_int = -1;
        // SAFETY: an open, locked handle; -1 leaves the setting as it is and writes it to `setting`.
        #[allow(unsafe_code)]
        let rc = unsafe {
            libsqlite3_sys::sqlite3_db_config(
                handle.as_raw_handle().as_ptr(),
                libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
                -1 as std::ffi::c_int,
                &mut setting as *mut std::ffi::c_int,
            )
        };
        assert_eq!(rc, libsqlite3_sys::SQLITE_OK);
        setting == 1
    }

    #[tokio::test]
    async fn every_sqlite_connection_keeps_its_query_plans() {
        let dir = tempfile::tempdir().unwrap();
        let db = file_db(&dir, "plans.db").await;
        assert!(query_plans_kept(db.conn()).await, "reader pool");
        let writer = db.writer.as_ref().expect("a file has a writer");
        assert!(query_plans_kept(&writer.conn).await, "writer");
        db.close().await.unwrap();
    }

    /// A database on the SQLite file `name` under `dir` (created if missing).
    async fn file_db(dir: &tempfile::TempDir, name: &str) -> Db {
        let url = format!("sqlite://{}?mode=rwc", dir.path().join(name).display());
        Db::connect(&url).await.unwrap()
    }

    /// A migrated SQLite file with one workspace, for the tests of writes through the writer.
    async fn workspace_db(dir: &tempfile::TempDir) -> (Db, Uuid) {
        let db = file_db(dir, "w.db").await;
        workspace_migrations::migrate(db.conn()).await.unwrap();
        let user = crate::ids::UserId::new("u").unwrap();
        let id = crate::workspaces::get_or_create(&db, &user).await.unwrap();
        (db, id.as_uuid())
    }

    fn event(workspace: Uuid, id: i64) -> crate::entity::workspace_event::ActiveModel {
        use sea_orm::ActiveValue::Set;
        crate::entity::workspace_event::ActiveModel {
            workspace_id: Set(workspace),
            id: Set(id),
            kind: Set("created".into()),
            file_id: Set(Uuid::new_v4()),
            path: Set(format!("/f{id}")),
            old_path: Set((id % 2 == 0).then(|| format!("/old{id}"))),
            size_bytes: Set(id * 10),
            checksum: Set(format!("sum{id}")),
            at: Set(chrono::Utc::now()),
        }
    }

    /// SQLite's single-row statements, sent together, each bind their own values (the query's
    /// parameters run on from one statement to the next), and a row that breaks a constraint
    /// fails the call: the caller's transaction then rolls back and nothing of it stays.
    #[tokio::test]
    async fn inserted_rows_each_get_their_own_values_or_the_call_fails() {
        use crate::entity::workspace_event as ev;
        use sea_orm::{EntityTrait, QueryOrder};
        let dir = tempfile::tempdir().unwrap();
        let (db, workspace) = workspace_db(&dir).await;

        let txn = db.begin_write().await.unwrap();
        insert_all_then(&txn, (1..=20).map(|id| event(workspace, id)).collect(), None).await.unwrap();
        txn.commit().await.unwrap();
        let rows = ev::Entity::find().order_by_asc(ev::Column::Id).all(db.conn()).await.unwrap();
        assert_eq!(rows.len(), 20);
        for (row, id) in rows.iter().zip(1..) {
            assert_eq!((row.id, row.path.as_str(), row.size_bytes), (id, format!("/f{id}").as_str(), id * 10));
            assert_eq!(row.checksum, format!("sum{id}"));
            assert_eq!(row.old_path, (id % 2 == 0).then(|| format!("/old{id}")));
        }

        // Rows 21 and 22 are new, 5 exists: the call fails and the transaction leaves nothing.
        let txn = db.begin_write().await.unwrap();
        let err = insert_all_then(&txn, vec![event(workspace, 21), event(workspace, 22), event(workspace, 5)], None)
            .await
            .expect_err("a duplicate key");
        assert!(matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))), "{err}");
        txn.rollback().await.unwrap();
        assert_eq!(ev::Entity::find().all(db.conn()).await.unwrap().len(), 20);
        insert_all_then::<ev::ActiveModel, _>(db.conn(), Vec::new(), None).await.unwrap();
        db.close().await.unwrap();
    }

    /// The statement after the rows runs once, after every row (in the last call on SQLite), also
    /// when there are no rows; when a row fails, the call fails and the statement's change rolls
    /// back with the transaction.
    #[tokio::test]
    async fn insert_all_then_runs_its_statement_after_the_rows() {
        use crate::entity::{user_workspace as ws, workspace_event as ev};
        use sea_orm::sea_query::Expr;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryTrait};
        let dir = tempfile::tempdir().unwrap();
        let (db, workspace) = workspace_db(&dir).await;
        // The counter is set to the number of events present when the statement runs.
        let count_events = || {
            Some(
                ws::Entity::update_many()
                    .col_expr(ws::Column::EventSeq, Expr::cust("(SELECT COUNT(*) FROM workspace_event)"))
                    .filter(ws::Column::Id.eq(workspace))
                    .into_query()
                    .into(),
            )
        };
        let seq = || async { ws::Entity::find_by_id(workspace).one(db.conn()).await.unwrap().unwrap().event_seq };

        // 20 rows are two calls: the statement goes with the last and sees all 20.
        let txn = db.begin_write().await.unwrap();
        insert_all_then(&txn, (1..=20).map(|id| event(workspace, id)).collect(), count_events()).await.unwrap();
        txn.commit().await.unwrap();
        assert_eq!(ev::Entity::find().all(db.conn()).await.unwrap().len(), 20);
        assert_eq!(seq().await, 20);

        // A duplicate row (5) fails the call; nothing of the transaction stays.
        let txn = db.begin_write().await.unwrap();
        let err = insert_all_then(&txn, vec![event(workspace, 21), event(workspace, 5)], count_events())
            .await
            .expect_err("a duplicate key");
        assert!(matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))), "{err}");
        txn.rollback().await.unwrap();
        assert_eq!(seq().await, 20);

        // No rows: the statement still runs.
        db.conn().execute_unprepared("DELETE FROM workspace_event WHERE id > 10").await.unwrap();
        insert_all_then::<ev::ActiveModel, _>(db.conn(), Vec::new(), count_events()).await.unwrap();
        assert_eq!(seq().await, 10);
        db.close().await.unwrap();
    }

    /// On PostgreSQL a change's statements become one: each but the last a part of its `WITH`
    /// clause, in order, with the values of each bound where it stands; a lone statement, a
    /// `SELECT` before the last (it would not run as a part) and a statement with a `WITH`
    /// clause of its own stay apart.
    #[test]
    fn postgres_statements_become_one_with_their_values_in_order() {
        use crate::entity::user_workspace as ws;
        use sea_orm::sea_query::{Alias, CommonTableExpression, Expr, Query, WithClause};
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryTrait};
        let workspace = Uuid::new_v4();
        let counters = || -> Pending {
            ws::Entity::update_many()
                .col_expr(ws::Column::EventSeq, Expr::value(7))
                .filter(ws::Column::Id.eq(workspace))
                .into_query()
                .into()
        };
        let notice = || -> Pending { Query::select().expr(Expr::val("last")).to_owned().into() };
        let mut statements = insert_statements(DbBackend::Postgres, vec![event(workspace, 1), event(workspace, 2)]);
        statements.extend([counters(), notice()]);

        let one = combined(statements);
        assert_eq!(one.len(), 1);
        let built = build(DbBackend::Postgres, &one[0]);
        let sql = &built.sql;
        assert!(sql.starts_with(r#"WITH "s0" AS (INSERT INTO "workspace_event""#), "{sql}");
        assert!(sql.contains(r#" "s1" AS (UPDATE "user_workspace" SET "event_seq" = $19 WHERE"#), "{sql}");
        assert!(sql.ends_with(") SELECT $21"), "{sql}");
        let values = built.values.unwrap().0;
        // Two rows of 9 columns, the counter and the workspace id, the notice's value.
        assert_eq!(values.len(), 21);
        assert_eq!(values[0], sea_orm::Value::from(workspace));
        assert_eq!(values[9], sea_orm::Value::from(workspace));
        assert_eq!(values[18], sea_orm::Value::from(7));
        assert_eq!(values[19], sea_orm::Value::from(workspace));
        assert_eq!(values[20], sea_orm::Value::from("last"));
        for n in 1..=21 {
            assert!(sql.contains(&format!("${n}")), "placeholder ${n} in {sql}");
        }

        let part = CommonTableExpression::new()
            .query(Query::select().expr(Expr::val(1)).to_owned())
            .table_name(Alias::new("w"))
            .to_owned();
        let with: Pending =
            WithClause::new().cte(part).to_owned().query(Query::select().expr(Expr::val(2)).to_owned()).into();
        assert_eq!(combined(vec![counters(), with.clone(), notice()]), vec![counters(), with.clone(), notice()]);
        assert_eq!(combined(vec![counters(), with.clone()]), vec![counters(), with]);
        assert_eq!(combined(vec![notice(), counters()]), vec![notice(), counters()]);
        assert_eq!(combined(vec![notice()]), vec![notice()]);
        assert!(combined(Vec::new()).is_empty());
    }

    /// A write's pages reach the database file soon after its flush, copied by the checkpoint
    /// beside the writer, long before the writer's own checkpoint (every
    /// [`WAL_CHECKPOINT_PAGES`], ~20 MiB) would copy them.
    #[tokio::test]
    async fn a_checkpoint_beside_the_writer_copies_the_wal_into_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let (db, workspace) = workspace_db(&dir).await;
        let file = dir.path().join("w.db");
        // Everything so far is in the database file: the next pages are in the WAL only.
        db.conn().execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)").await.unwrap();
        let before = std::fs::metadata(&file).unwrap().len();

        let txn = db.begin_write().await.unwrap();
        let rows = (1..=2_000).map(|id| event(workspace, id)).collect();
        // 125 calls of SQLITE_STATEMENTS_PER_CALL rows, ~300 KB in the WAL.
        insert_all_then(&txn, rows, None).await.unwrap();
        txn.commit().await.unwrap();
        db.sync_commits().await.unwrap();
        let wal = std::fs::metadata(dir.path().join("w.db-wal")).unwrap().len();
        assert!(wal > 100_000, "the rows are in the WAL ({wal} bytes)");

        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let after = std::fs::metadata(&file).unwrap().len();
            if after >= before + 100_000 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the database file stayed at {after} bytes");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        db.close().await.unwrap();
    }

    /// The value of SQLite's `PRAGMA name` on `conn`.
    async fn pragma(conn: &DatabaseConnection, name: &str) -> i64 {
        let statement = sea_orm::Statement::from_string(DbBackend::Sqlite, format!("PRAGMA {name}"));
        let row = conn.query_one_raw(statement).await.unwrap().expect("a row");
        row.try_get_by_index::<i64>(0).unwrap()
    }

    /// Every connection, the writer's and the pool's, checkpoints at the same WAL length: the
    /// first commit past it runs the checkpoint, whichever connection made it.
    #[tokio::test]
    async fn every_sqlite_connection_checkpoints_at_the_same_wal_length() {
        let dir = tempfile::tempdir().unwrap();
        let db = file_db(&dir, "wal.db").await;
        let writer = db.writer.as_ref().expect("a file has a writer");
        for conn in [db.conn(), &writer.conn] {
            assert_eq!(pragma(conn, "wal_autocheckpoint").await, i64::from(WAL_CHECKPOINT_PAGES));
        }
        db.close().await.unwrap();
    }

    /// A SQLite file the server creates has [`SQLITE_PAGE_SIZE`] pages on every connection; a file
    /// made before with another page size keeps it (and opens and works as before).
    #[tokio::test]
    async fn new_sqlite_files_get_the_small_page_size_and_old_ones_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let db = file_db(&dir, "new.db").await;
        let writer = db.writer.as_ref().expect("a file has a writer");
        assert_eq!(pragma(db.conn(), "page_size").await, i64::from(SQLITE_PAGE_SIZE));
        assert_eq!(pragma(&writer.conn, "page_size").await, i64::from(SQLITE_PAGE_SIZE));
        db.close().await.unwrap();

        // A file made with SQLite's default pages, with a table in it, as an older server left it.
        let old = dir.path().join("old.db");
        {
            let conn = rusqlite::Connection::open(&old).unwrap();
            conn.execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER);")
                .unwrap();
        }
        let db = file_db(&dir, "old.db").await;
        assert_eq!(pragma(db.conn(), "page_size").await, 4096);
        db.conn().execute_unprepared("INSERT INTO t VALUES (1)").await.unwrap();
        db.close().await.unwrap();
    }
}
