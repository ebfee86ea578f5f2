//! Garbage collection (SPEC §5): removes blobs no live row references (orphans of crashes and
//! of deletes whose blob removal failed) once they are older than a grace period, and purges
//! soft-deleted rows past their retention.
//!
//! The grace period is what keeps gc from removing a blob whose write is still in flight: a blob
//! is written before its row is committed, so a young blob without a row may be about to get one.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use chrono::Utc;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::db::Db;
use crate::entity::user_workspace_file as file;
use crate::error::Result;
use crate::storage::Storage;

/// How old things must be before gc touches them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcOptions {
    /// Soft-deleted rows older than this are purged.
    pub retention: Duration,
    /// Unreferenced blobs younger than this are left alone.
    pub grace: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        Self { retention: Duration::from_secs(7 * 24 * 3600), grace: Duration::from_secs(3600) }
    }
}

/// What one gc run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs seen in storage.
    pub blobs_scanned: u64,
    /// Unreferenced blobs removed.
    pub orphan_blobs_deleted: u64,
    /// Soft-deleted rows purged.
    pub rows_purged: u64,
    /// Leftovers of unfinished writes removed by the backend.
    pub incomplete_removed: u64,
}

/// Runs one collection over every workspace.
pub async fn run(db: &Db, storage: &Storage, options: GcOptions) -> Result<GcReport> {
    let mut report = GcReport::default();
    let now = SystemTime::now();
    let blobs = storage.list("workspaces/").await?;
    report.blobs_scanned = blobs.len() as u64;
    let old_enough: Vec<_> = blobs
        .into_iter()
        .filter(|meta| now.duration_since(meta.last_modified).unwrap_or_default() >= options.grace)
        .collect();
    for batch in old_enough.chunks(500) {
        let ids: Vec<Uuid> = batch.iter().filter_map(|m| m.key.file_ids()).map(|(_, f)| f.as_uuid()).collect();
        let live: HashSet<Uuid> = file::Entity::find()
            .select_only()
            .column(file::Column::Id)
            .filter(file::Column::Id.is_in(ids))
            .filter(file::Column::IsDeleted.eq(false))
            .into_tuple::<Uuid>()
            .all(db.conn())
            .await?
            .into_iter()
            .collect();
        for meta in batch {
            let referenced = meta.key.file_ids().is_some_and(|(_, f)| live.contains(&f.as_uuid()));
            if !referenced {
                storage.delete(&meta.key).await?;
                report.orphan_blobs_deleted += 1;
                tracing::info!(key = %meta.key, "gc removed unreferenced blob");
            }
        }
    }
    let cutoff = Utc::now() - chrono::Duration::from_std(options.retention).unwrap_or(chrono::Duration::MAX);
    let purged = file::Entity::delete_many()
        .filter(file::Column::IsDeleted.eq(true))
        .filter(file::Column::DeletedAt.lt(cutoff))
        .exec(db.conn())
        .await?;
    report.rows_purged = purged.rows_affected;
    report.incomplete_removed = storage.purge_incomplete(options.grace).await?;
    Ok(report)
}
