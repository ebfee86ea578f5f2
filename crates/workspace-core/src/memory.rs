//! An in-memory backend for unit tests of the layers above and for the conformance suite's
//! reference behaviour. It necessarily holds objects in memory; production uses disk or GCS.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use crate::error::StorageError;
use crate::storage::{BlobKey, BodyStream, ByteRange, GetResult, ObjectMeta, ObjectStream, WorkspaceStorageBackend};

const CHUNK: usize = 64 * 1024;

/// Objects kept in a map behind a mutex.
#[derive(Debug, Default)]
pub struct InMemoryStorage {
    objects: Mutex<BTreeMap<BlobKey, (Bytes, SystemTime)>>,
}

impl InMemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn objects(&self) -> std::sync::MutexGuard<'_, BTreeMap<BlobKey, (Bytes, SystemTime)>> {
        // A poisoned lock only means another test thread panicked; the map itself is consistent.
        self.objects.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl WorkspaceStorageBackend for InMemoryStorage {
    fn storage_path(&self, key: &BlobKey) -> String {
        format!("memory://{key}")
    }

    async fn put(&self, key: &BlobKey, mut body: BodyStream) -> Result<u64, StorageError> {
        let mut buf = BytesMut::new();
        while let Some(chunk) = body.next().await {
            buf.extend_from_slice(&chunk.map_err(StorageError::Body)?);
        }
        let len = buf.len() as u64;
        self.objects().insert(key.clone(), (buf.freeze(), SystemTime::now()));
        Ok(len)
    }

    async fn get(&self, key: &BlobKey, range: Option<ByteRange>) -> Result<GetResult, StorageError> {
        let bytes =
            self.objects().get(key).map(|(b, _)| b.clone()).ok_or_else(|| StorageError::NotFound(key.to_string()))?;
        let size = bytes.len() as u64;
        let range = match range {
            Some(r) => r.resolve(size)?,
            None => 0..size,
        };
        // Ranges are resolved against `size`, so both ends fit in usize.
        let slice = bytes.slice(range.start as usize..range.end as usize);
        // Hand out the bytes in chunks, the way a disk or network backend would.
        let chunks: Vec<_> =
            (0..slice.len()).step_by(CHUNK).map(|at| Ok(slice.slice(at..(at + CHUNK).min(slice.len())))).collect();
        let stream = futures::stream::iter(chunks).boxed();
        Ok(GetResult { size, range, stream })
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), StorageError> {
        self.objects().remove(key);
        Ok(())
    }

    async fn head(&self, key: &BlobKey) -> Result<Option<ObjectMeta>, StorageError> {
        Ok(self.objects().get(key).map(|(b, t)| ObjectMeta {
            key: key.clone(),
            size: b.len() as u64,
            last_modified: *t,
        }))
    }

    fn list(&self, prefix: &str) -> ObjectStream {
        let found: Vec<_> = self
            .objects()
            .iter()
            .filter(|(k, _)| k.as_str().starts_with(prefix))
            .map(|(k, (b, t))| Ok(ObjectMeta { key: k.clone(), size: b.len() as u64, last_modified: *t }))
            .collect();
        futures::stream::iter(found).boxed()
    }
}
