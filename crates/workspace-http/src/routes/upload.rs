//! Multipart upload, streamed from the socket into the manager: the file part is never held
//! whole in memory. The fields (`path`, `session_id`, `overwrite`; also query parameters) may
//! come before or after `file`:
//! - fields first: the target is known when the file part starts, so a conflict or a failed
//!   precondition is refused before the body is read, and the body is capped at the room left
//!   under the quota (`WorkspaceManager::preflight`, then `write`'s two steps);
//! - file first (as generated clients send their forms): the body is staged under a fresh content
//!   id, capped at the max file size (and the quota), and the fields that follow decide the path;
//!   conflict, preconditions and quota are decided at commit.
//!
//! A request whose whole body is within the inline threshold (by its `Content-Length`) takes
//! neither the upload line nor the early checks: its file is staged in memory as in the second
//! case, and the commit decides.
//!
//! Fields after `file` are read and applied in both cases, so in a form that gives fields on both
//! sides the early checks use the fields before `file` and the commit uses them all. Unknown
//! fields and a second `file` part are refused; a refused or abandoned upload leaves no blob.

use std::io;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use multer::{Field, Multipart};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use workspace_core::{BodyStream, FileSource, NewFile, Precondition, Staged, UserId, WorkspaceManager};

use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorBody};
use crate::routes::files::{FileInfoResponse, session_of};
use crate::routes::{ApiQuery, upload_precondition};
use crate::state::AppState;

/// Longest text field accepted, in bytes.
const MAX_TEXT_FIELD: usize = 4096;
/// Most parts accepted in one form, the file included.
const MAX_PARTS: usize = 8;

/// Upload options that may be given as query parameters instead of form fields.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// Target path; relative paths resolve inside the session. Default: the file name.
    pub path: Option<String>,
    /// Session the file belongs to.
    pub session_id: Option<String>,
    /// Replace a live file at the same path (it becomes a version) instead of answering 409.
    #[param(value_type = Option<bool>)]
    pub overwrite: Option<String>,
}

/// The multipart form (documentation only; the handler streams it). The parts may come in any
/// order; a form field overrides the query parameter of the same name.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The file. Its part's `filename` names the file when no `path` is given, and its
    /// `Content-Type` is recorded (checked against the bytes).
    #[schema(value_type = String, format = Binary, content_media_type = "application/octet-stream")]
    file: Vec<u8>,
    /// Target path; relative paths resolve inside the session. Default: the file name.
    #[schema(nullable = false)]
    path: Option<String>,
    /// Session the file belongs to.
    #[schema(nullable = false)]
    session_id: Option<String>,
    /// Replace a live file at the same path (it becomes a version) instead of answering 409.
    #[schema(nullable = false)]
    overwrite: Option<bool>,
}

/// The upload's options, from the query and then the form's fields in the order they come.
#[derive(Debug, Default)]
struct Options {
    path: Option<String>,
    session: Option<String>,
    overwrite: Option<String>,
}

impl Options {
    /// Reads one text field into the options; unknown names are refused.
    async fn read(&mut self, field: Field<'static>) -> Result<(), ApiError> {
        let slot = match field.name().unwrap_or("") {
            "path" => &mut self.path,
            "session_id" => &mut self.session,
            "overwrite" => &mut self.overwrite,
            other => {
                let other = other.chars().take(64).collect::<String>();
                return Err(bad(format!("unknown field `{other}`: expected file, path, session_id or overwrite")));
            }
        };
        let name = field.name().unwrap_or("").to_owned();
        *slot = Some(read_text(field, &name).await?);
        Ok(())
    }
}

/// The file part's own headers, kept while its body is staged.
#[derive(Debug)]
struct FilePart {
    filename: Option<String>,
    content_type: Option<String>,
}

impl FilePart {
    fn of(field: &Field<'static>) -> Self {
        Self {
            filename: field.file_name().map(ToOwned::to_owned),
            content_type: field.content_type().map(ToString::to_string),
        }
    }
}

/// The manager (in the options' session) and the file the options describe.
async fn target(
    state: &AppState,
    user: &UserId,
    options: &Options,
    file: &FilePart,
    precondition: &Precondition,
) -> Result<(WorkspaceManager, NewFile), ApiError> {
    let session = session_of(options.session.as_deref())?;
    let overwrite = options.overwrite.as_deref().map(|v| parse_bool("overwrite", v)).transpose()?.unwrap_or(false);
    let manager = state.manager(user, session).await?;
    let path = match options.path.as_deref().filter(|p| !p.is_empty()) {
        Some(path) => manager.resolve_path(path)?,
        None => {
            let raw =
                file.filename.as_deref().ok_or_else(|| bad("the `file` part needs a filename (or give `path`)"))?;
            manager.resolve_path(upload_file_name(raw)?)?
        }
    };
    let mut new = NewFile::new(path)
        .with_overwrite(overwrite)
        .with_precondition(precondition.clone())
        .with_source(FileSource::Upload);
    if let Some(mime) = &file.content_type {
        new = new.with_mime_type(mime.clone());
    }
    Ok((manager, new))
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest("invalid_multipart", message.into())
}

fn parse_bool(name: &str, value: &str) -> Result<bool, ApiError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "false" | "0" | "no" | "off" => Ok(false),
        "true" | "1" | "yes" | "on" => Ok(true),
        _ => Err(ApiError::BadRequest("invalid_input", format!("`{name}` must be true or false"))),
    }
}

async fn read_text(mut field: Field<'static>, name: &str) -> Result<String, ApiError> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| bad(format!("malformed multipart body: {e}")))? {
        if buf.len() + chunk.len() > MAX_TEXT_FIELD {
            return Err(bad(format!("field `{name}` is longer than {MAX_TEXT_FIELD} bytes")));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|_| bad(format!("field `{name}` is not UTF-8")))
}

/// The file part as a body stream. The part is dropped as soon as it ends, so the form's next
/// part can be read.
fn file_stream(field: Field<'static>) -> BodyStream {
    futures::stream::unfold(Some(field), |field| async move {
        let mut field = field?;
        match field.chunk().await {
            Ok(Some(bytes)) => Some((Ok::<Bytes, io::Error>(bytes), Some(field))),
            Ok(None) => None,
            Err(e) => {
                Some((Err(io::Error::new(io::ErrorKind::InvalidData, format!("malformed multipart body: {e}"))), None))
            }
        }
    })
    .boxed()
}

/// Gives up a staged file (its blob is removed before the answer goes out) and passes `err` on.
async fn discard(staged: Option<(Staged, FilePart)>, err: ApiError) -> ApiError {
    if let Some((staged, _)) = staged {
        staged.discard().await;
    }
    err
}

/// The name a multipart `filename` stands for: its last segment after `/` or `\\` (SPEC §7), as
/// browsers send it and the reference platform keeps it, so `../../etc/passwd.txt` is
/// `passwd.txt` and `C:\\x\\y.txt` is `y.txt`. Nothing else is rewritten: the name then meets the
/// `WorkspacePath` rules like any other, and one that breaks them (`..`, control characters, more
/// than 255 bytes) is refused with the rule it broke. A filename with nothing after its last
/// separator (`""`, `dir/`) names no file and is refused too.
fn upload_file_name(raw: &str) -> Result<&str, ApiError> {
    let name = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    if name.is_empty() {
        let shown: String = raw.chars().take(64).collect();
        return Err(bad(format!(
            "the `file` part's filename {shown:?} has no name after its last `/` or `\\`: send a file name, or give `path`"
        )));
    }
    Ok(name)
}

/// Whether the request's whole body, by its `Content-Length`, is at most `inline_max` bytes (and
/// inline content is on): its file part then ends within the threshold and lives in its row.
fn small_body(headers: &HeaderMap, inline_max: u64) -> bool {
    let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    inline_max > 0 && length.is_some_and(|length| length <= inline_max)
}

/// Uploads a file (multipart/form-data, streamed).
#[utoipa::path(post, path = "/api/workspace/files", tag = "files", operation_id = "upload_file",
    params(UploadQuery,
        ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^(\*|"[0-9a-fA-F]{64}")$"#, description = "Replace the file at the path only if it has this ETag (quoted sha-256; `*`: any file); implies overwrite"),
        ("If-None-Match" = Option<String>, Header, nullable = false, pattern = r#"^\*$"#, description = "`*`: create only if the path is free")),
    security(("bearer" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data",
        description = "The file and its options, in any order (streamed: never held whole in memory)"),
    responses(
        (status = 201, description = "Stored", body = FileInfoResponse,
            headers(("Location" = String, description = "The new file's info route"))),
        (status = 400, description = "A malformed form, path, session or option; the message names the rule", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 409, description = "A file is at the path and `overwrite` is not set", body = ErrorBody),
        (status = 412, description = "A precondition does not hold", body = ErrorBody),
        (status = 413, description = "Over the file size limit (`too_large`) or the quota (`quota_exceeded`)", body = ErrorBody),
        (status = 415, description = "Not a multipart/form-data body", body = ErrorBody),
        (status = 429, description = "Too many uploads in flight for this user; see `Retry-After`", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait")))))]
pub async fn upload_file(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiQuery(query): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // A body whose whole request fits under the inline threshold is held in memory for its row
    // whatever happens (at most that many bytes; hyper stops a body at its Content-Length), never
    // becomes a blob, and cannot outlast its headers by much: it skips the upload line and the
    // pre-body checks (the commit makes the same checks), so small writes of one user run side by
    // side and share their group commit (SPEC §12).
    let small = small_body(&headers, state.workspaces().settings().inline_max_bytes);
    // Held until the upload ends, fails or the client goes away (the handler future is dropped).
    // Waits in line for a free slot first; a refusal is read by the client (see `serve`).
    let _slot = if small { None } else { Some(state.upload_slot(&user).await?) };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| ApiError::UnsupportedMediaType("expected a multipart/form-data body with a boundary".into()))?;
    let precondition = upload_precondition(&headers)?;
    let mut multipart = Multipart::new(body.into_data_stream(), boundary);

    let mut options = Options { path: query.path, session: query.session_id, overwrite: query.overwrite };
    let mut fields_first = false;
    let mut parts = 0;
    let mut staged: Option<(Staged, FilePart)> = None;
    loop {
        let next = multipart.next_field().await.map_err(|e| bad(format!("malformed multipart body: {e}")));
        let field = match next {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(err) => return Err(discard(staged, err).await),
        };
        parts += 1;
        if parts > MAX_PARTS {
            return Err(discard(staged, bad(format!("too many parts: a form has at most {MAX_PARTS}"))).await);
        }
        if field.name() != Some("file") {
            if let Err(err) = options.read(field).await {
                return Err(discard(staged, err).await);
            }
            fields_first |= staged.is_none();
            continue;
        }
        if staged.is_some() {
            return Err(discard(staged, bad("a second `file` part: an upload carries one file")).await);
        }
        let file = FilePart::of(&field);
        let body = file_stream(field);
        let held = if fields_first && !small {
            // The target is known: refuse a conflict now and cap the body at the quota's room.
            let (manager, new) = target(&state, &user, &options, &file, &precondition).await?;
            let cap = manager.preflight(&new).await?;
            manager.stage(body, cap).await?
        } else {
            // Fields follow: stage under a fresh content id; the commit decides the rest.
            let manager = state.manager(&user, None).await?;
            manager.stage(body, manager.stage_cap()).await?
        };
        staged = Some((held, file));
    }
    let (held, file) = staged.ok_or_else(|| bad("missing the `file` part"))?;
    let (manager, new) = match target(&state, &user, &options, &file, &precondition).await {
        Ok(target) => target,
        Err(err) => return Err(discard(Some((held, file)), err).await),
    };
    let info = manager.commit(new, held).await?;
    state.metrics().file_written(info.size_bytes);
    let location = HeaderValue::from_str(&format!("/api/workspace/files/{}", info.id)).ok();
    let mut response = (StatusCode::CREATED, Json(FileInfoResponse::from(info))).into_response();
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}
