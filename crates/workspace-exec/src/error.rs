//! The one error type of the execution crate, so executors and blocks handle every failure of
//! `store_media_file`, the fetcher and blocks the same way.

use workspace_core::WorkspaceError;

use crate::data_uri::DataUriError;
use crate::fetch::FetchError;

/// Errors from execution: media handling, fetching, temp files and blocks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// Input a block or the executor passed is malformed; the message names the rule.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A `data:` URI was refused.
    #[error("invalid data URI: {0}")]
    DataUri(#[from] DataUriError),
    /// A `workspace://` reference was given to an execution that has no workspace.
    #[error("`{0}` is a workspace reference, but this execution has no workspace")]
    NoWorkspace(String),
    /// A local path tried to leave the execution's temp directory, or is not a regular file.
    #[error("local path refused: {0}")]
    PathEscape(String),
    /// A file that does not exist (in the temp dir or the workspace).
    #[error("not found: {0}")]
    NotFound(String),
    /// The media is larger than the configured limit.
    #[error("media too large: the limit is {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The execution's temp directory would pass its cap.
    #[error("the execution's temp directory is full (the cap is {cap} bytes)")]
    TempDirFull {
        /// The cap in bytes.
        cap: u64,
    },
    /// Fetching a remote URL failed or was refused.
    #[error("fetch failed: {0}")]
    Fetch(#[from] FetchError),
    /// The workspace refused or failed.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// A local file operation failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A block could not do its work (an upstream API failed, the input could not be processed…).
    #[error("block failed: {0}")]
    Block(String),
}

impl ExecError {
    /// A stable, machine-readable code for this kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) | Self::DataUri(_) => "invalid_input",
            Self::NoWorkspace(_) => "no_workspace",
            Self::PathEscape(_) => "path_escape",
            Self::NotFound(_) => "not_found",
            Self::TooLarge { .. } => "too_large",
            Self::TempDirFull { .. } => "temp_dir_full",
            Self::Fetch(_) => "fetch_failed",
            Self::Workspace(err) => err.code(),
            Self::Io(_) => "io_error",
            Self::Block(_) => "block_failed",
        }
    }
}
