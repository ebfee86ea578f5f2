//! `grep_workspace_files` and `glob_workspace_files` (SPEC §15): the schema and result shape of
//! the core's grep and glob, with results kept under the context budget.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use workspace_core::{GrepOptions, PathGlob, PathPrefix};

use super::parse_args;
use crate::error::ToolError;
use crate::registry::{SCHEMA_DIALECT, Tool, ToolContext};
use crate::text::MAX_RESULT_CHARS;

/// Default and largest `max_matches`.
const DEFAULT_MATCHES: usize = 100;
const MAX_MATCHES: usize = 500;
/// Characters of matches a grep result carries at most (leaves room for the rest of the result).
const MATCH_BUDGET_CHARS: usize = 30_000;
/// Most paths a glob returns.
const MAX_GLOB_PATHS: usize = 200;

/// The folder searched: `path_prefix` (relative = in the session, `/` = the whole workspace), or
/// the session's folder.
fn scope(ctx: &ToolContext, path_prefix: Option<&str>) -> Result<PathPrefix, ToolError> {
    Ok(ctx.manager().resolve_prefix(path_prefix.unwrap_or(""), false)?)
}

fn path_prefix_property() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 1024,
        "description": "Folder to search: relative = inside this session's folder, absolute = from the workspace root, `/` = the whole workspace. Default: this session's folder."})
}

/// Searches file contents.
#[derive(Debug, Default)]
pub struct GrepFilesTool;

#[derive(Deserialize)]
struct GrepArgs {
    pattern: String,
    #[serde(default)]
    literal: bool,
    path_prefix: Option<String>,
    glob: Option<String>,
    #[serde(default)]
    case_insensitive: bool,
    #[serde(default)]
    context_lines: usize,
    max_matches: Option<usize>,
}

#[async_trait]
impl Tool for GrepFilesTool {
    fn name(&self) -> &str {
        "grep_workspace_files"
    }

    fn description(&self) -> &str {
        "Search the contents of text files for lines matching `pattern` (a regular expression in Rust \
         regex syntax, linear time; literal=true for plain text). Searches this session's folder unless \
         `path_prefix` says otherwise (`/` = the whole workspace); `glob` filters files (`*.md` matches names \
         in any folder, `notes/**/*.txt` paths under the folder searched). Returns `matches` \
         [{path, file_id, line, text}] (lines cut at 300 characters) in path then line order, at most \
         `max_matches` (default 100, max 500) and about 30 000 characters; `truncated` says more exist. \
         Binary files and files over the grep size limit are skipped and counted in `files_skipped`. \
         Read around a match with read_workspace_file(start_line, end_line)."
    }

    fn parameters(&self) -> Value {
        json!({
            "$schema": SCHEMA_DIALECT,
            "type": "object",
            "properties": {
                "pattern": {"type": "string", "minLength": 1, "maxLength": 1000,
                    "description": "Regular expression (Rust regex syntax; `^`/`$` match at line ends), or plain text with literal=true."},
                "literal": {"type": "boolean", "default": false, "description": "Match `pattern` as plain text."},
                "path_prefix": path_prefix_property(),
                "glob": {"type": "string", "minLength": 1, "maxLength": 1000,
                    "description": "Only files matching this glob: without `/` it matches file names (`*.md`), with `/` paths relative to the folder searched (`**/*.md`)."},
                "case_insensitive": {"type": "boolean", "default": false, "description": "Ignore case."},
                "context_lines": {"type": "integer", "minimum": 0, "maximum": 10, "default": 0,
                    "description": "Lines of context before and after each match (`before`/`after`)."},
                "max_matches": {"type": "integer", "minimum": 1, "maximum": MAX_MATCHES, "default": DEFAULT_MATCHES,
                    "description": "Most matching lines to return."}
            },
            "required": ["pattern"],
            "additionalProperties": false
        })
    }

    fn output_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "matches": {"type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "path": {"type": "string"},
                        "file_id": {"type": "string"},
                        "line": {"type": "integer", "minimum": 1},
                        "text": {"type": "string"},
                        "before": {"type": "array", "items": {"type": "string"}},
                        "after": {"type": "array", "items": {"type": "string"}}
                    },
                    "required": ["path", "file_id", "line", "text"]
                }},
                "truncated": {"type": "boolean"},
                "files_scanned": {"type": "integer", "minimum": 0},
                "files_skipped": {"type": "integer", "minimum": 0},
                "scope": {"type": "string"},
                "message": {"type": "string"}
            },
            "required": ["matches", "truncated", "files_scanned", "files_skipped"]
        })
    }

    async fn call(&self, args: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let args: GrepArgs = parse_args(args)?;
        let prefix = scope(ctx, args.path_prefix.as_deref())?;
        let glob = args.glob.as_deref().map(PathGlob::parse).transpose()?;
        let max_matches = args.max_matches.unwrap_or(DEFAULT_MATCHES).clamp(1, MAX_MATCHES);
        let found = ctx
            .manager()
            .grep(GrepOptions {
                pattern: args.pattern,
                literal: args.literal,
                case_insensitive: args.case_insensitive,
                prefix: prefix.clone(),
                glob,
                context_lines: args.context_lines,
                max_matches,
            })
            .await?;
        let mut matches = Vec::new();
        let mut used = 0;
        let mut cut_by_size = false;
        for m in &found.matches {
            let item = json!({
                "path": m.path,
                "file_id": m.file_id.to_string(),
                "line": m.line,
                "text": m.text,
                "before": m.before,
                "after": m.after,
            });
            let item = if m.before.is_empty() && m.after.is_empty() { strip_context(item) } else { item };
            let size = item.to_string().len();
            if used + size > MATCH_BUDGET_CHARS {
                cut_by_size = true;
                break;
            }
            used += size;
            matches.push(item);
        }
        let truncated = found.truncated || cut_by_size;
        let shown = matches.len();
        let mut message = format!(
            "{shown} matching lines in {} files searched ({} skipped: binary or over the size limit) under {prefix}",
            found.files_scanned, found.files_skipped
        );
        if truncated {
            message.push_str(
                "; more matches exist: narrow `path_prefix`, `glob` or the pattern, or raise `max_matches` (results \
                 stay under ~30 000 characters)",
            );
        }
        Ok(json!({
            "matches": matches,
            "truncated": truncated,
            "files_scanned": found.files_scanned,
            "files_skipped": found.files_skipped,
            "scope": prefix.to_string(),
            "message": message,
        }))
    }
}

fn strip_context(mut item: Value) -> Value {
    if let Some(map) = item.as_object_mut() {
        map.remove("before");
        map.remove("after");
    }
    item
}

/// Finds files by path pattern.
#[derive(Debug, Default)]
pub struct GlobFilesTool;

#[derive(Deserialize)]
struct GlobArgs {
    pattern: String,
    path_prefix: Option<String>,
}

#[async_trait]
impl Tool for GlobFilesTool {
    fn name(&self) -> &str {
        "glob_workspace_files"
    }

    fn description(&self) -> &str {
        "Find files whose path matches a glob, e.g. `**/*.md` (every Markdown file below the folder), \
         `reports/*.csv`, or `*.png` (names in any folder). `*` stays within one folder, `**` crosses \
         folders. Searches this session's folder unless `path_prefix` says otherwise (`/` = the whole \
         workspace). Returns `files` [{path, file_id, size_bytes, uri}] in path order, at most 200; \
         `truncated` says more matched."
    }

    fn parameters(&self) -> Value {
        json!({
            "$schema": SCHEMA_DIALECT,
            "type": "object",
            "properties": {
                "pattern": {"type": "string", "minLength": 1, "maxLength": 1000,
                    "description": "Glob: with `/`, matched against the path relative to the folder searched (or absolute when it starts with `/`); without, against file names."},
                "path_prefix": path_prefix_property()
            },
            "required": ["pattern"],
            "additionalProperties": false
        })
    }

    fn output_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "files": {"type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "path": {"type": "string"},
                        "file_id": {"type": "string"},
                        "size_bytes": {"type": "integer", "minimum": 0},
                        "uri": {"type": "string"}
                    },
                    "required": ["path", "file_id", "size_bytes", "uri"]
                }},
                "count": {"type": "integer", "minimum": 0},
                "truncated": {"type": "boolean"},
                "scope": {"type": "string"}
            },
            "required": ["files", "count", "truncated"]
        })
    }

    async fn call(&self, args: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let args: GlobArgs = parse_args(args)?;
        let prefix = scope(ctx, args.path_prefix.as_deref())?;
        let glob = PathGlob::parse(&args.pattern)?;
        let (files, truncated) = ctx.manager().glob(&glob, &prefix, MAX_GLOB_PATHS).await?;
        let mut listed = Vec::new();
        let mut used = 0;
        let mut cut = false;
        for f in &files {
            let item = json!({"path": f.path, "file_id": f.id.to_string(), "size_bytes": f.size_bytes, "uri": f.uri().to_string()});
            used += item.to_string().len();
            if used > MAX_RESULT_CHARS - 2_000 {
                cut = true;
                break;
            }
            listed.push(item);
        }
        Ok(json!({
            "count": listed.len(),
            "files": listed,
            "truncated": truncated || cut,
            "scope": prefix.to_string(),
        }))
    }
}
