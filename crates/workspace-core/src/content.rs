//! Content: the bytes of files, stored once per workspace per sha-256 (SPEC §13).
//!
//! A write first *stages* its body: the body is measured (size cap, sha-256, sniffed head) while
//! it streams, and either kept in memory when it ends within the inline threshold (it will live
//! in the database row) or streamed into a blob under a fresh content id. The transaction then
//! either reuses existing content with the same checksum (dedup: the fresh blob is not needed)
//! or records the fresh content.
//!
//! A staged blob is guarded ([`BlobGuard`]): if the write fails, is cancelled (the request future
//! dropped at any await point) or its commit is ambiguous, the guard removes the blob unless a
//! content row refers to it. The check runs inside a write transaction, so it waits for a commit
//! still in flight and never removes the blob of content that committed. A write cancelled while
//! its blob's upload is under way leaves the upload to finish in a task of its own, holding the
//! guard, so no upload in flight can store the blob after the guard removed it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use sea_orm::EntityTrait;

use crate::db::Db;
use crate::entity::workspace_content as content;
use crate::error::{StorageError, WorkspaceError};
use crate::ids::{ContentId, WorkspaceId};
use crate::meter::{Measured, Meter};
use crate::model::Checksum;
use crate::storage::{BlobKey, Storage};
use crate::txn::WriteTxn;

/// Where a staged body is.
#[derive(Debug)]
pub(crate) enum StagedData {
    /// Small enough for the database row.
    Inline(Bytes),
    /// Stored as a blob under the staged content id.
    Blob(BlobGuard),
}

/// A measured body, ready for the transaction.
#[derive(Debug)]
pub(crate) struct Staged {
    pub id: ContentId,
    pub size: u64,
    pub checksum: Checksum,
    /// The first bytes, for MIME sniffing.
    pub head: Vec<u8>,
    pub data: StagedData,
}

/// Why staging failed, with what the meter saw (the caller names the limit that was hit).
#[derive(Debug)]
pub(crate) enum StageError {
    /// The body went past the cap after `bytes` bytes.
    OverCap { bytes: u64 },
    /// The body stream itself failed (the client, a malformed upload).
    Body(io::Error),
    /// Storage failed.
    Storage(StorageError),
}

/// Measures `body` and keeps it inline (when it ends within `inline_max`, and that is not 0)
/// or streams it into a new blob of `workspace`.
pub(crate) async fn stage<S>(
    db: &Db,
    storage: &Storage,
    workspace: WorkspaceId,
    body: S,
    cap: u64,
    inline_max: u64,
) -> std::result::Result<Staged, StageError>
where
    S: Stream<Item = io::Result<Bytes>> + Send + 'static,
{
    let (meter, mut metered) = Meter::wrap(body, cap);
    let over_cap = |m: &Meter| StageError::OverCap { bytes: m.bytes() };
    let mut buffered: Vec<Bytes> = Vec::new();
    let mut len = 0u64;
    let mut ended = false;
    if inline_max > 0 {
        while let Some(chunk) = metered.next().await {
            match chunk {
                Ok(chunk) => {
                    len += chunk.len() as u64;
                    buffered.push(chunk);
                    if len > inline_max {
                        break;
                    }
                }
                Err(_) if meter.exceeded() => return Err(over_cap(&meter)),
                Err(e) => return Err(StageError::Body(e)),
            }
        }
        ended = len <= inline_max;
    }
    let id = ContentId::new();
    if ended {
        let measured = meter.finish().map_err(StageError::Body)?;
        let bytes = if buffered.len() == 1 { buffered.swap_remove(0) } else { buffered.concat().into() };
        return Ok(staged(id, measured, StagedData::Inline(bytes)));
    }
    let key = BlobKey::for_content(workspace, id);
    // Armed before the first byte moves: whatever happens from here, the blob is accounted for.
    let guard = BlobGuard::new(db.clone(), storage.clone(), workspace, id);
    let body = futures::stream::iter(buffered.into_iter().map(Ok)).chain(metered).boxed();
    // The put runs on this task; if this task is dropped before the put is over (the client
    // went away), the put runs to its end in a task of its own and only then does the guard
    // clean up: no request to the store is left in flight to land after the guard removed the
    // blob (an orphan).
    let put = {
        let storage = storage.clone();
        async move { storage.put(&key, body).await }.boxed()
    };
    let (stored, guard) = PutToEnd(Some((put, guard))).await;
    let failure = match stored.map(|_| meter.finish()) {
        Ok(Ok(measured)) => return Ok(staged(id, measured, StagedData::Blob(guard))),
        Ok(Err(e)) => StageError::Body(e),
        Err(_) if meter.exceeded() => over_cap(&meter),
        Err(StorageError::Body(e)) => StageError::Body(e),
        Err(e) => StageError::Storage(e),
    };
    // Whatever the backend left at the key (a failure may come after the object was stored) goes:
    // no content row was ever recorded for it.
    guard.discard().await;
    Err(failure)
}

/// A blob's put and its guard: the put is polled by the caller, and finished in a task of its
/// own if the caller drops it first; the guard is released only once the put is over.
struct PutToEnd(Option<(BoxFuture<'static, Result<u64, StorageError>>, BlobGuard)>);

impl std::fmt::Debug for PutToEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutToEnd").field("over", &self.0.is_none()).finish_non_exhaustive()
    }
}

impl Future for PutToEnd {
    type Output = (Result<u64, StorageError>, BlobGuard);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // Polled again after it finished: nothing more will come.
        let Some((put, _)) = this.0.as_mut() else { return Poll::Pending };
        let stored = ready!(put.as_mut().poll(cx));
        match this.0.take() {
            Some((_, guard)) => Poll::Ready((stored, guard)),
            None => Poll::Pending,
        }
    }
}

impl Drop for PutToEnd {
    fn drop(&mut self) {
        if let Some((put, guard)) = self.0.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(async move {
                        let _ = put.await;
                        drop(guard);
                    });
                }
                // No runtime: the guard says so and leaves the blob to gc.
                Err(_) => drop(guard),
            }
        }
    }
}

fn staged(id: ContentId, measured: Measured, data: StagedData) -> Staged {
    Staged {
        id,
        size: measured.bytes,
        checksum: Checksum::from_trusted(measured.sha256_hex),
        head: measured.head,
        data,
    }
}

/// Removes a staged blob when dropped, unless disarmed: see the module docs.
#[derive(Debug)]
pub(crate) struct BlobGuard {
    armed: Option<Cleanup>,
}

#[derive(Debug)]
struct Cleanup {
    db: Db,
    storage: Storage,
    workspace: WorkspaceId,
    content: ContentId,
}

impl BlobGuard {
    fn new(db: Db, storage: Storage, workspace: WorkspaceId, content: ContentId) -> Self {
        Self { armed: Some(Cleanup { db, storage, workspace, content }) }
    }

    /// The content committed: the blob stays.
    pub fn keep(mut self) {
        self.armed = None;
    }

    /// The write failed after staging, or its commit is ambiguous: remove the blob unless its
    /// content row exists (see the module docs). Runs to completion even if the caller is
    /// cancelled.
    pub async fn release(mut self) {
        if let Some(cleanup) = self.armed.take() {
            let _ = tokio::spawn(cleanup.run()).await;
        }
    }

    /// No row will ever refer to the blob (its bytes were deduplicated, or it was never
    /// recorded): remove it now, without asking the database. Runs to completion even if the
    /// caller is cancelled.
    pub async fn discard(mut self) {
        if let Some(cleanup) = self.armed.take() {
            let key = BlobKey::for_content(cleanup.workspace, cleanup.content);
            let task = tokio::spawn(async move { remove_blob(&cleanup.storage, &key).await });
            let _ = task.await;
        }
    }
}

impl Drop for BlobGuard {
    fn drop(&mut self) {
        if let Some(cleanup) = self.armed.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(cleanup.run());
                }
                Err(_) => tracing::warn!(content = %cleanup.content, "no runtime to remove a staged blob; gc will"),
            }
        }
    }
}

impl Cleanup {
    /// Removes the blob unless its content row exists. Asked under the workspace's write lock,
    /// so a commit in flight finishes first.
    async fn run(self) {
        let key = BlobKey::for_content(self.workspace, self.content);
        let referenced = async {
            let tx = WriteTxn::begin(&self.db, self.workspace).await?;
            let found = content::Entity::find_by_id(self.content.as_uuid()).one(tx.conn()).await?.is_some();
            drop(tx); // rolls back: nothing was changed
            Ok::<_, WorkspaceError>(found)
        };
        match referenced.await {
            Ok(true) => {}
            Ok(false) => remove_blob(&self.storage, &key).await,
            Err(WorkspaceError::NotFound(_)) => remove_blob(&self.storage, &key).await, // workspace gone
            Err(err) => tracing::warn!(%key, error = %err, "cannot tell whether a staged blob is used; gc decides"),
        }
    }
}

/// Deletes a blob, logging instead of failing: gc removes whatever is left behind.
pub(crate) async fn remove_blob(storage: &Storage, key: &BlobKey) {
    if let Err(err) = storage.delete(key).await {
        tracing::warn!(%key, error = %err, "could not remove blob; gc will collect it");
    }
}

/// Deletes blobs that no row refers to any more, to completion even if the caller is cancelled.
pub(crate) async fn remove_blobs(storage: &Storage, keys: Vec<BlobKey>) {
    if keys.is_empty() {
        return;
    }
    let storage = storage.clone();
    let task = tokio::spawn(async move {
        for key in keys {
            remove_blob(&storage, &key).await;
        }
    });
    let _ = task.await;
}
