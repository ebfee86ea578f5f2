//! The conformance suite: one set of checks of the `WorkspaceStorageBackend` contract that every
//! backend runs (memory, local disk, GCS). Each run works under its own random key prefix, so
//! runs can share a bucket or directory and go in parallel.
//!
//! This is test-support code: failures panic with a message naming the broken promise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use workspace_core::{BlobKey, BodyStream, ByteRange, Storage, StorageError};

/// Runs every check against `storage`.
pub async fn run_all(storage: &Storage) {
    let prefix = format!("conformance/{}", uuid::Uuid::new_v4().simple());
    round_trip(storage, &prefix).await;
    empty_object(storage, &prefix).await;
    missing_keys(storage, &prefix).await;
    byte_ranges(storage, &prefix).await;
    overwrite_replaces(storage, &prefix).await;
    failed_body_leaves_nothing(storage, &prefix).await;
    large_streamed_object(storage, &prefix).await;
    concurrent_puts(storage, &prefix).await;
    list_by_prefix(storage, &prefix).await;
}

fn key(prefix: &str, name: &str) -> BlobKey {
    BlobKey::parse(&format!("{prefix}/{name}")).unwrap()
}

/// A body of `chunks` copies of `chunk`.
pub fn body_of(chunk: &'static [u8], chunks: usize) -> BodyStream {
    futures::stream::iter((0..chunks).map(move |_| Ok(Bytes::from_static(chunk)))).boxed()
}

/// A body that yields `good` bytes and then fails.
pub fn failing_body(good: usize) -> BodyStream {
    let data = Bytes::from(vec![7u8; good]);
    futures::stream::iter(vec![Ok(data), Err(io::Error::new(io::ErrorKind::ConnectionReset, "client went away"))])
        .boxed()
}

async fn read(storage: &Storage, key: &BlobKey, range: Option<ByteRange>) -> Result<Vec<u8>, StorageError> {
    let got = storage.get(key, range).await?;
    let expected_len = got.range.end - got.range.start;
    let chunks: Vec<Bytes> = got.stream.try_collect().await?;
    let bytes = chunks.concat();
    assert_eq!(bytes.len() as u64, expected_len, "stream length matches the reported range");
    Ok(bytes)
}

async fn round_trip(storage: &Storage, prefix: &str) {
    let k = key(prefix, "round-trip");
    let n = storage.put(&k, body_of(b"hello ", 3)).await.unwrap();
    assert_eq!(n, 18, "put returns the byte count");
    assert_eq!(read(storage, &k, None).await.unwrap(), b"hello hello hello ");
    let meta = storage.head(&k).await.unwrap().expect("head finds a stored object");
    assert_eq!(meta.size, 18);
    assert_eq!(meta.key, k);
    storage.delete(&k).await.unwrap();
    assert!(storage.head(&k).await.unwrap().is_none(), "deleted objects are gone");
}

async fn empty_object(storage: &Storage, prefix: &str) {
    let k = key(prefix, "empty");
    assert_eq!(storage.put(&k, body_of(b"", 0)).await.unwrap(), 0);
    assert_eq!(read(storage, &k, None).await.unwrap(), b"");
    assert_eq!(storage.head(&k).await.unwrap().unwrap().size, 0);
    assert!(matches!(
        storage.get(&k, Some(ByteRange::From(0))).await,
        Err(StorageError::RangeNotSatisfiable { size: 0 })
    ));
    storage.delete(&k).await.unwrap();
}

async fn missing_keys(storage: &Storage, prefix: &str) {
    let k = key(prefix, "never-written");
    assert!(matches!(storage.get(&k, None).await, Err(StorageError::NotFound(_))), "get of a missing key");
    assert!(storage.head(&k).await.unwrap().is_none());
    storage.delete(&k).await.expect("deleting a missing key succeeds");
}

async fn byte_ranges(storage: &Storage, prefix: &str) {
    let k = key(prefix, "ranges");
    let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    storage.put_bytes(&k, Bytes::from(data.clone())).await.unwrap();
    let cases = [
        (ByteRange::Bounded { start: 0, end: 1 }, 0..1),
        (ByteRange::Bounded { start: 999, end: 1000 }, 999..1000),
        (ByteRange::Bounded { start: 10, end: 5000 }, 10..1000),
        (ByteRange::From(500), 500..1000),
        (ByteRange::Suffix(10), 990..1000),
        (ByteRange::Suffix(5000), 0..1000),
    ];
    for (range, expected) in cases {
        let got = storage.get(&k, Some(range)).await.unwrap();
        assert_eq!(got.size, 1000, "{range:?} reports the full size");
        assert_eq!(got.range, expected, "{range:?} resolves");
        assert_eq!(
            read(storage, &k, Some(range)).await.unwrap(),
            &data[expected.start as usize..expected.end as usize]
        );
    }
    for range in [ByteRange::From(1000), ByteRange::Bounded { start: 2000, end: 3000 }, ByteRange::Suffix(0)] {
        assert!(
            matches!(storage.get(&k, Some(range)).await, Err(StorageError::RangeNotSatisfiable { size: 1000 })),
            "{range:?} is unsatisfiable"
        );
    }
    storage.delete(&k).await.unwrap();
}

async fn overwrite_replaces(storage: &Storage, prefix: &str) {
    let k = key(prefix, "overwrite");
    storage.put_bytes(&k, Bytes::from_static(b"first version")).await.unwrap();
    storage.put_bytes(&k, Bytes::from_static(b"second")).await.unwrap();
    assert_eq!(read(storage, &k, None).await.unwrap(), b"second");
    storage.delete(&k).await.unwrap();
}

async fn failed_body_leaves_nothing(storage: &Storage, prefix: &str) {
    let k = key(prefix, "failed-body");
    let err = storage.put(&k, failing_body(300_000)).await.expect_err("a failing body fails the put");
    assert!(matches!(err, StorageError::Body(_)), "body failures are reported as such: {err:?}");
    assert!(storage.head(&k).await.unwrap().is_none(), "nothing is left at the key");

    let kept = key(prefix, "failed-overwrite");
    storage.put_bytes(&kept, Bytes::from_static(b"keep me")).await.unwrap();
    storage.put(&kept, failing_body(10)).await.expect_err("fails");
    assert_eq!(read(storage, &kept, None).await.unwrap(), b"keep me", "the previous object is untouched");
    storage.delete(&kept).await.unwrap();
}

async fn large_streamed_object(storage: &Storage, prefix: &str) {
    let k = key(prefix, "large");
    const CHUNK: &[u8] = &[42u8; 64 * 1024];
    let n = storage.put(&k, body_of(CHUNK, 80)).await.unwrap();
    assert_eq!(n, 80 * 64 * 1024);
    let got = storage.get(&k, None).await.unwrap();
    let mut total = 0u64;
    let mut chunks = 0;
    let mut stream = got.stream;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        assert!(chunk.iter().all(|b| *b == 42));
        total += chunk.len() as u64;
        chunks += 1;
    }
    assert_eq!(total, n);
    assert!(chunks > 1, "a 5 MiB object is streamed in several chunks, not one buffer");
    storage.delete(&k).await.unwrap();
}

async fn concurrent_puts(storage: &Storage, prefix: &str) {
    let tasks: Vec<_> = (0..16u8)
        .map(|i| {
            let storage = storage.clone();
            let k = key(prefix, &format!("concurrent-{i}"));
            tokio::spawn(async move {
                storage.put_bytes(&k, Bytes::from(vec![i; 10_000 + usize::from(i)])).await.unwrap();
                k
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let k = task.await.unwrap();
        let bytes = read(storage, &k, None).await.unwrap();
        assert_eq!(bytes.len(), 10_000 + i);
        assert!(bytes.iter().all(|b| usize::from(*b) == i), "no object holds another's bytes");
        storage.delete(&k).await.unwrap();
    }
}

async fn list_by_prefix(storage: &Storage, prefix: &str) {
    for name in ["dir/a", "dir/b", "dir2/c", "other/d"] {
        storage.put_bytes(&key(prefix, name), Bytes::from(name.as_bytes().to_vec())).await.unwrap();
    }
    let mut listed: Vec<String> =
        storage.list_all(&format!("{prefix}/dir/")).await.unwrap().into_iter().map(|m| m.key.to_string()).collect();
    listed.sort();
    assert_eq!(listed, vec![format!("{prefix}/dir/a"), format!("{prefix}/dir/b")]);
    let all = storage.list_all(&format!("{prefix}/")).await.unwrap();
    assert_eq!(all.len(), 4, "list sees every object under the prefix: {all:?}");
    for meta in &all {
        let name = meta.key.as_str().strip_prefix(&format!("{prefix}/")).unwrap();
        assert_eq!(meta.size, name.len() as u64, "the size of {name} is reported");
    }
    for meta in all {
        storage.delete(&meta.key).await.unwrap();
    }
    assert!(storage.list_all(&format!("{prefix}/")).await.unwrap().is_empty(), "deleted objects leave the listing");
}
