//! The per-execution scratch directory `{tmp}/exec_file/{graph_exec_id}/`: where blocks get
//! files for local processing, with a size cap, a cleanup, and no way for a relative path
//! (`..`, an absolute path, or a symlink) to reach anything outside it.

use std::io;
use std::path::{Component, Path, PathBuf};

use tokio::io::AsyncWriteExt;

use crate::error::ExecError;

/// Default cap on the bytes one execution may keep in its temp directory (1 GiB).
pub const DEFAULT_TEMP_DIR_CAP: u64 = 1024 * 1024 * 1024;

/// The directory of one execution under `root`.
pub(crate) fn exec_dir(root: &Path, graph_exec_id: &str) -> PathBuf {
    root.join("exec_file").join(graph_exec_id)
}

/// Checks that `relative` names an existing regular file inside `dir`, following symlinks
/// only as long as they stay inside, and returns its canonical path.
pub(crate) async fn resolve_inside(dir: &Path, relative: &str) -> Result<PathBuf, ExecError> {
    check_relative(relative)?;
    let missing = || ExecError::NotFound(format!("`{relative}` in the execution's temp directory"));
    let base = tokio::fs::canonicalize(dir).await.map_err(|_| missing())?;
    let full = tokio::fs::canonicalize(base.join(relative)).await.map_err(|_| missing())?;
    if !full.starts_with(&base) {
        return Err(ExecError::PathEscape(format!("`{relative}` leads outside the execution's temp directory")));
    }
    let meta = tokio::fs::metadata(&full).await?;
    if !meta.is_file() {
        return Err(ExecError::PathEscape(format!("`{relative}` is not a regular file")));
    }
    Ok(full)
}

/// The textual rules: relative, plain segments only.
fn check_relative(relative: &str) -> Result<(), ExecError> {
    let refuse = |why: &str| Err(ExecError::PathEscape(format!("`{relative}`: {why}")));
    if relative.is_empty() {
        return refuse("the path is empty");
    }
    if relative.contains('\\') || relative.chars().any(char::is_control) {
        return refuse("backslashes and control characters are not allowed");
    }
    for component in Path::new(relative).components() {
        match component {
            Component::Normal(_) => {}
            Component::ParentDir => return refuse("`..` is not allowed"),
            Component::RootDir | Component::Prefix(_) => return refuse("absolute paths are not allowed"),
            Component::CurDir => return refuse("`.` segments are not allowed"),
        }
    }
    Ok(())
}

/// Bytes held under `dir` (symlinks are not followed; a missing dir holds nothing).
pub(crate) async fn usage(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let mut entries = match tokio::fs::read_dir(&next).await {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        while let Some(entry) = entries.next_entry().await? {
            let meta = tokio::fs::symlink_metadata(entry.path()).await?;
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

/// Writes `bytes` to a new file `name` in `dir` (creating `dir`), refusing to pass `cap`.
/// The file is created exclusively, so nothing planted at that name is followed.
pub(crate) async fn write_new(dir: &Path, name: &str, bytes: &[u8], cap: u64) -> Result<(), ExecError> {
    check_relative(name)?;
    let used = usage(dir).await?;
    if used.saturating_add(bytes.len() as u64) > cap {
        return Err(ExecError::TempDirFull { cap });
    }
    tokio::fs::create_dir_all(dir).await?;
    let mut file = tokio::fs::OpenOptions::new().write(true).create_new(true).open(dir.join(name)).await?;
    file.write_all(bytes).await?;
    file.flush().await?;
    Ok(())
}

/// Removes the directory and everything in it; a missing directory is fine.
pub(crate) async fn remove(dir: &Path) -> io::Result<()> {
    match tokio::fs::remove_dir_all(dir).await {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
