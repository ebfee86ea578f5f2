//! History tools (SPEC §15): `list_workspace_versions`, `restore_workspace_file` and
//! `workspace_usage`, so a model can undo its own overwrites and deletes and free space itself.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use workspace_core::{ListOptions, RestoreOptions, SortKey, SortOrder};

use super::{file_json, file_result_schema, file_selector_properties, parse_args, resolve_ref};
use crate::error::ToolError;
use crate::registry::{SCHEMA_DIALECT, Tool, ToolContext};

/// How many of the largest files `workspace_usage` names.
const LARGEST: u64 = 10;

/// Lists a file's versions.
#[derive(Debug, Default)]
pub struct ListVersionsTool;

#[derive(Deserialize)]
struct VersionsArgs {
    file_id: Option<String>,
    path: Option<String>,
}

#[async_trait]
impl Tool for ListVersionsTool {
    fn name(&self) -> &str {
        "list_workspace_versions"
    }

    fn description(&self) -> &str {
        "List the versions of a file in the user's workspace, newest first: every overwrite keeps the \
         previous content as a version with its own id (ids shown in earlier messages keep naming \
         their bytes). Name the file by `file_id` (any version's id or workspace:// reference) or by \
         `path`. Each version has id, version number, size_bytes, checksum, created_at, source and \
         is_current. Read an old version with read_workspace_file and its id; bring it back with \
         restore_workspace_file."
    }

    fn parameters(&self) -> Value {
        json!({
            "$schema": SCHEMA_DIALECT,
            "type": "object",
            "properties": file_selector_properties(),
            "additionalProperties": false
        })
    }

    fn output_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "count": {"type": "integer", "minimum": 0},
                "versions": {"type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "version": {"type": "integer", "minimum": 1},
                        "size_bytes": {"type": "integer", "minimum": 0},
                        "checksum": {"type": "string"},
                        "mime_type": {"type": "string"},
                        "created_at": {"type": "string"},
                        "source": {"type": "string"},
                        "is_current": {"type": "boolean"}
                    },
                    "required": ["id", "version", "size_bytes", "checksum", "is_current"]
                }}
            },
            "required": ["count", "versions"]
        })
    }

    async fn call(&self, args: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let args: VersionsArgs = parse_args(args)?;
        let target = resolve_ref(ctx, args.file_id.as_deref(), args.path.as_deref())?;
        let versions = ctx.manager().versions(target).await?;
        let listed: Vec<Value> = versions
            .iter()
            .map(|v| {
                json!({
                    "id": v.id.to_string(),
                    "version": v.version,
                    "size_bytes": v.size_bytes,
                    "checksum": v.checksum.to_string(),
                    "mime_type": v.mime_type.to_string(),
                    "created_at": v.created_at,
                    "source": v.source,
                    "is_current": v.is_current,
                })
            })
            .collect();
        Ok(json!({ "count": listed.len(), "versions": listed }))
    }
}

/// Restores a trashed file or an older version.
#[derive(Debug, Default)]
pub struct RestoreFileTool;

#[derive(Deserialize)]
struct RestoreArgs {
    file_id: String,
    path: Option<String>,
}

#[async_trait]
impl Tool for RestoreFileTool {
    fn name(&self) -> &str {
        "restore_workspace_file"
    }

    fn description(&self) -> &str {
        "Undo a delete or an overwrite in the user's workspace. With the id of a deleted file (deleted \
         files stay in the trash for a while), the file comes back to its path with the same id; if \
         that path is taken, give `path` for another place. With the id of an older version (from \
         list_workspace_versions), that content becomes the current version again, as a new version \
         (the replaced content is kept as a version too, so nothing is lost). Returns the restored \
         file's metadata."
    }

    fn parameters(&self) -> Value {
        json!({
            "$schema": SCHEMA_DIALECT,
            "type": "object",
            "properties": {
                "file_id": {"type": "string", "minLength": 1,
                    "description": "The id (or workspace:// reference) of the deleted file or the older version."},
                "path": {"type": "string", "minLength": 1, "maxLength": 1024,
                    "description": "For a deleted file: where to restore it instead of its old path (relative = inside this session's folder)."}
            },
            "required": ["file_id"],
            "additionalProperties": false
        })
    }

    fn output_schema(&self) -> Value {
        file_result_schema()
    }

    async fn call(&self, args: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let args: RestoreArgs = parse_args(args)?;
        let id = match resolve_ref(ctx, Some(&args.file_id), None)? {
            workspace_core::FileRef::Id(id) => id,
            workspace_core::FileRef::Path(_) => {
                return Err(ToolError::invalid_input(
                    "restore needs a file id (a deleted file's or an older version's), not a path",
                ));
            }
        };
        let manager = ctx.manager();
        let path = args.path.as_deref().map(|p| manager.resolve_path(p)).transpose()?;
        let info = manager.restore(id, RestoreOptions { path, ..RestoreOptions::default() }).await?;
        Ok(json!({
            "file": file_json(&info),
            "uri": info.uri().to_string(),
            "message": format!("{} is current again (version {})", info.path, info.version),
        }))
    }
}

/// Storage used, with the largest files.
#[derive(Debug, Default)]
pub struct UsageTool;

#[async_trait]
impl Tool for UsageTool {
    fn name(&self) -> &str {
        "workspace_usage"
    }

    fn description(&self) -> &str {
        "How much of the user's workspace quota is used: used_bytes (current files plus history), \
         live_bytes (current files), history_bytes (older versions and deleted files, which are \
         removed automatically, oldest first, when new writes need the room), limit_bytes and \
         file_count, plus the largest current files (largest first) so you can free space by \
         deleting some with delete_workspace_file."
    }

    fn parameters(&self) -> Value {
        json!({
            "$schema": SCHEMA_DIALECT,
            "type": "object",
            "properties": {},
            "additionalProperties": false
        })
    }

    fn output_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "used_bytes": {"type": "integer", "minimum": 0},
                "live_bytes": {"type": "integer", "minimum": 0},
                "history_bytes": {"type": "integer", "minimum": 0},
                "limit_bytes": {"type": "integer", "minimum": 0},
                "file_count": {"type": "integer", "minimum": 0},
                "largest": {"type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "path": {"type": "string"},
                        "file_id": {"type": "string"},
                        "size_bytes": {"type": "integer", "minimum": 0}
                    },
                    "required": ["path", "file_id", "size_bytes"]
                }}
            },
            "required": ["used_bytes", "live_bytes", "history_bytes", "limit_bytes", "file_count", "largest"]
        })
    }

    async fn call(&self, _args: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let manager = ctx.manager();
        let usage = manager.usage().await?;
        let largest = manager
            .list(ListOptions {
                include_all_sessions: true,
                limit: LARGEST,
                sort: SortKey::Size,
                order: SortOrder::Desc,
                ..ListOptions::default()
            })
            .await?;
        let largest: Vec<Value> = largest
            .files
            .iter()
            .map(|f| json!({"path": f.path, "file_id": f.id.to_string(), "size_bytes": f.size_bytes}))
            .collect();
        Ok(json!({
            "used_bytes": usage.used_bytes,
            "live_bytes": usage.live_bytes,
            "history_bytes": usage.history_bytes,
            "limit_bytes": usage.limit_bytes,
            "file_count": usage.file_count,
            "largest": largest,
        }))
    }
}
