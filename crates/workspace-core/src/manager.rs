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
//!
//! Blob keys name content ids, never paths, so a body can be staged before its path is known:
//! [`WorkspaceManager::stage`] and [`WorkspaceManager::commit`] are the two steps (a multipart
//! upload whose fields follow its file), and [`WorkspaceManager::write`] runs both after
//! [`WorkspaceManager::preflight`], which refuses a conflict early and caps the body at the room
//! under the quota when the path is known first.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

use crate::content::{self, StageError, StagedData};
use crate::entity::{user_workspace_file as file, workspace_content};
use crate::error::{Result, StorageError, WorkspaceError};
use crate::events::{Event, EventKind, PendingEvent};
use crate::feed;
use crate::ids::{FileId, SessionId, UserId, WorkspaceId};
use crate::model::{Checksum, ContentLocation, FileInfo, FileRef, NewFile, Precondition, Settings, Usage};
use crate::path::{PathPrefix, WorkspacePath};
use crate::rows;
use crate::storage::{BlobKey, ByteRange, GetResult, Storage};
use crate::txn::{Committed, Counters, WriteTxn};
use crate::workspaces::Workspaces;
use crate::writes;

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

/// How far a body may go while it is staged ([`WorkspaceManager::stage`]), and what its refusal
/// then says. From [`WorkspaceManager::preflight`] when the target is known, else
/// [`WorkspaceManager::stage_cap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageCap {
    bytes: u64,
    /// Live bytes of the workspace when the cap was sized, if it was sized against them.
    live_bytes: Option<u64>,
    /// Bytes of the file the write replaces, as far as known.
    replaced: u64,
}

impl StageCap {
    /// The most bytes the body may have.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// A body measured and held for [`WorkspaceManager::commit`]: in memory when small, else as a
/// blob of its workspace under a fresh content id (never a path: the target may still be
/// unknown). Dropped uncommitted, it removes its blob (in the background; [`Staged::discard`]
/// waits for it).
#[derive(Debug)]
pub struct Staged {
    workspace: WorkspaceId,
    inner: content::Staged,
}

impl Staged {
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.inner.size
    }

    /// SHA-256 of the bytes.
    pub fn checksum(&self) -> &Checksum {
        &self.inner.checksum
    }

    /// Whether the bytes are held in memory (they will live in the database row) rather than
    /// as a blob.
    pub fn is_inline(&self) -> bool {
        matches!(self.inner.data, StagedData::Inline(_))
    }

    /// Gives the body up: its blob, if any, is removed before this returns, even if the caller
    /// is cancelled meanwhile.
    pub async fn discard(self) {
        if let StagedData::Blob(guard) = self.inner.data {
            guard.discard().await;
        }
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
        let (row, _) =
            self.visible_row(&target, false).await?.ok_or_else(|| WorkspaceError::NotFound(target.to_string()))?;
        self.info_of(row).await
    }

    /// Looks a file up and readies its bytes (one query; content kept in the database comes
    /// with it).
    pub async fn open(&self, target: impl Into<FileRef>) -> Result<Opened> {
        let target = target.into();
        let (row, inline) =
            self.visible_row(&target, true).await?.ok_or_else(|| WorkspaceError::NotFound(target.to_string()))?;
        let inline = inline.map(Bytes::from);
        let info = self.info_of(row).await?;
        if info.is_inline() && inline.is_none() {
            return Err(WorkspaceError::NotFound(format!("content of file {}", info.id)));
        }
        Ok(Opened { info, inline, storage: self.storage().clone() })
    }

    /// The content of row-kept files already looked up (from a listing), by content id, in one
    /// query. Content no longer there is missing from the map.
    pub(crate) async fn inline_contents(
        &self,
        files: &[FileInfo],
    ) -> Result<std::collections::HashMap<crate::ids::ContentId, Bytes>> {
        let ids: Vec<uuid::Uuid> = files.iter().map(|f| f.content.id().as_uuid()).collect();
        let rows: Vec<(uuid::Uuid, Option<Vec<u8>>)> = workspace_content::Entity::find()
            .select_only()
            .column(workspace_content::Column::Id)
            .column(workspace_content::Column::InlineData)
            .filter(workspace_content::Column::WorkspaceId.eq(self.workspace_id.as_uuid()))
            .filter(workspace_content::Column::Id.is_in(ids))
            .into_tuple()
            .all(self.workspaces.db().conn())
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, data)| data.map(|d| (crate::ids::ContentId::from_uuid(id), Bytes::from(d))))
            .collect())
    }

    /// Readies the bytes of a file already looked up (from a listing): a blob needs no query,
    /// content kept in the database one.
    pub(crate) async fn open_info(&self, info: FileInfo) -> Result<Opened> {
        let inline = match info.content {
            ContentLocation::Blob(_) => None,
            ContentLocation::Inline(content) => {
                let data: Option<Option<Vec<u8>>> = workspace_content::Entity::find_by_id(content.as_uuid())
                    .select_only()
                    .column(workspace_content::Column::InlineData)
                    .into_tuple()
                    .one(self.workspaces.db().conn())
                    .await?;
                Some(Bytes::from(
                    data.flatten().ok_or_else(|| WorkspaceError::NotFound(format!("content of file {}", info.id)))?,
                ))
            }
        };
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

    /// The row `target` names outside the trash, and with `with_content` the bytes of its
    /// content when they are kept in the database (else `None`). Read on the calling thread
    /// where the database allows it (see [`crate::direct`]), else through the pool.
    async fn visible_row(
        &self,
        target: &FileRef,
        with_content: bool,
    ) -> Result<Option<(file::Model, Option<Vec<u8>>)>> {
        let db = self.workspaces.db();
        if let Some(found) = db.direct().and_then(|direct| direct.file(self.workspace_id, target, with_content)) {
            return Ok(found);
        }
        if !with_content {
            return match self.find_row(db.conn(), target).await {
                Ok(row) => Ok(Some((row, None))),
                Err(WorkspaceError::NotFound(_)) => Ok(None),
                Err(err) => Err(err),
            };
        }
        let query = file::Entity::find().filter(rows::visible(self.workspace_id));
        let query = match target {
            FileRef::Id(id) => query.filter(file::Column::Id.eq(id.as_uuid())),
            FileRef::Path(path) => {
                query.filter(rows::flag(file::Column::IsCurrent, true)).filter(file::Column::Path.eq(path.as_str()))
            }
        };
        let found = query.find_also_related(workspace_content::Entity).one(db.conn()).await?;
        Ok(found.map(|(row, content)| (row, content.and_then(|c| c.inline_data))))
    }

    /// The workspace's counters as they stand (outside any change), read like
    /// [`visible_row`](Self::visible_row).
    async fn counters(&self) -> Result<Counters> {
        let db = self.workspaces.db();
        match db.direct().and_then(|direct| direct.counters(self.workspace_id)) {
            Some(found) => found.ok_or_else(|| WorkspaceError::NotFound(format!("workspace {}", self.workspace_id))),
            None => Counters::read(db.conn(), self.workspace_id).await,
        }
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

    /// Streams `body` into a file at `new.path`: [`preflight`](Self::preflight) (fail fast, size
    /// the cap), [`stage`](Self::stage), then [`commit`](Self::commit). See the module docs for
    /// the steps and guarantees.
    pub async fn write<S>(&self, new: NewFile, body: S) -> Result<FileInfo>
    where
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        let cap = self.preflight(&new).await?;
        let staged = self.stage(body, cap).await?;
        self.commit(new, staged).await
    }

    /// Checks a write before any byte of its body moves, and sizes the cap to stage its body
    /// with. Refuses at once what the commit would refuse as things stand (a path conflict, a
    /// precondition that does not hold, an invalid name), and caps the body at what can still
    /// fit: the max file size, and the room under the quota once the file it replaces is counted
    /// out (history gives way to live bytes, so only live bytes count). The commit checks
    /// everything again.
    pub async fn preflight(&self, new: &NewFile) -> Result<StageCap> {
        let limits = self.settings().limits;
        file_name(new)?;
        let current = self.visible_row(&FileRef::Path(new.path.clone()), false).await?.map(|(row, _)| row);
        writes::check_target(new, current.clone().map(rows::to_info).transpose()?.as_ref())?;
        let counters = self.counters().await?;
        let replaced = current.as_ref().map_or(0, rows::size);
        let room = limits.quota_bytes.saturating_sub(counters.live_bytes.saturating_sub(replaced));
        Ok(StageCap { bytes: limits.max_file_size.min(room), live_bytes: Some(counters.live_bytes), replaced })
    }

    /// The cap for a body staged before its target is known (a multipart upload whose `file`
    /// part comes before its fields): the max file size, and never more than the whole quota,
    /// which no single file can pass. The room left under the quota is not subtracted: the file
    /// may replace one whose bytes then count out, and which one is not known yet, so that
    /// would refuse overwrites that fit. The commit decides the quota.
    pub fn stage_cap(&self) -> StageCap {
        let limits = self.settings().limits;
        StageCap { bytes: limits.max_file_size.min(limits.quota_bytes), live_bytes: None, replaced: 0 }
    }

    /// Measures `body` (size, sha-256, the head for sniffing) and holds it for
    /// [`commit`](Self::commit): in memory when it ends within the inline threshold, else
    /// streamed into a fresh blob of this workspace under a new content id, never whole in
    /// memory. A body that passes `cap` stops there: TooLarge past the max file size, else
    /// QuotaExceeded. A [`Staged`] dropped uncommitted removes its blob.
    pub async fn stage<S>(&self, body: S, cap: StageCap) -> Result<Staged>
    where
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        let settings = *self.settings();
        let limits = settings.limits;
        let db = self.workspaces.db();
        match content::stage(db, self.storage(), self.workspace_id, body, cap.bytes, settings.inline_max_bytes).await {
            Ok(inner) => Ok(Staged { workspace: self.workspace_id, inner }),
            Err(StageError::OverCap { bytes }) if bytes > limits.max_file_size => {
                Err(WorkspaceError::TooLarge { limit: limits.max_file_size })
            }
            Err(StageError::OverCap { bytes }) => {
                let used = match cap.live_bytes {
                    Some(used) => used,
                    None => self.counters().await?.live_bytes,
                };
                Err(WorkspaceError::QuotaExceeded {
                    used,
                    limit: limits.quota_bytes,
                    needed: bytes.saturating_sub(cap.replaced),
                })
            }
            Err(StageError::Body(e)) => Err(WorkspaceError::InvalidInput(format!("the upload body failed: {e}"))),
            Err(StageError::Storage(e)) => Err(e.into()),
        }
    }

    /// Makes a staged body the file at `new.path`, in one transaction: conflict and
    /// preconditions, quota on live bytes, dedup, the previous file becoming a version, trimming
    /// and room, the event. Concurrent writes of the workspace share that transaction (see
    /// the `writes` module). If the commit fails, the staged blob is removed (after asking the
    /// database when the outcome is ambiguous); a body staged in another workspace is refused and
    /// removed.
    pub async fn commit(&self, new: NewFile, staged: Staged) -> Result<FileInfo> {
        if staged.workspace != self.workspace_id {
            staged.discard().await;
            return Err(WorkspaceError::InvalidInput(
                "a body staged in another workspace cannot be committed here".into(),
            ));
        }
        let name = match file_name(&new) {
            Ok(name) => name,
            Err(err) => {
                staged.discard().await;
                return Err(err);
            }
        };
        let write = writes::Write { new, name, session: self.session_id.clone(), staged: staged.inner };
        writes::submit(&self.workspaces, self.workspace_id, write).await
    }

    /// Writes a buffer (convenience over [`write`](Self::write)).
    pub async fn write_bytes(&self, new: NewFile, bytes: impl Into<Bytes>) -> Result<FileInfo> {
        let bytes = bytes.into();
        self.write(new, futures::stream::once(async move { Ok(bytes) })).await
    }

    /// After a commit: see [`Workspaces::finish`].
    pub(crate) async fn finish(&self, committed: Committed) -> Result<()> {
        self.workspaces.finish(self.workspace_id, committed).await
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
        self.finish(committed).await?;
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

    /// The workspace's events after `after`, oldest first, at most `limit` (SPEC §16); `after = 0`
    /// is the start of what is retained. A resume from before retention is
    /// [`WorkspaceError::EventsExpired`] (with the oldest id held); an `after` beyond the latest
    /// event is InvalidInput. For live events, see [`Workspaces::subscribe`].
    pub async fn events(&self, after: u64, limit: u64) -> Result<Vec<Event>> {
        feed::read_after(self.workspaces.db(), self.workspace_id, after, limit).await
    }

    /// The id of the workspace's latest event (0 before the first change).
    pub async fn latest_event_id(&self) -> Result<u64> {
        feed::latest_id(self.workspaces.db(), self.workspace_id).await
    }
}

/// The display name a write gives its file: the one it names, validated, else the path's last
/// segment.
fn file_name(new: &NewFile) -> Result<String> {
    match &new.name {
        Some(name) => validate_name(name),
        None => Ok(new.path.file_name().to_owned()),
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
