//! `WorkspaceManager`: every read and change of one user's files goes through here (SPEC §5,
//! §13). Get one from [`crate::Workspaces`].
//!
//! A write stages its body first (measured while it streams; kept for the row when small, else
//! streamed into a blob under a fresh content id, see [`crate::content`]), then commits one
//! transaction ([`WriteTxn`]): path conflict and preconditions, quota on live bytes, dedup of the
//! content, the previous current file becoming a version, version trimming and room made by
//! purging the oldest history, the event, the counters. A staged blob that ends up unused (the
//! write failed, was cancelled, or deduplicated) is removed; see the invariants in
//! `docs/ARCHITECTURE.md`.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
};

use crate::content::{self, StageError, StagedData};
use crate::entity::{user_workspace_file as file, workspace_content, workspace_event};
use crate::error::{Result, StorageError, WorkspaceError};
use crate::events::{Event, EventKind, PendingEvent};
use crate::history;
use crate::ids::{FileId, SessionId, UserId, WorkspaceId};
use crate::mime;
use crate::model::{ContentLocation, FileInfo, FileRef, INLINE_STORAGE_PATH, NewFile, Precondition, Settings, Usage};
use crate::path::{PathPrefix, WorkspacePath};
use crate::rows;
use crate::storage::{BlobKey, ByteRange, GetResult, Storage};
use crate::txn::{Counters, WriteTxn};
use crate::workspaces::Workspaces;

/// Largest page a listing returns.
pub const MAX_PAGE_SIZE: u64 = 1000;

/// Reads and changes the files of one user's workspace, optionally within one session.
#[derive(Debug, Clone)]
pub struct WorkspaceManager {
    workspaces: Workspaces,
    user_id: UserId,
    workspace_id: WorkspaceId,
    session_id: Option<SessionId>,
}

/// A file opened for reading: its info, and its bytes once [`Opened::read`] asks for them. For
/// content kept in the database the bytes came with the lookup; blobs are opened on demand, so
/// a conditional request answered 304 costs no storage call.
#[derive(Debug)]
pub struct Opened {
    /// The file.
    pub info: FileInfo,
    inline: Option<Bytes>,
    storage: Storage,
}

impl Opened {
    /// Streams the file's bytes, whole or a range.
    pub async fn read(&self, range: Option<ByteRange>) -> Result<GetResult> {
        match (&self.inline, self.info.content) {
            (Some(bytes), _) => {
                let size = bytes.len() as u64;
                let range = match range {
                    Some(r) => r.resolve(size)?,
                    None => 0..size,
                };
                // Resolved against the size, so both ends fit.
                let slice = bytes.slice(range.start as usize..range.end as usize);
                let stream = futures::stream::once(async move { Ok(slice) });
                Ok(GetResult { size, range, stream: Box::pin(stream) })
            }
            (None, location) => {
                let key = BlobKey::for_content(self.info.workspace_id, location.id());
                match self.storage.get(&key, range).await {
                    Ok(get) => Ok(get),
                    Err(StorageError::NotFound(_)) => {
                        Err(WorkspaceError::NotFound(format!("content of file {}", self.info.id)))
                    }
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// The whole content in memory (for small files; stream large ones with [`Opened::read`]).
    pub async fn bytes(&self) -> Result<Bytes> {
        if let Some(bytes) = &self.inline {
            return Ok(bytes.clone());
        }
        use futures::TryStreamExt;
        let get = self.read(None).await?;
        let chunks: Vec<Bytes> = get.stream.try_collect().await?;
        Ok(if chunks.len() == 1 { chunks.into_iter().next().unwrap_or_default() } else { chunks.concat().into() })
    }
}

impl WorkspaceManager {
    pub(crate) fn new(
        workspaces: Workspaces,
        user_id: UserId,
        workspace_id: WorkspaceId,
        session_id: Option<SessionId>,
    ) -> Self {
        Self { workspaces, user_id, workspace_id, session_id }
    }

    /// The workspace this manager works in.
    pub fn workspace_id(&self) -> WorkspaceId {
        self.workspace_id
    }

    /// The user this manager acts for.
    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }

    /// The session, if any.
    pub fn session_id(&self) -> Option<&SessionId> {
        self.session_id.as_ref()
    }

    /// The settings in force (limits, history, inline threshold).
    pub fn settings(&self) -> &Settings {
        self.workspaces.settings()
    }

    pub(crate) fn workspaces(&self) -> &Workspaces {
        &self.workspaces
    }

    fn storage(&self) -> &Storage {
        self.workspaces.storage()
    }

    /// Resolves user input to a path with this manager's session (SPEC §4).
    pub fn resolve_path(&self, input: &str) -> Result<WorkspacePath> {
        Ok(WorkspacePath::resolve(input, self.session_id.as_ref())?)
    }

    /// Resolves a listing prefix: relative means inside the session (unless
    /// `include_all_sessions`, then from the root), absolute stays absolute, empty means the
    /// session's folder (or the root).
    pub fn resolve_prefix(&self, input: &str, include_all_sessions: bool) -> Result<PathPrefix> {
        let session = if include_all_sessions { None } else { self.session_id.as_ref() };
        Ok(PathPrefix::resolve(input, session)?)
    }

    /// The file a reference names: a current file or a version (never the trash). Files of other
    /// workspaces are NotFound.
    pub async fn lookup(&self, target: impl Into<FileRef>) -> Result<FileInfo> {
        let target = target.into();
        let row = self.find_row(self.workspaces.db().conn(), &target).await?;
        self.info_of(row).await
    }

    /// Looks a file up and readies its bytes (one query; content kept in the database comes
    /// with it).
    pub async fn open(&self, target: impl Into<FileRef>) -> Result<Opened> {
        let target = target.into();
        let query = file::Entity::find().filter(rows::visible(self.workspace_id));
        let query = match &target {
            FileRef::Id(id) => query.filter(file::Column::Id.eq(id.as_uuid())),
            FileRef::Path(path) => {
                query.filter(file::Column::IsCurrent.eq(true)).filter(file::Column::Path.eq(path.as_str()))
            }
        };
        let (row, content) = query
            .find_also_related(workspace_content::Entity)
            .one(self.workspaces.db().conn())
            .await?
            .ok_or_else(|| WorkspaceError::NotFound(target.to_string()))?;
        let inline = content.and_then(|c| c.inline_data).map(Bytes::from);
        let info = self.info_of(row).await?;
        if info.is_inline() && inline.is_none() {
            return Err(WorkspaceError::NotFound(format!("content of file {}", info.id)));
        }
        Ok(Opened { info, inline, storage: self.storage().clone() })
    }

    /// Reads a whole file into memory (meant for small files; stream large ones from [`open`]).
    ///
    /// [`open`]: Self::open
    pub async fn read(&self, target: impl Into<FileRef>) -> Result<(FileInfo, Bytes)> {
        let opened = self.open(target).await?;
        let bytes = opened.bytes().await?;
        Ok((opened.info, bytes))
    }

    /// A row as callers see it; an older version learns its current version's id.
    async fn info_of(&self, row: file::Model) -> Result<FileInfo> {
        let chain = row.chain_id;
        let mut info = rows::to_info(row)?;
        if !info.is_current {
            let current: Option<uuid::Uuid> = file::Entity::find()
                .select_only()
                .column(file::Column::Id)
                .filter(rows::current(self.workspace_id))
                .filter(file::Column::ChainId.eq(chain))
                .into_tuple()
                .one(self.workspaces.db().conn())
                .await?;
            info.current_id = current.map(FileId::from_uuid);
        }
        Ok(info)
    }

    /// The row a reference names, outside the trash.
    pub(crate) async fn find_row<C: ConnectionTrait>(&self, conn: &C, target: &FileRef) -> Result<file::Model> {
        let found = match target {
            FileRef::Id(id) => {
                file::Entity::find_by_id(id.as_uuid()).filter(rows::visible(self.workspace_id)).one(conn).await?
            }
            FileRef::Path(path) => rows::current_at(conn, self.workspace_id, path).await?,
        };
        found.ok_or_else(|| WorkspaceError::NotFound(target.to_string()))
    }

    /// Streams `body` into a file at `new.path`. See the module docs for the steps and guarantees.
    pub async fn write<S>(&self, new: NewFile, body: S) -> Result<FileInfo>
    where
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        let settings = *self.settings();
        let limits = settings.limits;
        let name = match &new.name {
            Some(name) => validate_name(name)?,
            None => new.path.file_name().to_owned(),
        };
        let db = self.workspaces.db();

        // Fail fast before any byte moves, and size the cap so an upload that cannot fit stops as
        // soon as it passes it. History gives way to live bytes, so only live bytes count. The
        // transaction checks everything again.
        let current = rows::current_at(db.conn(), self.workspace_id, &new.path).await?;
        check_target(&new, current.clone().map(rows::to_info).transpose()?.as_ref())?;
        let counters = Counters::read(db.conn(), self.workspace_id).await?;
        let replaced = current.as_ref().map_or(0, rows::size);
        let live_others = counters.live_bytes.saturating_sub(replaced);
        let room = limits.quota_bytes.saturating_sub(live_others);
        let cap = limits.max_file_size.min(room);

        let staged =
            match content::stage(db, self.storage(), self.workspace_id, body, cap, settings.inline_max_bytes).await {
                Ok(staged) => staged,
                Err(StageError::OverCap { bytes }) if bytes > limits.max_file_size => {
                    return Err(WorkspaceError::TooLarge { limit: limits.max_file_size });
                }
                Err(StageError::OverCap { bytes }) => {
                    return Err(WorkspaceError::QuotaExceeded {
                        used: counters.live_bytes,
                        limit: limits.quota_bytes,
                        needed: bytes.saturating_sub(replaced),
                    });
                }
                Err(StageError::Body(e)) => {
                    return Err(WorkspaceError::InvalidInput(format!("the upload body failed: {e}")));
                }
                Err(StageError::Storage(e)) => return Err(e.into()),
            };

        let committed = self.commit_write(&new, name, &staged).await;
        let (info, deduplicated, unreferenced) = match (committed, staged.data) {
            (Ok(done), StagedData::Blob(guard)) => {
                if done.1 {
                    guard.discard().await;
                } else {
                    guard.keep();
                }
                done
            }
            (Ok(done), StagedData::Inline(_)) => done,
            (Err(err), StagedData::Blob(guard)) => {
                // A failed commit is ambiguous (the connection may have died after the database
                // committed): the guard asks the database before removing the blob.
                guard.release().await;
                return Err(err);
            }
            (Err(err), StagedData::Inline(_)) => return Err(err),
        };
        let _ = deduplicated;
        self.finish(unreferenced).await?;
        Ok(info)
    }

    /// The transaction of a write: conflict and preconditions, quota, dedup, the new version,
    /// trimming, room, the event. Returns the new file, whether its content was deduplicated,
    /// and the blobs the change left unreferenced.
    async fn commit_write(
        &self,
        new: &NewFile,
        name: String,
        staged: &content::Staged,
    ) -> Result<(FileInfo, bool, Vec<BlobKey>)> {
        let settings = *self.settings();
        let limits = settings.limits;
        let db = self.workspaces.db();
        let mime_type = mime::choose(new.mime_type.as_deref(), &name);
        let mut metadata = new.metadata.clone();
        if let Some(sniffed) = mime::sniff(&staged.head)
            && sniffed != mime_type.essence_str()
        {
            metadata.insert("sniffed_mime_type".into(), sniffed.into());
        }

        let mut tx = WriteTxn::begin(db, self.workspace_id).await?;
        let current = rows::current_at(tx.conn(), self.workspace_id, &new.path).await?;
        let current_info = current.clone().map(rows::to_info).transpose()?;
        check_target(new, current_info.as_ref())?;
        let replaced = current.as_ref().map_or(0, rows::size);
        let live_after = tx.counters.live_bytes.saturating_sub(replaced) + staged.size;
        if live_after > limits.quota_bytes {
            return Err(WorkspaceError::QuotaExceeded {
                used: tx.counters.live_bytes,
                limit: limits.quota_bytes,
                needed: staged.size.saturating_sub(replaced),
            });
        }
        let (location, deduplicated) = content::record(&tx, staged).await?;
        let id = FileId::new();
        let (chain_id, version) = match &current {
            Some(old) => {
                file::Entity::update_many()
                    .col_expr(file::Column::IsCurrent, Expr::value(false))
                    .col_expr(file::Column::HistorySince, Expr::value(tx.now))
                    .col_expr(file::Column::UpdatedAt, Expr::value(tx.now))
                    .filter(file::Column::Id.eq(old.id))
                    .exec(tx.conn())
                    .await?;
                tx.counters.became_history(replaced);
                (FileId::from_uuid(old.chain_id), old.version + 1)
            }
            None => (id, 1),
        };
        let storage_path = match location {
            ContentLocation::Inline(_) => INLINE_STORAGE_PATH.to_owned(),
            ContentLocation::Blob(content) => {
                self.storage().storage_path(&BlobKey::for_content(self.workspace_id, content))
            }
        };
        let row = file::Model {
            id: id.as_uuid(),
            workspace_id: self.workspace_id.as_uuid(),
            name,
            path: new.path.to_string(),
            storage_path,
            mime_type: mime_type.to_string(),
            size_bytes: i64::try_from(staged.size).unwrap_or(i64::MAX),
            checksum: staged.checksum.to_string(),
            is_deleted: false,
            deleted_at: None,
            metadata: serde_json::Value::Object(metadata),
            source: new.source.as_str().to_owned(),
            source_session_id: self.session_id.as_ref().map(|s| s.as_str().to_owned()),
            source_exec_id: new.source_exec_id.clone(),
            created_at: tx.now,
            updated_at: tx.now,
            content_id: location.id().as_uuid(),
            chain_id: chain_id.as_uuid(),
            version,
            is_current: true,
            history_since: None,
        };
        let inserted = match file::ActiveModel::from(row).reset_all().insert(tx.conn()).await {
            Ok(model) => model,
            Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return Err(WorkspaceError::Conflict(new.path.to_string()));
            }
            Err(err) => return Err(err.into()),
        };
        tx.counters.live_bytes += staged.size;
        tx.counters.file_count += 1;
        let info = rows::to_info(inserted)?;
        let kind = if current.is_some() { EventKind::Overwritten } else { EventKind::Created };
        tx.event(PendingEvent::about(kind, &info));
        history::trim_versions(&mut tx, chain_id, settings.history.max_versions).await?;
        history::make_room(&mut tx, limits.quota_bytes).await?;

        let committed = tx.commit().await?;
        Ok((info, deduplicated, committed.unreferenced_blobs))
    }

    /// Writes a buffer (convenience over [`write`](Self::write)).
    pub async fn write_bytes(&self, new: NewFile, bytes: impl Into<Bytes>) -> Result<FileInfo> {
        let bytes = bytes.into();
        self.write(new, futures::stream::once(async move { Ok(bytes) })).await
    }

    /// After a commit: durable before acknowledged (on a SQLite file the commit skipped its own
    /// fsync and the group fsync covers it, see `Db`), then the blobs nothing refers to any more
    /// are removed. If the fsync fails the change stays, unacknowledged.
    pub(crate) async fn finish(&self, unreferenced_blobs: Vec<BlobKey>) -> Result<()> {
        self.workspaces.db().sync_commits().await?;
        content::remove_blobs(self.storage(), unreferenced_blobs).await;
        Ok(())
    }

    /// Moves a file (with its versions) to the trash; its path is free at once. Only the current
    /// version names the file for this: an older version's id is refused.
    pub async fn delete(&self, target: impl Into<FileRef>, precondition: Precondition) -> Result<FileInfo> {
        let target = target.into();
        let db = self.workspaces.db();
        let mut tx = WriteTxn::begin(db, self.workspace_id).await?;
        let row = self.find_row(tx.conn(), &target).await?;
        if !row.is_current {
            let current = self.info_of(row.clone()).await?.current_id;
            return Err(WorkspaceError::NotCurrent(format!(
                "file {} is an older version of {}; delete the file by its current id{} to move it to the trash",
                row.id,
                row.path,
                current.map(|id| format!(" ({id})")).unwrap_or_default()
            )));
        }
        let mut info = rows::to_info(row)?;
        precondition.check(Some(&info))?;
        file::Entity::update_many()
            .col_expr(file::Column::IsDeleted, Expr::value(true))
            .col_expr(file::Column::DeletedAt, Expr::value(tx.now))
            .col_expr(file::Column::UpdatedAt, Expr::value(tx.now))
            .filter(file::Column::WorkspaceId.eq(self.workspace_id.as_uuid()))
            .filter(file::Column::ChainId.eq(info.chain_id.as_uuid()))
            .exec(tx.conn())
            .await?;
        file::Entity::update_many()
            .col_expr(file::Column::HistorySince, Expr::value(tx.now))
            .filter(file::Column::Id.eq(info.id.as_uuid()))
            .exec(tx.conn())
            .await?;
        tx.counters.became_history(info.size_bytes);
        tx.event(PendingEvent::about(EventKind::Deleted, &info));
        info.deleted_at = Some(tx.now);
        let committed = tx.commit().await?;
        self.finish(committed.unreferenced_blobs).await?;
        Ok(info)
    }

    /// A direct URL from the backend when it can sign one; `None` means "serve through the API"
    /// (always for content kept in the database).
    pub async fn download_url(&self, info: &FileInfo, expires_in: Duration) -> Result<Option<String>> {
        if info.workspace_id != self.workspace_id {
            return Err(WorkspaceError::NotFound(format!("file {}", info.id)));
        }
        match info.content {
            ContentLocation::Inline(_) => Ok(None),
            ContentLocation::Blob(content) => {
                Ok(self.storage().download_url(&BlobKey::for_content(self.workspace_id, content), expires_in).await?)
            }
        }
    }

    /// Bytes used (live and history), the quota and the number of current files, from the
    /// workspace's durable counters.
    pub async fn usage(&self) -> Result<Usage> {
        let counters = Counters::read(self.workspaces.db().conn(), self.workspace_id).await?;
        Ok(counters.usage(self.settings().limits.quota_bytes))
    }

    /// The workspace's events after `after`, oldest first, at most `limit` (SPEC §16).
    pub async fn events(&self, after: u64, limit: u64) -> Result<Vec<Event>> {
        workspace_event::Entity::find()
            .filter(workspace_event::Column::WorkspaceId.eq(self.workspace_id.as_uuid()))
            .filter(workspace_event::Column::Id.gt(i64::try_from(after).unwrap_or(i64::MAX)))
            .order_by_asc(workspace_event::Column::Id)
            .limit(limit)
            .all(self.workspaces.db().conn())
            .await?
            .into_iter()
            .map(Event::try_from)
            .collect()
    }
}

/// Conflict and preconditions of a write against the current file at its path.
fn check_target(new: &NewFile, current: Option<&FileInfo>) -> Result<()> {
    new.precondition.check(current)?;
    let overwrite = new.overwrite || matches!(new.precondition, Precondition::IfMatch(_) | Precondition::IfExists);
    match current {
        Some(_) if !overwrite => Err(WorkspaceError::Conflict(new.path.to_string())),
        _ => Ok(()),
    }
}

fn validate_name(name: &str) -> Result<String> {
    if name.is_empty() || name.len() > 255 {
        return Err(WorkspaceError::InvalidInput("a file name must be 1 to 255 bytes long".into()));
    }
    if name.chars().any(char::is_control) {
        return Err(WorkspaceError::InvalidInput("a file name may not contain control characters".into()));
    }
    Ok(name.to_owned())
}
