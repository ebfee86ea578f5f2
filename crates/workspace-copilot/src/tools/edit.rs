//! `edit_workspace_file` (SPEC §15): the core's exact-text edit, with its unified diff cut to the
//! context budget.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use workspace_core::{Edit, FileSource};

use super::{file_json, file_schema, file_selector_properties, if_match, if_match_property, parse_args, resolve_ref};
use crate::error::ToolError;
use crate::registry::{SCHEMA_DIALECT, Tool, ToolContext};
use crate::text::MAX_INLINE_BYTES;

/// Edits a text file by exact replacement.
#[derive(Debug, Default)]
pub struct EditFileTool;

#[derive(Deserialize)]
struct Args {
    file_id: Option<String>,
    path: Option<String>,
    old_text: String,
    new_text: String,
    #[serde(default)]
    replace_all: bool,
    #[serde(default)]
    dry_run: bool,
    if_match: Option<String>,
}

#[async_trait]
impl Tool for EditFileTool {
    fn name(&self) -> &str {
        "edit_workspace_file"
    }

    fn description(&self) -> &str {
        "Edit a text file by replacing `old_text` with `new_text`, named by `file_id` or `path`. \
         `old_text` must match exactly once (whitespace included); if it matches 0 or several times \
         nothing is written and the error gives the count: add surrounding text, or set replace_all=true \
         to replace every occurrence. Returns a unified `diff` and the new `checksum`; dry_run=true shows \
         the diff without writing. Each edit is a new version (undo with restore_workspace_file). \
         `if_match` (the checksum you read) refuses the edit if the file changed since."
    }

    fn parameters(&self) -> Value {
        let mut properties = file_selector_properties();
        properties["old_text"] = json!({"type": "string", "minLength": 1,
            "description": "The exact text to replace (copy it from a read, whitespace and line breaks included)."});
        properties["new_text"] = json!({"type": "string", "description": "The replacement; \"\" deletes old_text."});
        properties["replace_all"] = json!({"type": "boolean", "default": false,
            "description": "Replace every occurrence of old_text instead of requiring exactly one."});
        properties["dry_run"] = json!({"type": "boolean", "default": false,
            "description": "Return the diff without writing anything."});
        properties["if_match"] = if_match_property();
        json!({
            "$schema": SCHEMA_DIALECT,
            "type": "object",
            "properties": properties,
            "required": ["old_text", "new_text"],
            "additionalProperties": false
        })
    }

    fn output_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "file": file_schema(),
                "uri": {"type": "string"},
                "replacements": {"type": "integer", "minimum": 1},
                "diff": {"type": "string"},
                "diff_truncated": {"type": "boolean"},
                "checksum": {"type": "string"},
                "size_bytes": {"type": "integer", "minimum": 0},
                "dry_run": {"type": "boolean"},
                "written": {"type": "boolean"},
                "message": {"type": "string"}
            },
            "required": ["file", "uri", "replacements", "diff", "checksum", "written"]
        })
    }

    async fn call(&self, args: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let args: Args = parse_args(args)?;
        let target = resolve_ref(ctx, args.file_id.as_deref(), args.path.as_deref())?;
        let outcome = ctx
            .manager()
            .edit(
                target,
                Edit {
                    old_text: args.old_text,
                    new_text: args.new_text,
                    replace_all: args.replace_all,
                    dry_run: args.dry_run,
                    precondition: if_match(args.if_match.as_deref())?,
                    source: FileSource::Copilot,
                },
            )
            .await?;
        let (diff, diff_truncated) = cut(&outcome.diff, MAX_INLINE_BYTES);
        let info = &outcome.info;
        let message = if outcome.written {
            format!(
                "replaced {} occurrence(s) in {}: version {} ({} bytes, checksum {})",
                outcome.replacements, info.path, info.version, outcome.new_size, outcome.new_checksum
            )
        } else {
            format!(
                "dry run: {} occurrence(s) would be replaced in {}; nothing was written",
                outcome.replacements, info.path
            )
        };
        let message = if diff_truncated {
            format!(
                "{message}. The diff is cut at 32 KiB; read the result with read_workspace_file(start_line, end_line)"
            )
        } else {
            message
        };
        Ok(json!({
            "file": file_json(info),
            "uri": info.uri().to_string(),
            "replacements": outcome.replacements,
            "diff": diff,
            "diff_truncated": diff_truncated,
            "checksum": outcome.new_checksum.to_string(),
            "size_bytes": outcome.new_size,
            "dry_run": args.dry_run,
            "written": outcome.written,
            "message": message,
        }))
    }
}

/// `text` cut to at most `max` bytes on a character boundary, and whether it was cut.
fn cut(text: &str, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text.to_owned(), false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_owned(), true)
}
