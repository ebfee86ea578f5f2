//! Structure (SPEC §14): move and copy a file, move and trash a folder. Every operation is a
//! metadata change in one [`WriteTxn`]: no byte moves in storage, a move keeps the file's id and
//! its versions, a copy shares the content (dedup), and a folder operation is all or nothing.

use sea_orm::sea_query::{BinOper, Expr, ExprTrait, Func};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr};

use crate::entity::user_workspace_file as file;
use crate::error::{Result, WorkspaceError};
use crate::events::{EventKind, PendingEvent};
use crate::history;
use crate::ids::FileId;
use crate::listing::prefix_condition;
use crate::manager::WorkspaceManager;
use crate::model::{FileInfo, FileRef, Precondition};
use crate::path::{PathPrefix, WorkspacePath};
use crate::rows;
use crate::txn::WriteTxn;

/// How a move or copy treats its destination.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlaceOptions {
    /// A current file at the destination is replaced: by a move it goes to the trash
    /// (restorable); by a copy it gets the copied content as a new version.
    pub overwrite: bool,
    /// A condition on the file named by the id (the source).
    pub precondition: Precondition,
}

/// What a folder operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderChange {
    /// Current files affected (their versions went with them).
    pub files: u64,
}

impl WorkspaceManager {
    /// Moves (renames) a file: same id, same bytes, no storage I/O; its versions follow and its
    /// old path is free. Only a current version names the file for this.
    pub async fn move_file(
        &self,
        target: impl Into<FileRef>,
        to: WorkspacePath,
        options: PlaceOptions,
    ) -> Result<FileInfo> {
        let target = target.into();
        let mut tx = WriteTxn::begin(self.workspaces().db(), self.workspace_id()).await?;
        let row = self.find_row(tx.conn(), &target).await?;
        let info = self.current_info(row).await?;
        options.precondition.check(Some(&info))?;
        if info.path == to {
            return Ok(info);
        }
        self.clear_destination(&mut tx, &to, options.overwrite).await?;
        let renamed = file::Entity::update_many()
            .col_expr(file::Column::Path, Expr::value(to.as_str()))
            .col_expr(file::Column::Name, Expr::value(to.file_name()))
            .col_expr(file::Column::UpdatedAt, Expr::value(tx.now))
            .filter(file::Column::WorkspaceId.eq(self.workspace_id().as_uuid()))
            .filter(file::Column::ChainId.eq(info.chain_id.as_uuid()))
            .filter(rows::flag(file::Column::IsDeleted, false))
            .exec(tx.conn())
            .await;
        unique_violation_is_conflict(renamed, &to)?;
        let old_path = info.path.clone();
        let moved = FileInfo { path: to.clone(), name: to.file_name().to_owned(), updated_at: tx.now, ..info };
        let mut event = PendingEvent::about(EventKind::Moved, &moved);
        event.old_path = Some(old_path.to_string());
        tx.event(event);
        let committed = tx.commit().await?;
        self.finish(committed).await?;
        Ok(moved)
    }

    /// Copies a file (any version) to `to`: a new file sharing the content, no bytes copied.
    pub async fn copy_file(
        &self,
        target: impl Into<FileRef>,
        to: WorkspacePath,
        options: PlaceOptions,
    ) -> Result<FileInfo> {
        let target = target.into();
        let settings = *self.settings();
        let mut tx = WriteTxn::begin(self.workspaces().db(), self.workspace_id()).await?;
        let source = self.find_row(tx.conn(), &target).await?;
        let source_info = rows::to_info(source.clone())?;
        options.precondition.check(Some(&source_info))?;
        let current = rows::current_at(tx.conn(), self.workspace_id(), &to).await?;
        if current.is_some() && !options.overwrite {
            return Err(WorkspaceError::Conflict(to.to_string()));
        }
        let replaced = current.as_ref().map_or(0, rows::size);
        let size = rows::size(&source);
        let live_after = tx.counters.live_bytes.saturating_sub(replaced) + size;
        if live_after > settings.limits.quota_bytes {
            return Err(WorkspaceError::QuotaExceeded {
                used: tx.counters.live_bytes,
                limit: settings.limits.quota_bytes,
                needed: size.saturating_sub(replaced),
            });
        }
        let id = FileId::new().as_uuid();
        let (chain_id, version) = match &current {
            Some(old) => {
                tx.supersede(old).await?;
                (old.chain_id, old.version + 1)
            }
            None => (id, 1),
        };
        let row = file::Model {
            id,
            path: to.to_string(),
            name: to.file_name().to_owned(),
            chain_id,
            version,
            is_current: true,
            is_deleted: false,
            deleted_at: None,
            history_since: None,
            source_session_id: self.session_id().map(|s| s.as_str().to_owned()),
            created_at: tx.now,
            updated_at: tx.now,
            ..source
        };
        let inserted = file::ActiveModel::from(row).reset_all().insert(tx.conn()).await;
        let inserted = match inserted {
            Ok(model) => model,
            Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return Err(WorkspaceError::Conflict(to.to_string()));
            }
            Err(err) => return Err(err.into()),
        };
        tx.counters.live_bytes += size;
        tx.counters.file_count += 1;
        let info = rows::to_info(inserted)?;
        let mut event = PendingEvent::about(EventKind::Copied, &info);
        event.old_path = Some(source_info.path.to_string());
        tx.event(event);
        history::trim_versions(&mut tx, info.chain_id, info.version, settings.history.max_versions).await?;
        history::make_room(&mut tx, settings.limits.quota_bytes).await?;
        let committed = tx.commit().await?;
        self.finish(committed).await?;
        Ok(info)
    }

    /// Moves every current file under the folder `from` (with its versions) to the same place
    /// under `to`, in one transaction: all or nothing. A destination taken by a file that is not
    /// moved is a Conflict naming the first such path; `to` inside `from` is refused; a folder
    /// with no files is NotFound.
    pub async fn move_folder(&self, from: &WorkspacePath, to: &WorkspacePath) -> Result<FolderChange> {
        let (from_dir, to_dir) = (from.as_str(), to.as_str());
        if to_dir == from_dir || to_dir.strip_prefix(from_dir).is_some_and(|rest| rest.starts_with('/')) {
            return Err(WorkspaceError::InvalidInput(format!("cannot move the folder {from} into itself ({to})")));
        }
        let mut tx = WriteTxn::begin(self.workspaces().db(), self.workspace_id()).await?;
        let moving = self.current_under(&tx, from).await?;
        let mut targets = Vec::with_capacity(moving.len());
        for row in &moving {
            let rest = &row.path[from_dir.len()..];
            let target = WorkspacePath::parse(&format!("{to_dir}{rest}")).map_err(|e| {
                WorkspaceError::InvalidInput(format!("moving {} to {to_dir}{rest} breaks a path rule: {e}", row.path))
            })?;
            targets.push(target);
        }
        // Destinations taken by files that stay where they are.
        let mut taken: Vec<String> = Vec::new();
        for chunk in targets.chunks(500) {
            let found: Vec<String> = file::Entity::find()
                .select_only()
                .column(file::Column::Path)
                .filter(rows::current(self.workspace_id()))
                .filter(file::Column::Path.is_in(chunk.iter().map(WorkspacePath::as_str)))
                .into_tuple()
                .all(tx.conn())
                .await?;
            taken.extend(found.into_iter().filter(|p| !p.starts_with(&format!("{from_dir}/"))));
        }
        taken.sort();
        if let Some(first) = taken.first() {
            return Err(WorkspaceError::Conflict(first.clone()));
        }
        let chains: Vec<uuid::Uuid> = moving.iter().map(|r| r.chain_id).collect();
        let chars = i32::try_from(from_dir.chars().count()).unwrap_or(i32::MAX);
        for chunk in chains.chunks(500) {
            let rest = Func::cust("SUBSTR").arg(Expr::col(file::Column::Path)).arg(chars + 1);
            let renamed = file::Entity::update_many()
                .col_expr(file::Column::Path, Expr::val(to_dir).binary(BinOper::Custom("||"), rest))
                .col_expr(file::Column::UpdatedAt, Expr::value(tx.now))
                .filter(file::Column::WorkspaceId.eq(self.workspace_id().as_uuid()))
                .filter(file::Column::ChainId.is_in(chunk.iter().copied()))
                .filter(rows::flag(file::Column::IsDeleted, false))
                .exec(tx.conn())
                .await;
            unique_violation_is_conflict(renamed, to)?;
        }
        let files = moving.len() as u64;
        for (row, target) in moving.into_iter().zip(targets) {
            let old_path = row.path.clone();
            let mut info = rows::to_info(row)?;
            info.path = target;
            let mut event = PendingEvent::about(EventKind::Moved, &info);
            event.old_path = Some(old_path);
            tx.event(event);
        }
        let committed = tx.commit().await?;
        self.finish(committed).await?;
        Ok(FolderChange { files })
    }

    /// Moves every current file under the folder (with its versions) to the trash, in one
    /// transaction. A folder with no files is NotFound.
    pub async fn delete_folder(&self, folder: &WorkspacePath) -> Result<FolderChange> {
        let mut tx = WriteTxn::begin(self.workspaces().db(), self.workspace_id()).await?;
        let trashing = self.current_under(&tx, folder).await?;
        let chains: Vec<uuid::Uuid> = trashing.iter().map(|r| r.chain_id).collect();
        for chunk in chains.chunks(500) {
            file::Entity::update_many()
                .col_expr(file::Column::IsDeleted, Expr::value(true))
                .col_expr(file::Column::DeletedAt, Expr::value(tx.now))
                .col_expr(file::Column::UpdatedAt, Expr::value(tx.now))
                .filter(file::Column::WorkspaceId.eq(self.workspace_id().as_uuid()))
                .filter(file::Column::ChainId.is_in(chunk.iter().copied()))
                .filter(rows::flag(file::Column::IsDeleted, false))
                .exec(tx.conn())
                .await?;
        }
        let ids: Vec<uuid::Uuid> = trashing.iter().map(|r| r.id).collect();
        for chunk in ids.chunks(500) {
            file::Entity::update_many()
                .col_expr(file::Column::HistorySince, Expr::value(tx.now))
                .filter(file::Column::Id.is_in(chunk.iter().copied()))
                .exec(tx.conn())
                .await?;
        }
        let files = trashing.len() as u64;
        for row in trashing {
            tx.counters.became_history(rows::size(&row));
            tx.event(PendingEvent::about(EventKind::Deleted, &rows::to_info(row)?));
        }
        let committed = tx.commit().await?;
        self.finish(committed).await?;
        Ok(FolderChange { files })
    }

    /// The current files strictly inside a folder; NotFound when there are none.
    async fn current_under(&self, tx: &WriteTxn, folder: &WorkspacePath) -> Result<Vec<file::Model>> {
        let inside = PathPrefix::parse(folder.as_str())?;
        let found = file::Entity::find()
            .filter(rows::current(self.workspace_id()))
            .filter(prefix_condition(&inside))
            .filter(file::Column::Path.ne(folder.as_str()))
            .order_by_asc(file::Column::Path)
            .all(tx.conn())
            .await?;
        if found.is_empty() {
            return Err(WorkspaceError::NotFound(format!("folder {folder} (no files under it)")));
        }
        Ok(found)
    }

    /// A current version's info; an older version's id is refused (moves act on files).
    async fn current_info(&self, row: file::Model) -> Result<FileInfo> {
        if row.is_current {
            return rows::to_info(row);
        }
        Err(WorkspaceError::NotCurrent(format!(
            "file {} is an older version of {}; move the file by its current id",
            row.id, row.path
        )))
    }

    /// Makes `to` free for a move: a current file there is a Conflict, or with `overwrite` goes
    /// to the trash (restorable).
    async fn clear_destination(&self, tx: &mut WriteTxn, to: &WorkspacePath, overwrite: bool) -> Result<()> {
        let Some(occupant) = rows::current_at(tx.conn(), self.workspace_id(), to).await? else { return Ok(()) };
        if !overwrite {
            return Err(WorkspaceError::Conflict(to.to_string()));
        }
        file::Entity::update_many()
            .col_expr(file::Column::IsDeleted, Expr::value(true))
            .col_expr(file::Column::DeletedAt, Expr::value(tx.now))
            .col_expr(file::Column::UpdatedAt, Expr::value(tx.now))
            .filter(file::Column::WorkspaceId.eq(self.workspace_id().as_uuid()))
            .filter(file::Column::ChainId.eq(occupant.chain_id))
            .exec(tx.conn())
            .await?;
        file::Entity::update_many()
            .col_expr(file::Column::HistorySince, Expr::value(tx.now))
            .filter(file::Column::Id.eq(occupant.id))
            .exec(tx.conn())
            .await?;
        tx.counters.became_history(rows::size(&occupant));
        tx.event(PendingEvent::about(EventKind::Deleted, &rows::to_info(occupant)?));
        Ok(())
    }
}

/// A unique-index violation while renaming means another writer took the destination between
/// our check and the update (the workspace lock makes that impossible, but the index is the
/// last word).
fn unique_violation_is_conflict(
    result: std::result::Result<sea_orm::UpdateResult, sea_orm::DbErr>,
    to: &WorkspacePath,
) -> Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Err(WorkspaceError::Conflict(to.to_string()))
        }
        Err(err) => Err(err.into()),
    }
}
