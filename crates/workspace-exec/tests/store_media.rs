//! `store_media_file` end to end: every input kind × return format, with and without a
//! workspace (SQLite and PostgreSQL, local storage), temp-dir escapes, caps and cleanup.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use common::{Reply, TestServer};
use futures::StreamExt;
use sha2::Digest;
use workspace_core::{
    BlobKey, BodyStream, ByteRange, FileId, FileSource, GetResult, NewFile, ObjectMeta, ObjectStream, SessionId,
    Settings, Storage, StorageError, UserId, WorkspaceError, WorkspaceManager, WorkspaceStorageBackend, WorkspaceUri,
    Workspaces,
};
use workspace_exec::{
    DataUriError, ExecConfig, ExecEnv, ExecError, ExecutionContext, FetchConfig, GraphExecId, GraphRun, MediaFile,
    MediaReturnFormat::{ForBlockOutput, ForExternalApi, ForLocalProcessing},
    store_media_file,
};
use workspace_testkit::{TestEnv, db_tests};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR-not-really-an-image";
const EXEC: &str = "exec-1";

fn exec_env(temp: &tempfile::TempDir, configure: impl FnOnce(&mut ExecConfig)) -> ExecEnv {
    let mut config = ExecConfig::new(temp.path());
    config.fetch = FetchConfig { allowed_ranges: vec!["127.0.0.1/32".parse().unwrap()], ..FetchConfig::default() };
    configure(&mut config);
    ExecEnv::new(config)
}

fn run(user: &str) -> GraphRun {
    GraphRun {
        user_id: UserId::new(user).unwrap(),
        graph_id: "graph-1".into(),
        graph_version: 3,
        graph_exec_id: GraphExecId::new(EXEC).unwrap(),
    }
}

async fn manager(env: &TestEnv, user: &str, session: Option<&str>) -> WorkspaceManager {
    let session = session.map(|s| SessionId::new(s).unwrap());
    env.workspaces().manager(&UserId::new(user).unwrap(), session).await.unwrap()
}

fn decode_data_uri(media: &MediaFile) -> (String, Vec<u8>) {
    let text = media.as_str();
    let (head, payload) = text.strip_prefix("data:").unwrap().split_once(',').unwrap();
    let mime = head.strip_suffix(";base64").expect("base64 output").split(';').next().unwrap().to_owned();
    (mime, base64::engine::general_purpose::STANDARD.decode(payload).unwrap())
}

async fn png_server() -> TestServer {
    TestServer::start(|req| match req.path.as_str() {
        "/pic.png" => Reply::ok("image/png", PNG.to_vec()),
        _ => Reply::status(404),
    })
    .await
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Input {
    DataUri,
    Url,
    WorkspaceId,
    WorkspacePath,
    LocalPath,
}

db_tests!(every_input_kind_by_every_format, outputs_get_clean_names_and_provenance, workspace_refs_are_checked);

/// The 4×3 table of SPEC §8 (the workspace kind in its id and path forms), then the same
/// inputs in an execution without a workspace.
async fn every_input_kind_by_every_format(env: TestEnv) {
    let temp = tempfile::tempdir().unwrap();
    let exec = exec_env(&temp, |_| {});
    let server = png_server().await;
    let m = manager(&env, "alice", Some("s1")).await;
    let ctx = ExecutionContext::new(&exec, run("alice")).with_workspace(m.clone()).unwrap().for_node("n1", "ne1");
    let bare = ExecutionContext::new(&exec, run("alice")).for_node("n1", "ne1");
    assert_eq!(ctx.workspace_id(), Some(m.workspace_id()));
    assert_eq!(ctx.session_id().map(SessionId::as_str), Some("s1"));
    assert_eq!((bare.workspace_id(), bare.node_id(), bare.graph_version()), (None, "n1", 3));

    let stored = m.write_bytes(NewFile::new(m.resolve_path("input.png").unwrap()), PNG).await.unwrap();
    tokio::fs::create_dir_all(ctx.temp_dir()).await.unwrap();
    tokio::fs::write(ctx.temp_dir().join("local.png"), PNG).await.unwrap();
    let input = |kind: Input| -> MediaFile {
        match kind {
            Input::DataUri => MediaFile::from_bytes(PNG, "image/png", Some("pic.png")),
            Input::Url => MediaFile::new(server.url("/pic.png")),
            Input::WorkspaceId => MediaFile::new(stored.uri().to_string()),
            Input::WorkspacePath => MediaFile::new("workspace:///sessions/s1/input.png"),
            Input::LocalPath => MediaFile::new("local.png"),
        }
    };
    let kinds = [Input::DataUri, Input::Url, Input::WorkspaceId, Input::WorkspacePath, Input::LocalPath];
    let formats = [ForLocalProcessing, ForExternalApi, ForBlockOutput];
    let files_before = m.usage().await.unwrap().file_count;
    let mut stored_outputs = 0;

    for kind in kinds {
        for format in formats {
            let file = input(kind);
            let cell = format!("{kind:?} × {format:?}");
            let out = store_media_file(&file, &ctx, format).await.unwrap_or_else(|e| panic!("{cell}: {e}"));
            match format {
                ForLocalProcessing => {
                    if kind == Input::LocalPath {
                        assert_eq!(out, file, "{cell}: a temp-dir path comes back unchanged");
                    }
                    assert!(out.kind().unwrap() == workspace_exec::MediaKind::LocalPath, "{cell}: {out}");
                    let path = ctx.local_path(out.as_str()).await.unwrap();
                    assert!(path.starts_with(temp.path().join("exec_file").join(EXEC)), "{cell}");
                    assert_eq!(tokio::fs::read(&path).await.unwrap(), PNG, "{cell}");
                }
                ForExternalApi => assert_eq!(decode_data_uri(&out), ("image/png".into(), PNG.to_vec()), "{cell}"),
                ForBlockOutput if matches!(kind, Input::WorkspaceId | Input::WorkspacePath) => {
                    assert_eq!(out, file, "{cell}: a workspace reference comes back unchanged");
                }
                ForBlockOutput => {
                    let Ok(WorkspaceUri::File { id, mime }) = WorkspaceUri::parse(out.as_str()) else {
                        panic!("{cell}: expected workspace://{{id}}#{{mime}}, got {out}");
                    };
                    assert_eq!(mime.as_deref(), Some("image/png"), "{cell}");
                    let (info, bytes) = m.read(id).await.unwrap();
                    assert_eq!((&bytes[..], info.mime_type.as_ref()), (PNG, "image/png"), "{cell}");
                    assert!(info.path.as_str().starts_with("/sessions/s1/"), "{cell}: {}", info.path);
                    stored_outputs += 1;
                }
            }
        }
    }
    assert_eq!(stored_outputs, 3);
    assert_eq!(m.usage().await.unwrap().file_count, files_before + 3, "only block outputs were stored");

    // Without a workspace: block outputs are data URIs, workspace references are an error.
    tokio::fs::create_dir_all(bare.temp_dir()).await.unwrap();
    for kind in kinds {
        for format in formats {
            let cell = format!("no workspace: {kind:?} × {format:?}");
            let result = store_media_file(&input(kind), &bare, format).await;
            match (kind, format) {
                (Input::WorkspaceId | Input::WorkspacePath, _) => {
                    let err = result.unwrap_err();
                    assert!(matches!(err, ExecError::NoWorkspace(_)), "{cell}: {err}");
                    assert!(err.to_string().contains("has no workspace"), "{cell}: {err}");
                }
                (_, ForBlockOutput | ForExternalApi) => {
                    let out = result.unwrap();
                    assert_eq!(decode_data_uri(&out), ("image/png".into(), PNG.to_vec()), "{cell}");
                }
                (_, ForLocalProcessing) => {
                    let out = result.unwrap();
                    assert_eq!(tokio::fs::read(bare.local_path(out.as_str()).await.unwrap()).await.unwrap(), PNG);
                }
            }
        }
    }
    assert_eq!(m.usage().await.unwrap().file_count, files_before + 3, "nothing stored without a workspace");
}

async fn outputs_get_clean_names_and_provenance(env: TestEnv) {
    let temp = tempfile::tempdir().unwrap();
    let exec = exec_env(&temp, |_| {});
    let m = manager(&env, "bob", Some("chat-9")).await;
    let ctx = ExecutionContext::new(&exec, run("bob")).with_workspace(m.clone()).unwrap().for_node("qr", "qr-exec-7");
    let file = MediaFile::from_bytes(PNG, "image/png", Some("../../etc/qr code"));
    let first = store_media_file(&file, &ctx, ForBlockOutput).await.unwrap();
    let second = store_media_file(&file, &ctx, ForBlockOutput).await.unwrap();
    let info_of = |media: &MediaFile| match WorkspaceUri::parse(media.as_str()).unwrap() {
        WorkspaceUri::File { id, .. } => id,
        other => panic!("{other}"),
    };
    let (a, b) = (m.lookup(info_of(&first)).await.unwrap(), m.lookup(info_of(&second)).await.unwrap());
    assert_eq!(a.path, "/sessions/chat-9/qr code.png");
    assert!(
        b.path.as_str().starts_with("/sessions/chat-9/") && b.path.as_str().ends_with("_qr code.png"),
        "{}",
        b.path
    );
    assert_eq!(m.read(a.id).await.unwrap().1, PNG, "the first output was not replaced");
    assert_eq!((a.source, a.source_exec_id.as_deref()), (FileSource::Execution, Some(EXEC)));
    assert_eq!(a.metadata["node_exec_id"], "qr-exec-7");

    // No session: outputs go to the execution's folder.
    let sessionless = manager(&env, "bob", None).await;
    let ctx = ExecutionContext::new(&exec, run("bob")).with_workspace(sessionless.clone()).unwrap();
    let out = store_media_file(&MediaFile::from_bytes(b"hi", "text/plain", None), &ctx, ForBlockOutput).await.unwrap();
    assert!(out.as_str().ends_with("#text/plain"), "{out}");
    let info = sessionless.lookup(info_of(&out)).await.unwrap();
    assert_eq!(info.path, format!("/executions/{EXEC}/file.txt"));

    // A context refuses a workspace of another user.
    let err = ExecutionContext::new(&exec, run("mallory")).with_workspace(m).unwrap_err();
    assert!(matches!(err, ExecError::InvalidInput(_)), "{err}");
}

async fn workspace_refs_are_checked(env: TestEnv) {
    let temp = tempfile::tempdir().unwrap();
    let exec = exec_env(&temp, |c| c.max_media_bytes = 16);
    let alice = manager(&env, "alice", None).await;
    let eve = manager(&env, "eve", None).await;
    let secret =
        alice.write_bytes(NewFile::new(alice.resolve_path("secret.txt").unwrap()), "top secret").await.unwrap();
    let big = eve.write_bytes(NewFile::new(eve.resolve_path("big.txt").unwrap()), "x".repeat(17)).await.unwrap();
    let ctx = ExecutionContext::new(&exec, run("eve")).with_workspace(eve.clone()).unwrap();
    for format in [ForLocalProcessing, ForExternalApi, ForBlockOutput] {
        // Another user's file is not found, so a block cannot launder a foreign reference.
        let err = store_media_file(&MediaFile::new(secret.uri().to_string()), &ctx, format).await.unwrap_err();
        assert!(matches!(err, ExecError::Workspace(WorkspaceError::NotFound(_))), "{format:?}: {err}");
        let missing = format!("workspace://{}", FileId::new());
        let err = store_media_file(&MediaFile::new(missing), &ctx, format).await.unwrap_err();
        assert!(matches!(err, ExecError::Workspace(WorkspaceError::NotFound(_))), "{format:?}: {err}");
    }
    let err = store_media_file(&MediaFile::new(big.uri().to_string()), &ctx, ForExternalApi).await.unwrap_err();
    assert!(matches!(err, ExecError::TooLarge { limit: 16 }), "{err}");
}

fn plain_ctx(temp: &tempfile::TempDir, configure: impl FnOnce(&mut ExecConfig)) -> ExecutionContext {
    ExecutionContext::new(&exec_env(temp, configure), run("alice")).for_node("n", "ne")
}

#[tokio::test]
async fn local_paths_cannot_escape_the_temp_dir() {
    let temp = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let ctx = plain_ctx(&temp, |_| {});
    let dir = ctx.temp_dir();
    tokio::fs::create_dir_all(dir.join("sub")).await.unwrap();
    tokio::fs::write(outside.path().join("secret.txt"), "secret").await.unwrap();
    tokio::fs::write(dir.join("sub/ok.txt"), "fine").await.unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), dir.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.join("linkdir")).unwrap();
    std::os::unix::fs::symlink(dir.join("sub/ok.txt"), dir.join("inside.txt")).unwrap();
    let secret_path = outside.path().join("secret.txt").display().to_string();

    let escapes = [
        "../outside.txt",
        "sub/../../x.txt",
        "sub/../ok.txt",
        secret_path.as_str(),
        "/etc/passwd",
        "./sub/ok.txt",
        "sub\\ok.txt",
        "link.txt",
        "linkdir/secret.txt",
        "sub",
    ];
    for path in escapes {
        for format in [ForLocalProcessing, ForExternalApi, ForBlockOutput] {
            let err = store_media_file(&MediaFile::new(path), &ctx, format).await.unwrap_err();
            assert!(matches!(err, ExecError::PathEscape(_)), "{path} {format:?}: {err}");
        }
    }
    let err = store_media_file(&MediaFile::new("nope.txt"), &ctx, ForExternalApi).await.unwrap_err();
    assert!(matches!(err, ExecError::NotFound(_)), "{err}");
    // Plain paths and symlinks that stay inside work.
    for path in ["sub/ok.txt", "inside.txt"] {
        let out = store_media_file(&MediaFile::new(path), &ctx, ForExternalApi).await.unwrap();
        assert_eq!(decode_data_uri(&out), ("text/plain".into(), b"fine".to_vec()), "{path}");
    }
}

#[tokio::test]
async fn data_uri_inputs_are_strict() {
    let temp = tempfile::tempdir().unwrap();
    let ctx = plain_ctx(&temp, |c| c.max_media_bytes = 1024);
    let check = |input: String, expected: fn(&ExecError) -> bool| {
        let ctx = ctx.clone();
        async move {
            for format in [ForLocalProcessing, ForExternalApi, ForBlockOutput] {
                let err = store_media_file(&MediaFile::new(input.clone()), &ctx, format).await.unwrap_err();
                assert!(expected(&err), "{input:.40} {format:?}: {err}");
                assert!(!err.to_string().is_empty());
            }
        }
    };
    check(String::new(), |e| matches!(e, ExecError::InvalidInput(m) if m.contains("empty"))).await;
    check("data:image/png;base64".into(), |e| matches!(e, ExecError::DataUri(DataUriError::MissingComma))).await;
    check("data:image/png;base64,not*base64".into(), |e| matches!(e, ExecError::DataUri(DataUriError::BadBase64(_))))
        .await;
    check("data:image/png;base64,".into(), |e| matches!(e, ExecError::DataUri(DataUriError::Empty))).await;
    check("data:,".into(), |e| matches!(e, ExecError::DataUri(DataUriError::Empty))).await;
    let over = MediaFile::from_bytes(&[1u8; 1025], "application/octet-stream", None).to_string();
    check(over, |e| matches!(e, ExecError::DataUri(DataUriError::TooLarge { size: 1025, limit: 1024 }))).await;
    let at_cap = MediaFile::from_bytes(&[1u8; 1024], "application/octet-stream", None);
    assert_eq!(decode_data_uri(&store_media_file(&at_cap, &ctx, ForExternalApi).await.unwrap()).1.len(), 1024);
    // The percent-encoded form is decoded and comes back as base64.
    let out = store_media_file(&MediaFile::new("data:text/plain,a%20b"), &ctx, ForExternalApi).await.unwrap();
    assert_eq!(decode_data_uri(&out), ("text/plain".into(), b"a b".to_vec()));
}

#[tokio::test]
async fn remote_media_is_fetched_safely() {
    let temp = tempfile::tempdir().unwrap();
    let server = TestServer::start(|req| match req.path.as_str() {
        "/big" => Reply::ok("image/png", vec![0u8; 2048]),
        _ => Reply::status(404),
    })
    .await;
    let ctx = plain_ctx(&temp, |c| c.max_media_bytes = 1024);
    let err = store_media_file(&MediaFile::new(server.url("/big")), &ctx, ForExternalApi).await.unwrap_err();
    assert!(matches!(err, ExecError::Fetch(workspace_exec::FetchError::TooLarge { limit: 1024 })), "{err}");
    let err = store_media_file(&MediaFile::new(server.url("/gone")), &ctx, ForExternalApi).await.unwrap_err();
    assert!(matches!(err, ExecError::Fetch(workspace_exec::FetchError::Status { status: 404, .. })), "{err}");
    // The default policy (no allow-list) refuses the loopback server.
    let strict = ExecutionContext::new(&ExecEnv::new(ExecConfig::new(temp.path())), run("alice"));
    let err = store_media_file(&MediaFile::new(server.url("/big")), &strict, ForExternalApi).await.unwrap_err();
    assert!(matches!(err, ExecError::Fetch(workspace_exec::FetchError::BlockedAddress { .. })), "{err}");
    for unsupported in ["file:///etc/passwd", "ftp://example.com/x.png"] {
        let err = store_media_file(&MediaFile::new(unsupported), &ctx, ForExternalApi).await.unwrap_err();
        assert!(matches!(err, ExecError::InvalidInput(_)), "{err}");
    }
}

#[tokio::test]
async fn temp_dir_is_capped_and_cleaned_up() {
    let temp = tempfile::tempdir().unwrap();
    let ctx = plain_ctx(&temp, |c| c.temp_dir_cap = 100);
    let sixty = MediaFile::from_bytes(&[7u8; 60], "application/octet-stream", Some("blob.bin"));
    let first = store_media_file(&sixty, &ctx, ForLocalProcessing).await.unwrap();
    assert!(first.as_str().ends_with("_blob.bin"), "{first}");
    let err = store_media_file(&sixty, &ctx, ForLocalProcessing).await.unwrap_err();
    assert!(matches!(err, ExecError::TempDirFull { cap: 100 }), "{err}");
    assert_eq!(ctx.temp_dir(), temp.path().join("exec_file").join(EXEC));
    assert!(ctx.temp_dir().is_dir());

    ctx.env().cleanup(ctx.graph_exec_id()).await.unwrap();
    assert!(!ctx.temp_dir().exists());
    ctx.env().cleanup(ctx.graph_exec_id()).await.unwrap();
    store_media_file(&sixty, &ctx, ForLocalProcessing).await.unwrap();

    // Execution ids name a directory, so they must be one safe segment.
    for bad in ["", ".", "..", "a/b", "a\\b", "a\0b"] {
        assert!(GraphExecId::new(bad).is_err(), "{bad:?}");
    }
}

db_tests!(remote_media_streams_into_the_workspace, remote_media_over_the_cap_leaves_nothing_behind);

/// A backend that counts the bytes each `put` has pulled from its body so far, and passes every
/// call on to the backend under test.
#[derive(Debug)]
struct CountingPuts {
    inner: Storage,
    pulled: Arc<AtomicU64>,
}

#[async_trait::async_trait]
impl WorkspaceStorageBackend for CountingPuts {
    fn storage_path(&self, key: &BlobKey) -> String {
        self.inner.storage_path(key)
    }
    async fn put(&self, key: &BlobKey, body: BodyStream) -> Result<u64, StorageError> {
        let pulled = self.pulled.clone();
        let counted = body.inspect(move |piece| {
            if let Ok(bytes) = piece {
                pulled.fetch_add(bytes.len() as u64, Ordering::SeqCst);
            }
        });
        self.inner.backend().put(key, Box::pin(counted)).await
    }
    async fn get(&self, key: &BlobKey, range: Option<ByteRange>) -> Result<GetResult, StorageError> {
        self.inner.backend().get(key, range).await
    }
    async fn delete(&self, key: &BlobKey) -> Result<(), StorageError> {
        self.inner.backend().delete(key).await
    }
    async fn head(&self, key: &BlobKey) -> Result<Option<ObjectMeta>, StorageError> {
        self.inner.backend().head(key).await
    }
    fn list(&self, prefix: &str) -> ObjectStream {
        self.inner.backend().list(prefix)
    }
    async fn download_url(&self, key: &BlobKey, expires_in: Duration) -> Result<Option<String>, StorageError> {
        self.inner.backend().download_url(key, expires_in).await
    }
    async fn purge_incomplete(&self, older_than: Duration) -> Result<u64, StorageError> {
        self.inner.backend().purge_incomplete(older_than).await
    }
    async fn ping(&self) -> Result<(), StorageError> {
        self.inner.backend().ping().await
    }
}

/// A remote body goes from the socket into the workspace as it arrives: the server holds back
/// the second half of an 8 MiB body until the storage has been handed bytes of the first half,
/// which a fetch that reads the whole body before writing never does (the server then gives up
/// after 10 s and the store fails). The stored file is the body, byte for byte, typed by its
/// first bytes (the server calls it octet-stream; it starts like a PNG).
async fn remote_media_streams_into_the_workspace(env: TestEnv) {
    const TOTAL: usize = 8 * 1024 * 1024;
    let temp = tempfile::tempdir().unwrap();
    let exec = exec_env(&temp, |_| {});
    let pulled = Arc::new(AtomicU64::new(0));
    let storage = Storage::new(CountingPuts { inner: env.storage.clone(), pulled: pulled.clone() });
    let workspaces = Workspaces::new(env.db.clone(), storage, Settings::default()).unwrap();
    let m = workspaces.manager(&UserId::new("alice").unwrap(), Some(SessionId::new("s1").unwrap())).await.unwrap();

    let mut body: Vec<u8> = (0..TOTAL).map(|i| (i % 251) as u8 ^ (i >> 16) as u8).collect();
    body[..PNG.len()].copy_from_slice(PNG);
    let body = Arc::new(body);
    let gate = pulled.clone();
    let reply_body = body.clone();
    let server = TestServer::start(move |_| Reply::Gated {
        content_type: "application/octet-stream".into(),
        body: reply_body.clone(),
        first: TOTAL / 2,
        open: {
            let gate = gate.clone();
            Arc::new(move || gate.load(Ordering::SeqCst) >= 1024 * 1024)
        },
    })
    .await;

    let ctx = ExecutionContext::new(&exec, run("alice")).with_workspace(m.clone()).unwrap();
    let out = store_media_file(&MediaFile::new(server.url("/files/render")), &ctx, ForBlockOutput).await.unwrap();
    assert!(out.as_str().ends_with("#image/png"), "sniffed from the first bytes: {out}");
    let id = WorkspaceUri::parse(out.as_str()).unwrap();
    let (info, stored) = m.read(id).await.unwrap();
    assert_eq!(info.size_bytes, TOTAL as u64);
    assert_eq!(info.path, "/sessions/s1/render.png");
    assert_eq!(info.checksum.as_str(), hex::encode(sha2::Sha256::digest(&body[..])));
    assert!(stored[..] == body[..], "stored byte for byte");
    assert_eq!(pulled.load(Ordering::SeqCst), TOTAL as u64, "every byte went through one put");
}

/// A body over `max_media_bytes` is refused with the fetch's own error, whether the server
/// declares its length (refused before the body) or not (refused mid-stream, after more than the
/// inline threshold was staged as a blob): no file, no blob and no usage remain.
async fn remote_media_over_the_cap_leaves_nothing_behind(env: TestEnv) {
    const CAP: u64 = 1024 * 1024;
    const FLOOD: u64 = 64 * CAP;
    let temp = tempfile::tempdir().unwrap();
    let exec = exec_env(&temp, |c| c.max_media_bytes = CAP);
    let m = manager(&env, "alice", Some("s1")).await;
    let ctx = ExecutionContext::new(&exec, run("alice")).with_workspace(m.clone()).unwrap();
    for declare_length in [false, true] {
        let server = TestServer::start(move |_| Reply::Flood { total: FLOOD, chunk: 64 * 1024, declare_length }).await;
        let err = store_media_file(&MediaFile::new(server.url("/big.bin")), &ctx, ForBlockOutput).await.unwrap_err();
        assert!(
            matches!(err, ExecError::Fetch(workspace_exec::FetchError::TooLarge { limit: CAP })),
            "declared length {declare_length}: {err}"
        );
        assert!(err.to_string().contains("exceeds the limit of 1048576 bytes"), "{err}");
        server.wait_stream_done().await;
        // Loopback socket buffers take a few MiB whatever the reader does; far more was offered.
        assert!(server.bytes_sent.load(Ordering::SeqCst) < FLOOD / 2, "the rest of the body was never read");
    }
    let usage = m.usage().await.unwrap();
    assert_eq!((usage.file_count, usage.used_bytes), (0, 0), "{usage:?}");
    assert!(env.storage.list_all("").await.unwrap().is_empty(), "no blob left behind");
    // Exactly at the cap is stored.
    let server = TestServer::start(move |_| Reply::Flood { total: CAP, chunk: 64 * 1024, declare_length: false }).await;
    let out = store_media_file(&MediaFile::new(server.url("/ok.bin")), &ctx, ForBlockOutput).await.unwrap();
    assert_eq!(m.lookup(WorkspaceUri::parse(out.as_str()).unwrap()).await.unwrap().size_bytes, CAP);

    // The media cap is the fetch's cap, also above the fetcher's own default (an operator who
    // raises WS_MAX_MEDIA_BYTES past 100 MiB gets it for URLs too).
    let raised = exec_env(&temp, |c| {
        c.fetch.max_body_bytes = CAP / 4;
        c.max_media_bytes = 2 * CAP;
    });
    let ctx = ExecutionContext::new(&raised, run("alice")).with_workspace(m.clone()).unwrap();
    let server =
        TestServer::start(move |_| Reply::Flood { total: 2 * CAP, chunk: 64 * 1024, declare_length: true }).await;
    let out = store_media_file(&MediaFile::new(server.url("/raised.bin")), &ctx, ForBlockOutput).await.unwrap();
    assert_eq!(m.lookup(WorkspaceUri::parse(out.as_str()).unwrap()).await.unwrap().size_bytes, 2 * CAP);
}
