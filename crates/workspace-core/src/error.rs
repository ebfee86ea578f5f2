//! The one error type of the core crate: every failure a caller can act on has its own kind.

use crate::path::PathError;

/// Errors from the workspace domain. Each kind maps to one HTTP status and one
/// machine-readable code (see [`WorkspaceError::code`]); the mapping itself lives in the HTTP crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkspaceError {
    /// No live file (or workspace) with that id or path in this workspace.
    #[error("not found: {0}")]
    NotFound(String),
    /// A live file already holds the path and overwrite was not requested.
    #[error("conflict: a file already exists at {0} (set overwrite to replace it)")]
    Conflict(String),
    /// The file is larger than the per-file size limit.
    #[error("file too large: the limit is {limit} bytes")]
    TooLarge {
        /// The configured per-file limit in bytes.
        limit: u64,
    },
    /// Storing the file would push the workspace over its quota.
    #[error("quota exceeded: {used} of {limit} bytes used, this file needs {needed} more")]
    QuotaExceeded {
        /// Bytes used by live files before this write.
        used: u64,
        /// The workspace quota in bytes.
        limit: u64,
        /// Bytes this write would add.
        needed: u64,
    },
    /// The virtual path broke one of the path rules.
    #[error(transparent)]
    InvalidPath(#[from] PathError),
    /// Some other input was malformed; the message names the rule.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The storage backend failed.
    #[error("storage error: {0}")]
    Storage(#[from] StorageError),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
}

impl WorkspaceError {
    /// A stable, machine-readable code for this kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::TooLarge { .. } => "too_large",
            Self::QuotaExceeded { .. } => "quota_exceeded",
            Self::InvalidPath(_) => "invalid_path",
            Self::InvalidInput(_) => "invalid_input",
            Self::Storage(_) => "storage_error",
            Self::Database(_) => "database_error",
        }
    }
}

/// Errors from a storage backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// No object at that key.
    #[error("object not found: {0}")]
    NotFound(String),
    /// The requested byte range does not overlap the object.
    #[error("range not satisfiable for an object of {size} bytes")]
    RangeNotSatisfiable {
        /// Size of the whole object.
        size: u64,
    },
    /// The key is not acceptable to the backend (for example it would leave its root).
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The body stream handed to `put` failed; nothing was stored.
    #[error("upload body failed: {0}")]
    Body(std::io::Error),
    /// An I/O or service error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Anything else the backend reports.
    #[error("{0}")]
    Other(String),
}

/// Shorthand for results in this crate.
pub type Result<T, E = WorkspaceError> = std::result::Result<T, E>;
