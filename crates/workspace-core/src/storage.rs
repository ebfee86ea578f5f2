//! The streaming storage contract every backend implements (SPEC §6), and `Storage`, the cheap
//! handle callers hold. Bodies are streams of `Bytes`; nothing here buffers a whole object.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::error::StorageError;
use crate::ids::{FileId, WorkspaceId};

/// A stream of body chunks. Input bodies carry `io::Error` so any source (a socket, a file, a
/// test) can feed them.
pub type BodyStream = BoxStream<'static, std::io::Result<Bytes>>;
/// A stream of object bytes read back from a backend.
pub type ByteStream = BoxStream<'static, Result<Bytes, StorageError>>;

/// An object key. Keys never contain user-controlled text: they are built from ids only,
/// `workspaces/{workspace_id}/{file_id}`, or parsed back from a listing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobKey(String);

impl BlobKey {
    /// The key of one file's bytes.
    pub fn for_file(workspace: WorkspaceId, file: FileId) -> Self {
        Self(format!("workspaces/{workspace}/{file}"))
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

    /// The ids back out of a file key, if it is one.
    pub fn file_ids(&self) -> Option<(WorkspaceId, FileId)> {
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

/// A backend that stores immutable blobs by key.
///
/// Contract shared by every implementation (checked by the conformance suite in
/// `workspace-storage`):
/// - `put` consumes the whole body and makes it durable before returning; if the body stream
///   fails, nothing is left at the key (a previous object at the key is untouched).
/// - `get` of a missing key is `StorageError::NotFound`; a range that does not overlap the
///   object is `StorageError::RangeNotSatisfiable`.
/// - `delete` of a missing key succeeds.
/// - `list` returns completed objects only, never in-flight writes.
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

    /// Every completed object whose key starts with `prefix` (for gc).
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError>;

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
        self.list("__ping__/").await.map(|_| ())
    }
}

/// The handle callers hold: cheap to clone, one backend behind it.
#[derive(Debug, Clone)]
pub struct Storage(Arc<dyn WorkspaceStorageBackend>);

impl Storage {
    /// Wraps a backend.
    pub fn new(backend: impl WorkspaceStorageBackend) -> Self {
        Self(Arc::new(backend))
    }

    /// Wraps an already shared backend.
    pub fn from_arc(backend: Arc<dyn WorkspaceStorageBackend>) -> Self {
        Self(backend)
    }

    /// Reads a whole object into memory (for small objects and tests).
    pub async fn get_bytes(&self, key: &BlobKey) -> Result<Bytes, StorageError> {
        use futures::TryStreamExt;
        let result = self.0.get(key, None).await?;
        let chunks: Vec<Bytes> = result.stream.try_collect().await?;
        Ok(chunks.concat().into())
    }

    /// Stores a buffer (for small objects and tests).
    pub async fn put_bytes(&self, key: &BlobKey, bytes: Bytes) -> Result<u64, StorageError> {
        self.0.put(key, Box::pin(futures::stream::once(async move { Ok(bytes) }))).await
    }
}

impl std::ops::Deref for Storage {
    type Target = dyn WorkspaceStorageBackend;
    fn deref(&self) -> &Self::Target {
        self.0.as_ref()
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
        let file = FileId::new();
        let key = BlobKey::for_file(ws, file);
        assert_eq!(BlobKey::parse(key.as_str()).unwrap(), key);
        assert_eq!(key.file_ids(), Some((ws, file)));
        for bad in ["", "../x", "a/../b", "a//b", "/abs", "a\\b", "a/./b", "ü"] {
            assert!(BlobKey::parse(bad).is_err(), "{bad:?}");
        }
    }
}
