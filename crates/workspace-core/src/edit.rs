//! Exact-text edits and appends (SPEC §15). An edit replaces text that must occur exactly once
//! (or every occurrence, when asked), shows a unified diff, and writes a new version under the
//! checksum it read, so a change made in between is never overwritten. An append streams the old
//! content and the new bytes into a new version without holding the file.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use similar::TextDiff;

use crate::error::{Result, WorkspaceError};
use crate::manager::WorkspaceManager;
use crate::model::{Checksum, FileInfo, FileRef, FileSource, NewFile, Precondition};
use crate::path::WorkspacePath;

/// Longest a diff may take to compute before it settles for a coarser one.
const DIFF_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// An exact-text replacement.
#[derive(Debug, Clone)]
pub struct Edit {
    /// Text to find (not empty).
    pub old_text: String,
    /// Its replacement.
    pub new_text: String,
    /// Replace every occurrence instead of requiring exactly one.
    pub replace_all: bool,
    /// Compute the result and the diff, write nothing.
    pub dry_run: bool,
    /// A condition on the file's current checksum.
    pub precondition: Precondition,
    /// Provenance of the new version.
    pub source: FileSource,
}

/// What an [`Edit`] did (or would do, on a dry run).
#[derive(Debug, Clone)]
pub struct EditOutcome {
    /// The new version, or the file as it is on a dry run.
    pub info: FileInfo,
    /// Occurrences replaced.
    pub replacements: usize,
    /// Unified diff of the change (`a/{path}` → `b/{path}`).
    pub diff: String,
    /// Checksum of the content after the edit (what the new version has, or would have).
    pub new_checksum: Checksum,
    /// Size in bytes after the edit.
    pub new_size: u64,
    /// Whether anything was written.
    pub written: bool,
}

impl WorkspaceManager {
    /// Replaces `edit.old_text` in the current file `target`. It must occur exactly once unless
    /// `replace_all`; otherwise [`WorkspaceError::InvalidInput`] gives the count and nothing is
    /// written. The file must be UTF-8 text within the max file size. The new version is
    /// committed only if the file still has the checksum that was read (and `precondition`
    /// holds), so a concurrent change fails it with [`WorkspaceError::PreconditionFailed`].
    pub async fn edit(&self, target: impl Into<FileRef>, edit: Edit) -> Result<EditOutcome> {
        if edit.old_text.is_empty() {
            return Err(WorkspaceError::InvalidInput("old_text is empty: give the exact text to replace".into()));
        }
        let opened = self.open(target).await?;
        let info = opened.info.clone();
        if !info.is_current {
            return Err(WorkspaceError::NotCurrent(format!(
                "{} is an older version of {}; edit the current file (by path or its current id)",
                info.id, info.path
            )));
        }
        edit.precondition.check(Some(&info))?;
        if info.size_bytes > self.settings().limits.max_file_size {
            return Err(WorkspaceError::TooLarge { limit: self.settings().limits.max_file_size });
        }
        let bytes = opened.bytes().await?;
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            WorkspaceError::InvalidInput(format!("{} is not UTF-8 text; only text files can be edited", info.path))
        })?;
        let count = text.matches(edit.old_text.as_str()).count();
        match count {
            0 => {
                return Err(WorkspaceError::InvalidInput(format!(
                    "old_text matches 0 times in {}: nothing was changed. Copy the exact text (whitespace and line \
                     endings included) from a fresh read",
                    info.path
                )));
            }
            1 => {}
            n if !edit.replace_all => {
                return Err(WorkspaceError::InvalidInput(format!(
                    "old_text matches {n} times in {}: nothing was changed. Include more surrounding text so it \
                     matches exactly once, or set replace_all to replace all {n}",
                    info.path
                )));
            }
            _ => {}
        }
        let updated = if edit.replace_all {
            text.replace(edit.old_text.as_str(), &edit.new_text)
        } else {
            text.replacen(edit.old_text.as_str(), &edit.new_text, 1)
        };
        let diff = unified_diff(&info.path, text, &updated);
        let new_checksum = Checksum::of(updated.as_bytes());
        let new_size = updated.len() as u64;
        if edit.dry_run {
            return Ok(EditOutcome { info, replacements: count, diff, new_checksum, new_size, written: false });
        }
        let new = NewFile::new(info.path.clone())
            .with_name(info.name.clone())
            .with_mime_type(info.mime_type.to_string())
            .with_precondition(Precondition::IfMatch(info.checksum.clone()))
            .with_source(edit.source);
        let written = self.write_bytes(new, Bytes::from(updated)).await?;
        Ok(EditOutcome { info: written, replacements: count, diff, new_checksum, new_size, written: true })
    }

    /// Appends `tail` to the current file at `path` (a new version with the old content and
    /// `tail`), or creates the file when the path is free. The old content is streamed, never held
    /// whole. Without a `precondition` a change racing with the append is retried on the newer
    /// content; with one, it fails it.
    pub async fn append(
        &self,
        path: WorkspacePath,
        tail: Bytes,
        precondition: Precondition,
        new: impl Fn(WorkspacePath) -> NewFile,
    ) -> Result<FileInfo> {
        for _ in 0..5 {
            let current = match self.open(FileRef::Path(path.clone())).await {
                Ok(opened) => Some(opened),
                Err(WorkspaceError::NotFound(_)) => None,
                Err(e) => return Err(e),
            };
            precondition.check(current.as_ref().map(|o| &o.info))?;
            let result = match current {
                None => {
                    let file = new(path.clone()).with_overwrite(false).with_precondition(Precondition::IfNoneMatch);
                    self.write_bytes(file, tail.clone()).await
                }
                Some(opened) => {
                    let mut file =
                        new(path.clone()).with_precondition(Precondition::IfMatch(opened.info.checksum.clone()));
                    file.name = Some(opened.info.name.clone());
                    file.mime_type = Some(opened.info.mime_type.to_string());
                    let head = opened.read(None).await?.stream.map_err(std::io::Error::other);
                    let body = head.chain(futures::stream::once(futures::future::ready(Ok(tail.clone()))));
                    self.write(file, body).await
                }
            };
            match result {
                Err(WorkspaceError::PreconditionFailed { .. } | WorkspaceError::Conflict(_))
                    if precondition == Precondition::None =>
                {
                    continue;
                }
                other => return other,
            }
        }
        Err(WorkspaceError::Unavailable(format!("{path} kept changing while appending; try again")))
    }
}

/// A unified diff with three lines of context, `a/{path}` → `b/{path}`.
pub fn unified_diff(path: &WorkspacePath, old: &str, new: &str) -> String {
    let diff = TextDiff::configure().timeout(DIFF_TIMEOUT).diff_lines(old, new);
    diff.unified_diff().context_radius(3).header(&format!("a{path}"), &format!("b{path}")).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_are_unified_with_headers() {
        let path = WorkspacePath::parse("/notes/a.md").unwrap();
        let diff = unified_diff(&path, "one\ntwo\nthree\n", "one\n2\nthree\n");
        assert!(diff.starts_with("--- a/notes/a.md\n+++ b/notes/a.md\n@@ -1,3 +1,3 @@\n"), "{diff}");
        assert!(diff.contains("-two\n+2\n"), "{diff}");
    }
}
