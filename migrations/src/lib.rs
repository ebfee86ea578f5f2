//! Schema migrations for SQLite and PostgreSQL. The same binary runs them on either database;
//! the backend is chosen by the connection URL.

pub use sea_orm_migration::MigratorTrait;
use sea_orm_migration::{MigrationTrait, async_trait};

mod m20261124_000001_create_workspace_tables;

/// All migrations in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261124_000001_create_workspace_tables::Migration)]
    }
}
