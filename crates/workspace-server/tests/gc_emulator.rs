//! `eval "$(scripts/fake-gcs.sh start)"` is all an operator (or a developer) needs before
//! `workspace-server gc` works against the emulator: the test runs the script, then `gc` with
//! exactly the variables it exported and nothing else. Without `WS_GCS_CREDENTIALS` the failure
//! says which credentials were tried and what to set, not "transient errors".
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use workspace_core::{BlobKey, ContentId, Storage, WorkspaceId};
use workspace_storage::{GcsCredentials, GcsStorage};

/// The emulator's endpoint, or `None` (skip) when it is not running outside CI.
fn emulator() -> Option<String> {
    match std::env::var("WS_GCS_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => Some(endpoint),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("CI=true needs the GCS emulator"),
        _ => {
            eprintln!("skipping: WS_GCS_ENDPOINT is not set (scripts/fake-gcs.sh start)");
            None
        }
    }
}

/// Runs `scripts/fake-gcs.sh start` for `bucket` and returns the variables it exports.
fn start_exports(bucket: &str) -> Vec<(String, String)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fake-gcs.sh");
    // The caller's environment goes in (emulator host/port, cache dir); only the bucket is ours.
    let out = Command::new("bash").arg(&script).arg("start").env("WS_GCS_BUCKET", bucket).output().unwrap();
    assert!(out.status.success(), "fake-gcs.sh start: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let exports: Vec<(String, String)> = stdout
        .lines()
        .map(|line| {
            let assignment = line.strip_prefix("export ").unwrap_or_else(|| panic!("not an export line: {line}"));
            let (name, value) = assignment.split_once('=').unwrap();
            (name.to_owned(), value.to_owned())
        })
        .collect();
    assert!(exports.iter().any(|(k, v)| k == "WS_GCS_BUCKET" && v == bucket), "{stdout}");
    exports
}

/// `workspace-server gc` with nothing but `vars`, a fresh data directory and a home without
/// credentials of any kind.
fn gc(dir: &Path, vars: &[(String, String)], args: &[&str]) -> Output {
    let mut cmd = common::clean_command();
    cmd.current_dir(dir)
        .env("HOME", dir)
        .env("WS_DATA_DIR", dir.join("data"))
        // No metadata server either: application default credentials find nothing, quickly.
        .env("GCE_METADATA_HOST", "127.0.0.1:9")
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .arg("gc")
        .args(args);
    cmd.output().unwrap()
}

#[tokio::test]
async fn gc_runs_against_the_emulator_with_what_start_exports() {
    let Some(endpoint) = emulator() else { return };
    let bucket = format!("ws-gc-{}", uuid::Uuid::new_v4().simple());
    let exports = start_exports(&bucket);
    let names: Vec<&str> = exports.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["WS_STORAGE_BACKEND", "WS_GCS_ENDPOINT", "WS_GCS_BUCKET", "WS_GCS_CREDENTIALS"]);

    // An orphan blob (no row refers to it) in the bucket `start` created.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let gcs = Storage::new(GcsStorage::new(bucket.clone(), Some(endpoint), &GcsCredentials::Anonymous).await.unwrap());
    let orphan = BlobKey::for_content(WorkspaceId::new(), ContentId::new());
    gcs.put_bytes(&orphan, bytes::Bytes::from_static(b"left behind by a crash")).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let out = gc(dir.path(), &exports, &["--grace-minutes", "0"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "gc failed: {}{}", stdout, String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("gc: scanned 1 blobs, removed 1 orphans"), "{stdout}");
    assert!(gcs.head(&orphan).await.unwrap().is_none(), "the orphan was removed from the emulator");
    assert!(!dir.path().join("data/files").exists(), "nothing went to local disk");

    // Without WS_GCS_CREDENTIALS the server tries application default credentials; the error
    // says so and names the setting, instead of blaming "transient errors".
    let without: Vec<_> = exports.iter().filter(|(k, _)| k != "WS_GCS_CREDENTIALS").cloned().collect();
    let out = gc(dir.path(), &without, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let error = stderr.lines().find(|l| l.starts_with("Error:")).unwrap_or_else(|| panic!("no error in {stderr}"));
    assert!(error.contains("no access token: WS_GCS_CREDENTIALS is unset"), "{error}");
    assert!(error.contains("WS_GCS_CREDENTIALS=anonymous"), "{error}");
}
