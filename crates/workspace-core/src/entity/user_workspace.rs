//! One row per user: the workspace every file belongs to.

use sea_orm::entity::prelude::*;

/// A user's workspace.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_workspace")]
pub struct Model {
    /// Workspace id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The owning user (unique).
    #[sea_orm(unique)]
    pub user_id: String,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change of the row.
    pub updated_at: DateTimeUtc,
    /// Bytes of current, non-trashed files.
    pub live_bytes: i64,
    /// Bytes of history: versions and trashed files.
    pub history_bytes: i64,
    /// Number of current, non-trashed files.
    pub file_count: i64,
    /// The last change-feed event id handed out in this workspace.
    pub event_seq: i64,
}

/// Relations of a workspace.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Its files.
    #[sea_orm(has_many = "super::user_workspace_file::Entity")]
    Files,
}

impl Related<super::user_workspace_file::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Files.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
