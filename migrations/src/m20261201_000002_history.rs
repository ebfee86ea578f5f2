//! Version 2 of the schema (SPEC §13, §16): content stored once per workspace, file rows that are
//! versions of a path chain, trash, durable usage counters and the change-feed events.
//!
//! - `workspace_content`: bytes stored once per workspace per sha-256, as a blob (key
//!   `workspaces/{workspace}/{content id}`) or inline in the row (`inline_data`).
//! - `user_workspace_file` is rebuilt: each row is one version of a path chain (`chain_id`,
//!   `version`); `is_current` marks the head; `is_deleted` marks a chain in the trash;
//!   `history_since` says when a row became history (superseded or trashed). Only a current,
//!   non-trashed row holds its path (partial unique index). Rows refer to their content
//!   (`content_id`, a foreign key that refuses to delete referenced content).
//! - `user_workspace` gains durable counters (`live_bytes`, `history_bytes`, `file_count`) and
//!   `event_seq`, the last event id handed out in the workspace.
//! - `workspace_event`: one row per change, written in the change's transaction.
//!
//! Migration of v1 data in place: every live v1 row becomes version 1 of its own chain and keeps
//! its id; its blob (`workspaces/{workspace}/{file id}`) becomes a content row with the file's id,
//! so no blob moves. Soft-deleted v1 rows are dropped: v1 removed their bytes when it retired them.
//! The counters are computed from the migrated rows.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// Adds history, content, counters and events.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UserWorkspace {
    Table,
    Id,
    LiveBytes,
    HistoryBytes,
    FileCount,
    EventSeq,
}

#[derive(DeriveIden)]
enum WorkspaceContent {
    Table,
    Id,
    WorkspaceId,
    Checksum,
    SizeBytes,
    InlineData,
    CreatedAt,
}

#[derive(DeriveIden)]
enum UserWorkspaceFile {
    Table,
    Id,
    WorkspaceId,
    Name,
    Path,
    StoragePath,
    MimeType,
    SizeBytes,
    Checksum,
    IsDeleted,
    DeletedAt,
    Metadata,
    Source,
    SourceSessionId,
    SourceExecId,
    CreatedAt,
    UpdatedAt,
    ContentId,
    ChainId,
    Version,
    IsCurrent,
    HistorySince,
}

#[derive(DeriveIden)]
enum UserWorkspaceFileV2 {
    Table,
}

#[derive(DeriveIden)]
enum WorkspaceEvent {
    Table,
    WorkspaceId,
    Id,
    Kind,
    FileId,
    Path,
    OldPath,
    SizeBytes,
    Checksum,
    At,
}

/// The columns v1 and v2 file rows share, in one order (for `INSERT … SELECT`).
const SHARED_COLUMNS: &str = "id, workspace_id, name, path, storage_path, mime_type, size_bytes, checksum, \
     is_deleted, deleted_at, metadata, source, source_session_id, source_exec_id, created_at, updated_at";

fn path_column(postgres: bool) -> ColumnDef {
    // Byte-wise ordering of paths makes prefix ranges exact and index-friendly; SQLite's default
    // BINARY collation already is byte-wise.
    let mut path = ColumnDef::new(UserWorkspaceFile::Path);
    path.string_len(1024).not_null();
    if postgres {
        path.extra("COLLATE \"C\"");
    }
    path
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let postgres = manager.get_database_backend() == DbBackend::Postgres;
        let conn = manager.get_connection();

        for counter in
            [UserWorkspace::LiveBytes, UserWorkspace::HistoryBytes, UserWorkspace::FileCount, UserWorkspace::EventSeq]
        {
            manager
                .alter_table(
                    Table::alter()
                        .table(UserWorkspace::Table)
                        .add_column(ColumnDef::new(counter).big_integer().not_null().default(0))
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(WorkspaceContent::Table)
                    .col(ColumnDef::new(WorkspaceContent::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(WorkspaceContent::WorkspaceId).uuid().not_null())
                    .col(ColumnDef::new(WorkspaceContent::Checksum).string_len(64).not_null())
                    .col(ColumnDef::new(WorkspaceContent::SizeBytes).big_integer().not_null())
                    .col(ColumnDef::new(WorkspaceContent::InlineData).binary().null())
                    .col(ColumnDef::new(WorkspaceContent::CreatedAt).timestamp_with_time_zone().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_workspace_content_workspace")
                            .from(WorkspaceContent::Table, WorkspaceContent::WorkspaceId)
                            .to(UserWorkspace::Table, UserWorkspace::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Dedup looks content up by checksum inside the workspace. Not unique: v1 files with equal
        // bytes were stored twice, and migrate as two content rows.
        manager
            .create_index(
                Index::create()
                    .name("ix_workspace_content_checksum")
                    .table(WorkspaceContent::Table)
                    .col(WorkspaceContent::WorkspaceId)
                    .col(WorkspaceContent::Checksum)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(UserWorkspaceFileV2::Table)
                    .col(ColumnDef::new(UserWorkspaceFile::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(UserWorkspaceFile::WorkspaceId).uuid().not_null())
                    .col(ColumnDef::new(UserWorkspaceFile::Name).string_len(255).not_null())
                    .col(path_column(postgres))
                    .col(ColumnDef::new(UserWorkspaceFile::StoragePath).string_len(1024).not_null())
                    .col(ColumnDef::new(UserWorkspaceFile::MimeType).string_len(255).not_null())
                    .col(ColumnDef::new(UserWorkspaceFile::SizeBytes).big_integer().not_null())
                    .col(ColumnDef::new(UserWorkspaceFile::Checksum).string_len(64).not_null())
                    .col(ColumnDef::new(UserWorkspaceFile::IsDeleted).boolean().not_null().default(false))
                    .col(ColumnDef::new(UserWorkspaceFile::DeletedAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(UserWorkspaceFile::Metadata).json().not_null().default("{}"))
                    .col(ColumnDef::new(UserWorkspaceFile::Source).string_len(16).not_null())
                    .col(ColumnDef::new(UserWorkspaceFile::SourceSessionId).string_len(255).null())
                    .col(ColumnDef::new(UserWorkspaceFile::SourceExecId).string_len(255).null())
                    .col(ColumnDef::new(UserWorkspaceFile::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(UserWorkspaceFile::UpdatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(UserWorkspaceFile::ContentId).uuid().not_null())
                    .col(ColumnDef::new(UserWorkspaceFile::ChainId).uuid().not_null())
                    .col(ColumnDef::new(UserWorkspaceFile::Version).integer().not_null())
                    .col(ColumnDef::new(UserWorkspaceFile::IsCurrent).boolean().not_null())
                    .col(ColumnDef::new(UserWorkspaceFile::HistorySince).timestamp_with_time_zone().null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_user_workspace_file_workspace_v2")
                            .from(UserWorkspaceFileV2::Table, UserWorkspaceFile::WorkspaceId)
                            .to(UserWorkspace::Table, UserWorkspace::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    // Content referenced by any row (live, version or trash) cannot be deleted.
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_user_workspace_file_content")
                            .from(UserWorkspaceFileV2::Table, UserWorkspaceFile::ContentId)
                            .to(WorkspaceContent::Table, WorkspaceContent::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;

        // v1 data: live rows keep their ids and blobs; their blob key names the file id, which
        // becomes the content id.
        conn.execute_unprepared(
            "INSERT INTO workspace_content (id, workspace_id, checksum, size_bytes, inline_data, created_at) \
             SELECT id, workspace_id, checksum, size_bytes, NULL, created_at \
             FROM user_workspace_file WHERE is_deleted = false",
        )
        .await?;
        conn.execute_unprepared(&format!(
            "INSERT INTO user_workspace_file_v2 ({SHARED_COLUMNS}, content_id, chain_id, version, is_current, history_since) \
             SELECT {SHARED_COLUMNS}, id, id, 1, true, NULL FROM user_workspace_file WHERE is_deleted = false"
        ))
        .await?;
        manager.drop_table(Table::drop().table(UserWorkspaceFile::Table).to_owned()).await?;
        manager
            .rename_table(Table::rename().table(UserWorkspaceFileV2::Table, UserWorkspaceFile::Table).to_owned())
            .await?;
        conn.execute_unprepared(
            "UPDATE user_workspace SET \
               live_bytes = (SELECT COALESCE(SUM(f.size_bytes), 0) FROM user_workspace_file f WHERE f.workspace_id = user_workspace.id), \
               file_count = (SELECT COUNT(*) FROM user_workspace_file f WHERE f.workspace_id = user_workspace.id)",
        )
        .await?;
        create_file_indexes(manager).await?;

        manager
            .create_table(
                Table::create()
                    .table(WorkspaceEvent::Table)
                    .col(ColumnDef::new(WorkspaceEvent::WorkspaceId).uuid().not_null())
                    .col(ColumnDef::new(WorkspaceEvent::Id).big_integer().not_null())
                    .col(ColumnDef::new(WorkspaceEvent::Kind).string_len(16).not_null())
                    .col(ColumnDef::new(WorkspaceEvent::FileId).uuid().not_null())
                    .col(ColumnDef::new(WorkspaceEvent::Path).string_len(1024).not_null())
                    .col(ColumnDef::new(WorkspaceEvent::OldPath).string_len(1024).null())
                    .col(ColumnDef::new(WorkspaceEvent::SizeBytes).big_integer().not_null())
                    .col(ColumnDef::new(WorkspaceEvent::Checksum).string_len(64).not_null())
                    .col(ColumnDef::new(WorkspaceEvent::At).timestamp_with_time_zone().not_null())
                    .primary_key(Index::create().col(WorkspaceEvent::WorkspaceId).col(WorkspaceEvent::Id))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_workspace_event_workspace")
                            .from(WorkspaceEvent::Table, WorkspaceEvent::WorkspaceId)
                            .to(UserWorkspace::Table, UserWorkspace::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Serves the retention purge of old events.
        manager
            .create_index(
                Index::create()
                    .name("ix_workspace_event_at")
                    .table(WorkspaceEvent::Table)
                    .col(WorkspaceEvent::At)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    /// Back to the v1 schema. History, trash and events are dropped, and so are current files
    /// whose bytes are not under their own id (deduplicated or inline content), since v1 finds a
    /// blob by the file id only.
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let postgres = manager.get_database_backend() == DbBackend::Postgres;
        let conn = manager.get_connection();
        manager.drop_table(Table::drop().table(WorkspaceEvent::Table).to_owned()).await?;
        manager
            .create_table(
                Table::create()
                    .table(UserWorkspaceFileV2::Table)
                    .col(ColumnDef::new(UserWorkspaceFile::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(UserWorkspaceFile::WorkspaceId).uuid().not_null())
                    .col(ColumnDef::new(UserWorkspaceFile::Name).string_len(255).not_null())
                    .col(path_column(postgres))
                    .col(ColumnDef::new(UserWorkspaceFile::StoragePath).string_len(1024).not_null())
                    .col(ColumnDef::new(UserWorkspaceFile::MimeType).string_len(255).not_null())
                    .col(ColumnDef::new(UserWorkspaceFile::SizeBytes).big_integer().not_null())
                    .col(ColumnDef::new(UserWorkspaceFile::Checksum).string_len(64).not_null())
                    .col(ColumnDef::new(UserWorkspaceFile::IsDeleted).boolean().not_null().default(false))
                    .col(ColumnDef::new(UserWorkspaceFile::DeletedAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(UserWorkspaceFile::Metadata).json().not_null().default("{}"))
                    .col(ColumnDef::new(UserWorkspaceFile::Source).string_len(16).not_null())
                    .col(ColumnDef::new(UserWorkspaceFile::SourceSessionId).string_len(255).null())
                    .col(ColumnDef::new(UserWorkspaceFile::SourceExecId).string_len(255).null())
                    .col(ColumnDef::new(UserWorkspaceFile::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(UserWorkspaceFile::UpdatedAt).timestamp_with_time_zone().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_user_workspace_file_workspace_v1")
                            .from(UserWorkspaceFileV2::Table, UserWorkspaceFile::WorkspaceId)
                            .to(UserWorkspace::Table, UserWorkspace::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        conn.execute_unprepared(&format!(
            "INSERT INTO user_workspace_file_v2 ({SHARED_COLUMNS}) SELECT {SHARED_COLUMNS} FROM user_workspace_file \
             WHERE is_current = true AND is_deleted = false AND content_id = id AND storage_path <> 'inline:'"
        ))
        .await?;
        manager.drop_table(Table::drop().table(UserWorkspaceFile::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(WorkspaceContent::Table).to_owned()).await?;
        manager
            .rename_table(Table::rename().table(UserWorkspaceFileV2::Table, UserWorkspaceFile::Table).to_owned())
            .await?;
        conn.execute_unprepared(
            "CREATE UNIQUE INDEX uq_user_workspace_file_live_path \
             ON user_workspace_file (workspace_id, path) WHERE is_deleted = false",
        )
        .await?;
        conn.execute_unprepared(
            "CREATE INDEX ix_user_workspace_file_listing ON user_workspace_file (workspace_id, is_deleted, path)",
        )
        .await?;
        conn.execute_unprepared(
            "CREATE INDEX ix_user_workspace_file_deleted_at ON user_workspace_file (is_deleted, deleted_at)",
        )
        .await?;
        for counter in
            [UserWorkspace::LiveBytes, UserWorkspace::HistoryBytes, UserWorkspace::FileCount, UserWorkspace::EventSeq]
        {
            manager.alter_table(Table::alter().table(UserWorkspace::Table).drop_column(counter).to_owned()).await?;
        }
        Ok(())
    }
}

/// The indexes of the v2 file table. Partial indexes have no sea-query builder; these statements
/// are valid on SQLite (3.8+) and PostgreSQL alike.
async fn create_file_indexes(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let conn = manager.get_connection();
    for statement in [
        // One current, non-trashed row per path; it also serves listings (workspace, path range,
        // path order) and lookups by path.
        "CREATE UNIQUE INDEX uq_user_workspace_file_live_path ON user_workspace_file (workspace_id, path) \
         WHERE is_current = true AND is_deleted = false",
        // The versions of a chain, newest first.
        "CREATE INDEX ix_user_workspace_file_chain ON user_workspace_file (chain_id, version)",
        // "Is this content still referenced?" when rows are purged.
        "CREATE INDEX ix_user_workspace_file_content ON user_workspace_file (content_id)",
        // History oldest first (quota purge, retention).
        "CREATE INDEX ix_user_workspace_file_history ON user_workspace_file (workspace_id, history_since) \
         WHERE history_since IS NOT NULL",
        // Listings newest first and largest first (SPEC §18), over current files only.
        "CREATE INDEX ix_user_workspace_file_created ON user_workspace_file (workspace_id, created_at) \
         WHERE is_current = true AND is_deleted = false",
        "CREATE INDEX ix_user_workspace_file_size ON user_workspace_file (workspace_id, size_bytes) \
         WHERE is_current = true AND is_deleted = false",
        // The trash, newest first.
        "CREATE INDEX ix_user_workspace_file_trash ON user_workspace_file (workspace_id, deleted_at) \
         WHERE is_current = true AND is_deleted = true",
    ] {
        conn.execute_unprepared(statement).await?;
    }
    Ok(())
}
