//! `LocalStorage`: blobs as files under a root directory.
//!
//! A write goes to `{root}/tmp/{random}`, is fsynced, then renamed to `{root}/objects/{key}` and
//! the parent directory is fsynced, so a crash never leaves a half-written file at a final key.
//! Keys are checked segment by segment and the joined path must stay under the root.
//!
//! Reads serve the file through read-only memory mappings, one per chunk: a stored blob never
//! changes (it is written once under a fresh name and renamed into place), so a chunk needs no
//! copy into a buffer and no trip to the blocking pool; hyper writes the mapped pages straight to
//! the socket.

use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use workspace_core::{
    BatchWorker, BlobKey, BodyStream, ByteRange, ChunkBatch, GetResult, ObjectMeta, ObjectStream, StorageError,
    WorkspaceStorageBackend,
};

/// Bytes written before the writer asks the kernel to start writing them to the disk
/// (`sync_file_range`), so the upload's final fsync finds little left to write.
const WRITEBACK_STEP: u64 = 8 * 1024 * 1024;
/// Bytes per mapping of a read stream. Each chunk is a mapping of its own, unmapped when hyper
/// drops it after writing it, so a download keeps only the chunk in flight mapped (and counted
/// in the process's RSS) however large the file is.
const MAP_CHUNK: u64 = 2 * 1024 * 1024;
/// Objects a listing reads ahead of its consumer.
const LIST_BATCH: usize = 256;

/// Files on local disk.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    objects: PathBuf,
    tmp: PathBuf,
}

impl LocalStorage {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn new(root: impl AsRef<Path>) -> io::Result<Self> {
        let root = root.as_ref();
        std::fs::create_dir_all(root)?;
        let root = root.canonicalize()?;
        let objects = root.join("objects");
        let tmp = root.join("tmp");
        std::fs::create_dir_all(&objects)?;
        std::fs::create_dir_all(&tmp)?;
        Ok(Self { objects, tmp })
    }

    /// The file that holds `key`. Refuses anything that would not stay inside the root.
    pub fn path_for(&self, key: &BlobKey) -> Result<PathBuf, StorageError> {
        let relative = Path::new(key.as_str());
        let contained = relative.components().all(|c| matches!(c, Component::Normal(_)));
        let path = self.objects.join(relative);
        if !contained || !path.starts_with(&self.objects) {
            return Err(StorageError::InvalidKey(key.to_string()));
        }
        Ok(path)
    }

    /// Sends every object under `prefix` to `tx`, directory by directory; stops early when the
    /// receiver is gone.
    fn walk(&self, prefix: &str, tx: &tokio::sync::mpsc::Sender<Result<ObjectMeta, StorageError>>) -> io::Result<()> {
        let mut dirs = vec![self.objects.clone()];
        while let Some(dir) = dirs.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                other => other?,
            };
            for entry in entries {
                let entry = entry?;
                let file_type = match entry.file_type() {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    other => other?,
                };
                let path = entry.path();
                if file_type.is_dir() {
                    dirs.push(path);
                } else if file_type.is_file()
                    && let Some(key) = self.key_for(&path)
                    && key.as_str().starts_with(prefix)
                {
                    // Deleted since the directory was read (a concurrent delete): not there.
                    let meta = match entry.metadata() {
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        other => other?,
                    };
                    let found = ObjectMeta { key, size: meta.len(), last_modified: meta.modified()? };
                    if tx.blocking_send(Ok(found)).is_err() {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    fn key_for(&self, path: &Path) -> Option<BlobKey> {
        let relative = path.strip_prefix(&self.objects).ok()?;
        let text: Vec<&str> = relative.components().map(|c| c.as_os_str().to_str()).collect::<Option<_>>()?;
        BlobKey::parse(&text.join("/")).ok()
    }
}

/// A temp file removed on drop unless taken (`.0 = None`) once renamed into place.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A byte range of a blob as a stream of read-only mappings of at most [`MAP_CHUNK`] bytes.
struct MappedChunks {
    file: std::fs::File,
    next: u64,
    end: u64,
}

impl Stream for MappedChunks {
    type Item = Result<Bytes, StorageError>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.next >= self.end {
            return Poll::Ready(None);
        }
        let len = (self.end - self.next).min(MAP_CHUNK);
        match map_chunk(&self.file, self.next, len) {
            Ok(chunk) => {
                self.next += len;
                Poll::Ready(Some(Ok(chunk)))
            }
            Err(err) => {
                self.next = self.end;
                Poll::Ready(Some(Err(err.into())))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let chunks = usize::try_from((self.end - self.next).div_ceil(MAP_CHUNK)).unwrap_or(usize::MAX);
        (chunks, Some(chunks))
    }
}

/// `len` (> 0) bytes of `file` from `offset`, mapped read-only; unmapped when the last `Bytes`
/// sharing the mapping is dropped.
#[allow(unsafe_code)] // Mapping a file is `unsafe` in memmap2; see SAFETY below.
fn map_chunk(file: &std::fs::File, offset: u64, len: u64) -> io::Result<Bytes> {
    let len = usize::try_from(len).map_err(io::Error::other)?;
    // SAFETY: the mapping is read-only and its bytes never change while it exists. A blob's file
    // is written whole under a temp name, fsynced and renamed into place, and nothing writes to
    // or truncates a file under `objects/` after that: a second write of the same key renames a
    // new file over the name (the mapping keeps the old inode), and gc unlinks it (on Linux the
    // mapping stays valid until unmapped). The range lies within the size read from this open
    // file, so no page of the mapping is past its end (no SIGBUS).
    let map = unsafe { memmap2::MmapOptions::new().offset(offset).len(len).populate().map(file)? };
    Ok(Bytes::from_owner(map))
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(io::Error::other)?
}

/// A blob being written: the file, and how far its writeback was started.
struct BlobWriter {
    file: std::fs::File,
    /// Where a batch of several chunks is gathered into one `write`.
    buffer: Vec<u8>,
    written: u64,
    flushing_from: u64,
}

impl BlobWriter {
    fn new(file: std::fs::File) -> Self {
        Self { file, buffer: Vec::new(), written: 0, flushing_from: 0 }
    }

    /// Writes `batch` (one `write`) and starts the writeback of every [`WRITEBACK_STEP`] written.
    fn write(&mut self, batch: &[Bytes]) -> io::Result<()> {
        let data: &[u8] = match batch {
            [one] => one,
            chunks => {
                self.buffer.clear();
                chunks.iter().for_each(|chunk| self.buffer.extend_from_slice(chunk));
                &self.buffer
            }
        };
        self.file.write_all(data)?;
        self.written += data.len() as u64;
        if self.written - self.flushing_from >= WRITEBACK_STEP {
            start_writeback(&self.file, self.flushing_from, self.written - self.flushing_from);
            self.flushing_from = self.written;
        }
        Ok(())
    }
}

/// Asks the kernel to start writing `len` bytes of `file` from `offset` to the disk, without
/// waiting for them. Only a hint that spreads the disk's work over the upload: durability
/// still comes from the fsync at the end, so a refusal is ignored.
fn start_writeback(file: &std::fs::File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (libc::off64_t::try_from(offset), libc::off64_t::try_from(len)) else { return };
        // SAFETY: the descriptor belongs to `file`, open for the whole call; the call reads no
        // memory of ours and only schedules writeback of the file's pages.
        #[allow(unsafe_code)]
        let _ = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[async_trait]
impl WorkspaceStorageBackend for LocalStorage {
    fn storage_path(&self, key: &BlobKey) -> String {
        format!("local://{key}")
    }

    async fn put(&self, key: &BlobKey, mut body: BodyStream) -> Result<u64, StorageError> {
        let final_path = self.path_for(key)?;
        let tmp_path = self.tmp.join(uuid::Uuid::new_v4().simple().to_string());
        // Removes the temp file if this future is dropped (or fails) before the rename.
        let mut tmp_guard = TempFile(Some(tmp_path.clone()));
        let file = blocking({
            let tmp_path = tmp_path.clone();
            move || std::fs::File::create_new(tmp_path)
        })
        .await?;
        // One batch (a `ChunkBatch`: up to 1 MiB) is written on the blocking pool while the next
        // is received, so an upload holds about two in memory; a thread is only held while it
        // writes, never while the client is slow to send.
        let mut writer = BatchWorker::new(BlobWriter::new(file), BlobWriter::write);
        let mut batch = ChunkBatch::default();
        while let Some(chunk) = body.next().await {
            if batch.push(chunk.map_err(StorageError::Body)?) {
                writer.push(batch.take()).await?;
            }
        }
        if !batch.is_empty() {
            writer.push(batch.take()).await?;
        }
        let BlobWriter { file, written, .. } = writer.finish().await?;
        let (tmp, dest) = (tmp_path.clone(), final_path.clone());
        blocking(move || {
            file.sync_all()?;
            drop(file);
            let parent = dest.parent().ok_or_else(|| io::Error::other("object path has no parent"))?;
            std::fs::create_dir_all(parent)?;
            std::fs::rename(&tmp, &dest)?;
            sync_dir(parent)
        })
        .await?;
        tmp_guard.0 = None; // renamed into place
        Ok(written)
    }

    async fn get(&self, key: &BlobKey, range: Option<ByteRange>) -> Result<GetResult, StorageError> {
        let path = self.path_for(key)?;
        // Opening a file and reading its size wait on metadata the kernel has cached for a file
        // read recently, not on its bytes: done here rather than on the blocking pool, whose hop
        // costs more than the calls themselves.
        let file = match std::fs::File::open(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StorageError::NotFound(key.to_string())),
            other => other?,
        };
        let size = file.metadata()?.len();
        let range = match range {
            Some(r) => r.resolve(size)?,
            None => 0..size,
        };
        let stream = MappedChunks { file, next: range.start, end: range.end };
        Ok(GetResult { size, range, stream: Box::pin(stream) })
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), StorageError> {
        let path = self.path_for(key)?;
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn head(&self, key: &BlobKey) -> Result<Option<ObjectMeta>, StorageError> {
        let path = self.path_for(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(meta) => Ok(Some(ObjectMeta { key: key.clone(), size: meta.len(), last_modified: meta.modified()? })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn list(&self, prefix: &str) -> ObjectStream {
        // A blocking walk feeds a bounded channel: memory stays bounded however many files there
        // are, and the walk stops when the reader drops the stream.
        enum State {
            Start(LocalStorage, String),
            Reading(tokio::sync::mpsc::Receiver<Result<ObjectMeta, StorageError>>),
        }
        futures::stream::unfold(State::Start(self.clone(), prefix.to_owned()), |state| async move {
            let mut rx = match state {
                State::Start(this, prefix) => {
                    let (tx, rx) = tokio::sync::mpsc::channel(LIST_BATCH);
                    tokio::task::spawn_blocking(move || {
                        if let Err(err) = this.walk(&prefix, &tx) {
                            let _ = tx.blocking_send(Err(err.into()));
                        }
                    });
                    rx
                }
                State::Reading(rx) => rx,
            };
            let item = rx.recv().await?;
            Some((item, State::Reading(rx)))
        })
        .boxed()
    }

    async fn purge_incomplete(&self, older_than: Duration) -> Result<u64, StorageError> {
        let tmp = self.tmp.clone();
        Ok(blocking(move || {
            let now = SystemTime::now();
            let mut removed = 0;
            for entry in std::fs::read_dir(&tmp)? {
                let entry = entry?;
                // Renamed into place or removed since the directory was read: not a leftover.
                let meta = match entry.metadata() {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    other => other?,
                };
                let age = now.duration_since(meta.modified()?).unwrap_or_default();
                if age >= older_than {
                    match std::fs::remove_file(entry.path()) {
                        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                        _ => removed += 1,
                    }
                }
            }
            Ok(removed)
        })
        .await?)
    }

    async fn ping(&self) -> Result<(), StorageError> {
        tokio::fs::metadata(&self.objects).await?;
        Ok(())
    }
}
