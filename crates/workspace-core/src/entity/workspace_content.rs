//! Content stored once per workspace per sha-256: as a blob under
//! `workspaces/{workspace_id}/{id}`, or inline in `inline_data` for small files.

use sea_orm::entity::prelude::*;

/// Stored bytes.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workspace_content")]
pub struct Model {
    /// Content id; the last part of the blob key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Owning workspace.
    pub workspace_id: Uuid,
    /// SHA-256 of the bytes, lower-case hex.
    pub checksum: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// The bytes themselves when kept in the database; `None` when they are a blob.
    pub inline_data: Option<Vec<u8>>,
    /// When it was stored.
    pub created_at: DateTimeUtc,
}

/// Relations of content.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
