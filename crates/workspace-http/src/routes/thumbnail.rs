//! Thumbnails of image files (SPEC §17): `GET /api/workspace/files/{id}/thumbnail?size=N`, with a
//! token or with the query of a signed download link of the same file, so an `<img src>` loads
//! it. The image work (sniffing, the pixel cap, decoding, the cache) is the core's
//! ([`workspace_core::previews`]); this route checks the caller, answers conditional requests
//! and serves the PNG.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use workspace_core::ThumbnailSize;
use workspace_core::previews::THUMBNAIL_MIME;

use crate::error::{ApiError, ErrorBody};
use crate::routes::ApiQuery;
use crate::routes::access::{LinkParams, etag_matches, resolve_caller};
use crate::routes::download::{FileBytes, insert};
use crate::routes::parse_file_id;
use crate::state::AppState;

/// Thumbnail options and, for signed links, the signature of a download link of this file.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ThumbnailQuery {
    /// Edge in pixels of the square the thumbnail fits in, 1 to 1024 (default 256). The aspect
    /// ratio is kept and an image is never scaled up.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1024)]
    pub size: Option<String>,
    /// Signed link: the workspace id, as in the file's download link (`create_link`). A
    /// download link's query opens the thumbnail of the same file: replace `/download` with
    /// `/thumbnail` and add `&size=N`.
    pub w: Option<String>,
    /// Signed link: expiry, seconds since the epoch.
    pub exp: Option<i64>,
    /// Signed link: the signature.
    pub sig: Option<String>,
}

/// A thumbnail of an image file, as PNG (made once per content and size, then cached).
#[utoipa::path(get, path = "/api/workspace/files/{id}/thumbnail", tag = "files", operation_id = "file_thumbnail",
    params(("id" = uuid::Uuid, Path, description = "File id (of the current file or of a version)"), ThumbnailQuery,
        ("If-None-Match" = Option<String>, Header, nullable = false,
            description = "ETag from an earlier response: 304 if unchanged")),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "The thumbnail, a PNG that fits in `size`×`size` pixels, made from a PNG, JPEG, \
            GIF (first frame) or WebP file (the type is read from the bytes); sent as `image/png`, \
            which `application/octet-stream` stands for here as for downloads",
            content((inline(FileBytes) = "application/octet-stream"), (inline(FileBytes) = "*/*")),
            headers(("ETag" = String, description = "The quoted sha-256 of the file's content, `-`, and the size"),
                ("Content-Disposition" = String, description = "`inline`"),
                ("Cache-Control" = String, description = "`private, no-store`; signed links allow private caching"))),
        (status = 304, description = "Not modified: `If-None-Match` matches the ETag"),
        (status = 400, description = "`size` is not a whole number from 1 to 1024, or a malformed query",
            body = ErrorBody),
        (status = 401, description = "No valid token and no signed link", body = ErrorBody),
        (status = 403, description = "The signed link is invalid, expired or for another file", body = ErrorBody),
        (status = 404, description = "No such file", body = ErrorBody),
        (status = 415, description = "The file is not a PNG, JPEG, GIF or WebP image", body = ErrorBody),
        (status = 422, description = "The image is over the pixel cap or the memory bound (`image_too_large`, \
            the message names the cap), or truncated or corrupt (`invalid_image`)", body = ErrorBody)))]
pub async fn file_thumbnail(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ThumbnailQuery>,
    request_headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_file_id(&id)?;
    let size = match query.size.as_deref() {
        None => ThumbnailSize::default(),
        Some(text) => ThumbnailSize::parse(text)?,
    };
    let link = LinkParams { w: query.w.as_deref(), exp: query.exp, sig: query.sig.as_deref() };
    let (manager, caller) = resolve_caller(&state, &request_headers, link, id).await?;
    let info = manager.lookup(id).await?;
    let etag = format!("\"{}-{size}\"", info.checksum);
    let mut headers = HeaderMap::new();
    insert(&mut headers, header::ETAG, &etag);
    insert(&mut headers, header::CACHE_CONTROL, &caller.cache_control());
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Some(inm) = request_headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok())
        && etag_matches(inm, &etag)
    {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    let thumbnail = manager.thumbnail(info.id, size).await?;
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(THUMBNAIL_MIME));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("inline"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    insert(&mut headers, header::CONTENT_LENGTH, &thumbnail.bytes.len().to_string());
    Ok((StatusCode::OK, headers, thumbnail.bytes).into_response())
}
