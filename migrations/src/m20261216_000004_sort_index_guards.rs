//! Keeps the two sort indexes out of lookups by path.
//!
//! `(workspace, created_at, path, name)` and `(workspace, size_bytes, path, name)` hold `path`, so
//! a lookup of the current file at a path (`workspace_id = ? AND path = ?` over current rows) can
//! be answered from either one, by walking the workspace's whole range with `path` checked on
//! every entry. PostgreSQL picks one of them whenever it cannot tell the indexes apart: on a
//! table it has never analyzed (an index created on an empty table keeps `reltuples = 0` until
//! then, so every index scan is costed alike) and, after an analyze, for a workspace its
//! statistics do not know. Seen on a server with autovacuum off: every write's path lookup read
//! the whole workspace's `created_at` index, slower with every file (0.5 ms per path at 15 000
//! files).
//!
//! Both sort indexes now also require `version > 0`, true of every row (a chain's versions count
//! from 1). A partial index serves only statements whose condition implies its own, so a
//! lookup by path, which never says so, can no longer use them, whatever the statistics say; the
//! listings sorted by creation time or size state the same condition, as a literal
//! (`rows::sort_index_guard`), and read them as before. The path-led indexes
//! (`uq_user_workspace_file_live_path`, `ix_user_workspace_file_tree`) are the only ones left
//! that a path lookup can use.
//!
//! The guard is on a column neither index holds: `size_bytes >= 0` made SQLite read the size
//! index as a range for a listing by creation time, and `created_at IS NOT NULL` is dropped from
//! a statement's condition by SQLite 3.51 (the column is declared `NOT NULL`) but not from an
//! index's, so the index no longer matched the listing that asked for it.

use sea_orm_migration::prelude::*;

/// Recreates the sort indexes with the guard in their condition.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "DROP INDEX ix_user_workspace_file_created",
    "DROP INDEX ix_user_workspace_file_size",
    "CREATE INDEX ix_user_workspace_file_created ON user_workspace_file (workspace_id, created_at, path, name) \
     WHERE is_current = true AND is_deleted = false AND version > 0",
    "CREATE INDEX ix_user_workspace_file_size ON user_workspace_file (workspace_id, size_bytes, path, name) \
     WHERE is_current = true AND is_deleted = false AND version > 0",
];

const DOWN: &[&str] = &[
    "DROP INDEX ix_user_workspace_file_created",
    "DROP INDEX ix_user_workspace_file_size",
    "CREATE INDEX ix_user_workspace_file_created ON user_workspace_file (workspace_id, created_at, path, name) \
     WHERE is_current = true AND is_deleted = false",
    "CREATE INDEX ix_user_workspace_file_size ON user_workspace_file (workspace_id, size_bytes, path, name) \
     WHERE is_current = true AND is_deleted = false",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::execute_all(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::execute_all(manager, DOWN).await
    }
}
