//! Indexes for listings at 100 000 files (SPEC §12, §18):
//! - newest-first and largest-first listings read `(workspace, key, path, name)`: ties go by path
//!   in the key's direction, so a page is one index range read forwards or backwards however many
//!   files share a size or a creation time (the old `(workspace, key)` indexes sorted every tie);
//! - `(workspace, path, size, name)` covers folder totals (count and bytes of a subtree, SPEC §14)
//!   and name searches in path order without reading table rows.
//!
//! `name` rides along in each so that a name search, which examines a bounded window of rows,
//! reads the index only. All three are over current, non-trashed rows, like the listings.

use sea_orm_migration::prelude::*;

/// Replaces the sort indexes and adds the covering folder index.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "DROP INDEX ix_user_workspace_file_created",
    "DROP INDEX ix_user_workspace_file_size",
    "CREATE INDEX ix_user_workspace_file_created ON user_workspace_file (workspace_id, created_at, path, name) \
     WHERE is_current = true AND is_deleted = false",
    "CREATE INDEX ix_user_workspace_file_size ON user_workspace_file (workspace_id, size_bytes, path, name) \
     WHERE is_current = true AND is_deleted = false",
    "CREATE INDEX ix_user_workspace_file_tree ON user_workspace_file (workspace_id, path, size_bytes, name) \
     WHERE is_current = true AND is_deleted = false",
];

const DOWN: &[&str] = &[
    "DROP INDEX ix_user_workspace_file_tree",
    "DROP INDEX ix_user_workspace_file_created",
    "DROP INDEX ix_user_workspace_file_size",
    "CREATE INDEX ix_user_workspace_file_created ON user_workspace_file (workspace_id, created_at) \
     WHERE is_current = true AND is_deleted = false",
    "CREATE INDEX ix_user_workspace_file_size ON user_workspace_file (workspace_id, size_bytes) \
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
