//! `move_workspace_file` and `copy_workspace_file` (SPEC §15): reorganise files without pushing
//! their bytes through the model's context. Both are metadata changes on the server.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use workspace_core::PlaceOptions;

use super::{
    file_json, file_result_schema, file_selector_properties, if_match, if_match_property, parse_args, resolve_ref,
};
use crate::error::ToolError;
use crate::registry::{SCHEMA_DIALECT, Tool, ToolContext};

#[derive(Deserialize)]
struct Args {
    file_id: Option<String>,
    path: Option<String>,
    new_path: String,
    #[serde(default)]
    overwrite: bool,
    if_match: Option<String>,
}

fn parameters(with_if_match: bool) -> Value {
    let mut properties = file_selector_properties();
    properties["new_path"] = json!({
        "type": "string", "minLength": 1, "maxLength": 1024,
        "description": "Where the file goes: relative = inside this session's folder, absolute (starting with /) = anywhere in the workspace."
    });
    properties["overwrite"] = json!({
        "type": "boolean", "default": false,
        "description": "Replace a file already at new_path (a move sends it to the trash, restorable; a copy keeps it as an older version)."
    });
    if with_if_match {
        properties["if_match"] = if_match_property();
    }
    json!({
        "$schema": SCHEMA_DIALECT,
        "type": "object",
        "properties": properties,
        "required": ["new_path"],
        "additionalProperties": false
    })
}

/// Moves (renames) a file.
#[derive(Debug, Default)]
pub struct MoveFileTool;

#[async_trait]
impl Tool for MoveFileTool {
    fn name(&self) -> &str {
        "move_workspace_file"
    }

    fn description(&self) -> &str {
        "Move or rename a file in the user's workspace, named by `file_id` or `path`, to `new_path`. \
         The file keeps its id (workspace:// references stay valid) and its versions; no content is \
         transferred. A file already at new_path is an error (`conflict`) unless overwrite=true. \
         Returns the moved file's metadata."
    }

    fn parameters(&self) -> Value {
        parameters(true)
    }

    fn output_schema(&self) -> Value {
        file_result_schema()
    }

    async fn call(&self, args: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let args: Args = parse_args(args)?;
        let target = resolve_ref(ctx, args.file_id.as_deref(), args.path.as_deref())?;
        let manager = ctx.manager();
        let to = manager.resolve_path(&args.new_path)?;
        let options = PlaceOptions { overwrite: args.overwrite, precondition: if_match(args.if_match.as_deref())? };
        let info = manager.move_file(target, to, options).await?;
        Ok(
            json!({"file": file_json(&info), "uri": info.uri().to_string(), "message": format!("moved to {}", info.path)}),
        )
    }
}

/// Copies a file.
#[derive(Debug, Default)]
pub struct CopyFileTool;

#[async_trait]
impl Tool for CopyFileTool {
    fn name(&self) -> &str {
        "copy_workspace_file"
    }

    fn description(&self) -> &str {
        "Copy a file in the user's workspace (or one of its older versions, by id), named by `file_id` \
         or `path`, to `new_path`. The copy gets a new id; no content passes through this \
         conversation and no storage is duplicated, but the copy counts against the quota. A file \
         already at new_path is an error (`conflict`) unless overwrite=true. Returns the new file's \
         metadata and workspace:// uri."
    }

    fn parameters(&self) -> Value {
        parameters(false)
    }

    fn output_schema(&self) -> Value {
        file_result_schema()
    }

    async fn call(&self, args: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let args: Args = parse_args(args)?;
        let target = resolve_ref(ctx, args.file_id.as_deref(), args.path.as_deref())?;
        let manager = ctx.manager();
        let to = manager.resolve_path(&args.new_path)?;
        let info = manager
            .copy_file(target, to, PlaceOptions { overwrite: args.overwrite, ..PlaceOptions::default() })
            .await?;
        Ok(
            json!({"file": file_json(&info), "uri": info.uri().to_string(), "message": format!("copied to {}", info.path)}),
        )
    }
}
