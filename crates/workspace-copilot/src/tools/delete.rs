//! `delete_workspace_file`: removes one file, named by id or path.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use workspace_core::Precondition;

use super::{file_json, file_selector_properties, parse_args, resolve_ref};
use crate::error::ToolError;
use crate::registry::{SCHEMA_DIALECT, Tool, ToolContext};

/// Deletes a file.
#[derive(Debug, Default)]
pub struct DeleteFileTool;

#[derive(Deserialize)]
struct Args {
    file_id: Option<String>,
    path: Option<String>,
}

#[async_trait]
impl Tool for DeleteFileTool {
    fn name(&self) -> &str {
        "delete_workspace_file"
    }

    fn description(&self) -> &str {
        "Delete a file from the user's workspace, named by `file_id` (or its workspace:// reference) \
         or by `path` (relative = inside this session's folder, absolute = anywhere in the workspace). \
         The file cannot be read afterwards. Returns the deleted file's metadata."
    }

    fn parameters(&self) -> Value {
        json!({
            "$schema": SCHEMA_DIALECT,
            "type": "object",
            "properties": file_selector_properties(),
            "additionalProperties": false
        })
    }

    async fn call(&self, args: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let args: Args = parse_args(args)?;
        let target = resolve_ref(ctx, args.file_id.as_deref(), args.path.as_deref())?;
        let info = ctx.manager().delete(target, Precondition::None).await?;
        Ok(json!({ "deleted": true, "file": file_json(&info) }))
    }
}
