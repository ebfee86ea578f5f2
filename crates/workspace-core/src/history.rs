//! History (SPEC §13): versions, the trash, restore and purge, and the rules that keep history
//! bounded: at most `max_versions` per file, kept `days` days, and never in the way of live bytes
//! (the oldest history is purged inside the write's transaction to make room).
//!
//! Row states: a *current* row (`is_current`, not deleted) holds its path; a *version*
//! (`!is_current`, not deleted) belongs to a live file; a *trashed* file is its current row with
//! `is_deleted` and every version of it likewise. Versions and trashed rows are history: they
//! carry `history_since` and count in `history_bytes`.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::entity::user_workspace_file as file;
use crate::error::{Result, WorkspaceError};
use crate::events::{EventKind, PendingEvent};
use crate::ids::{ContentId, FileId, WorkspaceId};
use crate::manager::WorkspaceManager;
use crate::model::{FileInfo, FileRef, INLINE_STORAGE_PATH, RestoreOptions, TrashEntry, TrashPage, VersionInfo};
use crate::rows;
use crate::txn::{Counters, WriteTxn};

/// How many trashed files one transaction purges when the trash is emptied.
const PURGE_BATCH: u64 = 200;

impl WorkspaceManager {
    /// Every version of the file `target` belongs to, newest first (SPEC §13).
    pub async fn versions(&self, target: impl Into<FileRef>) -> Result<Vec<VersionInfo>> {
        let conn = self.workspaces().db().conn();
        let row = self.find_row(conn, &target.into()).await?;
        file::Entity::find()
            .filter(rows::visible(self.workspace_id()))
            .filter(file::Column::ChainId.eq(row.chain_id))
            .order_by_desc(file::Column::Version)
            .all(conn)
            .await?
            .into_iter()
            .map(|row| {
                let info = rows::to_info(row)?;
                Ok(VersionInfo {
                    id: info.id,
                    version: info.version,
                    size_bytes: info.size_bytes,
                    checksum: info.checksum,
                    mime_type: info.mime_type,
                    created_at: info.created_at,
                    source: info.source,
                    is_current: info.is_current,
                })
            })
            .collect()
    }

    /// Restores `id` (SPEC §13): a trashed file comes back to its path (or `options.path`) with
    /// the same id, Conflict if the path is taken; an older version becomes current again as a
    /// new version (nothing is lost). The current version is returned as it is.
    pub async fn restore(&self, id: FileId, options: RestoreOptions) -> Result<FileInfo> {
        let db = self.workspaces().db();
        let mut tx = WriteTxn::begin(db, self.workspace_id()).await?;
        let row = file::Entity::find_by_id(id.as_uuid())
            .filter(file::Column::WorkspaceId.eq(self.workspace_id().as_uuid()))
            .one(tx.conn())
            .await?
            .ok_or_else(|| WorkspaceError::NotFound(format!("file {id}")))?;
        let info = if row.is_deleted {
            if !row.is_current {
                // Trashed versions travel with their file; the trash lists the file's own id.
                return Err(WorkspaceError::NotFound(format!(
                    "file {id} (an older version of a trashed file: restore the file by the id the trash lists)"
                )));
            }
            let info = rows::to_info(row.clone())?;
            options.precondition.check(Some(&info))?;
            self.restore_from_trash(&mut tx, info, options.path).await?
        } else if row.is_current {
            let info = rows::to_info(row)?;
            options.precondition.check(Some(&info))?;
            return Ok(info);
        } else {
            let version = rows::to_info(row.clone())?;
            options.precondition.check(Some(&version))?;
            if options.path.is_some() {
                return Err(WorkspaceError::InvalidInput(
                    "an older version is restored at its file's path; move the file afterwards to change it".into(),
                ));
            }
            self.restore_version(&mut tx, row).await?
        };
        let committed = tx.commit().await?;
        self.finish(committed).await?;
        Ok(info)
    }

    async fn restore_from_trash(
        &self,
        tx: &mut WriteTxn,
        mut info: FileInfo,
        path: Option<crate::path::WorkspacePath>,
    ) -> Result<FileInfo> {
        let old_path = info.path.clone();
        let target = path.unwrap_or_else(|| info.path.clone());
        if rows::current_at(tx.conn(), self.workspace_id(), &target).await?.is_some() {
            return Err(WorkspaceError::Conflict(target.to_string()));
        }
        file::Entity::update_many()
            .col_expr(file::Column::IsDeleted, Expr::value(false))
            .col_expr(file::Column::DeletedAt, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(file::Column::Path, Expr::value(target.as_str()))
            .col_expr(file::Column::UpdatedAt, Expr::value(tx.now))
            .filter(file::Column::WorkspaceId.eq(self.workspace_id().as_uuid()))
            .filter(file::Column::ChainId.eq(info.chain_id.as_uuid()))
            .exec(tx.conn())
            .await?;
        file::Entity::update_many()
            .col_expr(file::Column::HistorySince, Expr::value(Option::<DateTime<Utc>>::None))
            .filter(file::Column::Id.eq(info.id.as_uuid()))
            .exec(tx.conn())
            .await?;
        tx.counters.became_live(info.size_bytes);
        info.path = target;
        info.deleted_at = None;
        info.updated_at = tx.now;
        let mut event = PendingEvent::about(EventKind::Restored, &info);
        if old_path != info.path {
            event.old_path = Some(old_path.to_string());
        }
        tx.event(event);
        Ok(info)
    }

    async fn restore_version(&self, tx: &mut WriteTxn, version: file::Model) -> Result<FileInfo> {
        let settings = *self.settings();
        let current = file::Entity::find()
            .filter(rows::current(self.workspace_id()))
            .filter(file::Column::ChainId.eq(version.chain_id))
            .one(tx.conn())
            .await?
            .ok_or_else(|| WorkspaceError::NotFound(format!("the current version of file {}", version.id)))?;
        let size = rows::size(&version);
        let live_after = tx.counters.live_bytes.saturating_sub(rows::size(&current)) + size;
        if live_after > settings.limits.quota_bytes {
            return Err(WorkspaceError::QuotaExceeded {
                used: tx.counters.live_bytes,
                limit: settings.limits.quota_bytes,
                needed: size.saturating_sub(rows::size(&current)),
            });
        }
        tx.supersede(&current).await?;
        let restored = file::Model {
            id: FileId::new().as_uuid(),
            path: current.path.clone(),
            version: current.version + 1,
            is_current: true,
            history_since: None,
            created_at: tx.now,
            updated_at: tx.now,
            ..version
        };
        let inserted = file::ActiveModel::from(restored).reset_all().insert(tx.conn()).await?;
        tx.counters.live_bytes += size;
        tx.counters.file_count += 1;
        let info = rows::to_info(inserted)?;
        tx.event(PendingEvent::about(EventKind::Restored, &info));
        trim_versions(tx, info.chain_id, info.version, settings.history.max_versions).await?;
        make_room(tx, settings.limits.quota_bytes).await?;
        Ok(info)
    }

    /// The trash, most recent deletion first: one entry per file (its versions travel with it).
    pub async fn trash(&self, limit: u64, cursor: Option<&str>) -> Result<TrashPage> {
        if !(1..=crate::manager::MAX_PAGE_SIZE).contains(&limit) {
            return Err(WorkspaceError::InvalidInput(format!(
                "limit must be between 1 and {}",
                crate::manager::MAX_PAGE_SIZE
            )));
        }
        let mut query = file::Entity::find().filter(rows::trashed(self.workspace_id()));
        if let Some(cursor) = cursor {
            let (at, id) = decode_trash_cursor(cursor)?;
            query = query.filter(
                Condition::any()
                    .add(file::Column::DeletedAt.lt(at))
                    .add(Condition::all().add(file::Column::DeletedAt.eq(at)).add(file::Column::Id.lt(id))),
            );
        }
        let mut found = query
            .order_by_desc(file::Column::DeletedAt)
            .order_by_desc(file::Column::Id)
            .limit(limit + 1)
            .all(self.workspaces().db().conn())
            .await?;
        let next_cursor = if found.len() as u64 > limit {
            found.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            found.last().and_then(|row| row.deleted_at.map(|at| encode_trash_cursor(at, row.id)))
        } else {
            None
        };
        let retention = self.settings().history.retention();
        let files = found
            .into_iter()
            .map(|row| {
                let file = rows::to_info(row)?;
                let deleted_at = file.deleted_at.unwrap_or(file.updated_at);
                Ok(TrashEntry { purge_at: deleted_at + retention, deleted_at, file })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TrashPage { files, next_cursor })
    }

    /// Purges a trashed file and its versions for good. Only the trash can be purged: a file
    /// that is not in it is NotFound.
    pub async fn purge(&self, id: FileId) -> Result<()> {
        let db = self.workspaces().db();
        let mut tx = WriteTxn::begin(db, self.workspace_id()).await?;
        let head = file::Entity::find_by_id(id.as_uuid())
            .filter(rows::trashed(self.workspace_id()))
            .one(tx.conn())
            .await?
            .ok_or_else(|| WorkspaceError::NotFound(format!("file {id} in the trash")))?;
        let chain = chain_rows(&tx, head.chain_id).await?;
        purge_rows(&mut tx, chain).await?;
        let committed = tx.commit().await?;
        self.finish(committed).await
    }

    /// Purges everything in the trash; returns how many files went.
    pub async fn empty_trash(&self) -> Result<u64> {
        let db = self.workspaces().db();
        let mut purged = 0;
        loop {
            let mut tx = WriteTxn::begin(db, self.workspace_id()).await?;
            let heads = file::Entity::find()
                .filter(rows::trashed(self.workspace_id()))
                .limit(PURGE_BATCH)
                .all(tx.conn())
                .await?;
            if heads.is_empty() {
                return Ok(purged);
            }
            purged += heads.len() as u64;
            let chains: Vec<uuid::Uuid> = heads.iter().map(|h| h.chain_id).collect();
            let rows = file::Entity::find()
                .filter(file::Column::WorkspaceId.eq(self.workspace_id().as_uuid()))
                .filter(file::Column::ChainId.is_in(chains))
                .all(tx.conn())
                .await?;
            purge_rows(&mut tx, rows).await?;
            let committed = tx.commit().await?;
            self.finish(committed).await?;
        }
    }
}

/// Every row of a chain.
async fn chain_rows(tx: &WriteTxn, chain: uuid::Uuid) -> Result<Vec<file::Model>> {
    Ok(file::Entity::find()
        .filter(file::Column::WorkspaceId.eq(tx.workspace().as_uuid()))
        .filter(file::Column::ChainId.eq(chain))
        .all(tx.conn())
        .await?)
}

/// Deletes history rows for good: counters, content release and `purged` events.
pub(crate) async fn purge_rows(tx: &mut WriteTxn, rows: Vec<file::Model>) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.id).collect();
    for chunk in ids.chunks(500) {
        file::Entity::delete_many().filter(file::Column::Id.is_in(chunk.iter().copied())).exec(tx.conn()).await?;
    }
    for row in rows {
        let size = rows::size(&row);
        if row.is_current && !row.is_deleted {
            // Never reached by the callers (they purge history only); keep the counters right anyway.
            tx.counters.live_bytes = tx.counters.live_bytes.saturating_sub(size);
            tx.counters.file_count = tx.counters.file_count.saturating_sub(1);
        } else {
            tx.counters.history_bytes = tx.counters.history_bytes.saturating_sub(size);
        }
        tx.release(ContentId::from_uuid(row.content_id), row.storage_path != INLINE_STORAGE_PATH);
        let info = rows::to_info(row)?;
        tx.event(PendingEvent::about(EventKind::Purged, &info));
    }
    Ok(())
}

/// Keeps at most `max` versions of a live file, the current one included: older ones go.
/// `newest` is the version number of the chain's current row. A chain's versions are distinct
/// and count up from 1 (every new current row is the previous one's version + 1), so a chain
/// whose newest is version `newest` has at most `newest` rows: within `max`, there is nothing to
/// look for (the common case of a new file costs no query).
pub(crate) async fn trim_versions(tx: &mut WriteTxn, chain: FileId, newest: u32, max: u32) -> Result<()> {
    if newest <= max {
        return Ok(());
    }
    let excess = file::Entity::find()
        .filter(rows::visible(tx.workspace()))
        .filter(file::Column::ChainId.eq(chain.as_uuid()))
        .order_by_desc(file::Column::Version)
        .offset(u64::from(max))
        // SQLite takes OFFSET only after a LIMIT.
        .limit(i64::MAX as u64)
        .all(tx.conn())
        .await?;
    purge_rows(tx, excess).await
}

/// Whether a change leaving `counters` must purge history to stay under `quota` (what
/// [`make_room`] does).
pub(crate) fn room_needed(counters: &Counters, quota: u64) -> bool {
    counters.live_bytes + counters.history_bytes > quota && counters.history_bytes > 0
}

/// Purges the oldest history until live and history bytes fit the quota again (history never
/// blocks a write that live bytes allow). A trashed file goes with all its versions.
pub(crate) async fn make_room(tx: &mut WriteTxn, quota: u64) -> Result<()> {
    while room_needed(&tx.counters, quota) {
        let oldest = file::Entity::find()
            .filter(file::Column::WorkspaceId.eq(tx.workspace().as_uuid()))
            .filter(file::Column::HistorySince.is_not_null())
            .order_by_asc(file::Column::HistorySince)
            .order_by_asc(file::Column::Id)
            .limit(64)
            .all(tx.conn())
            .await?;
        if oldest.is_empty() {
            break;
        }
        let mut over = (tx.counters.live_bytes + tx.counters.history_bytes).saturating_sub(quota);
        let mut chosen = Vec::new();
        for row in oldest {
            if over == 0 {
                break;
            }
            over = over.saturating_sub(rows::size(&row));
            if row.is_deleted && row.is_current {
                for version in chain_rows(tx, row.chain_id).await? {
                    if version.id != row.id && !chosen.iter().any(|c: &file::Model| c.id == version.id) {
                        over = over.saturating_sub(rows::size(&version));
                        chosen.push(version);
                    }
                }
            }
            if !chosen.iter().any(|c| c.id == row.id) {
                chosen.push(row);
            }
        }
        purge_rows(tx, chosen).await?;
    }
    Ok(())
}

/// Purges the workspace's history that became history before `cutoff` (retention); trashed
/// files go with all their versions. Returns how many rows went.
pub(crate) async fn purge_expired(tx: &mut WriteTxn, cutoff: DateTime<Utc>, batch: u64) -> Result<u64> {
    let expired = file::Entity::find()
        .filter(file::Column::WorkspaceId.eq(tx.workspace().as_uuid()))
        .filter(file::Column::HistorySince.lt(cutoff))
        .limit(batch)
        .all(tx.conn())
        .await?;
    let mut chosen: Vec<file::Model> = Vec::new();
    for row in expired {
        if row.is_deleted && row.is_current {
            for version in chain_rows(tx, row.chain_id).await? {
                if !chosen.iter().any(|c| c.id == version.id) {
                    chosen.push(version);
                }
            }
        } else if !chosen.iter().any(|c| c.id == row.id) {
            chosen.push(row);
        }
    }
    let purged = chosen.len() as u64;
    purge_rows(tx, chosen).await?;
    Ok(purged)
}

/// Workspaces that hold history from before `cutoff`.
pub(crate) async fn workspaces_with_expired_history(
    db: &crate::db::Db,
    cutoff: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<WorkspaceId>> {
    let ids: Vec<uuid::Uuid> = file::Entity::find()
        .select_only()
        .column(file::Column::WorkspaceId)
        .distinct()
        .filter(file::Column::HistorySince.lt(cutoff))
        .limit(limit)
        .into_tuple()
        .all(db.conn())
        .await?;
    Ok(ids.into_iter().map(WorkspaceId::from_uuid).collect())
}

fn encode_trash_cursor(at: DateTime<Utc>, id: uuid::Uuid) -> String {
    hex::encode(format!("{}|{id}", at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)))
}

fn decode_trash_cursor(cursor: &str) -> Result<(DateTime<Utc>, uuid::Uuid)> {
    let bad = || WorkspaceError::InvalidInput("cursor is not one this server issued".into());
    let text = String::from_utf8(hex::decode(cursor).map_err(|_| bad())?).map_err(|_| bad())?;
    let (at, id) = text.split_once('|').ok_or_else(bad)?;
    let at = DateTime::parse_from_rfc3339(at).map_err(|_| bad())?.with_timezone(&Utc);
    Ok((at, id.parse().map_err(|_| bad())?))
}
