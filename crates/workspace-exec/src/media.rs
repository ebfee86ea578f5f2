//! `store_media_file`: the one function blocks call to turn any media input into the form they
//! need, so that the rules for each input kind and output format live in exactly one place.
//!
//! | input \ format            | `ForLocalProcessing`        | `ForExternalApi` | `ForBlockOutput` (workspace)   | `ForBlockOutput` (none) |
//! |---------------------------|-----------------------------|------------------|--------------------------------|-------------------------|
//! | `data:` URI               | new file in the temp dir    | base64 data URI  | stored → `workspace://{id}#{mime}` | base64 data URI     |
//! | `http(s)://` URL          | fetched, new temp file      | fetched, data URI| fetched, stored                | fetched, data URI       |
//! | `workspace://` reference  | read, new temp file         | read, data URI   | returned unchanged (checked)   | error: no workspace     |
//! | relative temp-dir path    | returned unchanged (checked)| read, data URI   | read, stored                   | read, data URI          |
//!
//! Without a workspace, a `workspace://` input is [`ExecError::NoWorkspace`] for every format.
//!
//! A URL stored into a workspace streams from the socket into the workspace as an upload does
//! (never whole in memory; the cap refuses it mid-stream and nothing is left behind); its type is
//! sniffed from the first bytes. The other formats need the bytes in memory anyway.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use workspace_core::{FileSource, NewFile, WorkspaceError, WorkspaceManager, WorkspacePath, WorkspaceUri};

use crate::context::ExecutionContext;
use crate::data_uri::DataUri;
use crate::error::ExecError;
use crate::fetch::FetchError;

/// A media input or output: a `data:` URI, an `http(s)://` URL, a `workspace://` reference, or
/// a path relative to the execution's temp directory. Serialises as a plain string, so it is
/// what block inputs and outputs hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MediaFile(String);

impl MediaFile {
    /// Wraps text; it is classified (and refused if unsupported) by `store_media_file`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Bytes a block produced, as a base64 data URI. `name` (optional) becomes the stored
    /// file's name when the output is persisted.
    pub fn from_bytes(bytes: &[u8], mime: &str, name: Option<&str>) -> Self {
        Self(DataUri::format(mime, name, bytes))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Which kind of input this is, or why it is none.
    pub fn kind(&self) -> Result<MediaKind, ExecError> {
        Ok(match classify(&self.0)? {
            Source::Data => MediaKind::DataUri,
            Source::Url => MediaKind::Url,
            Source::Workspace(_) => MediaKind::Workspace,
            Source::Local => MediaKind::LocalPath,
        })
    }
}

impl fmt::Display for MediaFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for MediaFile {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for MediaFile {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// The four kinds of media input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// `data:…`
    DataUri,
    /// `http://…` or `https://…`
    Url,
    /// `workspace://…`
    Workspace,
    /// A path relative to the execution's temp directory.
    LocalPath,
}

/// What the caller wants back from `store_media_file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaReturnFormat {
    /// A path relative to the execution's temp directory; open it with
    /// [`ExecutionContext::local_path`].
    ForLocalProcessing,
    /// A base64 `data:` URI, to hand to an external API.
    ForExternalApi,
    /// `workspace://{id}#{mime}` when the execution has a workspace (a workspace reference comes
    /// back unchanged), else a base64 `data:` URI. Blocks use this for their outputs.
    ForBlockOutput,
}

enum Source {
    Data,
    Url,
    Workspace(WorkspaceUri),
    Local,
}

fn classify(text: &str) -> Result<Source, ExecError> {
    if text.is_empty() {
        return Err(ExecError::InvalidInput("the media file is empty".into()));
    }
    if WorkspaceUri::is_workspace_uri(text) {
        let uri = WorkspaceUri::parse(text).map_err(|e| ExecError::InvalidInput(e.to_string()))?;
        return Ok(Source::Workspace(uri));
    }
    match scheme_of(text).map(str::to_ascii_lowercase).as_deref() {
        Some("data") => Ok(Source::Data),
        Some("http" | "https") => Ok(Source::Url),
        Some(other) => Err(ExecError::InvalidInput(format!(
            "unsupported media scheme `{other}:` (use data:, http(s)://, workspace:// or a temp-dir path)"
        ))),
        None => Ok(Source::Local),
    }
}

/// `scheme` of `scheme:…` per RFC 3986 (letter, then letters, digits, `+`, `-`, `.`).
fn scheme_of(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic() && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))).then_some(scheme)
}

/// Media loaded into memory, with what is known about it.
struct Content {
    bytes: Bytes,
    mime: String,
    name: Option<String>,
}

/// Turns `file` into `format` for the execution `ctx`. See the module table for every case.
///
/// Errors: malformed or unsupported input ([`ExecError::InvalidInput`], [`ExecError::DataUri`]),
/// a `workspace://` input without a workspace ([`ExecError::NoWorkspace`]), a temp-dir path that
/// escapes ([`ExecError::PathEscape`]), a refused or failed fetch ([`ExecError::Fetch`]), media over
/// the limit ([`ExecError::TooLarge`]), a full temp directory ([`ExecError::TempDirFull`]), and
/// workspace errors (quota, not found…).
pub async fn store_media_file(
    file: &MediaFile,
    ctx: &ExecutionContext,
    format: MediaReturnFormat,
) -> Result<MediaFile, ExecError> {
    let source = classify(file.as_str())?;
    match (&source, format) {
        (Source::Workspace(uri), MediaReturnFormat::ForBlockOutput) => {
            let manager = require_workspace(ctx, file)?;
            lookup(manager, uri).await?;
            return Ok(file.clone());
        }
        (Source::Local, MediaReturnFormat::ForLocalProcessing) => {
            ctx.local_path(file.as_str()).await?;
            return Ok(file.clone());
        }
        (Source::Url, MediaReturnFormat::ForBlockOutput) => {
            if let Some(manager) = ctx.workspace() {
                let info = store_remote(manager, ctx, file).await?;
                return Ok(MediaFile::new(info.uri().to_string()));
            }
        }
        _ => {}
    }
    let content = load(file, source, ctx).await?;
    emit(content, ctx, format).await
}

async fn load(file: &MediaFile, source: Source, ctx: &ExecutionContext) -> Result<Content, ExecError> {
    let limit = ctx.env().config().max_media_bytes;
    let content = match source {
        Source::Data => {
            let uri = DataUri::parse(file.as_str(), limit)?;
            Content { bytes: uri.data, mime: uri.mime, name: uri.name }
        }
        Source::Url => {
            let response = ctx.fetcher().get(file.as_str()).await?;
            let name = url_file_name(&response.url);
            let declared = response.content_type.as_deref().map(workspace_core::mime::essence);
            let mime = workspace_core::mime::choose(declared.as_deref(), name.as_deref().unwrap_or_default());
            Content { bytes: response.body, mime: mime.essence_str().to_owned(), name }
        }
        Source::Workspace(uri) => {
            let manager = require_workspace(ctx, file)?;
            let opened = manager.open(uri.clone()).await?;
            if opened.info.size_bytes > limit {
                return Err(ExecError::TooLarge { limit });
            }
            let bytes = opened.bytes().await?;
            let info = opened.info;
            Content { bytes, mime: info.mime_type.essence_str().to_owned(), name: Some(info.name) }
        }
        Source::Local => {
            let path = ctx.local_path(file.as_str()).await?;
            if tokio::fs::metadata(&path).await?.len() > limit {
                return Err(ExecError::TooLarge { limit });
            }
            let bytes = Bytes::from(tokio::fs::read(&path).await?);
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            let by_name = workspace_core::mime::choose(None, name.as_deref().unwrap_or_default());
            let mime = match workspace_core::mime::sniff(&bytes) {
                Some(sniffed) if by_name.essence_str() == workspace_core::mime::OCTET_STREAM => sniffed.to_owned(),
                _ => by_name.to_string(),
            };
            Content { bytes, mime, name }
        }
    };
    if content.bytes.len() as u64 > limit {
        return Err(ExecError::TooLarge { limit });
    }
    Ok(content)
}

async fn emit(content: Content, ctx: &ExecutionContext, format: MediaReturnFormat) -> Result<MediaFile, ExecError> {
    match format {
        MediaReturnFormat::ForExternalApi => Ok(MediaFile::from_bytes(&content.bytes, &content.mime, None)),
        MediaReturnFormat::ForLocalProcessing => {
            let name = unique_name(&content);
            ctx.env().write_temp(&ctx.temp_dir(), &name, &content.bytes).await?;
            Ok(MediaFile::new(name))
        }
        MediaReturnFormat::ForBlockOutput => match ctx.workspace() {
            None => Ok(MediaFile::from_bytes(&content.bytes, &content.mime, content.name.as_deref())),
            Some(manager) => {
                let info = store_in_workspace(manager, ctx, content).await?;
                Ok(MediaFile::new(info.uri().to_string()))
            }
        },
    }
}

/// Stores a block output: in the session's folder (`/sessions/{s}/{name}`) or, without a
/// session, under `/executions/{graph_exec_id}/`. A name already taken gets a short random
/// prefix instead of replacing the existing file.
async fn store_in_workspace(
    manager: &WorkspaceManager,
    ctx: &ExecutionContext,
    content: Content,
) -> Result<workspace_core::FileInfo, ExecError> {
    let name = file_name(&content);
    for candidate in candidates(&name) {
        let new = output_file(manager, ctx, &candidate, &content.mime)?;
        match manager.write_bytes(new, content.bytes.clone()).await {
            Err(WorkspaceError::Conflict(_)) => continue,
            other => return Ok(other?),
        }
    }
    Err(ExecError::Workspace(WorkspaceError::Conflict(name)))
}

/// Streams a remote URL into the workspace, named and placed as [`store_in_workspace`] does:
/// the body goes from the socket through the workspace's staging (a blob, or the row when it is
/// small) without ever being whole in memory. The fetcher's cap (`max_media_bytes`) stops it
/// mid-stream with [`FetchError::TooLarge`]; staging then removes whatever it had stored. The
/// type is the declared (or by-name) one, or, when that says nothing, sniffed from the first
/// bytes.
async fn store_remote(
    manager: &WorkspaceManager,
    ctx: &ExecutionContext,
    file: &MediaFile,
) -> Result<workspace_core::FileInfo, ExecError> {
    let response = ctx.fetcher().get_stream(file.as_str()).await?;
    let name = url_file_name(&response.url);
    let declared = response.content_type.as_deref().map(workspace_core::mime::essence);
    let by_header = workspace_core::mime::choose(declared.as_deref(), name.as_deref().unwrap_or_default());

    // The workspace sees the body as an upload body (`io::Error`s); the fetch error that ended it
    // is kept here so the caller gets it back as such (too large, timed out…).
    let failure: Arc<Mutex<Option<FetchError>>> = Arc::default();
    let slot = Arc::clone(&failure);
    let mut body = response.body.map(move |piece| {
        piece.map_err(|err| {
            let message = err.to_string();
            if let Ok(mut slot) = slot.lock() {
                *slot = Some(err);
            }
            io::Error::other(message)
        })
    });
    let fetch_failure = |err: io::Error| -> ExecError { taken(&failure).map_or(ExecError::Io(err), ExecError::Fetch) };

    // The first bytes, for sniffing; they go back in front of the rest.
    let mut head = Vec::new();
    let mut head_len = 0;
    while head_len < workspace_core::mime::SNIFF_LEN {
        match body.next().await {
            Some(Ok(piece)) => {
                head_len += piece.len();
                head.push(piece);
            }
            Some(Err(err)) => return Err(fetch_failure(err)),
            None => break,
        }
    }
    let first: Vec<u8> = head.iter().flat_map(|b| b.iter().copied()).take(workspace_core::mime::SNIFF_LEN).collect();
    let mime = match workspace_core::mime::sniff(&first) {
        Some(sniffed) if by_header.essence_str() == workspace_core::mime::OCTET_STREAM => sniffed.to_owned(),
        _ => by_header.essence_str().to_owned(),
    };
    let body = futures::stream::iter(head.into_iter().map(Ok)).chain(body);

    let name = file_name(&Content { bytes: Bytes::new(), mime: mime.clone(), name });
    for candidate in candidates(&name) {
        let new = output_file(manager, ctx, &candidate, &mime)?;
        let cap = match manager.preflight(&new).await {
            Err(WorkspaceError::Conflict(_)) => continue,
            other => other?,
        };
        let stored = async {
            let staged = manager.stage(body, cap).await?;
            manager.commit(new, staged).await
        }
        .await;
        // Staging reports a failed body as invalid input; the fetch error says why.
        return stored.map_err(|err| match taken(&failure) {
            Some(fetch) => ExecError::Fetch(fetch),
            None => ExecError::Workspace(err),
        });
    }
    Err(ExecError::Workspace(WorkspaceError::Conflict(name)))
}

fn taken(slot: &Mutex<Option<FetchError>>) -> Option<FetchError> {
    slot.lock().ok().and_then(|mut slot| slot.take())
}

/// The names to try for an output, in order: its own, then with a short random prefix.
fn candidates(name: &str) -> [String; 2] {
    [name.to_owned(), format!("{}_{name}", short_id())]
}

/// The new file for an output named `name`: in the session's folder, or under
/// `/executions/{graph_exec_id}/` without a session, with the execution as its provenance.
fn output_file(
    manager: &WorkspaceManager,
    ctx: &ExecutionContext,
    name: &str,
    mime: &str,
) -> Result<NewFile, ExecError> {
    let folder = match manager.session_id() {
        Some(_) => String::new(),
        None => format!("/executions/{}/", ctx.graph_exec_id()),
    };
    let mut metadata = serde_json::Map::new();
    metadata.insert("graph_id".into(), ctx.graph_id().into());
    metadata.insert("node_id".into(), ctx.node_id().into());
    metadata.insert("node_exec_id".into(), ctx.node_exec_id().into());
    let path = manager.resolve_path(&format!("{folder}{name}"))?;
    let mut new = NewFile::new(path)
        .with_mime_type(mime.to_owned())
        .with_source(FileSource::Execution)
        .with_exec_id(ctx.graph_exec_id().as_str());
    new.metadata = metadata;
    Ok(new)
}

fn require_workspace<'a>(ctx: &'a ExecutionContext, file: &MediaFile) -> Result<&'a WorkspaceManager, ExecError> {
    ctx.workspace().ok_or_else(|| ExecError::NoWorkspace(file.as_str().chars().take(120).collect()))
}

async fn lookup(manager: &WorkspaceManager, uri: &WorkspaceUri) -> Result<workspace_core::FileInfo, ExecError> {
    Ok(manager.lookup(uri.clone()).await?)
}

/// A safe file name for the content: its own name sanitised, with an extension from the MIME
/// type when it has none; `file.{ext}` when it has no name.
fn file_name(content: &Content) -> String {
    let sanitized = content
        .name
        .as_deref()
        .map(|n| sanitize_filename::sanitize(n.rsplit('/').next().unwrap_or(n)))
        .filter(|n| !n.is_empty() && n != "." && n != ".." && WorkspacePath::parse(&format!("/{n}")).is_ok())
        .unwrap_or_else(|| "file".to_owned());
    if sanitized.contains('.') {
        return sanitized;
    }
    match extension_for(&content.mime) {
        Some(ext) => format!("{sanitized}.{ext}"),
        None => sanitized,
    }
}

/// The usual extension of a common MIME type.
fn extension_for(mime: &str) -> Option<&'static str> {
    let common = match mime {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/svg+xml" => "svg",
        "application/pdf" => "pdf",
        "application/json" => "json",
        "text/plain" => "txt",
        "text/csv" => "csv",
        "text/html" => "html",
        "audio/mpeg" => "mp3",
        "audio/wav" => "wav",
        "video/mp4" => "mp4",
        _ => return None,
    };
    Some(common)
}

/// A temp-dir name that cannot collide with an earlier one.
fn unique_name(content: &Content) -> String {
    format!("{}_{}", short_id(), file_name(content))
}

fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// The last path segment of a URL, percent-decoded, if there is one.
fn url_file_name(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    let last = url.path_segments()?.next_back()?.to_owned();
    if last.is_empty() {
        return None;
    }
    let decoded: Vec<u8> = percent_decode_lossy(last.as_bytes());
    String::from_utf8(decoded).ok()
}

fn percent_decode_lossy(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let byte = input
            .get(i + 1..i + 3)
            .filter(|_| input[i] == b'%')
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match byte {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(input[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> Result<MediaKind, String> {
        MediaFile::new(s).kind().map_err(|e| e.to_string())
    }

    #[test]
    fn classifies_the_four_kinds_and_refuses_others() {
        assert_eq!(kind("data:,x"), Ok(MediaKind::DataUri));
        assert_eq!(kind("DATA:,x"), Ok(MediaKind::DataUri));
        assert_eq!(kind("https://example.com/a.png"), Ok(MediaKind::Url));
        assert_eq!(kind("HTTP://example.com/a.png"), Ok(MediaKind::Url));
        assert_eq!(kind("workspace://4f1b2c3d-0000-4000-8000-00000000abcd#image/png"), Ok(MediaKind::Workspace));
        assert_eq!(kind("workspace:///sessions/s1/cat.png"), Ok(MediaKind::Workspace));
        assert_eq!(kind("images/cat.png"), Ok(MediaKind::LocalPath));
        assert!(kind("").unwrap_err().contains("empty"));
        assert!(kind("file:///etc/passwd").unwrap_err().contains("unsupported media scheme `file:`"));
        assert!(kind("ftp://x/y").unwrap_err().contains("`ftp:`"));
        assert!(kind("workspace://nope").unwrap_err().contains("not a file id"));
    }

    #[test]
    fn names_get_extensions_and_lose_dangerous_parts() {
        let content = |name: Option<&str>, mime: &str| Content {
            bytes: Bytes::new(),
            mime: mime.into(),
            name: name.map(str::to_owned),
        };
        assert_eq!(file_name(&content(Some("cat.png"), "image/png")), "cat.png");
        assert_eq!(file_name(&content(Some("cat"), "image/png")), "cat.png");
        assert_eq!(file_name(&content(None, "image/jpeg")), "file.jpg");
        assert_eq!(file_name(&content(Some("../../etc/passwd"), "text/plain")), "passwd.txt");
        assert_eq!(file_name(&content(Some(".."), "application/x-unknown-thing")), "file");
        assert_eq!(url_file_name("http://h/a/b%20c.png?x=1").as_deref(), Some("b c.png"));
        assert_eq!(url_file_name("http://h/"), None);
    }
}
