//! Value types the manager takes and returns: limits, provenance, file info, pages.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::entity::user_workspace_file;
use crate::error::{Result, WorkspaceError};
use crate::ids::{FileId, WorkspaceId};
use crate::path::WorkspacePath;
use crate::uri::WorkspaceUri;

/// One mebibyte.
pub const MIB: u64 = 1024 * 1024;

/// Size limits applied to writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest single file in bytes (default 100 MiB).
    pub max_file_size: u64,
    /// Live bytes allowed per workspace (default 250 MiB).
    pub quota_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_file_size: 100 * MIB, quota_bytes: 250 * MIB }
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

    fn parse(s: &str) -> Result<Self> {
        match s {
            "upload" => Ok(Self::Upload),
            "execution" => Ok(Self::Execution),
            "copilot" => Ok(Self::Copilot),
            "import" => Ok(Self::Import),
            other => Err(WorkspaceError::InvalidInput(format!("unknown file source `{other}` in the database"))),
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
    /// Replace a live file at the same path instead of failing with Conflict.
    pub overwrite: bool,
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
    /// Allows replacing a live file at the path.
    pub fn with_overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
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

/// What callers see of a stored file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileInfo {
    /// File id.
    pub id: FileId,
    /// Owning workspace.
    pub workspace_id: WorkspaceId,
    /// Display name.
    pub name: String,
    /// Virtual path.
    pub path: String,
    /// Recorded MIME type.
    pub mime_type: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// SHA-256 hex of the content.
    pub checksum: String,
    /// Metadata object (includes `sniffed_mime_type` when the content disagreed).
    pub metadata: serde_json::Value,
    /// Provenance.
    pub source: FileSource,
    /// Session that wrote it.
    pub source_session_id: Option<String>,
    /// Execution that wrote it.
    pub source_exec_id: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl FileInfo {
    /// `workspace://{id}#{mime}` for this file.
    pub fn uri(&self) -> WorkspaceUri {
        let essence = crate::mime::essence(&self.mime_type);
        WorkspaceUri::file(self.id, Some(&essence)).unwrap_or(WorkspaceUri::File { id: self.id, mime: None })
    }
}

impl TryFrom<user_workspace_file::Model> for FileInfo {
    type Error = WorkspaceError;
    fn try_from(m: user_workspace_file::Model) -> Result<Self> {
        Ok(Self {
            id: FileId::from_uuid(m.id),
            workspace_id: WorkspaceId::from_uuid(m.workspace_id),
            name: m.name,
            path: m.path,
            mime_type: m.mime_type,
            size_bytes: u64::try_from(m.size_bytes).unwrap_or(0),
            checksum: m.checksum,
            metadata: m.metadata,
            source: FileSource::parse(&m.source)?,
            source_session_id: m.source_session_id,
            source_exec_id: m.source_exec_id,
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilePage {
    /// Files in path order.
    pub files: Vec<FileInfo>,
    /// Pass back to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Storage used by a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Bytes of live files.
    pub used_bytes: u64,
    /// The quota.
    pub limit_bytes: u64,
    /// Number of live files.
    pub file_count: u64,
}
