//! Garbage collection (SPEC §5, §13, §16):
//! - history (versions and trashed files) older than the retention of [`crate::HistoryPolicy`]
//!   is purged, workspace by workspace, each in a [`crate::txn::WriteTxn`] so the counters,
//!   events and content references stay right;
//! - events older than their retention are deleted;
//! - blobs that no content row refers to (a crash between storing a blob and committing its row;
//!   a blob removal that failed after a commit) are removed once older than a grace period;
//! - leftovers of unfinished writes the backend keeps aside are removed;
//! - cached thumbnails (SPEC §17) whose content no longer exists in their workspace (no content
//!   row of that checksum) are removed. No grace period: a thumbnail is made from content that
//!   exists, and one removed while its content comes back is made again on the next request.
//!
//! The grace period is what keeps gc from removing a blob whose write is still in flight: a blob
//! is stored before its content row is committed, so a young blob without a row may be about to
//! get one. Blobs are listed page by page, so memory stays bounded at millions of keys.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use chrono::Utc;
use futures::StreamExt;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::entity::{workspace_content as content, workspace_event};
use crate::error::Result;
use crate::history;
use crate::txn::WriteTxn;
use crate::workspaces::Workspaces;

/// How many blobs are checked against the database at once.
const BLOB_BATCH: usize = 500;
/// How many expired history rows one transaction purges.
const HISTORY_BATCH: u64 = 500;

/// How old things must be before gc touches them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcOptions {
    /// Unreferenced blobs younger than this are left alone.
    pub grace: Duration,
    /// Events older than this are deleted (default 7 days).
    pub event_retention: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        Self { grace: Duration::from_secs(3600), event_retention: Duration::from_secs(7 * 24 * 3600) }
    }
}

/// What one gc run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs seen in storage.
    pub blobs_scanned: u64,
    /// Unreferenced blobs removed.
    pub orphan_blobs_deleted: u64,
    /// History rows (versions, trashed files) purged past retention.
    pub history_purged: u64,
    /// Events deleted past retention.
    pub events_deleted: u64,
    /// Leftovers of unfinished writes removed by the backend.
    pub incomplete_removed: u64,
    /// Cached thumbnails seen in storage.
    pub thumbnails_scanned: u64,
    /// Cached thumbnails of content that no longer exists, removed.
    pub orphan_thumbnails_deleted: u64,
}

/// Runs one collection over every workspace.
pub async fn run(workspaces: &Workspaces, options: GcOptions) -> Result<GcReport> {
    let mut report = GcReport::default();
    let db = workspaces.db();
    let storage = workspaces.storage();

    let cutoff = Utc::now() - workspaces.settings().history.retention();
    loop {
        let expired = history::workspaces_with_expired_history(db, cutoff, 100).await?;
        if expired.is_empty() {
            break;
        }
        for workspace in expired {
            let manager = workspaces.manager_for_workspace(workspace).await?;
            loop {
                let mut tx = WriteTxn::begin(db, workspace).await?;
                let purged = history::purge_expired(&mut tx, cutoff, HISTORY_BATCH).await?;
                let committed = tx.commit().await?;
                manager.finish(committed).await?;
                report.history_purged += purged;
                if purged < HISTORY_BATCH {
                    break;
                }
            }
        }
    }

    let event_cutoff =
        Utc::now() - chrono::Duration::from_std(options.event_retention).unwrap_or(chrono::Duration::MAX);
    report.events_deleted = workspace_event::Entity::delete_many()
        .filter(workspace_event::Column::At.lt(event_cutoff))
        .exec(db.conn())
        .await?
        .rows_affected;

    let now = SystemTime::now();
    let mut blobs = storage.list("workspaces/").chunks(BLOB_BATCH);
    while let Some(batch) = blobs.next().await {
        let batch = batch.into_iter().collect::<std::result::Result<Vec<_>, _>>()?;
        report.blobs_scanned += batch.len() as u64;
        let old_enough: Vec<_> = batch
            .into_iter()
            .filter(|meta| now.duration_since(meta.last_modified).unwrap_or_default() >= options.grace)
            .collect();
        let ids: Vec<Uuid> = old_enough.iter().filter_map(|m| m.key.content_ids()).map(|(_, c)| c.as_uuid()).collect();
        if ids.is_empty() && old_enough.is_empty() {
            continue;
        }
        let known: HashSet<Uuid> = content::Entity::find()
            .select_only()
            .column(content::Column::Id)
            .filter(content::Column::Id.is_in(ids))
            .into_tuple::<Uuid>()
            .all(db.conn())
            .await?
            .into_iter()
            .collect();
        for meta in old_enough {
            let referenced = meta.key.content_ids().is_some_and(|(_, c)| known.contains(&c.as_uuid()));
            if !referenced {
                storage.delete(&meta.key).await?;
                report.orphan_blobs_deleted += 1;
                tracing::info!(key = %meta.key, "gc removed unreferenced blob");
            }
        }
    }
    report.incomplete_removed = storage.purge_incomplete(options.grace).await?;
    collect_thumbnails(workspaces, &mut report).await?;
    Ok(report)
}

/// Removes cached thumbnails whose (workspace, checksum) has no content row any more.
async fn collect_thumbnails(workspaces: &Workspaces, report: &mut GcReport) -> Result<()> {
    let db = workspaces.db();
    let storage = workspaces.storage();
    let mut thumbnails = storage.list("thumbnails/").chunks(BLOB_BATCH);
    while let Some(batch) = thumbnails.next().await {
        let batch = batch.into_iter().collect::<std::result::Result<Vec<_>, _>>()?;
        report.thumbnails_scanned += batch.len() as u64;
        let owners: Vec<_> = batch.iter().map(|meta| meta.key.thumbnail_ids()).collect();
        // One query per workspace in the batch, on the (workspace, checksum) index.
        let mut by_workspace: std::collections::HashMap<Uuid, HashSet<String>> = std::collections::HashMap::new();
        for (ws, checksum) in owners.iter().flatten() {
            by_workspace.entry(ws.as_uuid()).or_default().insert(checksum.as_str().to_owned());
        }
        let mut known: HashSet<(Uuid, String)> = HashSet::new();
        for (ws, checksums) in by_workspace {
            let found: Vec<String> = content::Entity::find()
                .select_only()
                .column(content::Column::Checksum)
                .filter(content::Column::WorkspaceId.eq(ws))
                .filter(content::Column::Checksum.is_in(checksums))
                .into_tuple::<String>()
                .all(db.conn())
                .await?;
            known.extend(found.into_iter().map(|checksum| (ws, checksum)));
        }
        for (meta, owner) in batch.into_iter().zip(owners) {
            let live =
                owner.is_some_and(|(ws, checksum)| known.contains(&(ws.as_uuid(), checksum.as_str().to_owned())));
            if !live {
                storage.delete(&meta.key).await?;
                report.orphan_thumbnails_deleted += 1;
                tracing::info!(key = %meta.key, "gc removed the thumbnail of content that no longer exists");
            }
        }
    }
    Ok(())
}
