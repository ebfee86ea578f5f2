//! Workspace files as MCP resources (SPEC §15): the listing (the session's folder, as
//! `list_workspace_files` scopes it, in pages of 100), the two URI templates, and reads under the
//! §9 limits: text up to 32 KiB inline, small images as base64 blobs, anything larger an error
//! that names the tool that reads it in slices.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use workspace_core::{FileInfo, FileRef, ListOptions, WorkspaceManager, WorkspaceUri};

use crate::error::ToolError;
use crate::text::MAX_INLINE_BYTES;
use crate::tools::read::{is_text, read_head};

/// Resources per `resources/list` page.
pub const RESOURCE_PAGE_SIZE: u64 = 100;
/// The template of a file by id.
pub const ID_TEMPLATE: &str = "workspace://{file_id}";
/// The template of a file by path.
pub const PATH_TEMPLATE: &str = "workspace:///{+path}";

/// One listed file as a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceEntry {
    /// `workspace://{file_id}`.
    pub uri: String,
    /// The file's path.
    pub name: String,
    /// MIME type.
    pub mime_type: String,
    /// Size in bytes.
    pub size: u64,
}

/// What a resource read returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceBody {
    /// UTF-8 text.
    Text {
        /// The text.
        text: String,
        /// Its MIME type.
        mime_type: String,
    },
    /// Bytes, base64-encoded.
    Blob {
        /// The base64.
        blob: String,
        /// Their MIME type.
        mime_type: String,
    },
}

/// A page of the session's files as resources, and the cursor of the next page.
pub async fn list(
    manager: &WorkspaceManager,
    cursor: Option<String>,
) -> Result<(Vec<ResourceEntry>, Option<String>), ToolError> {
    let page = manager.list(ListOptions { limit: RESOURCE_PAGE_SIZE, cursor, ..ListOptions::default() }).await?;
    let entries = page
        .files
        .iter()
        .map(|f| ResourceEntry {
            uri: format!("workspace://{}", f.id),
            name: f.path.to_string(),
            mime_type: f.mime_type.essence_str().to_owned(),
            size: f.size_bytes,
        })
        .collect();
    Ok((entries, page.next_cursor))
}

/// The file a resource URI names: `workspace://{file_id}` (a `#mime` fragment is ignored) or
/// `workspace:///{path}` (percent-escapes decoded).
pub fn parse_uri(uri: &str) -> Result<FileRef, ToolError> {
    let decoded = percent_decode(uri).ok_or_else(|| ToolError::invalid_input(format!("`{uri}` has a bad escape")))?;
    WorkspaceUri::parse(&decoded).map(FileRef::from).map_err(|e| ToolError::invalid_input(e.to_string()))
}

/// Reads a resource within the §9 limits.
pub async fn read(manager: &WorkspaceManager, uri: &str) -> Result<(FileInfo, ResourceBody), ToolError> {
    let opened = manager.open(parse_uri(uri)?).await?;
    let info = opened.info.clone();
    let small = info.size_bytes <= MAX_INLINE_BYTES as u64;
    let head = read_head(&opened, if small { MAX_INLINE_BYTES } else { 8 * 1024 }).await?;
    let mime_type = info.mime_type.essence_str().to_owned();
    if is_text(&info, &head, small) {
        if small && let Ok(text) = String::from_utf8(head) {
            return Ok((info, ResourceBody::Text { text, mime_type }));
        }
        let lines = manager.count_lines(&info).await?;
        return Err(ToolError::new(
            "too_large",
            format!(
                "{} is {} bytes and {lines} lines (checksum {}), over the 32 KiB a resource read returns: read it in \
                 slices with the `read_workspace_file` tool (start_line/end_line, or offset/length), or search it \
                 with `grep_workspace_files`",
                info.path, info.size_bytes, info.checksum
            ),
        ));
    }
    if small && info.mime_type.type_() == mime::IMAGE {
        return Ok((info, ResourceBody::Blob { blob: STANDARD.encode(&head), mime_type }));
    }
    Err(ToolError::new(
        "too_large",
        format!(
            "{} ({}, {} bytes, checksum {}) is {}: a resource read returns text up to 32 KiB and images up to \
             32 KiB. Use the `read_workspace_file` tool (it returns metadata and a download link with \
             force_download_url), or pass the workspace:// uri to a block",
            info.path,
            info.mime_type,
            info.size_bytes,
            info.checksum,
            if info.mime_type.type_() == mime::IMAGE { "an image over 32 KiB" } else { "binary" }
        ),
    ))
}

/// Decodes `%XX` escapes (a `+` stays a `+`: it is a legal path character).
fn percent_decode(input: &str) -> Option<String> {
    if !input.contains('%') {
        return Some(input.to_owned());
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = input.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_of_both_templates_parse() {
        let id = "0190a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b";
        assert!(matches!(parse_uri(&format!("workspace://{id}")), Ok(FileRef::Id(_))));
        assert!(matches!(parse_uri(&format!("workspace://{id}#text/plain")), Ok(FileRef::Id(_))));
        match parse_uri("workspace:///notes/my%20file+1.md") {
            Ok(FileRef::Path(p)) => assert_eq!(p.as_str(), "/notes/my file+1.md"),
            other => panic!("{other:?}"),
        }
        assert!(parse_uri("workspace:///a/%zz").is_err());
        assert!(parse_uri("file:///etc/passwd").is_err());
        assert!(parse_uri("workspace:///a/../../b").is_err());
    }
}
