//! `read_workspace_file`: file content under the context safeguards of SPEC §9. Small text comes
//! inline; large text gives a preview and can be read in character slices; small images come as
//! base64; anything else gives metadata and the `workspace://` reference. Large files are never
//! loaded whole: only the bytes a result needs are read.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::TryStreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use workspace_core::{ByteRange, FileInfo, LineCursor, LineRange, Opened};

use super::{file_json, file_schema, file_selector_properties, parse_args, resolve_ref};
use crate::error::ToolError;
use crate::registry::{SCHEMA_DIALECT, Tool, ToolContext};
use crate::text::{self, CharSlicer, MAX_INLINE_BYTES, PREVIEW_CHARS, SNIFF_BYTES};

/// How long a download URL handed to the model stays valid.
pub const DOWNLOAD_URL_TTL: Duration = Duration::from_secs(3600);

/// Reads a file.
#[derive(Debug, Default)]
pub struct ReadFileTool;

#[derive(Deserialize)]
struct Args {
    file_id: Option<String>,
    path: Option<String>,
    offset: Option<u64>,
    length: Option<u64>,
    start_line: Option<u64>,
    end_line: Option<u64>,
    #[serde(default)]
    force_download_url: bool,
}

#[async_trait]
impl Tool for ReadFileTool {
    fn name(&self) -> &str {
        "read_workspace_file"
    }

    fn description(&self) -> &str {
        "Read a file from the user's workspace, named by `file_id` (or its workspace:// reference) or \
         by `path` (relative = this session's folder, absolute = anywhere in the workspace, so files \
         from earlier sessions are readable). Limits that keep your context small: text files up to \
         32 KiB come back whole in `content`; larger text files return metadata, a 500-character \
         `preview` and the workspace:// `uri` — read further with `offset` and `length` (in \
         characters, at most 32 KiB of text per call; continue from `next_offset`). Images up to \
         32 KiB come back as `content_base64` with their `mime_type`; other binary files return \
         metadata and the `uri` only (pass the uri to a block instead). force_download_url=true \
         returns a download URL instead of content when the storage can issue one. Line reads: \
         `start_line` (1-based) and optionally `end_line` (inclusive) return those lines as \
         `{number}<TAB>{text}` in `content` with `total_lines`; a result cut by the 32 KiB limit gives \
         `next_start_line` (or, inside one very long line, `start_line` + `offset` in characters) to \
         continue. Prefer line reads for large text files and after `grep_workspace_files`."
    }

    fn parameters(&self) -> Value {
        let mut properties = file_selector_properties();
        if let Some(map) = properties.as_object_mut() {
            map.insert(
                "offset".into(),
                json!({"type": "integer", "minimum": 0,
                       "description": "Text slice: first character to return (0-based). With `start_line`: the character of that line to start at (to continue a long line)."}),
            );
            map.insert(
                "length".into(),
                json!({"type": "integer", "minimum": 1, "maximum": MAX_INLINE_BYTES,
                       "description": "Text slice: most characters to return (the result is also capped at 32 KiB)."}),
            );
            map.insert(
                "start_line".into(),
                json!({"type": "integer", "minimum": 0,
                       "description": "Line read: first line to return (1-based)."}),
            );
            map.insert(
                "end_line".into(),
                json!({"type": "integer", "minimum": 1,
                       "description": "Line read: last line to return (inclusive). Default: as many as fit in 32 KiB."}),
            );
            map.insert(
                "force_download_url".into(),
                json!({"type": "boolean", "default": false,
                       "description": "Return a download URL and metadata instead of content."}),
            );
        }
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
            "properties": {
                "file": file_schema(),
                "uri": {"type": "string"},
                "content": {"type": "string"},
                "content_base64": {"type": "string"},
                "mime_type": {"type": "string"},
                "preview": {"type": "string"},
                "truncated": {"type": "boolean"},
                "total_lines": {"type": "integer", "minimum": 0},
                "start_line": {"type": "integer"},
                "end_line": {"type": ["integer", "null"]},
                "next_start_line": {"type": ["integer", "null"]},
                "offset": {"type": "integer"},
                "length": {"type": "integer"},
                "next_offset": {"type": ["integer", "null"]},
                "end_of_file": {"type": "boolean"},
                "download_url": {"type": ["string", "null"]},
                "message": {"type": "string"}
            },
            "required": ["file", "uri"]
        })
    }

    async fn call(&self, args: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let args: Args = parse_args(args)?;
        let manager = ctx.manager();
        let opened = manager.open(resolve_ref(ctx, args.file_id.as_deref(), args.path.as_deref())?).await?;
        let info = &opened.info;
        let meta = file_json(info);
        let uri = info.uri().to_string();

        if args.force_download_url {
            let url = manager.download_url(info, DOWNLOAD_URL_TTL).await?;
            let message = if url.is_some() {
                "a direct download link valid for one hour"
            } else {
                "this storage issues no direct links; refer to the file by its workspace:// uri"
            };
            return Ok(json!({"file": meta, "uri": uri, "download_url": url, "message": message}));
        }

        if args.start_line.is_some() || args.end_line.is_some() {
            return read_lines(ctx, &opened, &args).await;
        }

        let slice = match (args.offset, args.length) {
            (None, None) => None,
            (offset, length) => Some((
                usize::try_from(offset.unwrap_or(0)).unwrap_or(usize::MAX),
                usize::try_from(length.unwrap_or(MAX_INLINE_BYTES as u64)).unwrap_or(MAX_INLINE_BYTES),
            )),
        };
        let small = info.size_bytes <= MAX_INLINE_BYTES as u64;
        let head = if small { read_all(&opened).await? } else { read_head(&opened, SNIFF_BYTES).await? };
        let is_text = is_text(info, &head, small);

        match (is_text, slice) {
            (true, Some((offset, length))) => {
                let slice = if small {
                    let mut slicer = CharSlicer::new(offset, length, MAX_INLINE_BYTES);
                    let done = slicer.push(&head).map_err(not_text)?;
                    slicer.finish(!done).map_err(not_text)?
                } else {
                    read_slice(&opened, offset, length).await?
                };
                let next_offset = slice.more.unwrap_or(false).then_some(slice.offset + slice.chars);
                let mut result = json!({
                    "file": meta,
                    "uri": uri,
                    "content": slice.text,
                    "offset": slice.offset,
                    "length": slice.chars,
                    "next_offset": next_offset,
                    "end_of_file": slice.more == Some(false),
                });
                if let Some(next) = next_offset {
                    result["message"] = format!(
                        "{} characters from {}; more follows: call again with offset={next}.",
                        slice.chars, slice.offset
                    )
                    .into();
                }
                Ok(result)
            }
            (true, None) if small => match String::from_utf8(head.to_vec()) {
                Ok(content) => Ok(json!({"file": meta, "uri": uri, "content": content})),
                Err(_) => Ok(binary_result(meta, uri, info)),
            },
            (true, None) => {
                let total_lines = manager.count_lines(info).await?;
                Ok(json!({
                    "file": meta,
                    "uri": uri,
                    "truncated": true,
                    "total_lines": total_lines,
                    "preview": text::preview(&head, PREVIEW_CHARS),
                    "message": format!(
                        "The file is {} bytes and {total_lines} lines (checksum {}), over the 32 KiB inline limit: \
                         this is its first {PREVIEW_CHARS} characters. Read it in slices with `start_line`/`end_line` \
                         (numbered lines), or `offset` and `length` (characters); search it with \
                         `grep_workspace_files`; or pass the uri to a block.",
                        info.size_bytes, info.checksum
                    ),
                }))
            }
            (false, Some(_)) => Err(ToolError::invalid_input(format!(
                "`offset`/`length` read slices of text files; {} is {} (binary)",
                info.path, info.mime_type
            ))),
            (false, None) if small && info.mime_type.type_() == mime::IMAGE => {
                let mime = info.mime_type.essence_str();
                Ok(json!({"file": meta, "uri": uri, "mime_type": mime, "content_base64": STANDARD.encode(&head)}))
            }
            (false, None) => Ok(binary_result(meta, uri, info)),
        }
    }
}

/// A line read (`start_line`/`end_line`): numbered lines within the 32 KiB budget.
async fn read_lines(ctx: &ToolContext, opened: &Opened, args: &Args) -> Result<Value, ToolError> {
    let info = &opened.info;
    if args.length.is_some() {
        return Err(ToolError::invalid_input(
            "`length` slices characters; with `start_line` use `end_line` (and `offset` to continue a long line)",
        ));
    }
    let head = read_head(opened, SNIFF_BYTES).await?;
    if !is_text(info, &head, info.size_bytes <= SNIFF_BYTES as u64) {
        return Err(ToolError::invalid_input(format!(
            "line reads need a text file; {} is {} (binary)",
            info.path, info.mime_type
        )));
    }
    let start = args.start_line.unwrap_or(1);
    let range = LineRange { start, end: args.end_line, offset: args.offset.unwrap_or(0), max_bytes: MAX_INLINE_BYTES };
    let read = ctx.manager().read_lines(info.id, range).await?;
    let mut content = String::new();
    for line in &read.lines {
        content.push_str(&line.render());
        content.push('\n');
    }
    let last = read.lines.last().map(|l| l.number);
    let (next_start_line, next_offset, message) = match read.next {
        Some(LineCursor::Line(line)) => (
            Some(line),
            None,
            format!(
                "lines {start}-{} of {}; the 32 KiB limit stopped the read: continue with start_line={line}",
                last.unwrap_or(start),
                read.total_lines
            ),
        ),
        Some(LineCursor::Within { line, offset }) => (
            Some(line),
            Some(offset),
            format!(
                "line {line} is longer than the 32 KiB limit: this is part of it; continue with \
                 start_line={line} and offset={offset} (characters)"
            ),
        ),
        None => {
            let more = last.is_some_and(|l| l < read.total_lines);
            let tail = if more {
                format!("; lines {} to {} follow", last.unwrap_or(start) + 1, read.total_lines)
            } else {
                String::new()
            };
            (None, None, format!("lines {start}-{} of {}{tail}", last.unwrap_or(start), read.total_lines))
        }
    };
    Ok(json!({
        "file": file_json(&read.info),
        "uri": read.info.uri().to_string(),
        "content": content,
        "start_line": start,
        "end_line": last,
        "total_lines": read.total_lines,
        "truncated": read.next.is_some(),
        "next_start_line": next_start_line,
        "next_offset": next_offset,
        "message": message,
    }))
}

fn binary_result(meta: Value, uri: String, info: &FileInfo) -> Value {
    let why = if info.mime_type.type_() == mime::IMAGE {
        "an image over the 32 KiB inline limit"
    } else {
        "binary content, which is not shown"
    };
    json!({
        "file": meta,
        "uri": uri,
        "message": format!(
            "{} ({}, {} bytes, checksum {}) is {why}. Pass the uri to a block, or show it to the user as a workspace:// link.",
            info.path, info.mime_type, info.size_bytes, info.checksum
        ),
    })
}

fn not_text(_: text::NotUtf8) -> ToolError {
    ToolError::new("not_text", "the file is not valid UTF-8 text; read it without offset/length")
}

/// Text if the type says so and the bytes agree, or if the type is unknown and the bytes look
/// like text. `complete` says whether `head` is the whole file.
pub(crate) fn is_text(info: &FileInfo, head: &[u8], complete: bool) -> bool {
    let sniffed_binary =
        info.metadata.get("sniffed_mime_type").and_then(Value::as_str).is_some_and(|m| !text::is_text_mime(m));
    if sniffed_binary {
        return false;
    }
    let plausible =
        if complete { std::str::from_utf8(head).is_ok() && !head.contains(&0) } else { text::looks_like_text(head) };
    (text::is_text_mime(info.mime_type.as_ref()) || text::is_unknown_mime(info.mime_type.as_ref())) && plausible
}

async fn read_all(opened: &Opened) -> Result<Vec<u8>, ToolError> {
    read_head(opened, MAX_INLINE_BYTES).await
}

/// The first `max` bytes of a file (fewer when the file is shorter).
pub(crate) async fn read_head(opened: &Opened, max: usize) -> Result<Vec<u8>, ToolError> {
    let size = opened.info.size_bytes;
    if size == 0 {
        return Ok(Vec::new());
    }
    let get = opened.read(Some(ByteRange::Bounded { start: 0, end: max as u64 })).await?;
    let mut out = Vec::with_capacity(max.min(usize::try_from(size).unwrap_or(usize::MAX)));
    let mut stream = get.stream;
    while let Some(chunk) = stream.try_next().await.map_err(workspace_core::WorkspaceError::from)? {
        let room = max - out.len();
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= max {
            break;
        }
    }
    Ok(out)
}

/// Characters `offset..offset + length` of a large text file, streamed from the start and
/// stopping as soon as the slice is complete.
async fn read_slice(opened: &Opened, offset: usize, length: usize) -> Result<text::Slice, ToolError> {
    let get = opened.read(None).await?;
    let mut stream = get.stream;
    let mut slicer = CharSlicer::new(offset, length, MAX_INLINE_BYTES);
    while let Some(chunk) = stream.try_next().await.map_err(workspace_core::WorkspaceError::from)? {
        if slicer.push(&chunk).map_err(not_text)? {
            return slicer.finish(false).map_err(not_text);
        }
    }
    slicer.finish(true).map_err(not_text)
}
