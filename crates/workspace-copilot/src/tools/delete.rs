//! `delete_workspace_file`: removes one file, named by id or path.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{file_json, file_schema, file_selector_properties, if_match, if_match_property, parse_args, resolve_ref};
use crate::error::ToolError;
use crate::registry::{SCHEMA_DIALECT, Tool, ToolContext};

/// Deletes a file.
#[derive(Debug, Default)]
pub struct DeleteFileTool;

#[derive(Deserialize)]
struct Args {
    file_id: Option<String>,
    path: Option<String>,
    if_match: Option<String>,
}

#[async_trait]
impl Tool for DeleteFileTool {
    fn name(&self) -> &str {
        "delete_workspace_file"
    }

    fn description(&self) -> &str {
        "Delete a file from the user's workspace, named by `file_id` (or its workspace:// reference) \
         or by `path` (relative = inside this session's folder, absolute = anywhere in the workspace). \
         The file moves to the trash (with its versions) and can be brought back with \
         restore_workspace_file and its id for a while. Returns the deleted file's metadata."
    }

    fn parameters(&self) -> Value {
        let mut properties = file_selector_properties();
        properties["if_match"] = if_match_property();
        json!({
            "$schema": SCHEMA_DIALECT,
            "type": "object",
            "properties": properties,
            "additionalProperties": false
        })
    }

    fn output_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"deleted": {"type": "boolean"}, "file": file_schema()},
            "required": ["deleted", "file"]
        })
    }

    async fn call(&self, args: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let args: Args = parse_args(args)?;
        let target = resolve_ref(ctx, args.file_id.as_deref(), args.path.as_deref())?;
        let info = ctx.manager().delete(target, if_match(args.if_match.as_deref())?).await?;
        Ok(json!({ "deleted": true, "file": file_json(&info) }))
    }
}
