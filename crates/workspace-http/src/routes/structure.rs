//! Structure (SPEC §14): move and copy a file, move and trash a folder. Metadata only: no bytes
//! move in storage.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use workspace_core::PlaceOptions;

use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorBody};
use crate::routes::files::FileInfoResponse;
use crate::routes::{ApiQuery, if_match, parse_file_id};
use crate::state::AppState;

/// Where a move or copy puts the file.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceRequest {
    /// The destination path (absolute, or relative to the workspace root).
    pub path: String,
    /// Replace a file at the destination: a move sends it to the trash (restorable); a copy makes
    /// the copied content its newest version.
    #[serde(default)]
    pub overwrite: bool,
}

fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes, what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest("invalid_json", format!("the body is not {what}: {e}")))
}

/// Moves (renames) a file: same id, same bytes; its versions follow and its old path is free.
#[utoipa::path(post, path = "/api/workspace/files/{id}/move", tag = "structure",
    params(("id" = uuid::Uuid, Path, description = "The file's (current) id"),
        ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^(\*|"[0-9a-fA-F]{64}")$"#,
            description = "The ETag (quoted sha-256) the file must have; `*`: any")),
    request_body(content = PlaceRequest, content_type = "application/json"), security(("bearer" = [])),
    responses((status = 200, description = "The moved file", body = FileInfoResponse),
        (status = 400, description = "Malformed body, path or If-Match", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such file", body = ErrorBody),
        (status = 409, description = "The destination is taken (or the id is an older version)", body = ErrorBody),
        (status = 412, description = "If-Match does not hold", body = ErrorBody)))]
pub async fn move_file(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<FileInfoResponse>, ApiError> {
    let id = parse_file_id(&id)?;
    let request: PlaceRequest = json_body(&body, "a move request `{\"path\": …}`")?;
    let manager = state.manager(&user, None).await?;
    let to = manager.resolve_path(&request.path)?;
    let options = PlaceOptions { overwrite: request.overwrite, precondition: if_match(&headers)? };
    Ok(Json(manager.move_file(id, to, options).await?.into()))
}

/// Copies a file (any version) to a new path: a new id sharing the content, no bytes copied.
#[utoipa::path(post, path = "/api/workspace/files/{id}/copy", tag = "structure",
    params(("id" = uuid::Uuid, Path, description = "The id of the file or version to copy"),
        ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^(\*|"[0-9a-fA-F]{64}")$"#,
            description = "The ETag (quoted sha-256) the source must have; `*`: any")),
    request_body(content = PlaceRequest, content_type = "application/json"), security(("bearer" = [])),
    responses((status = 201, description = "The new file", body = FileInfoResponse),
        (status = 400, description = "Malformed body, path or If-Match", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such file", body = ErrorBody),
        (status = 409, description = "The destination is taken", body = ErrorBody),
        (status = 412, description = "If-Match does not hold", body = ErrorBody),
        (status = 413, description = "Quota exceeded", body = ErrorBody)))]
pub async fn copy_file(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = parse_file_id(&id)?;
    let request: PlaceRequest = json_body(&body, "a copy request `{\"path\": …}`")?;
    let manager = state.manager(&user, None).await?;
    let to = manager.resolve_path(&request.path)?;
    let options = PlaceOptions { overwrite: request.overwrite, precondition: if_match(&headers)? };
    let info = manager.copy_file(id, to, options).await?;
    let location = HeaderValue::from_str(&format!("/api/workspace/files/{}", info.id)).ok();
    let mut response = (StatusCode::CREATED, Json(FileInfoResponse::from(info))).into_response();
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// A folder move.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FolderMoveRequest {
    /// The folder to move (every file under it, with their versions).
    pub from: String,
    /// Where it goes.
    pub to: String,
}

/// What a folder operation did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FolderChangeResponse {
    /// Files affected (their versions went with them).
    pub files: u64,
}

/// Moves a folder: every file under `from` goes to the same place under `to`, in one transaction
/// (all or nothing).
#[utoipa::path(post, path = "/api/workspace/folders/move", tag = "structure",
    request_body(content = FolderMoveRequest, content_type = "application/json"), security(("bearer" = [])),
    responses((status = 200, description = "Moved", body = FolderChangeResponse),
        (status = 400, description = "Malformed body or path, or a folder moved into itself", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No files under `from`", body = ErrorBody),
        (status = 409, description = "A destination is taken; the message names the first", body = ErrorBody)))]
pub async fn move_folder(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    body: Bytes,
) -> Result<Json<FolderChangeResponse>, ApiError> {
    let request: FolderMoveRequest = json_body(&body, "a folder move `{\"from\": …, \"to\": …}`")?;
    let manager = state.manager(&user, None).await?;
    let (from, to) = (manager.resolve_path(&request.from)?, manager.resolve_path(&request.to)?);
    let change = manager.move_folder(&from, &to).await?;
    Ok(Json(FolderChangeResponse { files: change.files }))
}

/// Which folder to trash.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FolderQuery {
    /// The folder: every file under it goes to the trash.
    pub path: String,
}

/// Moves every file under a folder to the trash, in one transaction.
#[utoipa::path(delete, path = "/api/workspace/folders", tag = "structure", params(FolderQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "Trashed", body = FolderChangeResponse),
        (status = 400, description = "Malformed path", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No files under the folder", body = ErrorBody)))]
pub async fn delete_folder(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiQuery(query): ApiQuery<FolderQuery>,
) -> Result<Json<FolderChangeResponse>, ApiError> {
    let manager = state.manager(&user, None).await?;
    let folder = manager.resolve_path(&query.path)?;
    let change = manager.delete_folder(&folder).await?;
    Ok(Json(FolderChangeResponse { files: change.files }))
}
