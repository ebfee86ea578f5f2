//! Test support shared by the suites: a fresh, migrated database per test (SQLite in a temp
//! file, or a new PostgreSQL database), the storage backend under test, and fault injection.
//!
//! PostgreSQL comes from `WS_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`).
//! When it cannot be reached the PostgreSQL variant of a test is skipped with a message, except
//! under `CI=true`, where it fails: CI must never pass by skipping.
//!
//! `WS_TEST_STORAGE` picks the backend: `local` (default), `memory`, or `gcs`, which gives every
//! `TestEnv` a fresh bucket of its own on the emulator at `WS_GCS_ENDPOINT` (see
//! `scripts/fake-gcs.sh`), so suites that list `workspaces/` stay isolated.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod faulty;
mod gcs_key;
mod invariants;

use std::sync::OnceLock;

use sea_orm::{ConnectionTrait, Database, DbBackend};
use workspace_core::{Db, InMemoryStorage, Settings, Storage, Workspaces};
use workspace_storage::{GcsCredentials, GcsStorage, LocalStorage};

pub use faulty::{CountingBody, Faults, FaultyStorage};
pub use gcs_key::{GCS_TEST_CLIENT_EMAIL, ServiceAccountKey, gcs_service_account_key};
pub use invariants::Snapshot;

/// Default admin URL for the test PostgreSQL server.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    /// SQLite in a temp file (WAL, as in production).
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

/// One test's world: a migrated database and a storage backend of its own.
#[derive(Debug)]
pub struct TestEnv {
    /// The database.
    pub db: Db,
    /// The backend selected by `WS_TEST_STORAGE` (`local` default, `memory`, or `gcs`).
    pub storage: Storage,
    /// Environment variables that point a server process at the same storage.
    pub storage_env: Vec<(String, String)>,
    /// Which database this is.
    pub kind: DbKind,
    _dir: tempfile::TempDir,
    pg: Option<PgDatabase>,
}

impl TestEnv {
    /// Builds the world, or `None` when PostgreSQL is unavailable outside CI.
    pub async fn new(kind: DbKind) -> Option<Self> {
        Self::migrated(kind, None).await
    }

    /// Builds the world with only the first `steps` migrations applied (all when `None`, none
    /// with `Some(0)`): for tests of the migrations themselves.
    pub async fn migrated(kind: DbKind, steps: Option<u32>) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let (db, pg) = match kind {
            DbKind::Sqlite => {
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
                (Db::connect(&url).await.unwrap(), None)
            }
            DbKind::Postgres => {
                let pg = PgDatabase::create().await?;
                (Db::connect(&pg.url).await.unwrap(), Some(pg))
            }
        };
        match steps {
            None => workspace_migrations::migrate(db.conn()).await.unwrap(),
            Some(0) => {}
            Some(steps) => {
                use workspace_migrations::MigratorTrait;
                workspace_migrations::Migrator::up(db.conn(), Some(steps)).await.unwrap();
            }
        }
        let (storage, storage_env) = match std::env::var("WS_TEST_STORAGE").as_deref() {
            Ok("memory") => {
                (Storage::new(InMemoryStorage::new()), vec![("WS_STORAGE_BACKEND".into(), "memory".into())])
            }
            Ok("gcs") => {
                let gcs = fresh_gcs_bucket().await;
                let env = vec![
                    ("WS_STORAGE_BACKEND".into(), "gcs".into()),
                    ("WS_GCS_BUCKET".into(), gcs.bucket().to_owned()),
                    ("WS_GCS_ENDPOINT".into(), std::env::var("WS_GCS_ENDPOINT").unwrap_or_default()),
                    (
                        "WS_GCS_CREDENTIALS".into(),
                        std::env::var("WS_GCS_CREDENTIALS").unwrap_or_else(|_| "anonymous".into()),
                    ),
                ];
                (Storage::new(gcs), env)
            }
            _ => {
                let root = dir.path().join("blobs");
                let env = vec![
                    ("WS_STORAGE_BACKEND".into(), "local".into()),
                    ("WS_STORAGE_DIR".into(), root.display().to_string()),
                ];
                (Storage::new(LocalStorage::new(root).unwrap()), env)
            }
        };
        Some(Self { db, storage, storage_env, kind, _dir: dir, pg })
    }

    /// The workspaces over this test's database and storage, with default settings.
    pub fn workspaces(&self) -> Workspaces {
        self.workspaces_with(Settings::default())
    }

    /// The workspaces over this test's database and storage, with `settings`.
    pub fn workspaces_with(&self, settings: Settings) -> Workspaces {
        Workspaces::new(self.db.clone(), self.storage.clone(), settings).unwrap()
    }

    /// Makes every insert of a file row named `name` fail inside the database (a trigger), to
    /// test what happens when the database fails after the blob was stored.
    pub async fn fail_inserts_named(&self, name: &str) {
        let name = name.replace('\'', "''");
        let conn = self.db.conn();
        match conn.get_database_backend() {
            DbBackend::Sqlite => {
                conn.execute_unprepared(&format!(
                    "CREATE TRIGGER fail_insert BEFORE INSERT ON user_workspace_file WHEN NEW.name = '{name}' \
                     BEGIN SELECT RAISE(ABORT, 'injected database failure'); END;"
                ))
                .await
                .unwrap();
            }
            _ => {
                conn.execute_unprepared(&format!(
                    "CREATE FUNCTION fail_insert() RETURNS trigger AS $$ BEGIN \
                     IF NEW.name = '{name}' THEN RAISE EXCEPTION 'injected database failure'; END IF; \
                     RETURN NEW; END $$ LANGUAGE plpgsql; \
                     CREATE TRIGGER fail_insert BEFORE INSERT ON user_workspace_file \
                     FOR EACH ROW EXECUTE FUNCTION fail_insert();"
                ))
                .await
                .unwrap();
            }
        }
    }

    /// The URL of this test's own database: its PostgreSQL database, or its SQLite file.
    pub fn database_url(&self) -> String {
        match &self.pg {
            Some(pg) => pg.url.clone(),
            None => format!("sqlite://{}?mode=rwc", self._dir.path().join("test.db").display()),
        }
    }

    /// The URL of this test's PostgreSQL database, if it runs on PostgreSQL.
    pub fn postgres_url(&self) -> Option<&str> {
        self.pg.as_ref().map(|pg| pg.url.as_str())
    }
}

/// A bucket of its own on the GCS emulator (or service) at `WS_GCS_ENDPOINT`, created through the
/// JSON API. Credentials come from `WS_GCS_CREDENTIALS`, anonymous when unset.
async fn fresh_gcs_bucket() -> GcsStorage {
    let endpoint = std::env::var("WS_GCS_ENDPOINT").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!("WS_TEST_STORAGE=gcs needs WS_GCS_ENDPOINT: run `eval \"$(scripts/fake-gcs.sh start)\"`")
    });
    let credentials = match std::env::var("WS_GCS_CREDENTIALS") {
        Ok(setting) if !setting.trim().is_empty() => GcsCredentials::from_setting(Some(&setting)),
        _ => GcsCredentials::Anonymous,
    };
    let bucket = format!("ws-test-{}", uuid::Uuid::new_v4().simple());
    let gcs = GcsStorage::new(bucket, Some(endpoint), &credentials).await.unwrap();
    gcs.create_bucket().await.unwrap();
    gcs
}

/// A PostgreSQL database created for one test and dropped (forcibly) when the test ends.
#[derive(Debug)]
struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

fn postgres_admin_url() -> String {
    std::env::var("WS_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

impl PgDatabase {
    async fn create() -> Option<Self> {
        static WARNED: OnceLock<()> = OnceLock::new();
        let admin_url = postgres_admin_url();
        let admin = match Database::connect(&admin_url).await {
            Ok(conn) => conn,
            Err(err) if !in_ci() => {
                WARNED.get_or_init(|| eprintln!("skipping PostgreSQL tests: cannot reach {admin_url}: {err}"));
                return None;
            }
            Err(err) => panic!("CI=true and PostgreSQL at {admin_url} is unreachable: {err}"),
        };
        let name = format!("ws_test_{}", uuid::Uuid::new_v4().simple());
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
        admin.close().await.unwrap();
        let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        Some(Self { admin_url, name, url })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime; do the async cleanup on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                if let Ok(admin) = Database::connect(&admin_url).await {
                    let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

/// Declares, for each `async fn name(env: TestEnv)` in scope, a SQLite and a PostgreSQL test.
#[macro_export]
macro_rules! db_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                if let Some(env) = $crate::TestEnv::new($crate::DbKind::Sqlite).await {
                    super::$name(env).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                if let Some(env) = $crate::TestEnv::new($crate::DbKind::Postgres).await {
                    super::$name(env).await;
                }
            }
        }
    )*};
}
