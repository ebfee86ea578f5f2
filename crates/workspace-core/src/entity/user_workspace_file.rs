//! One row per version of a file. Rows of one file share a `chain_id`; the newest is current.
//! Only a current row outside the trash holds its path: the partial unique index
//! `(workspace_id, path) WHERE is_current AND NOT is_deleted` enforces it.

use sea_orm::entity::prelude::*;

/// A stored file.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_workspace_file")]
pub struct Model {
    /// File id (of this version).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Owning workspace.
    pub workspace_id: Uuid,
    /// Display file name.
    pub name: String,
    /// Virtual path (a valid `WorkspacePath`).
    pub path: String,
    /// Where the bytes are: `local://…`, `gcs://bucket/…`, `memory://…`, or `inline:` for content
    /// kept in the database.
    pub storage_path: String,
    /// Recorded MIME type.
    pub mime_type: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// SHA-256 of the content, lower-case hex.
    pub checksum: String,
    /// In the trash (the whole chain is).
    pub is_deleted: bool,
    /// When it went to the trash.
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
    /// The content row holding the bytes (shared by versions and copies with equal bytes).
    pub content_id: Uuid,
    /// The file this row is a version of: the id of its first version.
    pub chain_id: Uuid,
    /// 1 for the first version, increasing by one with each new version.
    pub version: i32,
    /// The newest version of its chain.
    pub is_current: bool,
    /// When the row became history (superseded by a newer version, or trashed).
    pub history_since: Option<DateTimeUtc>,
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
    /// The content holding its bytes.
    #[sea_orm(
        belongs_to = "super::workspace_content::Entity",
        from = "Column::ContentId",
        to = "super::workspace_content::Column::Id",
        on_delete = "Restrict"
    )]
    Content,
}

impl Related<super::workspace_content::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Content.def()
    }
}

impl Related<super::user_workspace::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Workspace.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
