//! The routes of SPEC §7, one module per concern.

pub mod download;
pub mod files;
pub mod health;
pub mod links;
pub mod upload;
pub mod usage;

use workspace_core::FileId;

use crate::error::ApiError;

/// Parses a file id from the path. A malformed id is a 404 like any unknown id.
pub(crate) fn parse_file_id(raw: &str) -> Result<FileId, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound(format!("file {}", raw.chars().take(64).collect::<String>())))
}
