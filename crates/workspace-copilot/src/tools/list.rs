//! `list_workspace_files`: what is in the workspace, one bounded page of metadata at a time.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use workspace_core::ListOptions;

use super::{file_json, file_schema, parse_args};
use crate::error::ToolError;
use crate::registry::{SCHEMA_DIALECT, Tool, ToolContext};

/// Characters of file metadata one listing returns at most (within the 40 000 of a result).
const FILES_BUDGET_CHARS: usize = 36_000;

/// Default page size.
pub const DEFAULT_LIMIT: u64 = 50;
/// Largest page a model may ask for.
pub const MAX_LIMIT: u64 = 100;

/// Lists files of the session (or the whole workspace).
#[derive(Debug, Default)]
pub struct ListFilesTool;

#[derive(Deserialize)]
struct Args {
    path_prefix: Option<String>,
    limit: Option<u64>,
    #[serde(default)]
    include_all_sessions: bool,
    cursor: Option<String>,
}

#[async_trait]
impl Tool for ListFilesTool {
    fn name(&self) -> &str {
        "list_workspace_files"
    }

    fn description(&self) -> &str {
        "List files in the user's persistent workspace (metadata only, never content). By default \
         lists this chat session's folder; set include_all_sessions=true to list the whole workspace, \
         including files saved in earlier sessions. path_prefix narrows the listing to a folder \
         (relative = inside this session, absolute = from the workspace root). Returns at most `limit` \
         files (default 50, max 100) with id, name, path, mime_type, size_bytes and a workspace:// uri; \
         pass next_cursor back as `cursor` for the next page."
    }

    fn parameters(&self) -> Value {
        json!({
            "$schema": SCHEMA_DIALECT,
            "type": "object",
            "properties": {
                "path_prefix": {"type": "string", "minLength": 1, "maxLength": 1024,
                    "description": "Only files in this folder: relative = inside this session, absolute = from the workspace root."},
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT,
                    "description": "Most files to return (1 to 100)."},
                "include_all_sessions": {"type": "boolean", "default": false,
                    "description": "List the whole workspace instead of this session's folder."},
                "cursor": {"type": "string", "minLength": 1,
                    "description": "next_cursor from the previous page."}
            },
            "additionalProperties": false
        })
    }

    fn output_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "files": {"type": "array", "items": file_schema()},
                "count": {"type": "integer", "minimum": 0},
                "next_cursor": {"type": ["string", "null"]},
                "scope": {"type": "string"},
                "message": {"type": "string"}
            },
            "required": ["files", "count", "next_cursor"]
        })
    }

    async fn call(&self, args: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let args: Args = parse_args(args)?;
        let limit = args.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        let manager = ctx.manager();
        let prefix =
            args.path_prefix.as_deref().map(|p| manager.resolve_prefix(p, args.include_all_sessions)).transpose()?;
        let options = ListOptions {
            prefix,
            include_all_sessions: args.include_all_sessions,
            limit,
            cursor: args.cursor,
            ..ListOptions::default()
        };
        let mut page = manager.list(options.clone()).await?;
        // Keep the result under the context budget: when the page's metadata would pass it, ask
        // again for as many files as fit, so `next_cursor` continues right after the last one shown.
        let mut used = 0;
        let fit = page
            .files
            .iter()
            .take_while(|f| {
                used += file_json(f).to_string().len() + 1;
                used <= FILES_BUDGET_CHARS
            })
            .count();
        let shortened = fit < page.files.len();
        if shortened {
            page = manager.list(ListOptions { limit: fit.max(1) as u64, ..options }).await?;
        }
        Ok(json!({
            "files": page.files.iter().map(file_json).collect::<Vec<_>>(),
            "count": page.files.len(),
            "next_cursor": page.next_cursor,
            "message": if shortened {
                format!("{} files shown (fewer than the limit, to keep the result small); continue with cursor=next_cursor", page.files.len())
            } else {
                format!("{} files", page.files.len())
            },
            "scope": if args.include_all_sessions { "workspace".to_owned() } else { format!("session {}", ctx.session()) },
        }))
    }
}
