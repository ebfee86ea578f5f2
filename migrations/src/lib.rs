//! Schema migrations for SQLite and PostgreSQL. The same binary runs them on either database;
//! the backend is chosen by the connection URL.
//!
//! Replicas may start at the same moment on an empty database, so [`migrate`] runs every pending
//! migration inside one transaction that first takes the database's lock: a PostgreSQL advisory
//! transaction lock, or SQLite's write lock (`BEGIN IMMEDIATE`). Exactly one process migrates;
//! the others wait, then find nothing pending.

pub use sea_orm_migration::MigratorTrait;
use sea_orm_migration::sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use sea_orm_migration::{MigrationTrait, SchemaManager, async_trait};

mod m20261124_000001_create_workspace_tables;
mod m20261201_000002_history;
mod m20261215_000003_listing_indexes;
mod m20261216_000004_sort_index_guards;

/// All migrations in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_workspace_tables::Migration),
            Box::new(m20261201_000002_history::Migration),
            Box::new(m20261215_000003_listing_indexes::Migration),
            Box::new(m20261216_000004_sort_index_guards::Migration),
        ]
    }
}

/// The PostgreSQL advisory lock key that serialises migrations ("wsmigrat" in ASCII).
pub const MIGRATION_LOCK_KEY: i64 = 0x7773_6d69_6772_6174;

/// Applies every pending migration under the database's lock (see the crate docs).
pub async fn migrate(conn: &DatabaseConnection) -> Result<(), DbErr> {
    let txn = begin_locked(conn).await?;
    Migrator::up(&txn, None).await?;
    txn.commit().await
}

/// Rolls back the last `steps` migrations (all when `None`) under the same lock, in one
/// transaction: every statement runs on one connection, so none sees a schema older than the
/// previous statement left (a pool would hand them to different connections).
pub async fn rollback(conn: &DatabaseConnection, steps: Option<u32>) -> Result<(), DbErr> {
    let txn = begin_locked(conn).await?;
    Migrator::down(&txn, steps).await?;
    txn.commit().await
}

async fn begin_locked(conn: &DatabaseConnection) -> Result<sea_orm_migration::sea_orm::DatabaseTransaction, DbErr> {
    let backend = conn.get_database_backend();
    let options = TransactionOptions {
        sqlite_transaction_mode: (backend == DbBackend::Sqlite).then_some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    };
    let txn = conn.begin_with_options(options).await?;
    if backend == DbBackend::Postgres {
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")).await?;
    }
    Ok(txn)
}

/// Runs `statements` in order on the migration's connection (for migrations written as SQL).
async fn execute_all(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    for statement in statements {
        manager.get_connection().execute_unprepared(statement).await?;
    }
    Ok(())
}
