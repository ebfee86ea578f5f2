//! The workspace tools of SPEC §9 and §15 and what they share: how a file is named in arguments
//! (`file_id` or `path`) and how its metadata is shown to the model.

mod delete;
mod edit;
mod history;
mod list;
pub(crate) mod read;
mod run_block;
mod search;
mod structure;
mod write;

use std::str::FromStr;

use serde_json::{Value, json};
use workspace_core::{FileId, FileInfo, FileRef, WorkspaceUri};

pub use delete::DeleteFileTool;
pub use edit::EditFileTool;
pub use history::{ListVersionsTool, RestoreFileTool, UsageTool};
pub use list::ListFilesTool;
pub use read::ReadFileTool;
pub use run_block::RunBlockTool;
pub use search::{GlobFilesTool, GrepFilesTool};
pub use structure::{CopyFileTool, MoveFileTool};
pub use write::WriteFileTool;

use crate::error::ToolError;
use crate::registry::ToolContext;

/// The metadata the model sees for a file (never its content).
pub fn file_json(info: &FileInfo) -> Value {
    json!({
        "id": info.id.to_string(),
        "name": info.name,
        "path": info.path,
        "mime_type": info.mime_type.to_string(),
        "size_bytes": info.size_bytes,
        "checksum": info.checksum.to_string(),
        "version": info.version,
        "uri": info.uri().to_string(),
        "source": info.source,
        "session_id": info.source_session_id,
        "created_at": info.created_at,
        "updated_at": info.updated_at,
    })
}

/// The output schema of [`file_json`].
pub fn file_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "path": {"type": "string"},
            "mime_type": {"type": "string"},
            "size_bytes": {"type": "integer", "minimum": 0},
            "checksum": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "version": {"type": "integer", "minimum": 1},
            "uri": {"type": "string", "pattern": "^workspace://"},
            "source": {"type": "string"},
            "session_id": {"type": ["string", "null"]},
            "created_at": {"type": "string"},
            "updated_at": {"type": "string"}
        },
        "required": ["id", "name", "path", "mime_type", "size_bytes", "checksum", "version", "uri"]
    })
}

/// The output schema of a result naming one file: `{file, uri, message}`.
fn file_result_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"file": file_schema(), "uri": {"type": "string"}, "message": {"type": "string"}},
        "required": ["file", "uri"]
    })
}

/// The schema fragment shared by tools that take one file: `file_id` or `path`.
fn file_selector_properties() -> Value {
    json!({
        "file_id": {
            "type": "string",
            "minLength": 1,
            "description": "The file's id (a UUID) or its workspace:// reference. Give this or `path`."
        },
        "path": {
            "type": "string",
            "minLength": 1,
            "maxLength": 1024,
            "description": "The file's path: relative paths are inside this session's folder, absolute paths (starting with /) anywhere in the workspace. Give this or `file_id`."
        }
    })
}

/// The file named by exactly one of `file_id` (a UUID or a `workspace://` reference) and `path`.
fn resolve_ref(ctx: &ToolContext, file_id: Option<&str>, path: Option<&str>) -> Result<FileRef, ToolError> {
    match (file_id, path) {
        (Some(_), Some(_)) => Err(ToolError::invalid_input("give either `file_id` or `path`, not both")),
        (None, None) => Err(ToolError::invalid_input("give `file_id` or `path` to name the file")),
        (None, Some(path)) => Ok(FileRef::Path(ctx.manager().resolve_path(path)?)),
        (Some(id), None) if WorkspaceUri::is_workspace_uri(id) => {
            Ok(WorkspaceUri::parse(id).map_err(|e| ToolError::invalid_input(e.to_string()))?.into())
        }
        (Some(id), None) => {
            let id = FileId::from_str(id.trim()).map_err(|_| {
                ToolError::invalid_input(format!(
                    "`{}` is not a file id: expected a UUID or a workspace:// reference",
                    id.chars().take(64).collect::<String>()
                ))
            })?;
            Ok(FileRef::Id(id))
        }
    }
}

/// The schema of an `if_match` parameter (SPEC §14, §15).
fn if_match_property() -> Value {
    json!({
        "type": "string",
        "pattern": "^[0-9a-fA-F]{64}$",
        "description": "Only act if the file's current checksum is this (the `checksum` you read): protects against overwriting a change you have not seen. On a mismatch nothing changes and the error gives the current checksum."
    })
}

/// An `if_match` argument as a precondition.
fn if_match(value: Option<&str>) -> Result<workspace_core::Precondition, ToolError> {
    match value {
        None => Ok(workspace_core::Precondition::None),
        Some(checksum) => Ok(workspace_core::Precondition::IfMatch(
            workspace_core::Checksum::parse(checksum).map_err(|e| ToolError::invalid_input(e.to_string()))?,
        )),
    }
}

/// Parses validated arguments into a typed struct.
fn parse_args<T: serde::de::DeserializeOwned>(args: Value) -> Result<T, ToolError> {
    serde_json::from_value(args).map_err(|e| ToolError::invalid_input(format!("arguments: {e}")))
}
