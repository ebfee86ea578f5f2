//! `Db`: the database handle the manager uses. It knows the one difference between the two
//! supported databases that matters for correctness: how a write transaction is serialised.
//!
//! On a SQLite file, file writes commit through a pool of one connection (writers queue in
//! process instead of sleeping in SQLite's busy handler) with group commit: the commit itself
//! does not fsync (`synchronous=NORMAL`), [`Db::sync_commits`] then fsyncs the WAL once for
//! every commit that finished before the fsync started, and only then returns. A commit is
//! durable when `sync_commits` returns, as with `synchronous=FULL`, but N concurrent writers
//! share one fsync instead of paying one each.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use uuid::Uuid;

/// A connection pool to SQLite or PostgreSQL, chosen by URL.
#[derive(Debug, Clone)]
pub struct Db {
    conn: DatabaseConnection,
    /// SQLite file only: the write connection and its group commit.
    writer: Option<Arc<Writer>>,
}

/// Group commit for a SQLite file in WAL mode.
#[derive(Debug)]
struct Writer {
    /// One connection with `synchronous=NORMAL`: commits append to the WAL without fsync.
    conn: DatabaseConnection,
    /// The `-wal` file next to the database.
    wal: PathBuf,
    /// Tickets handed out: a ticket is taken after its commit returned.
    requested: AtomicU64,
    /// Highest ticket known durable; held while an fsync runs, so fsyncs never overlap.
    synced: tokio::sync::Mutex<u64>,
    /// Live usage per workspace as of this connection's last commit.
    usage: std::sync::Mutex<UsageCache>,
}

/// Live (bytes, files) per workspace, so a write's quota check need not sum every row.
///
/// Valid while `PRAGMA data_version` on the writer connection is unchanged: it changes when any
/// other connection or process commits (a delete, gc), and then the cache starts over. Only the
/// writer connection fills it, inside its write transaction, where nobody else can commit.
#[derive(Debug, Default)]
struct UsageCache {
    version: Option<i64>,
    by_workspace: HashMap<Uuid, (u64, u64)>,
    /// (workspace, usage, new file id) of a staged write, moved into the map once its commit
    /// returned. The next transaction that still finds it looks the file up to learn whether
    /// that commit landed (it may be finishing, or have failed or been cancelled).
    pending: Option<(Uuid, (u64, u64), Uuid)>,
}

impl Writer {
    /// Returns once every commit that returned before this call is on disk.
    async fn sync(&self) -> std::io::Result<()> {
        let ticket = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let mut synced = self.synced.lock().await;
        if *synced >= ticket {
            return Ok(()); // an fsync that started after our commit already finished
        }
        // Every ticket up to here belongs to a commit already written to the WAL.
        let upto = self.requested.load(Ordering::SeqCst);
        let wal = self.wal.clone();
        tokio::task::spawn_blocking(move || match std::fs::File::open(&wal) {
            Ok(file) => file.sync_data(),
            // No WAL: the last connection closed, which checkpointed (and synced) the database.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        })
        .await
        .map_err(std::io::Error::other)??;
        *synced = upto;
        Ok(())
    }
}

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
        let mut options = ConnectOptions::new(url.to_owned());
        options.sqlx_logging(false).connect_timeout(Duration::from_secs(10)).acquire_timeout(Duration::from_secs(30));
        if url.starts_with("sqlite:") {
            options.max_connections(8).map_sqlx_sqlite_opts(|o| {
                use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(30))
                    .foreign_keys(true)
            });
        } else {
            options.max_connections(16);
        }
        let conn = Database::connect(options).await?;
        let writer = match sqlite_file(url) {
            Some(file) => {
                let mut options = ConnectOptions::new(url.to_owned());
                options
                    .sqlx_logging(false)
                    .connect_timeout(Duration::from_secs(10))
                    .acquire_timeout(Duration::from_secs(60))
                    .max_connections(1)
                    .map_sqlx_sqlite_opts(|o| {
                        use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
                        o.journal_mode(SqliteJournalMode::Wal)
                            .synchronous(SqliteSynchronous::Normal)
                            .busy_timeout(Duration::from_secs(30))
                            .foreign_keys(true)
                    });
                let mut wal = file.into_os_string();
                wal.push("-wal");
                Some(Arc::new(Writer {
                    conn: Database::connect(options).await?,
                    wal: wal.into(),
                    requested: AtomicU64::new(0),
                    synced: tokio::sync::Mutex::new(0),
                    usage: std::sync::Mutex::default(),
                }))
            }
            None => None,
        };
        Ok(Self { conn, writer })
    }

    /// Wraps an existing connection (its settings are the caller's responsibility).
    pub fn from_connection(conn: DatabaseConnection) -> Self {
        Self { conn, writer: None }
    }

    /// The underlying connection.
    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// Which database this is.
    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// Begins a transaction that will write; after its commit, call [`Db::sync_commits`]. On SQLite it
    /// takes the write lock up front (`BEGIN IMMEDIATE`), so two writers never both read and then
    /// fail to upgrade; on PostgreSQL callers lock the rows they depend on (`SELECT … FOR UPDATE`).
    pub async fn begin_write(&self) -> Result<DatabaseTransaction, DbErr> {
        let options = TransactionOptions {
            sqlite_transaction_mode: (self.backend() == DbBackend::Sqlite).then_some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        match &self.writer {
            Some(writer) => writer.conn.begin_with_options(options).await,
            None => self.conn.begin_with_options(options).await,
        }
    }

    /// Returns once every write transaction that committed before this call is durable. On a
    /// SQLite file that is the group fsync of the WAL (see the module docs); elsewhere commits
    /// are durable when they return and this does nothing. Call it after committing a
    /// transaction from [`Db::begin_write`], before acknowledging the write.
    pub async fn sync_commits(&self) -> Result<(), DbErr> {
        if let Some(writer) = &self.writer {
            writer.sync().await.map_err(|e| DbErr::Custom(format!("fsync of the SQLite WAL failed: {e}")))?;
        }
        Ok(())
    }

    /// Inside a transaction from [`Db::begin_write`]: the workspace's cached live usage
    /// (bytes, files), when the cache is known to be current. `None`: sum the rows.
    pub(crate) async fn cached_usage(
        &self,
        txn: &DatabaseTransaction,
        workspace: Uuid,
    ) -> Result<Option<(u64, u64)>, DbErr> {
        let Some(writer) = &self.writer else { return Ok(None) };
        let row = txn.query_one_raw(Statement::from_string(DbBackend::Sqlite, "PRAGMA data_version")).await?;
        let version: i64 = match row {
            Some(row) => row.try_get_by_index(0)?,
            None => return Ok(None),
        };
        let pending = {
            let mut cache = writer.usage.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.version != Some(version) {
                *cache = UsageCache { version: Some(version), ..UsageCache::default() };
            }
            cache.pending.take()
        };
        if let Some((ws, usage, file)) = pending {
            // The previous write's commit is over (we hold the write lock); did it land?
            let landed = crate::entity::user_workspace_file::Entity::find_by_id(file).one(txn).await?.is_some();
            let mut cache = writer.usage.lock().unwrap_or_else(PoisonError::into_inner);
            if landed {
                cache.by_workspace.insert(ws, usage);
            }
        }
        let cache = writer.usage.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(cache.by_workspace.get(&workspace).copied())
    }

    /// The usage a staged write (new file `file`) leaves behind if it commits.
    pub(crate) fn stage_usage(&self, workspace: Uuid, usage: (u64, u64), file: Uuid) {
        if let Some(writer) = &self.writer {
            writer.usage.lock().unwrap_or_else(PoisonError::into_inner).pending = Some((workspace, usage, file));
        }
    }

    /// The staged write of `file` committed: its usage is current.
    pub(crate) fn usage_committed(&self, file: Uuid) {
        if let Some(writer) = &self.writer {
            let mut cache = writer.usage.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((workspace, usage, _)) = cache.pending.take_if(|p| p.2 == file) {
                cache.by_workspace.insert(workspace, usage);
            }
        }
    }

    /// A hint for sizing an upload before its transaction: possibly stale, so callers use it
    /// only where a stale value is harmless and re-check in the transaction.
    pub(crate) fn usage_hint(&self, workspace: Uuid) -> Option<(u64, u64)> {
        let writer = self.writer.as_ref()?;
        writer.usage.lock().unwrap_or_else(PoisonError::into_inner).by_workspace.get(&workspace).copied()
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.conn.ping().await
    }

    /// Closes the pool.
    pub async fn close(self) -> Result<(), DbErr> {
        if let Some(writer) = &self.writer {
            writer.conn.clone().close().await?;
        }
        self.conn.close().await
    }
}
