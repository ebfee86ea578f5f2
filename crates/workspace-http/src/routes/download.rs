//! Streaming downloads with ranges, conditional requests and the stored-XSS defences: files are
//! served with `nosniff`, active types (HTML, SVG, XML, scripts…) only as attachments under a
//! sandboxing CSP, and nothing is cached unless a signed link allows private caching.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use workspace_core::FileInfo;

use crate::disposition::{Disposition, content_disposition};
use crate::error::{ApiError, ErrorBody};
use crate::range::parse_range;
use crate::routes::ApiQuery;
use crate::routes::access::{Caller, LinkParams, etag_matches, resolve_caller};
use crate::routes::parse_file_id;
use crate::state::AppState;

/// Download options and, for signed links, the signature.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DownloadQuery {
    /// `inline` or `attachment` (default). Active content types are always attachments.
    #[param(value_type = Option<DispositionName>)]
    pub disposition: Option<String>,
    /// Signed link: the workspace id (a uuid), as `create_link`'s URL gives it. With `exp` and
    /// `sig` the request needs no token; without `sig` it is not read.
    pub w: Option<String>,
    /// Signed link: expiry, seconds since the epoch.
    pub exp: Option<i64>,
    /// Signed link: the signature.
    pub sig: Option<String>,
}

/// How a browser is told to present a download (`Content-Disposition`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DispositionName {
    /// Shown in the browser when the type is safe to show (images, plain text, PDF, media).
    Inline,
    /// Saved as a file (the default; always for active types such as HTML or SVG).
    Attachment,
}

/// A file's bytes: served with the file's own media type, typed as binary.
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct FileBytes(pub Vec<u8>);

/// Types a browser may show inline without running anything.
fn inline_safe(mime: &mime::Mime) -> bool {
    let essence = mime.essence_str();
    matches!(
        essence,
        "image/png"
            | "image/jpeg"
            | "image/gif"
            | "image/webp"
            | "image/avif"
            | "image/bmp"
            | "text/plain"
            | "text/csv"
            | "text/markdown"
            | "application/json"
            | "application/pdf"
    ) || essence.starts_with("video/")
        || essence.starts_with("audio/")
}

pub(crate) fn insert(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

fn common_headers(info: &FileInfo, etag: &str, caller: &Caller) -> HeaderMap {
    let mut headers = HeaderMap::new();
    insert(&mut headers, header::ETAG, etag);
    insert(&mut headers, header::LAST_MODIFIED, &httpdate::fmt_http_date(info.created_at.into()));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    insert(&mut headers, header::CACHE_CONTROL, &caller.cache_control());
    headers
}

/// Downloads a file (streamed; single byte ranges; conditional requests).
#[utoipa::path(get, path = "/api/workspace/files/{id}/download", tag = "files", operation_id = "download_file",
    params(("id" = uuid::Uuid, Path, description = "File id (of the current file or of a version)"), DownloadQuery,
        ("Range" = Option<String>, Header, nullable = false, description = "A single byte range, e.g. `bytes=0-99`"),
        ("If-None-Match" = Option<String>, Header, nullable = false,
            description = "ETag from an earlier response: 304 if unchanged"),
        ("If-Range" = Option<String>, Header, nullable = false,
            description = "Honour `Range` only while the ETag is this one")),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "The file's bytes, sent with the file's own media type (its `mime_type`, e.g. \
            `image/png`); `application/octet-stream` stands for any of them",
            content((inline(FileBytes) = "application/octet-stream"), (inline(FileBytes) = "*/*")),
            headers(("ETag" = String, description = "The quoted sha-256 of the content"),
                ("Content-Disposition" = String, description = "`inline` or `attachment`, with the file name (RFC 6266)"),
                ("Last-Modified" = String, description = "When this version was written"),
                ("Cache-Control" = String, description = "`private, no-store`; signed links allow private caching"))),
        (status = 206, description = "The requested byte range of the file (`Content-Range` says which)",
            content((inline(FileBytes) = "application/octet-stream"), (inline(FileBytes) = "*/*")),
            headers(("Content-Range" = String, description = "`bytes start-end/size`"),
                ("ETag" = String, description = "The quoted sha-256 of the content"))),
        (status = 302, description = "Redirect to a signed storage URL (when the server is configured to redirect)",
            headers(("Location" = String, description = "The storage URL"))),
        (status = 304, description = "Not modified: `If-None-Match` matches the ETag"),
        (status = 400, description = "A malformed `disposition` or query", body = ErrorBody),
        (status = 401, description = "No valid token and no signed link", body = ErrorBody),
        (status = 403, description = "The signed link is invalid or expired", body = ErrorBody),
        (status = 404, description = "No such file", body = ErrorBody),
        (status = 416, description = "The range starts past the end of the file", body = ErrorBody,
            headers(("Content-Range" = String, description = "`bytes */size`")))))]
pub async fn download_file(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<DownloadQuery>,
    request_headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_file_id(&id)?;
    let requested = match query.disposition.as_deref() {
        None | Some("attachment") => Disposition::Attachment,
        Some("inline") => Disposition::Inline,
        Some(_) => {
            return Err(ApiError::BadRequest("invalid_input", "`disposition` must be inline or attachment".into()));
        }
    };
    let link = LinkParams { w: query.w.as_deref(), exp: query.exp, sig: query.sig.as_deref() };
    let (manager, caller) = resolve_caller(&state, &request_headers, link, id).await?;
    let opened = manager.open(id).await?;
    let info = &opened.info;
    let etag = format!("\"{}\"", info.checksum);
    let mut headers = common_headers(info, &etag, &caller);

    let header_str = |name: header::HeaderName| request_headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(inm) = header_str(header::IF_NONE_MATCH)
        && etag_matches(inm, &etag)
    {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }

    if state.config().redirect_downloads
        && let Some(url) = manager.download_url(info, std::time::Duration::from_secs(300)).await?
    {
        insert(&mut headers, header::LOCATION, &url);
        return Ok((StatusCode::FOUND, headers).into_response());
    }

    // If-Range with a different validator means "send everything".
    let range_allowed = header_str(header::IF_RANGE).is_none_or(|v| v.trim() == etag);
    let range = header_str(header::RANGE).filter(|_| range_allowed).and_then(parse_range);

    let get = opened.read(range).await?;
    let safe = inline_safe(&info.mime_type);
    let disposition = if safe { requested } else { Disposition::Attachment };
    headers.insert(header::CONTENT_DISPOSITION, content_disposition(disposition, &info.name));
    if info.mime_type.essence_str() != "application/pdf" {
        // Chrome's PDF viewer refuses sandboxed documents; PDFs run no script of ours either way.
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    }
    insert(&mut headers, header::CONTENT_TYPE, info.mime_type.as_ref());
    let length = get.range.end - get.range.start;
    insert(&mut headers, header::CONTENT_LENGTH, &length.to_string());
    let status = if range.is_some() {
        insert(
            &mut headers,
            header::CONTENT_RANGE,
            &format!("bytes {}-{}/{}", get.range.start, get.range.end - 1, get.size),
        );
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    Ok((status, headers, Body::from_stream(get.stream)).into_response())
}
