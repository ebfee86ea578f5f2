//! The change feed (SPEC §16): one row per change, written in the change's transaction, with ids
//! increasing per workspace.

use sea_orm::entity::prelude::*;

/// One change.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workspace_event")]
pub struct Model {
    /// The workspace it happened in.
    #[sea_orm(primary_key, auto_increment = false)]
    pub workspace_id: Uuid,
    /// Increasing per workspace.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i64,
    /// created | overwritten | moved | copied | deleted | restored | purged.
    pub kind: String,
    /// The file (version) the change produced or acted on.
    pub file_id: Uuid,
    /// Its path after the change.
    pub path: String,
    /// Its path before a move.
    pub old_path: Option<String>,
    /// Its size.
    pub size_bytes: i64,
    /// Its checksum.
    pub checksum: String,
    /// When the change committed.
    pub at: DateTimeUtc,
}

/// Relations of an event.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
