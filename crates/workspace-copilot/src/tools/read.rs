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
use workspace_core::{ByteRange, FileInfo, Opened};

use super::{file_json, file_selector_properties, parse_args, resolve_ref};
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
         returns a download URL instead of content when the storage can issue one."
    }

    fn parameters(&self) -> Value {
        let mut properties = file_selector_properties();
        if let Some(map) = properties.as_object_mut() {
            map.insert(
                "offset".into(),
                json!({"type": "integer", "minimum": 0,
                       "description": "Text slice: first character to return (0-based)."}),
            );
            map.insert(
                "length".into(),
                json!({"type": "integer", "minimum": 1, "maximum": MAX_INLINE_BYTES,
                       "description": "Text slice: most characters to return (the result is also capped at 32 KiB)."}),
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
                Ok(json!({
                    "file": meta,
                    "uri": uri,
                    "content": slice.text,
                    "offset": slice.offset,
                    "length": slice.chars,
                    "next_offset": next_offset,
                    "end_of_file": slice.more == Some(false),
                }))
            }
            (true, None) if small => match String::from_utf8(head.to_vec()) {
                Ok(content) => Ok(json!({"file": meta, "uri": uri, "content": content})),
                Err(_) => Ok(binary_result(meta, uri, info)),
            },
            (true, None) => Ok(json!({
                "file": meta,
                "uri": uri,
                "truncated": true,
                "preview": text::preview(&head, PREVIEW_CHARS),
                "message": format!(
                    "The file is {} bytes, over the 32 KiB inline limit: this is its first {PREVIEW_CHARS} \
                     characters. Read more with `offset` and `length` (characters), or pass the uri to a block.",
                    info.size_bytes
                ),
            })),
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
            "{} ({}, {} bytes) is {why}. Pass the uri to a block, or show it to the user as a workspace:// link.",
            info.path, info.mime_type, info.size_bytes
        ),
    })
}

fn not_text(_: text::NotUtf8) -> ToolError {
    ToolError::new("not_text", "the file is not valid UTF-8 text; read it without offset/length")
}

/// Text if the type says so and the bytes agree, or if the type is unknown and the bytes look
/// like text. `complete` says whether `head` is the whole file.
fn is_text(info: &FileInfo, head: &[u8], complete: bool) -> bool {
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
async fn read_head(opened: &Opened, max: usize) -> Result<Vec<u8>, ToolError> {
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
