//! The two tables of SPEC §3, the partial unique index that lets only one live row hold a path,
//! and the index that serves prefix listings.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// Creates `user_workspace` and `user_workspace_file`.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UserWorkspace {
    Table,
    Id,
    UserId,
    CreatedAt,
    UpdatedAt,
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
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let postgres = manager.get_database_backend() == DbBackend::Postgres;
        manager
            .create_table(
                Table::create()
                    .table(UserWorkspace::Table)
                    .col(ColumnDef::new(UserWorkspace::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(UserWorkspace::UserId).string_len(255).not_null().unique_key())
                    .col(ColumnDef::new(UserWorkspace::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(UserWorkspace::UpdatedAt).timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;

        // Byte-wise ordering of paths makes prefix ranges exact and index-friendly; SQLite's
        // default BINARY collation already is byte-wise.
        let mut path = ColumnDef::new(UserWorkspaceFile::Path);
        path.string_len(1024).not_null();
        if postgres {
            path.extra("COLLATE \"C\"");
        }
        manager
            .create_table(
                Table::create()
                    .table(UserWorkspaceFile::Table)
                    .col(ColumnDef::new(UserWorkspaceFile::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(UserWorkspaceFile::WorkspaceId).uuid().not_null())
                    .col(ColumnDef::new(UserWorkspaceFile::Name).string_len(255).not_null())
                    .col(path)
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
                            .name("fk_user_workspace_file_workspace")
                            .from(UserWorkspaceFile::Table, UserWorkspaceFile::WorkspaceId)
                            .to(UserWorkspace::Table, UserWorkspace::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        // Only live rows hold a path. sea-query has no partial-index builder; this statement is
        // valid on both SQLite (3.8+) and PostgreSQL.
        let conn = manager.get_connection();
        conn.execute_unprepared(
            "CREATE UNIQUE INDEX uq_user_workspace_file_live_path \
             ON user_workspace_file (workspace_id, path) WHERE is_deleted = false",
        )
        .await?;
        // Serves listings (workspace, live, path range) and the usage sum.
        manager
            .create_index(
                Index::create()
                    .name("ix_user_workspace_file_listing")
                    .table(UserWorkspaceFile::Table)
                    .col(UserWorkspaceFile::WorkspaceId)
                    .col(UserWorkspaceFile::IsDeleted)
                    .col(UserWorkspaceFile::Path)
                    .to_owned(),
            )
            .await?;
        // Serves gc's purge of old soft-deleted rows.
        manager
            .create_index(
                Index::create()
                    .name("ix_user_workspace_file_deleted_at")
                    .table(UserWorkspaceFile::Table)
                    .col(UserWorkspaceFile::IsDeleted)
                    .col(UserWorkspaceFile::DeletedAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(UserWorkspaceFile::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(UserWorkspace::Table).to_owned()).await
    }
}
