//! Multipart upload, streamed from the socket into the manager: the file part is never held
//! whole in memory. Text fields (`path`, `session_id`, `overwrite`) must come before `file`
//! (they may also be given as query parameters); a part after `file` fails the upload before
//! anything is committed.

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
use workspace_core::{BodyStream, FileSource, NewFile};

use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorBody};
use crate::routes::files::{FileInfoResponse, session_of};
use crate::routes::{ApiQuery, upload_precondition};
use crate::state::AppState;

/// Longest text field accepted, in bytes.
const MAX_TEXT_FIELD: usize = 4096;
/// Most parts accepted before the file part.
const MAX_PARTS_BEFORE_FILE: usize = 8;

/// Upload options that may be given as query parameters instead of form fields.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// Target path; relative paths resolve inside the session. Default: the file name.
    pub path: Option<String>,
    /// Session the file belongs to.
    pub session_id: Option<String>,
    /// Replace a live file at the same path (`true`/`false`).
    pub overwrite: Option<String>,
}

/// The multipart form (documentation only; the handler streams it).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The file (must be the last part).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// Target path.
    path: Option<String>,
    /// Session id.
    session_id: Option<String>,
    /// `true` to replace an existing file.
    overwrite: Option<bool>,
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

/// The file part as a body stream that, once the part ends, also checks that nothing but the
/// closing boundary follows.
fn file_stream(field: Field<'static>, multipart: Multipart<'static>) -> BodyStream {
    enum Step {
        Reading(Box<(Field<'static>, Multipart<'static>)>),
        Done,
    }
    let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidData, msg);
    futures::stream::unfold(Step::Reading(Box::new((field, multipart))), move |step| async move {
        let Step::Reading(reading) = step else { return None };
        let (mut field, mut multipart) = *reading;
        match field.chunk().await {
            Ok(Some(bytes)) => Some((Ok::<Bytes, io::Error>(bytes), Step::Reading(Box::new((field, multipart))))),
            Ok(None) => {
                drop(field);
                match multipart.next_field().await {
                    Ok(None) => None,
                    Ok(Some(extra)) => {
                        let name = extra.name().unwrap_or("").chars().take(64).collect::<String>();
                        Some((Err(invalid(format!("part `{name}` comes after `file`; send fields first"))), Step::Done))
                    }
                    Err(e) => Some((Err(invalid(format!("malformed multipart body: {e}"))), Step::Done)),
                }
            }
            Err(e) => Some((Err(invalid(format!("malformed multipart body: {e}"))), Step::Done)),
        }
    })
    .boxed()
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

/// Uploads a file (multipart/form-data, streamed).
#[utoipa::path(post, path = "/api/workspace/files",
    params(UploadQuery,
        ("If-Match" = Option<String>, Header, description = "Replace the file at the path only if it has this ETag (quoted sha-256); implies overwrite"),
        ("If-None-Match" = Option<String>, Header, description = "`*`: create only if the path is free")),
    security(("bearer" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = FileInfoResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 412, description = "A precondition does not hold", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "Too many uploads in flight for this user; see `Retry-After`")))]
pub async fn upload_file(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiQuery(query): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // Held until the upload ends, fails or the client goes away (the handler future is dropped).
    // Waits in line for a free slot first; a refusal is read by the client (see `serve`).
    let _slot = state.upload_slot(&user).await?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| ApiError::UnsupportedMediaType("expected a multipart/form-data body with a boundary".into()))?;
    let mut multipart = Multipart::new(body.into_data_stream(), boundary);

    let (mut path, mut session, mut overwrite) = (query.path, query.session_id, query.overwrite);
    let mut parts = 0;
    let file = loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|e| bad(format!("malformed multipart body: {e}")))?
            .ok_or_else(|| bad("missing the `file` part"))?;
        parts += 1;
        if parts > MAX_PARTS_BEFORE_FILE {
            return Err(bad(format!("too many parts: at most {MAX_PARTS_BEFORE_FILE} may come before `file`")));
        }
        match field.name().unwrap_or("") {
            "file" => break field,
            "path" => path = Some(read_text(field, "path").await?),
            "session_id" => session = Some(read_text(field, "session_id").await?),
            "overwrite" => overwrite = Some(read_text(field, "overwrite").await?),
            other => {
                let other = other.chars().take(64).collect::<String>();
                return Err(bad(format!("unknown field `{other}`: expected file, path, session_id or overwrite")));
            }
        }
    };

    let session = session_of(session.as_deref())?;
    let overwrite = overwrite.as_deref().map(|v| parse_bool("overwrite", v)).transpose()?.unwrap_or(false);
    let manager = state.manager(&user, session).await?;
    let target = match path.filter(|p| !p.is_empty()) {
        Some(path) => manager.resolve_path(&path)?,
        None => {
            let raw = file.file_name().ok_or_else(|| bad("the `file` part needs a filename (or give `path`)"))?;
            manager.resolve_path(upload_file_name(raw)?)?
        }
    };
    let declared = file.content_type().map(ToString::to_string);
    let mut new = NewFile::new(target)
        .with_overwrite(overwrite)
        .with_precondition(upload_precondition(&headers)?)
        .with_source(FileSource::Upload);
    if let Some(mime) = declared {
        new = new.with_mime_type(mime);
    }
    let info = manager.write(new, file_stream(file, multipart)).await?;
    state.metrics().file_written(info.size_bytes);
    let location = HeaderValue::from_str(&format!("/api/workspace/files/{}", info.id)).ok();
    let mut response = (StatusCode::CREATED, Json(FileInfoResponse::from(info))).into_response();
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}
