//! `write_workspace_file`: saves text or base64 bytes, by default into this session's folder,
//! with provenance `copilot`.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};
use workspace_core::{FileSource, Limits, NewFile};

use super::{file_json, file_result_schema, if_match, if_match_property, parse_args};
use crate::error::ToolError;
use crate::registry::{SCHEMA_DIALECT, Tool, ToolContext};

/// Writes a file.
#[derive(Debug)]
pub struct WriteFileTool {
    description: String,
}

impl WriteFileTool {
    /// The tool, its description stating `limits`.
    pub fn new(limits: Limits) -> Self {
        let description = format!(
            "Save a file to the user's persistent workspace (it stays available in later sessions). \
             Give `filename` and exactly one of `content` (UTF-8 text) or `content_base64` (binary data, \
             standard base64); `content: \"\"` saves an empty file. Leave out parameters you do not use \
             (an empty string for any other optional parameter counts as not given). The file goes to this session's folder unless `path` says otherwise \
             (relative = inside this session, absolute = anywhere in the workspace; a path ending in `/` \
             is a folder that receives `filename`). An existing file at the path is an error \
             (`conflict`) unless overwrite=true; append=true adds the content to the end of the file \
             instead (creating it if it does not exist; each append is a new version). Limits: {} per file, {} per user in total. Returns the \
             file's metadata with its workspace:// uri, which blocks and the chat can reference.",
            human_bytes(limits.max_file_size),
            human_bytes(limits.quota_bytes)
        );
        Self { description }
    }
}

#[derive(Deserialize)]
struct Args {
    filename: String,
    content: Option<String>,
    content_base64: Option<String>,
    path: Option<String>,
    mime_type: Option<String>,
    #[serde(default)]
    overwrite: bool,
    #[serde(default)]
    append: bool,
    if_match: Option<String>,
}

#[async_trait]
impl Tool for WriteFileTool {
    fn name(&self) -> &str {
        "write_workspace_file"
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn empty_string_values(&self) -> &'static [&'static str] {
        // `content: ""` is an empty file; `content_base64: ""` next to real content is an unused
        // alternative.
        &["content", "content_base64"]
    }

    fn parameters(&self) -> Value {
        json!({
            "$schema": SCHEMA_DIALECT,
            "type": "object",
            "properties": {
                "filename": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^/\\\\]+$",
                    "description": "File name, e.g. `report.md` (no slashes)."},
                "content": {"type": "string", "description": "Text content (UTF-8); \"\" is an empty file. Give this or content_base64."},
                "content_base64": {"type": "string", "description": "Binary content, standard base64. Give this or content."},
                "path": {"type": "string", "minLength": 1, "maxLength": 1024,
                    "description": "Where to save: relative = inside this session's folder, absolute = from the workspace root; ending in `/` = a folder for `filename`. Default: this session's folder."},
                "mime_type": {"type": "string", "minLength": 3, "maxLength": 255,
                    "description": "MIME type, e.g. text/markdown. Default: from the file extension."},
                "overwrite": {"type": "boolean", "default": false,
                    "description": "Replace an existing file at the same path (the old content is kept as a version)."},
                "append": {"type": "boolean", "default": false,
                    "description": "Add the content to the end of the existing file (or create it): no overwrite needed."},
                "if_match": if_match_property()
            },
            "required": ["filename"],
            "additionalProperties": false
        })
    }

    fn output_schema(&self) -> Value {
        file_result_schema()
    }

    async fn call(&self, args: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let args: Args = parse_args(args)?;
        let bytes = match (args.content, args.content_base64) {
            (Some(_), Some(_)) => {
                return Err(ToolError::invalid_input("give either `content` or `content_base64`, not both"));
            }
            (None, None) => return Err(ToolError::invalid_input("give `content` (text) or `content_base64` (binary)")),
            (Some(text), None) => Content::Text(text.into_bytes()),
            (None, Some(encoded)) => {
                let cleaned: String = encoded.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                Content::Binary(
                    STANDARD
                        .decode(cleaned.as_bytes())
                        .map_err(|e| ToolError::invalid_input(format!("`content_base64` is not valid base64: {e}")))?,
                )
            }
        };
        let manager = ctx.manager();
        let target = match args.path.as_deref() {
            None => args.filename.clone(),
            Some(dir) if dir.ends_with('/') => format!("{dir}{}", args.filename),
            Some(path) => path.to_owned(),
        };
        let path = manager.resolve_path(&target)?;
        if args.append {
            let filename = args.filename.clone();
            let mime = args.mime_type.clone();
            let info = manager
                .append(path, bytes.into_bytes().into(), if_match(args.if_match.as_deref())?, move |p| {
                    let new = NewFile::new(p).with_name(filename.clone()).with_source(FileSource::Copilot);
                    match &mime {
                        Some(m) => new.with_mime_type(m.clone()),
                        None => new,
                    }
                })
                .await?;
            return Ok(json!({
                "file": file_json(&info),
                "uri": info.uri().to_string(),
                "message": format!("appended; {} is now {} bytes (version {})", info.path, info.size_bytes, info.version),
            }));
        }
        let mut new = NewFile::new(path)
            .with_name(args.filename.clone())
            .with_overwrite(args.overwrite)
            .with_precondition(if_match(args.if_match.as_deref())?)
            .with_source(FileSource::Copilot);
        let declared = args.mime_type.or_else(|| {
            // Text with an extension nobody knows is still text.
            let guessed = workspace_core::mime::choose(None, &args.filename);
            (matches!(bytes, Content::Text(_)) && guessed == workspace_core::mime::OCTET_STREAM)
                .then(|| "text/plain; charset=utf-8".to_owned())
        });
        if let Some(mime) = declared {
            new = new.with_mime_type(mime);
        }
        let info = manager.write_bytes(new, bytes.into_bytes()).await?;
        Ok(json!({
            "file": file_json(&info),
            "uri": info.uri().to_string(),
            "message": format!("saved {} bytes to {}", info.size_bytes, info.path),
        }))
    }
}

enum Content {
    Text(Vec<u8>),
    Binary(Vec<u8>),
}

impl Content {
    fn into_bytes(self) -> Vec<u8> {
        match self {
            Self::Text(b) | Self::Binary(b) => b,
        }
    }
}

fn human_bytes(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) { format!("{} MiB", bytes / MIB) } else { format!("{bytes} bytes") }
}
