//! Value types the manager takes and returns: settings, provenance, file references, options,
//! file info, pages and usage.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use mime::Mime;
use serde::{Deserialize, Serialize};

use crate::error::{Result, WorkspaceError};
use crate::ids::{ContentId, FileId, WorkspaceId};
use crate::path::{PathPrefix, WorkspacePath};
use crate::uri::WorkspaceUri;

/// One kibibyte.
pub const KIB: u64 = 1024;
/// One mebibyte.
pub const MIB: u64 = 1024 * 1024;

/// Size limits applied to writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest single file in bytes (default 100 MiB).
    pub max_file_size: u64,
    /// Bytes allowed per workspace (default 250 MiB), live and history together; history gives
    /// way to live bytes (SPEC §13).
    pub quota_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_file_size: 100 * MIB, quota_bytes: 250 * MIB }
    }
}

/// How long history (versions and the trash) is kept (SPEC §13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryPolicy {
    /// Days a version or a trashed file is kept (`WS_HISTORY_DAYS`, default 30).
    pub days: u32,
    /// Versions kept per path, the current one included (`WS_MAX_VERSIONS`, default 20; 1 keeps
    /// no history of overwrites).
    pub max_versions: u32,
}

impl Default for HistoryPolicy {
    fn default() -> Self {
        Self { days: 30, max_versions: 20 }
    }
}

impl HistoryPolicy {
    /// Largest accepted `days`.
    pub const MAX_DAYS: u32 = 36_500;
    /// Largest accepted `max_versions`.
    pub const MAX_VERSIONS: u32 = 10_000;

    /// Checks the values, naming the setting that is out of range.
    pub fn validate(&self) -> Result<()> {
        if self.days > Self::MAX_DAYS {
            return Err(WorkspaceError::InvalidInput(format!("WS_HISTORY_DAYS must be 0 to {}", Self::MAX_DAYS)));
        }
        if !(1..=Self::MAX_VERSIONS).contains(&self.max_versions) {
            return Err(WorkspaceError::InvalidInput(format!("WS_MAX_VERSIONS must be 1 to {}", Self::MAX_VERSIONS)));
        }
        Ok(())
    }

    /// How long history is kept.
    pub fn retention(&self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.days))
    }
}

/// Everything a [`crate::Workspaces`] applies to every workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Size limits.
    pub limits: Limits,
    /// History retention.
    pub history: HistoryPolicy,
    /// Files up to this size are kept in the database row instead of a blob
    /// (`WS_INLINE_MAX_BYTES`, default 64 KiB; 0 disables).
    pub inline_max_bytes: u64,
    /// Grep skips (and counts) files larger than this (`WS_GREP_MAX_FILE_BYTES`, default 10 MiB),
    /// so one search reads a bounded amount per file (SPEC §15).
    pub grep_max_file_bytes: u64,
    /// Thumbnails refuse source images of more pixels than this (`WS_THUMBNAIL_MAX_PIXELS`,
    /// default 50 000 000), and decode within four bytes a pixel of it (SPEC §17).
    pub thumbnail_max_pixels: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            history: HistoryPolicy::default(),
            inline_max_bytes: 64 * KIB,
            grep_max_file_bytes: 10 * MIB,
            thumbnail_max_pixels: crate::previews::DEFAULT_MAX_PIXELS,
        }
    }
}

impl Settings {
    /// Largest accepted inline threshold: rows stay small enough to read whole.
    pub const MAX_INLINE_BYTES: u64 = MIB;

    /// Checks every value, naming the setting that is out of range.
    pub fn validate(&self) -> Result<()> {
        self.history.validate()?;
        if self.inline_max_bytes > Self::MAX_INLINE_BYTES {
            return Err(WorkspaceError::InvalidInput(format!(
                "WS_INLINE_MAX_BYTES must be at most {} bytes",
                Self::MAX_INLINE_BYTES
            )));
        }
        if !(1..=crate::previews::MAX_MAX_PIXELS).contains(&self.thumbnail_max_pixels) {
            return Err(WorkspaceError::InvalidInput(format!(
                "WS_THUMBNAIL_MAX_PIXELS must be between 1 and {} pixels",
                crate::previews::MAX_MAX_PIXELS
            )));
        }
        Ok(())
    }
}

/// Who or what wrote a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileSource {
    /// A user upload.
    Upload,
    /// A block during a graph execution.
    Execution,
    /// The chat assistant.
    Copilot,
    /// An import from elsewhere.
    Import,
}

impl FileSource {
    /// The value stored in the `source` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upload => "upload",
            Self::Execution => "execution",
            Self::Copilot => "copilot",
            Self::Import => "import",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self> {
        match s {
            "upload" => Ok(Self::Upload),
            "execution" => Ok(Self::Execution),
            "copilot" => Ok(Self::Copilot),
            "import" => Ok(Self::Import),
            other => Err(WorkspaceError::InvalidInput(format!("unknown file source `{other}` in the database"))),
        }
    }
}

/// A file named by id or by path (resolved already: see [`crate::WorkspaceManager::resolve_path`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRef {
    /// A file (version) id: current files, versions (not the trash).
    Id(FileId),
    /// The current file at a path.
    Path(WorkspacePath),
}

impl From<FileId> for FileRef {
    fn from(id: FileId) -> Self {
        Self::Id(id)
    }
}

impl From<WorkspacePath> for FileRef {
    fn from(path: WorkspacePath) -> Self {
        Self::Path(path)
    }
}

impl From<WorkspaceUri> for FileRef {
    fn from(uri: WorkspaceUri) -> Self {
        match uri {
            WorkspaceUri::File { id, .. } => Self::Id(id),
            WorkspaceUri::Path(path) => Self::Path(path),
        }
    }
}

impl fmt::Display for FileRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(f, "file {id}"),
            Self::Path(path) => write!(f, "file at {path}"),
        }
    }
}

/// A SHA-256 checksum as 64 lower-case hex digits: what files report and what `If-Match`
/// compares (SPEC §14).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Checksum(String);

impl Checksum {
    /// Parses 64 hex digits (either case; stored lower-case).
    pub fn parse(input: &str) -> Result<Self> {
        let input = input.trim();
        if input.len() == 64 && input.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(input.to_ascii_lowercase()))
        } else {
            Err(WorkspaceError::InvalidInput(format!(
                "`{}` is not a checksum: expected the 64 hex digits of a sha-256 (the file's ETag)",
                input.chars().take(80).collect::<String>()
            )))
        }
    }

    /// The hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The checksum of `bytes`: their SHA-256, hashed as uploads are (`ring`).
    pub fn of(bytes: &[u8]) -> Self {
        Self(hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes)))
    }

    pub(crate) fn from_trusted(hex: String) -> Self {
        Self(hex)
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Checksum {
    type Err = WorkspaceError;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// A condition on the file a change acts on (SPEC §14). When it does not hold, the change is
/// refused with [`WorkspaceError::PreconditionFailed`] and nothing changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Precondition {
    /// No condition.
    #[default]
    None,
    /// The file must exist with this checksum (`If-Match`). On a write, it implies overwrite and
    /// a free path fails it.
    IfMatch(Checksum),
    /// A file must be there, whatever its content (`If-Match: *`).
    IfExists,
    /// The path must be free (`If-None-Match: *`; writes only).
    IfNoneMatch,
}

impl Precondition {
    /// Checks the condition against the file it is about (`None`: there is none).
    pub fn check(&self, current: Option<&FileInfo>) -> Result<()> {
        match (self, current) {
            (Self::None, _) => Ok(()),
            (Self::IfMatch(expected), Some(file)) if &file.checksum == expected => Ok(()),
            (Self::IfMatch(expected), Some(file)) => Err(WorkspaceError::PreconditionFailed {
                message: format!(
                    "precondition failed: {} has checksum {}, not {expected}; read it again and retry",
                    file.path, file.checksum
                ),
                current_checksum: Some(file.checksum.to_string()),
            }),
            (Self::IfMatch(_) | Self::IfExists, None) => Err(WorkspaceError::PreconditionFailed {
                message: "precondition failed: no file is there to match".into(),
                current_checksum: None,
            }),
            (Self::IfExists, Some(_)) => Ok(()),
            (Self::IfNoneMatch, Some(file)) => Err(WorkspaceError::PreconditionFailed {
                message: format!("precondition failed: {} already exists", file.path),
                current_checksum: Some(file.checksum.to_string()),
            }),
            (Self::IfNoneMatch, None) => Ok(()),
        }
    }
}

/// A file to write. Build it with [`NewFile::new`] and the `with_*` methods.
#[derive(Debug, Clone)]
pub struct NewFile {
    /// Where the file goes.
    pub path: WorkspacePath,
    /// Display name; defaults to the last path segment.
    pub name: Option<String>,
    /// Declared MIME type, if any.
    pub mime_type: Option<String>,
    /// Replace a current file at the same path (it becomes a version) instead of failing with
    /// Conflict.
    pub overwrite: bool,
    /// A condition on the file currently at the path.
    pub precondition: Precondition,
    /// Provenance.
    pub source: FileSource,
    /// The execution that produced it, if any.
    pub source_exec_id: Option<String>,
    /// Extra metadata (a JSON object).
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl NewFile {
    /// A user upload at `path`, no overwrite.
    pub fn new(path: WorkspacePath) -> Self {
        Self {
            path,
            name: None,
            mime_type: None,
            overwrite: false,
            precondition: Precondition::None,
            source: FileSource::Upload,
            source_exec_id: None,
            metadata: serde_json::Map::new(),
        }
    }
    /// Sets the display name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// Sets the declared MIME type.
    pub fn with_mime_type(mut self, mime: impl Into<String>) -> Self {
        self.mime_type = Some(mime.into());
        self
    }
    /// Allows replacing a current file at the path.
    pub fn with_overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }
    /// Sets a precondition on the file at the path.
    pub fn with_precondition(mut self, precondition: Precondition) -> Self {
        self.precondition = precondition;
        self
    }
    /// Sets the provenance.
    pub fn with_source(mut self, source: FileSource) -> Self {
        self.source = source;
        self
    }
    /// Records the producing execution.
    pub fn with_exec_id(mut self, exec_id: impl Into<String>) -> Self {
        self.source_exec_id = Some(exec_id.into());
        self
    }
}

/// What a listing is ordered by (SPEC §18).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// By path (byte order), the default.
    #[default]
    Path,
    /// By creation time of the current version.
    CreatedAt,
    /// By size.
    Size,
}

/// Ascending or descending.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Smallest, oldest or first path first.
    #[default]
    Asc,
    /// Largest, newest or last path first.
    Desc,
}

/// What a listing asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOptions {
    /// The folder to list; `None` lists the session's folder, or the whole workspace when there
    /// is no session or `include_all_sessions` is set.
    pub prefix: Option<PathPrefix>,
    /// Ignore the session when choosing the default folder.
    pub include_all_sessions: bool,
    /// Page size, 1 to [`crate::manager::MAX_PAGE_SIZE`].
    pub limit: u64,
    /// `next_cursor` of the previous page (of the same sort and search).
    pub cursor: Option<String>,
    /// The order of the files; ties are broken by path, so every order is total.
    pub sort: SortKey,
    /// Ascending or descending.
    pub order: SortOrder,
    /// Only files whose name contains this, ignoring ASCII case.
    pub query: Option<String>,
    /// List the folder's immediate children only: its files, and its sub-folders with their
    /// file counts and sizes (SPEC §14). Path order only; no name search.
    pub delimiter: bool,
}

impl Default for ListOptions {
    fn default() -> Self {
        Self {
            prefix: None,
            include_all_sessions: false,
            limit: 100,
            cursor: None,
            sort: SortKey::Path,
            order: SortOrder::Asc,
            query: None,
            delimiter: false,
        }
    }
}

/// Where a file's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentLocation {
    /// A blob under `workspaces/{workspace}/{content}`.
    Blob(ContentId),
    /// In the database row of the content.
    Inline(ContentId),
}

impl ContentLocation {
    pub(crate) fn id(self) -> ContentId {
        match self {
            Self::Blob(id) | Self::Inline(id) => id,
        }
    }
}

/// The `storage_path` recorded for content kept in the database.
pub(crate) const INLINE_STORAGE_PATH: &str = "inline:";

/// What callers see of a stored file (one version of it).
#[derive(Debug, Clone, PartialEq)]
pub struct FileInfo {
    /// File id (of this version).
    pub id: FileId,
    /// Owning workspace.
    pub workspace_id: WorkspaceId,
    /// Display name.
    pub name: String,
    /// Virtual path.
    pub path: WorkspacePath,
    /// Recorded MIME type.
    pub mime_type: Mime,
    /// Size in bytes.
    pub size_bytes: u64,
    /// SHA-256 of the content.
    pub checksum: Checksum,
    /// Metadata object (includes `sniffed_mime_type` when the content disagreed).
    pub metadata: serde_json::Value,
    /// Provenance.
    pub source: FileSource,
    /// Session that wrote it.
    pub source_session_id: Option<String>,
    /// Execution that wrote it.
    pub source_exec_id: Option<String>,
    /// Creation time (of this version).
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// 1 for a file's first version, increasing with each overwrite.
    pub version: u32,
    /// Whether this is the newest version of its file.
    pub is_current: bool,
    /// For an older version: the id of the current one (when looked up by id).
    pub current_id: Option<FileId>,
    /// For a file in the trash: when it was deleted.
    pub deleted_at: Option<DateTime<Utc>>,
    /// The file's identity across versions: the id of its first version.
    pub(crate) chain_id: FileId,
    pub(crate) content: ContentLocation,
}

impl FileInfo {
    /// `workspace://{id}#{mime}` for this file.
    pub fn uri(&self) -> WorkspaceUri {
        WorkspaceUri::file(self.id, Some(self.mime_type.essence_str()))
            .unwrap_or(WorkspaceUri::File { id: self.id, mime: None })
    }

    /// Whether the bytes are kept in the database rather than as a blob.
    pub fn is_inline(&self) -> bool {
        matches!(self.content, ContentLocation::Inline(_))
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct FilePage {
    /// Files in the listing's order.
    pub files: Vec<FileInfo>,
    /// With a delimiter: the immediate sub-folders on this page, in path order.
    pub folders: Vec<FolderInfo>,
    /// Pass back to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// A folder (implied by the paths under it) in a delimited listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderInfo {
    /// Its path, without a trailing slash.
    pub path: WorkspacePath,
    /// Current files beneath it, at any depth.
    pub file_count: u64,
    /// Their bytes.
    pub size_bytes: u64,
}

/// One version in a file's history (SPEC §13), newest first in [`crate::WorkspaceManager::versions`].
#[derive(Debug, Clone, PartialEq)]
pub struct VersionInfo {
    /// The version's own file id: it keeps naming these bytes while the version is kept.
    pub id: FileId,
    /// Its number.
    pub version: u32,
    /// Size in bytes.
    pub size_bytes: u64,
    /// SHA-256 of its content.
    pub checksum: Checksum,
    /// Its MIME type.
    pub mime_type: Mime,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// Who wrote it.
    pub source: FileSource,
    /// Whether it is the current version.
    pub is_current: bool,
}

/// A file in the trash.
#[derive(Debug, Clone, PartialEq)]
pub struct TrashEntry {
    /// The file as it was when deleted (its current version).
    pub file: FileInfo,
    /// When it was deleted.
    pub deleted_at: DateTime<Utc>,
    /// When gc purges it.
    pub purge_at: DateTime<Utc>,
}

/// One page of the trash, newest deletion first.
#[derive(Debug, Clone, PartialEq)]
pub struct TrashPage {
    /// Trashed files.
    pub files: Vec<TrashEntry>,
    /// Pass back to get the next page.
    pub next_cursor: Option<String>,
}

/// Where a restore puts the file (SPEC §13).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreOptions {
    /// For a trashed file: restore to this path instead of its own.
    pub path: Option<WorkspacePath>,
    /// A condition on the file named by the id.
    pub precondition: Precondition,
}

/// Storage used by a workspace (SPEC §13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Bytes counted against the quota: live and history.
    pub used_bytes: u64,
    /// Bytes of current files.
    pub live_bytes: u64,
    /// Bytes of versions and trashed files.
    pub history_bytes: u64,
    /// The quota.
    pub limit_bytes: u64,
    /// Number of current files.
    pub file_count: u64,
}
