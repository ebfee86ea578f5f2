//! File rows: the conditions that select them and their conversion into [`FileInfo`]. Shared by
//! the manager, history and gc, so "current", "visible" and "in the trash" mean one thing.

use mime::Mime;
use sea_orm::sea_query::{Expr, ExprTrait, SimpleExpr};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter};

use crate::entity::user_workspace_file as file;
use crate::error::{Result, WorkspaceError};
use crate::ids::{ContentId, FileId, WorkspaceId};
use crate::model::{Checksum, ContentLocation, FileInfo, FileSource, INLINE_STORAGE_PATH};
use crate::path::WorkspacePath;

/// `column = true` or `= false`, the constant written into the statement rather than bound.
/// The partial indexes say `WHERE is_current = true AND is_deleted = false`; SQLite decides
/// whether one applies when it prepares a statement. With the flag bound, that decision depends
/// on the bound value, which (unless the connection has QPSG on, as `Db` sets it) makes SQLite
/// re-prepare the cached statement at every execution; with the constant it is decided once,
/// whatever the connection's settings. (The larger cause of those re-prepares was `LIMIT ?`;
/// see `db.rs`.)
pub(crate) fn flag(column: file::Column, value: bool) -> SimpleExpr {
    Expr::col((file::Entity, column)).eq(Expr::cust(if value { "true" } else { "false" }))
}

/// Rows of the workspace outside the trash: current files and their versions.
pub(crate) fn visible(workspace: WorkspaceId) -> Condition {
    Condition::all().add(file::Column::WorkspaceId.eq(workspace.as_uuid())).add(flag(file::Column::IsDeleted, false))
}

/// Current files of the workspace outside the trash: one per path.
pub(crate) fn current(workspace: WorkspaceId) -> Condition {
    visible(workspace).add(flag(file::Column::IsCurrent, true))
}

/// `version > 0`, with the `0` written into the statement: true of every row (versions count
/// from 1), and required by both sort indexes, `(workspace, created_at, path, name)` and
/// `(workspace, size_bytes, path, name)`. A listing sorted by either key adds it so that it may
/// read that index; a lookup by path never does, which keeps it on the path-led indexes whatever
/// the planner estimates (see migration `m20261216_000004`). A literal rather than a bound value:
/// SQLite (with stable query plans) decides whether a partial index applies when it prepares the
/// statement.
pub(crate) fn sort_index_guard() -> SimpleExpr {
    Expr::col((file::Entity, file::Column::Version)).gt(Expr::cust("0"))
}

/// Trash entries of the workspace: the current rows of trashed files.
pub(crate) fn trashed(workspace: WorkspaceId) -> Condition {
    Condition::all()
        .add(file::Column::WorkspaceId.eq(workspace.as_uuid()))
        .add(flag(file::Column::IsDeleted, true))
        .add(flag(file::Column::IsCurrent, true))
}

/// The current row at `path`, if any.
pub(crate) async fn current_at<C: ConnectionTrait>(
    conn: &C,
    workspace: WorkspaceId,
    path: &WorkspacePath,
) -> Result<Option<file::Model>> {
    Ok(file::Entity::find().filter(current(workspace)).filter(file::Column::Path.eq(path.as_str())).one(conn).await?)
}

/// A row's size as the counters count it.
pub(crate) fn size(row: &file::Model) -> u64 {
    u64::try_from(row.size_bytes).unwrap_or(0)
}

/// A stored MIME string as a type; anything unparsable reads as octet-stream.
pub(crate) fn mime_of(stored: &str) -> Mime {
    stored.parse().unwrap_or(mime::APPLICATION_OCTET_STREAM)
}

/// A row as callers see it (`current_id` is filled in by lookups of older versions).
pub(crate) fn to_info(row: file::Model) -> Result<FileInfo> {
    let content = ContentId::from_uuid(row.content_id);
    let path = WorkspacePath::parse(&row.path)
        .map_err(|e| WorkspaceError::InvalidInput(format!("stored path of file {} is invalid: {e}", row.id)))?;
    Ok(FileInfo {
        id: FileId::from_uuid(row.id),
        workspace_id: WorkspaceId::from_uuid(row.workspace_id),
        name: row.name,
        path,
        mime_type: mime_of(&row.mime_type),
        size_bytes: u64::try_from(row.size_bytes).unwrap_or(0),
        checksum: Checksum::from_trusted(row.checksum),
        metadata: row.metadata,
        source: FileSource::parse(&row.source)?,
        source_session_id: row.source_session_id,
        source_exec_id: row.source_exec_id,
        created_at: row.created_at,
        updated_at: row.updated_at,
        version: u32::try_from(row.version).unwrap_or(1),
        is_current: row.is_current,
        current_id: None,
        deleted_at: row.deleted_at,
        chain_id: FileId::from_uuid(row.chain_id),
        content: if row.storage_path == INLINE_STORAGE_PATH {
            ContentLocation::Inline(content)
        } else {
            ContentLocation::Blob(content)
        },
    })
}
