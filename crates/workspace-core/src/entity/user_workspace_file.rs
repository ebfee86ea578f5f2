//! One row per stored file version. Only live rows (`is_deleted = false`) hold a path: the
//! partial unique index `(workspace_id, path) WHERE is_deleted = false` enforces it.

use sea_orm::entity::prelude::*;

/// A stored file.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_workspace_file")]
pub struct Model {
    /// File id; also the last part of the blob key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Owning workspace.
    pub workspace_id: Uuid,
    /// Display file name.
    pub name: String,
    /// Virtual path (a valid `WorkspacePath`).
    pub path: String,
    /// Where the bytes are: `local://…`, `gcs://bucket/…`, `memory://…`.
    pub storage_path: String,
    /// Recorded MIME type.
    pub mime_type: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// SHA-256 of the content, lower-case hex.
    pub checksum: String,
    /// Soft-delete flag.
    pub is_deleted: bool,
    /// When it was deleted or replaced.
    pub deleted_at: Option<DateTimeUtc>,
    /// Free-form metadata (JSON object).
    pub metadata: Json,
    /// Provenance: upload | execution | copilot | import.
    pub source: String,
    /// Session that wrote it.
    pub source_session_id: Option<String>,
    /// Execution that wrote it.
    pub source_exec_id: Option<String>,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change of the row.
    pub updated_at: DateTimeUtc,
}

/// Relations of a file.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The workspace it belongs to.
    #[sea_orm(
        belongs_to = "super::user_workspace::Entity",
        from = "Column::WorkspaceId",
        to = "super::user_workspace::Column::Id",
        on_delete = "Cascade"
    )]
    Workspace,
}

impl Related<super::user_workspace::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Workspace.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
