//! The streaming storage contract every backend implements (SPEC §6), and `Storage`, the cheap
//! handle callers hold. Bodies are streams of `Bytes`; nothing here buffers a whole object.

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use futures::stream::BoxStream;

use crate::error::StorageError;
use crate::ids::{ContentId, WorkspaceId};

/// A stream of body chunks. Input bodies carry `io::Error` so any source (a socket, a file, a
/// test) can feed them.
pub type BodyStream = BoxStream<'static, std::io::Result<Bytes>>;
/// A stream of object bytes read back from a backend.
pub type ByteStream = BoxStream<'static, Result<Bytes, StorageError>>;

/// An object key. Keys never contain user-controlled text: they are built from ids only,
/// `workspaces/{workspace_id}/{content_id}`, or parsed back from a listing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobKey(String);

impl BlobKey {
    /// The key of one content's bytes. (A file migrated from v1 has a content id equal to its
    /// file id, so its v1 key `workspaces/{workspace}/{file}` is this key.)
    pub fn for_content(workspace: WorkspaceId, content: ContentId) -> Self {
        Self(format!("workspaces/{workspace}/{content}"))
    }

    /// Wraps a key read back from a backend listing. Only `[A-Za-z0-9._/-]` segments without
    /// `.`/`..`/empty parts are accepted, so a key can always be mapped safely to a file path.
    pub fn parse(key: &str) -> Result<Self, StorageError> {
        let ok = !key.is_empty()
            && key.len() <= 512
            && key.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            });
        if ok { Ok(Self(key.to_owned())) } else { Err(StorageError::InvalidKey(key.chars().take(80).collect())) }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ids back out of a content key, if it is one.
    pub fn content_ids(&self) -> Option<(WorkspaceId, ContentId)> {
        let mut parts = self.0.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("workspaces"), Some(ws), Some(file), None) => Some((ws.parse().ok()?, file.parse().ok()?)),
            _ => None,
        }
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which bytes of an object to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `start..end` (end exclusive); an end past the object is clamped to its size.
    Bounded {
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
    },
    /// From `start` to the end.
    From(u64),
    /// The last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Resolves the range against an object size. An empty result is unsatisfiable.
    pub fn resolve(self, size: u64) -> Result<Range<u64>, StorageError> {
        let range = match self {
            Self::Bounded { start, end } => start..end.min(size),
            Self::From(start) => start..size,
            Self::Suffix(n) => size.saturating_sub(n)..size,
        };
        if range.start >= range.end || range.start >= size {
            return Err(StorageError::RangeNotSatisfiable { size });
        }
        Ok(range)
    }
}

/// What a backend knows of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Its key.
    pub key: BlobKey,
    /// Its size in bytes.
    pub size: u64,
    /// When it was completely written.
    pub last_modified: SystemTime,
}

/// An open read.
pub struct GetResult {
    /// Size of the whole object.
    pub size: u64,
    /// The bytes the stream yields.
    pub range: Range<u64>,
    /// The bytes.
    pub stream: ByteStream,
}

impl fmt::Debug for GetResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetResult").field("size", &self.size).field("range", &self.range).finish()
    }
}

/// A stream of object metadata from a listing.
pub type ObjectStream = BoxStream<'static, Result<ObjectMeta, StorageError>>;

/// A backend that stores immutable blobs by key.
///
/// Contract shared by every implementation (checked by the conformance suite in
/// `workspace-storage`):
/// - `put` consumes the whole body and makes it durable before returning; if the body stream
///   fails, nothing is left at the key (a previous object at the key is untouched). A `put`
///   future dropped before it returns leaves nothing but, at worst, the object at the key
///   (which the caller then removes) and leftovers that `purge_incomplete` collects.
/// - `get` of a missing key is `StorageError::NotFound`; a range that does not overlap the
///   object is `StorageError::RangeNotSatisfiable`.
/// - `delete` of a missing key succeeds.
/// - `list` yields completed objects only, never in-flight writes, page by page: memory stays
///   bounded however many objects there are.
/// - A transient failure (unreachable, overloaded, a 5xx) is `StorageError::Unavailable` or an
///   I/O error of a connection kind, so callers can tell it from a permanent one.
///
/// Callers go through [`Storage`], which puts a deadline on every call.
#[async_trait]
pub trait WorkspaceStorageBackend: Send + Sync + fmt::Debug + 'static {
    /// The reference recorded in a row's `storage_path`: `local://…`, `gcs://bucket/…`, `memory://…`.
    fn storage_path(&self, key: &BlobKey) -> String;

    /// Stores the body at the key; returns the number of bytes stored.
    async fn put(&self, key: &BlobKey, body: BodyStream) -> Result<u64, StorageError>;

    /// Opens a read of the whole object or of a range.
    async fn get(&self, key: &BlobKey, range: Option<ByteRange>) -> Result<GetResult, StorageError>;

    /// Deletes the object. Deleting a missing key succeeds.
    async fn delete(&self, key: &BlobKey) -> Result<(), StorageError>;

    /// Metadata of the object, `None` when missing.
    async fn head(&self, key: &BlobKey) -> Result<Option<ObjectMeta>, StorageError>;

    /// Every completed object whose key starts with `prefix` (for gc), in pages fetched as the
    /// stream is read.
    fn list(&self, prefix: &str) -> ObjectStream;

    /// A URL that serves the object directly until it expires, when the backend can sign one;
    /// `None` means "serve it through the application".
    async fn download_url(&self, _key: &BlobKey, _expires_in: Duration) -> Result<Option<String>, StorageError> {
        Ok(None)
    }

    /// Removes leftovers of writes that never finished and are older than `older_than`.
    /// Returns how many were removed. Backends whose writes are atomic need not override it.
    async fn purge_incomplete(&self, _older_than: Duration) -> Result<u64, StorageError> {
        Ok(0)
    }

    /// Whether the backend answers at all (for readiness checks).
    async fn ping(&self) -> Result<(), StorageError> {
        use futures::StreamExt;
        match self.list("__ping__/").next().await {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }
}

/// Default deadline of a storage call (`WS_STORAGE_TIMEOUT_SECS`).
pub const DEFAULT_STORAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// The handle callers hold: cheap to clone, one backend behind it, and a deadline on every call
/// (SPEC §7: with storage unreachable a request fails within the deadline, as `Unavailable`).
///
/// - `put`: the backend must take each piece of the body, and finish once the body has ended,
///   within the deadline. Time the backend spends waiting for the body (a slow client) does not
///   count: the body has its own idle timeout upstream.
/// - `get` must open within the deadline, and each chunk of the stream must arrive within it.
/// - `list`: each object (each page) must arrive within it.
/// - every other call must finish within it.
#[derive(Debug, Clone)]
pub struct Storage {
    backend: Arc<dyn WorkspaceStorageBackend>,
    timeout: Duration,
}

impl Storage {
    /// Wraps a backend, with the default deadline.
    pub fn new(backend: impl WorkspaceStorageBackend) -> Self {
        Self::from_arc(Arc::new(backend))
    }

    /// Wraps an already shared backend, with the default deadline.
    pub fn from_arc(backend: Arc<dyn WorkspaceStorageBackend>) -> Self {
        Self { backend, timeout: DEFAULT_STORAGE_TIMEOUT }
    }

    /// The same backend with another deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The deadline of each call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The backend itself, without deadlines (for wrappers and tests).
    pub fn backend(&self) -> &Arc<dyn WorkspaceStorageBackend> {
        &self.backend
    }

    fn late(&self, what: &str) -> StorageError {
        StorageError::Unavailable(format!("storage did not {what} within {:?}", self.timeout))
    }

    async fn within<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        tokio::time::timeout(self.timeout, call).await.unwrap_or_else(|_| Err(self.late(what)))
    }

    /// See [`WorkspaceStorageBackend::storage_path`].
    pub fn storage_path(&self, key: &BlobKey) -> String {
        self.backend.storage_path(key)
    }

    /// Stores a body (see the type's docs for the deadline).
    pub async fn put(&self, key: &BlobKey, body: BodyStream) -> Result<u64, StorageError> {
        let clock = Arc::new(StallClock::new());
        let watched = WatchedBody { inner: body, clock: Arc::clone(&clock) };
        let put = self.backend.put(key, Box::pin(watched));
        tokio::pin!(put);
        let tick = (self.timeout / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
        loop {
            tokio::select! {
                result = &mut put => return result,
                () = tokio::time::sleep(tick) => {
                    if clock.stalled_for() > self.timeout {
                        return Err(self.late("take the upload's bytes"));
                    }
                }
            }
        }
    }

    /// Opens a read (see the type's docs for the deadline).
    pub async fn get(&self, key: &BlobKey, range: Option<ByteRange>) -> Result<GetResult, StorageError> {
        let mut result = self.within("open the object", self.backend.get(key, range)).await?;
        result.stream = Box::pin(Deadline::new(result.stream, self.timeout, "send the object's bytes"));
        Ok(result)
    }

    /// Deletes an object; a missing key succeeds.
    pub async fn delete(&self, key: &BlobKey) -> Result<(), StorageError> {
        self.within("delete the object", self.backend.delete(key)).await
    }

    /// Metadata of an object, `None` when missing.
    pub async fn head(&self, key: &BlobKey) -> Result<Option<ObjectMeta>, StorageError> {
        self.within("describe the object", self.backend.head(key)).await
    }

    /// Lists objects by prefix, page by page.
    pub fn list(&self, prefix: &str) -> ObjectStream {
        Box::pin(Deadline::new(self.backend.list(prefix), self.timeout, "list objects"))
    }

    /// See [`WorkspaceStorageBackend::download_url`].
    pub async fn download_url(&self, key: &BlobKey, expires_in: Duration) -> Result<Option<String>, StorageError> {
        self.within("sign a URL", self.backend.download_url(key, expires_in)).await
    }

    /// See [`WorkspaceStorageBackend::purge_incomplete`].
    pub async fn purge_incomplete(&self, older_than: Duration) -> Result<u64, StorageError> {
        self.within("purge unfinished writes", self.backend.purge_incomplete(older_than)).await
    }

    /// Whether the backend answers within the deadline.
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.within("answer", self.backend.ping()).await
    }

    /// Reads a whole object into memory (for small objects and tests).
    pub async fn get_bytes(&self, key: &BlobKey) -> Result<Bytes, StorageError> {
        use futures::TryStreamExt;
        let result = self.get(key, None).await?;
        let chunks: Vec<Bytes> = result.stream.try_collect().await?;
        Ok(chunks.concat().into())
    }

    /// Stores a buffer (for small objects and tests).
    pub async fn put_bytes(&self, key: &BlobKey, bytes: Bytes) -> Result<u64, StorageError> {
        self.put(key, Box::pin(futures::stream::once(async move { Ok(bytes) }))).await
    }

    /// Every object under `prefix`, collected (for tests and small stores).
    pub async fn list_all(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        use futures::TryStreamExt;
        self.list(prefix).try_collect().await
    }
}

/// Since when the backend has been holding the body without asking for more: it was handed a
/// chunk (or the end) and has not polled again. Milliseconds since `base`; 0 = not holding.
#[derive(Debug)]
struct StallClock {
    base: std::time::Instant,
    holding_since: AtomicU64,
}

impl StallClock {
    fn new() -> Self {
        // Holding from the start: the backend must begin taking the body within the deadline.
        Self { base: std::time::Instant::now(), holding_since: AtomicU64::new(1) }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX).max(1)
    }

    fn asking(&self) {
        self.holding_since.store(0, Ordering::Relaxed);
    }

    fn holding(&self) {
        self.holding_since.store(self.now(), Ordering::Relaxed);
    }

    fn stalled_for(&self) -> Duration {
        match self.holding_since.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            since => Duration::from_millis(self.now().saturating_sub(since)),
        }
    }
}

/// The body handed to a backend's `put`, reporting to the stall clock.
struct WatchedBody {
    inner: BodyStream,
    clock: Arc<StallClock>,
}

impl Stream for WatchedBody {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.clock.asking();
        let poll = self.inner.as_mut().poll_next(cx);
        if poll.is_ready() {
            self.clock.holding();
        }
        poll
    }
}

/// A stream whose next item must arrive within `timeout` of being asked for.
struct Deadline<T> {
    inner: BoxStream<'static, Result<T, StorageError>>,
    timeout: Duration,
    what: &'static str,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    failed: bool,
}

impl<T> Deadline<T> {
    fn new(inner: BoxStream<'static, Result<T, StorageError>>, timeout: Duration, what: &'static str) -> Self {
        Self { inner, timeout, what, sleep: None, failed: false }
    }
}

impl<T> Stream for Deadline<T> {
    type Item = Result<T, StorageError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.failed {
            return Poll::Ready(None);
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(item) => {
                self.sleep = None;
                Poll::Ready(item)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        self.failed = true;
                        let message = format!("storage did not {} within {:?}", self.what, self.timeout);
                        Poll::Ready(Some(Err(StorageError::Unavailable(message))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_against_size() {
        assert_eq!(ByteRange::Bounded { start: 0, end: 1 }.resolve(10).unwrap(), 0..1);
        assert_eq!(ByteRange::Bounded { start: 5, end: 100 }.resolve(10).unwrap(), 5..10);
        assert_eq!(ByteRange::From(9).resolve(10).unwrap(), 9..10);
        assert_eq!(ByteRange::Suffix(3).resolve(10).unwrap(), 7..10);
        assert_eq!(ByteRange::Suffix(30).resolve(10).unwrap(), 0..10);
        assert!(ByteRange::From(10).resolve(10).is_err());
        assert!(ByteRange::Suffix(0).resolve(10).is_err());
        assert!(ByteRange::Bounded { start: 3, end: 3 }.resolve(10).is_err());
        assert!(ByteRange::Suffix(1).resolve(0).is_err());
    }

    #[test]
    fn keys_are_built_from_ids_and_parse_back() {
        let ws = WorkspaceId::new();
        let content = ContentId::new();
        let key = BlobKey::for_content(ws, content);
        assert_eq!(BlobKey::parse(key.as_str()).unwrap(), key);
        assert_eq!(key.content_ids(), Some((ws, content)));
        for bad in ["", "../x", "a/../b", "a//b", "/abs", "a\\b", "a/./b", "ü"] {
            assert!(BlobKey::parse(bad).is_err(), "{bad:?}");
        }
    }
}
