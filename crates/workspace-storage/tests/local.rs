//! The conformance suite on the in-memory and local backends, plus what only local disk can break.

use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use workspace_core::{BlobKey, InMemoryStorage, Storage, WorkspaceStorageBackend};
use workspace_storage::{LocalStorage, conformance};

#[tokio::test]
async fn memory_backend_conforms() {
    conformance::run_all(&Storage::new(InMemoryStorage::new())).await;
}

#[tokio::test]
async fn local_backend_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance::run_all(&Storage::new(LocalStorage::new(dir.path()).unwrap())).await;
}

#[tokio::test]
async fn keys_never_resolve_outside_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalStorage::new(dir.path().join("root")).unwrap();
    for bad in ["../escape", "a/../../b", "/etc/passwd", "a//b", "./a", "a\\..\\b", "..", "a/.."] {
        assert!(BlobKey::parse(bad).is_err(), "{bad:?} is not a key");
    }
    // Every key that does parse stays under the root.
    for good in ["a", "workspaces/x/y", "...", "a..b", ".hidden/x"] {
        let key = BlobKey::parse(good).unwrap();
        let path = local.path_for(&key).unwrap();
        assert!(path.starts_with(dir.path().canonicalize().unwrap().join("root/objects")), "{good:?} -> {path:?}");
    }
}

#[tokio::test]
async fn an_interrupted_write_never_appears_at_the_final_key() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalStorage::new(dir.path()).unwrap();
    let key = BlobKey::parse("workspaces/w/f").unwrap();
    // 3 MiB arrive, then the client disconnects: more than one write batch reached the disk.
    let err = local.put(&key, conformance::failing_body(3 * 1024 * 1024)).await.unwrap_err();
    assert!(err.to_string().contains("client went away"), "{err}");
    let final_path = local.path_for(&key).unwrap();
    assert!(!final_path.exists(), "no partial file at the final key");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("tmp")).unwrap().collect();
    assert!(leftovers.is_empty(), "the temp file was removed: {leftovers:?}");
}

#[tokio::test]
async fn a_crash_mid_write_leaves_only_a_temp_file_that_is_never_listed_and_is_purged() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalStorage::new(dir.path()).unwrap();
    // What a process killed mid-write leaves behind: a temp file, nothing under objects/.
    std::fs::write(dir.path().join("tmp/deadbeef"), b"half a file").unwrap();
    local.put(&BlobKey::parse("workspaces/w/done").unwrap(), conformance::body_of(b"x", 1)).await.unwrap();
    let listed: Vec<_> = local.list("").try_collect().await.unwrap();
    assert_eq!(listed.len(), 1, "only completed objects are listed: {listed:?}");
    assert_eq!(local.purge_incomplete(Duration::from_secs(3600)).await.unwrap(), 0, "young leftovers are kept");
    assert_eq!(local.purge_incomplete(Duration::ZERO).await.unwrap(), 1);
    assert!(!dir.path().join("tmp/deadbeef").exists());
}

#[tokio::test]
async fn storage_paths_do_not_leak_the_host_directory() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::new(LocalStorage::new(dir.path()).unwrap());
    let key = BlobKey::parse("workspaces/w/f").unwrap();
    storage.put_bytes(&key, Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(storage.storage_path(&key), "local://workspaces/w/f");
}

/// gc lists and purges while uploads land and deletes run: an object or temp file that vanishes
/// between reading its directory and reading its metadata is simply not there, not an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listing_and_purging_race_with_writes_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalStorage::new(dir.path()).unwrap();
    let keys: Vec<BlobKey> = (0..400).map(|i| BlobKey::parse(&format!("workspaces/w/{i}")).unwrap()).collect();
    for key in &keys {
        local.put(key, conformance::body_of(b"x", 1)).await.unwrap();
    }
    let churn = {
        let local = local.clone();
        tokio::spawn(async move {
            for (i, key) in keys.iter().enumerate() {
                local.delete(key).await.unwrap();
                let new = BlobKey::parse(&format!("workspaces/n/{i}")).unwrap();
                local.put(&new, conformance::body_of(b"y", 1)).await.unwrap();
            }
        })
    };
    let mut rounds = 0;
    while !churn.is_finished() {
        local.list("workspaces/").try_collect::<Vec<_>>().await.unwrap();
        local.purge_incomplete(Duration::from_secs(3600)).await.unwrap();
        rounds += 1;
    }
    churn.await.unwrap();
    assert!(rounds > 0);
    assert_eq!(local.list("workspaces/").try_collect::<Vec<_>>().await.unwrap().len(), 400);
}

/// An upload is written a batch at a time while the next is received, with writeback started on
/// the way: chunks of every size (tiny, odd, one larger than a batch) land in order, across
/// several writeback steps, and a body failing after many batches leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_land_in_order_across_batches_and_writeback_steps() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::new(LocalStorage::new(dir.path()).unwrap());
    // 20 MiB and a bit whose every byte depends on its position.
    let total = 20 * 1024 * 1024 + 12_345;
    let data: Vec<u8> = (0..total).map(|i: usize| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let data = Bytes::from(data);
    let sizes = [1usize, 7, 4096, 65_536, 3 * 1024 * 1024 + 5, 100_003];
    let mut chunks = Vec::new();
    let (mut at, mut i) = (0, 0);
    while at < total {
        let len = sizes[i % sizes.len()].min(total - at);
        chunks.push(data.slice(at..at + len));
        (at, i) = (at + len, i + 1);
    }
    let key = BlobKey::parse("workspaces/w/ordered").unwrap();
    let body = futures::stream::iter(chunks.clone().into_iter().map(Ok));
    let written = storage.put(&key, Box::pin(body)).await.unwrap();
    assert_eq!(written, total as u64);
    let got: Vec<Bytes> = storage.get(&key, None).await.unwrap().stream.try_collect().await.unwrap();
    assert!(got.concat() == data[..], "the stored bytes are the body's, in order");

    let failing = BlobKey::parse("workspaces/w/failing").unwrap();
    let mut broken: Vec<std::io::Result<Bytes>> = chunks.into_iter().map(Ok).collect();
    broken.push(Err(std::io::Error::other("client went away")));
    assert!(storage.put(&failing, Box::pin(futures::stream::iter(broken))).await.is_err());
    assert!(storage.head(&failing).await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("tmp")).unwrap().collect();
    assert!(leftovers.is_empty(), "no temp file is left: {leftovers:?}");
}

/// A body trickled in tiny chunks (far more of them than one write batch gathers) still lands
/// whole and in order.
#[tokio::test]
async fn a_body_of_many_tiny_chunks_lands_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::new(LocalStorage::new(dir.path()).unwrap());
    let data: Vec<u8> = (0..30_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let data = Bytes::from(data);
    let chunks: Vec<std::io::Result<Bytes>> = (0..data.len()).step_by(3).map(|at| Ok(data.slice(at..at + 3))).collect();
    assert_eq!(chunks.len(), 10_000);
    let key = BlobKey::parse("workspaces/w/trickled").unwrap();
    assert_eq!(storage.put(&key, Box::pin(futures::stream::iter(chunks))).await.unwrap(), data.len() as u64);
    let got: Vec<Bytes> = storage.get(&key, None).await.unwrap().stream.try_collect().await.unwrap();
    assert!(got.concat() == data[..], "the stored bytes are the body's, in order");
}
