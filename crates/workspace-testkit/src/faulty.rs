//! Fault injection: a storage wrapper that fails on command, and a body that counts what was
//! pulled from it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::Notify;
use workspace_core::{
    BlobKey, BodyStream, ByteRange, GetResult, ObjectMeta, ObjectStream, Storage, StorageError, WorkspaceStorageBackend,
};

/// Switches of a [`FaultyStorage`]; flip them while a test runs.
#[derive(Debug, Default)]
pub struct Faults {
    /// Fail `put` once this many bytes have been passed on (the backend dies mid-stream).
    pub fail_put_after_bytes: AtomicU64,
    /// Whether `fail_put_after_bytes` is armed.
    pub fail_put_mid_stream: AtomicBool,
    /// Store the whole object, then report failure anyway (the worst case for orphans).
    pub fail_put_after_storing: AtomicBool,
    /// Fail every delete.
    pub fail_deletes: AtomicBool,
    /// When set, a successful `put` waits here before returning (a write "in flight").
    pub hold_put: AtomicBool,
    /// Wakes puts held by `hold_put`.
    pub release: Notify,
    /// Signalled when a held put has stored its object and is waiting.
    pub held: Notify,
    /// Every call hangs (storage unreachable and silent): only a deadline ends it.
    pub hang: AtomicBool,
    /// Random faults, in permille per call: a put fails before, during (after a random number of
    /// bytes) or after storing; a delete fails; every call may be delayed up to 20 ms.
    pub chaos_permille: AtomicU32,
    /// Calls that reached the backend (every method but `storage_path`, which only names a key),
    /// counted whatever the switches say.
    pub calls: AtomicU64,
}

/// Wraps a backend and injects the failures switched on in its [`Faults`].
#[derive(Debug, Clone)]
pub struct FaultyStorage {
    inner: Storage,
    /// The switches.
    pub faults: Arc<Faults>,
}

impl FaultyStorage {
    /// Wraps `inner` with every fault off.
    pub fn new(inner: Storage) -> Self {
        Self { inner, faults: Arc::default() }
    }
}

impl Faults {
    /// Whether a random fault strikes this call.
    fn roll(&self) -> bool {
        let permille = self.chaos_permille.load(Ordering::Relaxed);
        permille > 0 && rand::random_range(0..1000) < permille
    }

    /// Counts one call.
    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }

    /// Never returns while `hang` is set.
    async fn maybe_hang(&self) {
        if self.hang.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
    }

    /// A random short delay when chaos is on.
    async fn jitter(&self) {
        if self.chaos_permille.load(Ordering::Relaxed) > 0 {
            tokio::time::sleep(Duration::from_millis(rand::random_range(0..20))).await;
        }
    }
}

fn injected(what: &str) -> StorageError {
    StorageError::Other(format!("injected failure: {what}"))
}

#[async_trait]
impl WorkspaceStorageBackend for FaultyStorage {
    fn storage_path(&self, key: &BlobKey) -> String {
        self.inner.storage_path(key)
    }

    async fn put(&self, key: &BlobKey, body: BodyStream) -> Result<u64, StorageError> {
        self.faults.count();
        self.faults.maybe_hang().await;
        self.faults.jitter().await;
        let chaos = self.faults.roll();
        let chaos_kind = rand::random_range(0..3u8);
        if chaos && chaos_kind == 0 {
            return Err(injected("put refused"));
        }
        let mid_stream = chaos && chaos_kind == 1;
        if self.faults.fail_put_mid_stream.load(Ordering::SeqCst) || mid_stream {
            let limit = if mid_stream {
                rand::random_range(0..64 * 1024)
            } else {
                self.faults.fail_put_after_bytes.load(Ordering::SeqCst)
            };
            let mut seen = 0u64;
            let cut = body
                .map(move |chunk| {
                    let chunk = chunk?;
                    seen += chunk.len() as u64;
                    if seen > limit {
                        return Err(std::io::Error::other("backend connection lost"));
                    }
                    Ok(chunk)
                })
                .boxed();
            // Whatever the inner backend made of the cut stream, the caller sees a backend failure.
            let _ = self.inner.put(key, cut).await;
            return Err(injected("put failed mid-stream"));
        }
        let n = self.inner.put(key, body).await?;
        if self.faults.fail_put_after_storing.load(Ordering::SeqCst) || chaos {
            return Err(injected("put stored the object but reported failure"));
        }
        if self.faults.hold_put.load(Ordering::SeqCst) {
            self.faults.held.notify_one();
            self.faults.release.notified().await;
        }
        Ok(n)
    }

    async fn get(&self, key: &BlobKey, range: Option<ByteRange>) -> Result<GetResult, StorageError> {
        self.faults.count();
        self.faults.maybe_hang().await;
        self.faults.jitter().await;
        if self.faults.roll() {
            return Err(injected("get"));
        }
        self.inner.get(key, range).await
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), StorageError> {
        self.faults.count();
        self.faults.maybe_hang().await;
        self.faults.jitter().await;
        if self.faults.fail_deletes.load(Ordering::SeqCst) || self.faults.roll() {
            return Err(injected("delete"));
        }
        self.inner.delete(key).await
    }

    async fn head(&self, key: &BlobKey) -> Result<Option<ObjectMeta>, StorageError> {
        self.faults.count();
        self.inner.head(key).await
    }

    fn list(&self, prefix: &str) -> ObjectStream {
        self.faults.count();
        self.inner.list(prefix)
    }

    async fn download_url(&self, key: &BlobKey, expires_in: Duration) -> Result<Option<String>, StorageError> {
        self.faults.count();
        self.inner.download_url(key, expires_in).await
    }

    async fn purge_incomplete(&self, older_than: Duration) -> Result<u64, StorageError> {
        self.faults.count();
        self.inner.purge_incomplete(older_than).await
    }

    async fn ping(&self) -> Result<(), StorageError> {
        self.faults.count();
        self.faults.maybe_hang().await;
        self.inner.ping().await
    }
}

/// A lazily generated body of `total` bytes in `chunk`-byte pieces that counts how many bytes
/// the consumer actually pulled.
#[derive(Debug, Clone)]
pub struct CountingBody {
    pulled: Arc<AtomicU64>,
}

impl CountingBody {
    /// The body stream and its counter.
    pub fn new(total: u64, chunk: usize) -> (Self, BodyStream) {
        let pulled = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&pulled);
        let piece = Bytes::from(vec![b'z'; chunk]);
        let stream = futures::stream::unfold(0u64, move |sent| {
            let counter = Arc::clone(&counter);
            let piece = piece.clone();
            async move {
                if sent >= total {
                    return None;
                }
                let len = (total - sent).min(piece.len() as u64);
                counter.fetch_add(len, Ordering::SeqCst);
                Some((Ok(piece.slice(..len as usize)), sent + len))
            }
        })
        .boxed();
        (Self { pulled }, stream)
    }

    /// Bytes pulled so far.
    pub fn pulled(&self) -> u64 {
        self.pulled.load(Ordering::SeqCst)
    }
}
