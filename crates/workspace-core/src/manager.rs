//! `WorkspaceManager`: every read and write of a user's files goes through here (SPEC §5).
//!
//! A write streams the body into storage under a fresh file id while it is measured, then
//! commits one transaction (quota, path conflict, retire the old row, insert). Whatever fails
//! after the blob was stored removes the blob again, so no row lacks its blob and no blob
//! outlives a failed write.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use futures::{Stream, TryStreamExt};
use sea_orm::sea_query::{Expr, IntoCondition};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr, sea_query::OnConflict,
};
use uuid::Uuid;

use crate::db::Db;
use crate::entity::{user_workspace, user_workspace_file as file};
use crate::error::{Result, StorageError, WorkspaceError};
use crate::ids::{FileId, SessionId, UserId, WorkspaceId};
use crate::meter::Meter;
use crate::mime;
use crate::model::{FileInfo, FilePage, Limits, NewFile, Usage};
use crate::path::{PathPrefix, WorkspacePath};
use crate::storage::{BlobKey, ByteRange, GetResult, Storage};

/// Largest page a listing returns.
pub const MAX_PAGE_SIZE: u64 = 1000;

/// Reads and writes the files of one user's workspace, optionally within one session.
#[derive(Debug, Clone)]
pub struct WorkspaceManager {
    db: Db,
    storage: Storage,
    user_id: UserId,
    workspace_id: WorkspaceId,
    session_id: Option<SessionId>,
    limits: Limits,
}

impl WorkspaceManager {
    /// A manager for a workspace the caller already resolved (see
    /// [`WorkspaceManager::get_or_create_workspace`]), with default limits.
    pub fn new(
        db: Db,
        storage: Storage,
        user_id: UserId,
        workspace_id: WorkspaceId,
        session_id: Option<SessionId>,
    ) -> Self {
        Self { db, storage, user_id, workspace_id, session_id, limits: Limits::default() }
    }

    /// Finds or creates the user's workspace, then builds a manager for it.
    pub async fn for_user(db: Db, storage: Storage, user_id: UserId, session_id: Option<SessionId>) -> Result<Self> {
        let workspace_id = Self::get_or_create_workspace(&db, &user_id).await?;
        Ok(Self::new(db, storage, user_id, workspace_id, session_id))
    }

    /// A manager for an existing workspace by id (for example from a signed link), outside any
    /// session. NotFound when the workspace does not exist.
    pub async fn for_workspace(db: Db, storage: Storage, workspace_id: WorkspaceId) -> Result<Self> {
        let row = user_workspace::Entity::find_by_id(workspace_id.as_uuid())
            .one(db.conn())
            .await?
            .ok_or_else(|| WorkspaceError::NotFound(format!("workspace {workspace_id}")))?;
        let user = UserId::new(row.user_id)
            .map_err(|e| WorkspaceError::InvalidInput(format!("stored user id is invalid: {e}")))?;
        Ok(Self::new(db, storage, user, workspace_id, None))
    }

    /// Replaces the limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The workspace's id for `user_id`, created if missing. Safe when many callers race: the
    /// insert ignores a conflict on `user_id` and everyone reads back the one row.
    pub async fn get_or_create_workspace(db: &Db, user_id: &UserId) -> Result<WorkspaceId> {
        let now = Utc::now();
        let row = user_workspace::ActiveModel {
            id: Set(Uuid::new_v4()),
            user_id: Set(user_id.as_str().to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
        };
        user_workspace::Entity::insert(row)
            .on_conflict(OnConflict::column(user_workspace::Column::UserId).do_nothing().to_owned())
            .exec_without_returning(db.conn())
            .await?;
        let found = user_workspace::Entity::find()
            .filter(user_workspace::Column::UserId.eq(user_id.as_str()))
            .one(db.conn())
            .await?
            .ok_or_else(|| WorkspaceError::NotFound(format!("workspace of user {user_id}")))?;
        Ok(WorkspaceId::from_uuid(found.id))
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

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Resolves user input to a path with this manager's session (SPEC §4).
    pub fn resolve_path(&self, input: &str) -> Result<WorkspacePath> {
        Ok(WorkspacePath::resolve(input, self.session_id.as_ref())?)
    }

    /// Streams `body` into a new file. See the module docs for the steps and guarantees.
    pub async fn write_file<S>(&self, new: NewFile, body: S) -> Result<FileInfo>
    where
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        let name = match &new.name {
            Some(name) => validate_name(name)?,
            None => new.path.file_name().to_owned(),
        };

        // Fail fast before any byte moves, and size the cap so an upload that cannot fit the
        // quota stops as soon as it passes it. The transaction below re-checks both.
        let existing = self.live_row_by_path(self.db.conn(), &new.path).await?;
        if existing.is_some() && !new.overwrite {
            return Err(WorkspaceError::Conflict(new.path.to_string()));
        }
        let replaced = existing.as_ref().map_or(0, size_of);
        let used = self.used_for_cap().await?;
        let room = self.limits.quota_bytes.saturating_sub(used).saturating_add(replaced);
        let cap = self.limits.max_file_size.min(room);

        let file_id = FileId::new();
        let key = BlobKey::for_file(self.workspace_id, file_id);
        let (meter, metered) = Meter::wrap(body, cap);
        let put = self.storage.put(&key, metered).await;
        let measured = meter.finish();
        if let Err(err) = put {
            self.remove_blob(&key).await;
            return Err(if measured.exceeded {
                if measured.bytes > self.limits.max_file_size {
                    WorkspaceError::TooLarge { limit: self.limits.max_file_size }
                } else {
                    WorkspaceError::QuotaExceeded { used, limit: self.limits.quota_bytes, needed: measured.bytes }
                }
            } else {
                match err {
                    StorageError::Body(e) => WorkspaceError::InvalidInput(format!("the upload body failed: {e}")),
                    other => WorkspaceError::Storage(other),
                }
            });
        }

        let mime_type = mime::choose(new.mime_type.as_deref(), &name);
        let mut metadata = new.metadata.clone();
        if let Some(sniffed) = mime::sniff(&measured.head)
            && sniffed != mime::essence(&mime_type)
        {
            metadata.insert("sniffed_mime_type".into(), sniffed.into());
        }
        let now = Utc::now();
        let row = file::Model {
            id: file_id.as_uuid(),
            workspace_id: self.workspace_id.as_uuid(),
            name,
            path: new.path.to_string(),
            storage_path: self.storage.storage_path(&key),
            mime_type,
            size_bytes: i64::try_from(measured.bytes).unwrap_or(i64::MAX),
            checksum: measured.sha256_hex,
            is_deleted: false,
            deleted_at: None,
            metadata: serde_json::Value::Object(metadata),
            source: new.source.as_str().to_owned(),
            source_session_id: self.session_id.as_ref().map(|s| s.as_str().to_owned()),
            source_exec_id: new.source_exec_id.clone(),
            created_at: now,
            updated_at: now,
        };
        let (txn, info, retired) = match self.stage_new_row(row, new.overwrite).await {
            Ok(staged) => staged,
            Err(err) => {
                self.remove_blob(&key).await;
                return Err(err);
            }
        };
        let committed = txn.commit().await;
        if committed.is_ok() {
            self.db.usage_committed(file_id.as_uuid());
        }
        if let Err(err) = committed {
            // A failed COMMIT is ambiguous: the connection may have died after the database
            // committed. Look before deleting, so a committed row never loses its blob.
            match self.get_file_info(file_id).await {
                Ok(_) => tracing::warn!(%file_id, error = %err, "commit reported failure but the row is there"),
                Err(WorkspaceError::NotFound(_)) => {
                    self.remove_blob(&key).await;
                    return Err(err.into());
                }
                Err(check) => {
                    tracing::warn!(%file_id, error = %check, "cannot tell whether the commit landed; gc decides");
                    return Err(err.into());
                }
            }
        }
        // Durable before acknowledged: on a SQLite file the commit skipped its own fsync and this
        // group fsync covers it (see `Db`). If it fails the row and its blob stay, unacknowledged.
        self.db.sync_commits().await?;
        if let Some(old) = retired {
            self.remove_blob(&BlobKey::for_file(self.workspace_id, FileId::from_uuid(old))).await;
        }
        Ok(info)
    }

    /// Writes a buffer (convenience over [`write_file`](Self::write_file)).
    pub async fn write_bytes(&self, new: NewFile, bytes: impl Into<Bytes>) -> Result<FileInfo> {
        let bytes = bytes.into();
        self.write_file(new, futures::stream::once(async move { Ok(bytes) })).await
    }

    /// The transaction of a write, up to its commit: lock, conflict, quota, retire, insert.
    /// Returns the open transaction, the new file and the id of the row it replaced.
    async fn stage_new_row(
        &self,
        row: file::Model,
        overwrite: bool,
    ) -> Result<(DatabaseTransaction, FileInfo, Option<Uuid>)> {
        let txn = self.db.begin_write().await?;
        if self.db.backend() == DbBackend::Postgres {
            // Serialise quota checks per workspace: two writers cannot both pass a check only one fits.
            user_workspace::Entity::find_by_id(self.workspace_id.as_uuid())
                .lock_exclusive()
                .one(&txn)
                .await?
                .ok_or_else(|| WorkspaceError::NotFound(format!("workspace {}", self.workspace_id)))?;
        }
        let path = WorkspacePath::parse(&row.path)?;
        let existing = self.live_row_by_path(&txn, &path).await?;
        if existing.is_some() && !overwrite {
            return Err(WorkspaceError::Conflict(row.path));
        }
        let replaced = existing.as_ref().map_or(0, size_of);
        let ws = self.workspace_id.as_uuid();
        let (used, files) = match self.db.cached_usage(&txn, ws).await? {
            Some(usage) => usage,
            None => self.used_bytes(&txn).await?,
        };
        let new_size = size_of(&row);
        let used_after = used - replaced.min(used) + new_size;
        if used_after > self.limits.quota_bytes {
            return Err(WorkspaceError::QuotaExceeded {
                used,
                limit: self.limits.quota_bytes,
                needed: new_size.saturating_sub(replaced),
            });
        }
        let retired = match existing {
            Some(old) => {
                soft_delete().filter(file::Column::Id.eq(old.id)).exec(&txn).await?;
                Some(old.id)
            }
            None => None,
        };
        let active: file::ActiveModel = row.into();
        let inserted = match active.insert(&txn).await {
            Ok(model) => model,
            Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return Err(WorkspaceError::Conflict(path.to_string()));
            }
            Err(err) => return Err(err.into()),
        };
        let files = files + u64::from(retired.is_none());
        self.db.stage_usage(ws, (used_after, files), inserted.id);
        Ok((txn, inserted.try_into()?, retired))
    }

    /// Live bytes for sizing an upload's cap before its transaction. The cached figure may be
    /// stale: too low only delays a quota refusal to the transaction's exact check; too high
    /// could refuse wrongly, so when the quota (not the file size limit) would set the cap, sum.
    async fn used_for_cap(&self) -> Result<u64> {
        if let Some((used, _)) = self.db.usage_hint(self.workspace_id.as_uuid())
            && self.limits.quota_bytes.saturating_sub(used) >= self.limits.max_file_size
        {
            return Ok(used);
        }
        Ok(self.used_bytes(self.db.conn()).await?.0)
    }

    /// Reads a whole file by path (resolved with the session). Meant for small files; stream
    /// large ones with [`open_read`](Self::open_read).
    pub async fn read_file(&self, path: &str) -> Result<(FileInfo, Bytes)> {
        let info = self.get_file_info_by_path(path).await?;
        let bytes = self.read_blob(&info).await?;
        Ok((info, bytes))
    }

    /// Reads a whole file by id.
    pub async fn read_file_by_id(&self, id: FileId) -> Result<(FileInfo, Bytes)> {
        let info = self.get_file_info(id).await?;
        let bytes = self.read_blob(&info).await?;
        Ok((info, bytes))
    }

    async fn read_blob(&self, info: &FileInfo) -> Result<Bytes> {
        let get = self.open_blob(info, None).await?;
        let chunks: Vec<Bytes> = get.stream.try_collect().await?;
        Ok(chunks.concat().into())
    }

    /// Opens a streaming read of a file, whole or a byte range.
    pub async fn open_read(&self, id: FileId, range: Option<ByteRange>) -> Result<(FileInfo, GetResult)> {
        let info = self.get_file_info(id).await?;
        let get = self.open_blob(&info, range).await?;
        Ok((info, get))
    }

    /// Opens a streaming read of a file whose info the caller just looked up with
    /// [`get_file_info`](Self::get_file_info): the same as [`open_read`](Self::open_read) without
    /// a second lookup. Info of another workspace's file opens nothing (NotFound).
    pub async fn open_read_info(&self, info: &FileInfo, range: Option<ByteRange>) -> Result<GetResult> {
        if info.workspace_id != self.workspace_id {
            return Err(WorkspaceError::NotFound(format!("file {}", info.id)));
        }
        self.open_blob(info, range).await
    }

    async fn open_blob(&self, info: &FileInfo, range: Option<ByteRange>) -> Result<GetResult> {
        let key = BlobKey::for_file(self.workspace_id, info.id);
        match self.storage.get(&key, range).await {
            Ok(get) => Ok(get),
            Err(StorageError::NotFound(_)) => Err(WorkspaceError::NotFound(format!("content of file {}", info.id))),
            Err(e) => Err(e.into()),
        }
    }

    /// Info of a live file by id. Files of other workspaces are NotFound.
    pub async fn get_file_info(&self, id: FileId) -> Result<FileInfo> {
        file::Entity::find_by_id(id.as_uuid())
            .filter(self.live_in_workspace())
            .one(self.db.conn())
            .await?
            .ok_or_else(|| WorkspaceError::NotFound(format!("file {id}")))?
            .try_into()
    }

    /// Info of a live file by path (resolved with the session).
    pub async fn get_file_info_by_path(&self, path: &str) -> Result<FileInfo> {
        let path = self.resolve_path(path)?;
        self.live_row_by_path(self.db.conn(), &path)
            .await?
            .ok_or_else(|| WorkspaceError::NotFound(format!("file at {path}")))?
            .try_into()
    }

    /// Lists live files in path order.
    ///
    /// `prefix` is resolved like a path: relative means inside the session (or `/` without one),
    /// absolute stays absolute. Without a prefix the session's folder is listed, or the whole
    /// workspace when there is no session or `include_all_sessions` is set. Matching is by whole
    /// segments. `limit` is 1 to 1000; `cursor` is the `next_cursor` of the previous page.
    pub async fn list_files(
        &self,
        prefix: Option<&str>,
        include_all_sessions: bool,
        limit: u64,
        cursor: Option<&str>,
    ) -> Result<FilePage> {
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(WorkspaceError::InvalidInput(format!("limit must be between 1 and {MAX_PAGE_SIZE}")));
        }
        let session = if include_all_sessions { None } else { self.session_id.as_ref() };
        let prefix = PathPrefix::resolve(prefix.unwrap_or(""), session)?;
        let mut query = file::Entity::find().filter(self.live_in_workspace()).filter(prefix_condition(&prefix));
        if let Some(cursor) = cursor {
            query = query.filter(file::Column::Path.gt(decode_cursor(cursor)?));
        }
        let mut rows = query.order_by_asc(file::Column::Path).limit(limit + 1).all(self.db.conn()).await?;
        let next_cursor = if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|row| hex::encode(row.path.as_bytes()))
        } else {
            None
        };
        let files = rows.into_iter().map(FileInfo::try_from).collect::<Result<Vec<_>>>()?;
        Ok(FilePage { files, next_cursor })
    }

    /// Soft-deletes a live file (the row first), then removes its bytes.
    pub async fn delete_file(&self, id: FileId) -> Result<()> {
        let result = soft_delete()
            .filter(file::Column::Id.eq(id.as_uuid()))
            .filter(self.live_in_workspace())
            .exec(self.db.conn())
            .await?;
        if result.rows_affected == 0 {
            return Err(WorkspaceError::NotFound(format!("file {id}")));
        }
        self.remove_blob(&BlobKey::for_file(self.workspace_id, id)).await;
        Ok(())
    }

    /// Soft-deletes the live file at a path (resolved with the session).
    pub async fn delete_file_by_path(&self, path: &str) -> Result<FileInfo> {
        let info = self.get_file_info_by_path(path).await?;
        self.delete_file(info.id).await?;
        Ok(info)
    }

    /// A direct URL from the backend when it can sign one; `None` means "serve through the API".
    pub async fn get_download_url(&self, id: FileId, expires_in: Duration) -> Result<Option<String>> {
        let info = self.get_file_info(id).await?;
        Ok(self.storage.download_url(&BlobKey::for_file(self.workspace_id, info.id), expires_in).await?)
    }

    /// Live bytes, quota and file count.
    pub async fn usage(&self) -> Result<Usage> {
        let (used_bytes, file_count) = self.used_bytes(self.db.conn()).await?;
        Ok(Usage { used_bytes, limit_bytes: self.limits.quota_bytes, file_count })
    }

    fn live_in_workspace(&self) -> Condition {
        Condition::all()
            .add(file::Column::WorkspaceId.eq(self.workspace_id.as_uuid()))
            .add(file::Column::IsDeleted.eq(false))
    }

    async fn live_row_by_path<C: ConnectionTrait>(
        &self,
        conn: &C,
        path: &WorkspacePath,
    ) -> Result<Option<file::Model>> {
        Ok(file::Entity::find()
            .filter(self.live_in_workspace())
            .filter(file::Column::Path.eq(path.as_str()))
            .one(conn)
            .await?)
    }

    /// (live bytes, live file count).
    async fn used_bytes<C: ConnectionTrait>(&self, conn: &C) -> Result<(u64, u64)> {
        let (bytes, count): (i64, i64) = file::Entity::find()
            .select_only()
            .column_as(Expr::cust("CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT)"), "bytes")
            .column_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), "files")
            .filter(self.live_in_workspace())
            .into_tuple()
            .one(conn)
            .await?
            .unwrap_or((0, 0));
        Ok((u64::try_from(bytes).unwrap_or(0), u64::try_from(count).unwrap_or(0)))
    }

    /// Deletes a blob, logging instead of failing: gc removes whatever is left behind.
    async fn remove_blob(&self, key: &BlobKey) {
        if let Err(err) = self.storage.delete(key).await {
            tracing::warn!(%key, error = %err, "could not remove blob; gc will collect it");
        }
    }
}

/// An update that soft-deletes (retires) the rows its caller filters for.
fn soft_delete() -> sea_orm::UpdateMany<file::Entity> {
    let now = Utc::now();
    file::Entity::update_many()
        .col_expr(file::Column::IsDeleted, Expr::value(true))
        .col_expr(file::Column::DeletedAt, Expr::value(now))
        .col_expr(file::Column::UpdatedAt, Expr::value(now))
}

fn size_of(row: &file::Model) -> u64 {
    u64::try_from(row.size_bytes).unwrap_or(0)
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

/// Rows inside a folder: the folder path itself or anything below `dir/`. `'0'` is the byte
/// after `'/'`, so `[dir/, dir0)` is exactly "starts with `dir/`" under byte-wise ordering (the
/// path column uses the C collation on PostgreSQL and BINARY on SQLite).
fn prefix_condition(prefix: &PathPrefix) -> Condition {
    match prefix.as_dir() {
        None => Condition::all(),
        Some(dir) => Condition::any().add(file::Column::Path.eq(dir)).add(
            Condition::all()
                .add(file::Column::Path.gte(format!("{dir}/")))
                .add(file::Column::Path.lt(format!("{dir}0")))
                .into_condition(),
        ),
    }
}

fn decode_cursor(cursor: &str) -> Result<String> {
    hex::decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| WorkspaceError::InvalidInput("cursor is not one this server issued".into()))
}
