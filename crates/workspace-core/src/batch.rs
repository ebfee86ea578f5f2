//! A body's chunks gathered into batches, and the work done on those batches (hashing, writing
//! to a file) on the blocking pool while the body goes on arriving.

use std::io;
use std::mem;

use bytes::Bytes;
use tokio::task::JoinHandle;

/// Chunks of a body gathered to be handed off together (written, hashed) rather than one by one.
/// A batch is full at [`MAX_BYTES`](Self::MAX_BYTES) or at [`MAX_CHUNKS`](Self::MAX_CHUNKS)
/// chunks, whichever comes first: a body trickled in tiny chunks makes more, smaller batches, not
/// a list of chunks that outweighs its bytes (32 bytes of list per chunk of maybe one byte).
#[derive(Debug, Default)]
pub struct ChunkBatch {
    chunks: Vec<Bytes>,
    len: usize,
}

impl ChunkBatch {
    /// Bytes at which a batch is full.
    pub const MAX_BYTES: usize = 1024 * 1024;
    /// Chunks at which a batch is full.
    pub const MAX_CHUNKS: usize = 1024;

    /// Adds `chunk`; `true` when the batch is now full and should be taken.
    pub fn push(&mut self, chunk: Bytes) -> bool {
        self.len += chunk.len();
        self.chunks.push(chunk);
        self.len >= Self::MAX_BYTES || self.chunks.len() >= Self::MAX_CHUNKS
    }

    /// The chunks gathered so far, in order; the batch starts over empty.
    pub fn take(&mut self) -> Vec<Bytes> {
        self.len = 0;
        mem::take(&mut self.chunks)
    }

    /// Bytes gathered so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no chunk was gathered since the last [`take`](Self::take).
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }
}

/// What a [`BatchWorker`] does to each batch, in order, on its state.
pub type BatchWork<S> = fn(&mut S, &[Bytes]) -> io::Result<()>;

/// Work on a body's batches (hashing them, writing them to a file) done on the blocking pool, in
/// the order they were handed over, one batch at a time, while the caller gathers the next: the
/// caller hands over a batch once the job before it is done, so at most two batches are held (one
/// worked, one gathering) whatever the body's size. A blocking thread is held only while a job
/// runs, never while the client is slow to send.
///
/// Letting the caller run further ahead (two batches waiting behind the job) measured no faster
/// on 1 GiB uploads and held 3-4 MiB more at peak (bench/NOTES.md, stop 39).
///
/// Dropped midway (the request went away), a running job finishes on its own and its state is
/// dropped with it.
pub struct BatchWorker<S> {
    /// The state while no job holds it.
    idle: Option<S>,
    running: Option<JoinHandle<io::Result<S>>>,
    work: BatchWork<S>,
}

impl<S> std::fmt::Debug for BatchWorker<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchWorker").field("running", &self.running.is_some()).finish_non_exhaustive()
    }
}

impl<S: Send + 'static> BatchWorker<S> {
    pub fn new(state: S, work: BatchWork<S>) -> Self {
        Self { idle: Some(state), running: None, work }
    }

    /// The state, if no job holds it (so work done on it here keeps the order).
    pub fn idle_state(&mut self) -> Option<&mut S> {
        self.idle.as_mut()
    }

    /// Hands over a batch once the job before it (if any) is done; an error of that job is
    /// returned here instead.
    pub async fn push(&mut self, batch: Vec<Bytes>) -> io::Result<()> {
        let (mut state, work) = (self.settle().await?, self.work);
        self.running = Some(tokio::task::spawn_blocking(move || {
            work(&mut state, &batch)?;
            Ok(state)
        }));
        Ok(())
    }

    /// Waits until every batch handed over has been worked, and returns the state (the worker
    /// then has none: it is done).
    pub async fn finish(&mut self) -> io::Result<S> {
        self.settle().await
    }

    /// The state, once the running job (if any) is done.
    async fn settle(&mut self) -> io::Result<S> {
        match self.running.take() {
            Some(job) => job.await.map_err(io::Error::other)?,
            None => self
                .idle
                .take()
                .ok_or_else(|| io::Error::other("the batch worker is done, or an earlier job failed or was cancelled")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_batch_is_full_at_its_bytes_or_its_chunks_and_starts_over_when_taken() {
        let mut batch = ChunkBatch::default();
        assert!(batch.is_empty());
        // By bytes: full on the chunk that reaches a MiB, not before.
        assert!(!batch.push(Bytes::from(vec![1; ChunkBatch::MAX_BYTES - 1])));
        assert!(batch.push(Bytes::from_static(b"xy")));
        assert_eq!(batch.len(), ChunkBatch::MAX_BYTES + 1);
        let taken = batch.take();
        assert_eq!((taken.len(), taken[1].as_ref()), (2, &b"xy"[..]));
        assert!(batch.is_empty());
        assert_eq!(batch.len(), 0);
        // By chunks: tiny chunks fill it long before a MiB, and come back in order.
        let full =
            (0..ChunkBatch::MAX_CHUNKS).map(|i| batch.push(Bytes::from(vec![(i % 251) as u8]))).collect::<Vec<_>>();
        assert_eq!(full.iter().filter(|full| **full).count(), 1);
        assert!(full[ChunkBatch::MAX_CHUNKS - 1]);
        let taken = batch.take();
        assert_eq!(taken.len(), ChunkBatch::MAX_CHUNKS);
        assert!(taken.iter().enumerate().all(|(i, chunk)| chunk.as_ref() == [(i % 251) as u8]));
        assert!(!batch.push(Bytes::from_static(b"z")));
    }

    fn record(seen: &mut Vec<u8>, batch: &[Bytes]) -> io::Result<()> {
        if batch.iter().any(|chunk| chunk.as_ref() == b"bad") {
            return Err(io::Error::other("a bad chunk"));
        }
        batch.iter().for_each(|chunk| seen.extend_from_slice(chunk));
        Ok(())
    }

    /// Batches handed over back to back or with pauses between them are all worked, in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_worker_works_every_batch_in_order() {
        for pause_every in [0usize, 1, 3] {
            let mut worker = BatchWorker::new(Vec::new(), record);
            let mut expected = Vec::new();
            for i in 0..200u32 {
                let batch = vec![Bytes::from(i.to_be_bytes().to_vec()), Bytes::from_static(b"|")];
                batch.iter().for_each(|chunk| expected.extend_from_slice(chunk));
                worker.push(batch).await.unwrap();
                if pause_every > 0 && (i as usize).is_multiple_of(pause_every) {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
            assert_eq!(worker.finish().await.unwrap(), expected, "pausing every {pause_every}");
        }
    }

    /// The state is lent out only while no job holds it, so work done on it in place lands in
    /// order.
    #[tokio::test]
    async fn a_batch_worker_lends_its_state_only_when_idle() {
        let mut worker = BatchWorker::new(Vec::new(), record);
        worker.idle_state().unwrap().extend_from_slice(b"here,");
        worker.push(vec![Bytes::from_static(b"beside,")]).await.unwrap();
        assert!(worker.idle_state().is_none());
        let state = worker.finish().await.unwrap();
        assert_eq!(state, b"here,beside,");
    }

    /// A failing batch's error reaches the caller (at a later push or at the end), and nothing
    /// after it is worked as if it had succeeded.
    #[tokio::test]
    async fn a_batch_workers_error_reaches_the_caller() {
        let mut worker = BatchWorker::new(Vec::new(), record);
        let mut failed = false;
        for batch in [&b"ok"[..], b"bad", b"ok", b"ok", b"ok"] {
            if worker.push(vec![Bytes::from_static(batch)]).await.is_err() {
                failed = true;
                break;
            }
        }
        let end = worker.finish().await;
        assert!(failed || end.is_err(), "the bad batch's error was lost");
        if !failed {
            assert_eq!(end.unwrap_err().to_string(), "a bad chunk");
        }
    }
}
