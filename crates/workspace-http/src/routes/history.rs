//! History (SPEC §13): a file's versions, restore, and the trash.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use workspace_core::{RestoreOptions, VersionInfo};

use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorBody};
use crate::routes::files::{FileInfoResponse, FileSourceName};
use crate::routes::{ApiQuery, if_match, parse_file_id};
use crate::state::AppState;

/// One version of a file.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VersionResponse {
    /// The version's own id: it names these bytes while the version is kept.
    pub id: uuid::Uuid,
    /// 1 for the first version.
    pub version: u32,
    /// Size in bytes.
    pub size_bytes: u64,
    /// SHA-256 of its content (hex).
    pub checksum: String,
    /// Its MIME type.
    pub mime_type: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// Who or what wrote it.
    pub source: FileSourceName,
    /// Whether it is the current version.
    pub is_current: bool,
}

impl From<VersionInfo> for VersionResponse {
    fn from(v: VersionInfo) -> Self {
        Self {
            id: v.id.as_uuid(),
            version: v.version,
            size_bytes: v.size_bytes,
            checksum: v.checksum.to_string(),
            mime_type: v.mime_type.to_string(),
            created_at: v.created_at,
            source: v.source.into(),
            is_current: v.is_current,
        }
    }
}

/// The versions of a file, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VersionsResponse {
    /// Newest first; the current one has `is_current: true`.
    pub versions: Vec<VersionResponse>,
}

/// Lists the versions of the file an id belongs to (any of its versions' ids works).
#[utoipa::path(get, path = "/api/workspace/files/{id}/versions", tag = "history", operation_id = "list_versions",
    params(("id" = uuid::Uuid, Path, description = "File id (any version)")), security(("bearer" = [])),
    responses((status = 200, description = "The versions, newest first", body = VersionsResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such file (or in the trash, or another user's)", body = ErrorBody)))]
pub async fn list_versions(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<VersionsResponse>, ApiError> {
    let id = parse_file_id(&id)?;
    let versions = state.manager(&user, None).await?.versions(id).await?;
    Ok(Json(VersionsResponse { versions: versions.into_iter().map(Into::into).collect() }))
}

/// Where to restore a trashed file.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// For a trashed file: restore it here instead of its own path (when that is taken).
    pub path: Option<String>,
}

/// Restores a file: a trashed file comes back to its path (or `path`) with the same id; an
/// older version becomes current again as a new version. `If-Match` applies to the file named
/// by the id.
#[utoipa::path(post, path = "/api/workspace/files/{id}/restore", tag = "history", operation_id = "restore_file",
    params(("id" = uuid::Uuid, Path, description = "A trashed file's id, or an older version's id"),
        ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^(\*|"[0-9a-fA-F]{64}")$"#,
            description = "The ETag (quoted sha-256) the file must have, or `*`")),
    request_body(content = Option<RestoreRequest>, content_type = "application/json", description = "Optional"),
    security(("bearer" = [])),
    responses((status = 200, description = "The restored (now current) file", body = FileInfoResponse),
        (status = 400, description = "Malformed body, path or If-Match", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such file", body = ErrorBody),
        (status = 409, description = "The path is taken; give another `path`", body = ErrorBody),
        (status = 412, description = "If-Match does not hold", body = ErrorBody),
        (status = 413, description = "Quota exceeded", body = ErrorBody)))]
pub async fn restore_file(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<FileInfoResponse>, ApiError> {
    let id = parse_file_id(&id)?;
    let request: RestoreRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RestoreRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest("invalid_json", format!("the body is not a restore request: {e}")))?
    };
    let manager = state.manager(&user, None).await?;
    let path = request.path.as_deref().map(|p| manager.resolve_path(p)).transpose()?;
    let options = RestoreOptions { path, precondition: if_match(&headers)? };
    Ok(Json(manager.restore(id, options).await?.into()))
}

/// Trash paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrashQuery {
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A trashed file.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TrashEntryResponse {
    /// The file as it was when deleted.
    #[serde(flatten)]
    pub file: FileInfoResponse,
    /// When gc purges it for good.
    pub purge_at: DateTime<Utc>,
}

/// A page of the trash.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TrashResponse {
    /// Most recently deleted first; one entry per file (its versions travel with it).
    pub files: Vec<TrashEntryResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Lists the trash.
#[utoipa::path(get, path = "/api/workspace/trash", tag = "history", operation_id = "list_trash", params(TrashQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of the trash", body = TrashResponse),
        (status = 400, description = "Bad limit or cursor", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody)))]
pub async fn list_trash(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiQuery(query): ApiQuery<TrashQuery>,
) -> Result<Json<TrashResponse>, ApiError> {
    let manager = state.manager(&user, None).await?;
    let page = manager.trash(query.limit.unwrap_or(100), query.cursor.as_deref()).await?;
    Ok(Json(TrashResponse {
        files: page
            .files
            .into_iter()
            .map(|entry| TrashEntryResponse { purge_at: entry.purge_at, file: entry.file.into() })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Purges one trashed file (and its versions) for good.
#[utoipa::path(delete, path = "/api/workspace/trash/{id}", tag = "history", operation_id = "purge_file",
    params(("id" = uuid::Uuid, Path, description = "The trashed file's id")), security(("bearer" = [])),
    responses((status = 204, description = "Purged"),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "Not in the trash (only the trash can be purged)", body = ErrorBody)))]
pub async fn purge_file(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_file_id(&id)?;
    state.manager(&user, None).await?.purge(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How many files emptying the trash purged.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EmptyTrashResponse {
    /// Trashed files purged (with their versions).
    pub purged: u64,
}

/// Empties the trash.
#[utoipa::path(delete, path = "/api/workspace/trash", tag = "history", operation_id = "empty_trash",
    security(("bearer" = [])),
    responses((status = 200, description = "The trash is empty", body = EmptyTrashResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorBody)))]
pub async fn empty_trash(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<EmptyTrashResponse>, ApiError> {
    let purged = state.manager(&user, None).await?.empty_trash().await?;
    Ok(Json(EmptyTrashResponse { purged }))
}
