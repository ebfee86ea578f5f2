//! Listing, file info and delete.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use workspace_core::{FileInfo, FileSource, ListOptions, SessionId, SortKey, SortOrder};

use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorBody};
use crate::routes::ApiQuery;
use crate::routes::{if_match, parse_file_id};
use crate::state::AppState;

/// A stored file as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FileInfoResponse {
    /// File id.
    pub id: uuid::Uuid,
    /// Display name.
    pub name: String,
    /// Virtual path.
    pub path: String,
    /// MIME type.
    pub mime_type: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// SHA-256 of the content (hex).
    pub checksum: String,
    /// Metadata object.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// Who or what wrote it.
    pub source: FileSourceName,
    /// Session that wrote it.
    pub source_session_id: Option<String>,
    /// Execution that wrote it.
    pub source_exec_id: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// `workspace://{id}#{mime}` reference.
    pub uri: String,
    /// The authenticated download route.
    pub download_url: String,
    /// 1 for a file's first version, increasing with each overwrite.
    pub version: u32,
    /// Whether this is the current version of its file (an older version's id keeps naming its
    /// bytes while the version is kept).
    pub is_current: bool,
    /// For an older version: the id of the current one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_id: Option<uuid::Uuid>,
    /// For a file in the trash: when it was deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<FileInfo> for FileInfoResponse {
    fn from(info: FileInfo) -> Self {
        let uri = info.uri().to_string();
        let download_url = format!("/api/workspace/files/{}/download", info.id);
        Self {
            id: info.id.as_uuid(),
            name: info.name,
            path: info.path.to_string(),
            mime_type: info.mime_type.to_string(),
            size_bytes: info.size_bytes,
            checksum: info.checksum.to_string(),
            metadata: info.metadata,
            source: info.source.into(),
            source_session_id: info.source_session_id,
            source_exec_id: info.source_exec_id,
            created_at: info.created_at,
            updated_at: info.updated_at,
            uri,
            download_url,
            version: info.version,
            is_current: info.is_current,
            current_id: info.current_id.map(|id| id.as_uuid()),
            deleted_at: info.deleted_at,
        }
    }
}

/// Who or what wrote a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileSourceName {
    /// A user upload.
    Upload,
    /// A block during a graph execution.
    Execution,
    /// The chat assistant.
    Copilot,
    /// An import from elsewhere.
    Import,
}

impl From<FileSource> for FileSourceName {
    fn from(source: FileSource) -> Self {
        match source {
            FileSource::Upload => Self::Upload,
            FileSource::Execution => Self::Execution,
            FileSource::Copilot => Self::Copilot,
            FileSource::Import => Self::Import,
        }
    }
}

/// A sub-folder in a delimited listing.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FolderResponse {
    /// Its path, without a trailing slash.
    pub path: String,
    /// Current files beneath it, at any depth.
    pub file_count: u64,
    /// Their bytes.
    pub size_bytes: u64,
}

/// A page of files.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FileListResponse {
    /// Files in the listing's order.
    pub files: Vec<FileInfoResponse>,
    /// With `delimiter=/`: the immediate sub-folders on this page (`limit` counts them too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folders: Option<Vec<FolderResponse>>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Listing parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Folder to list (segment-aligned); relative prefixes resolve inside the session.
    pub path_prefix: Option<String>,
    /// Session whose folder is listed by default.
    pub session_id: Option<String>,
    /// List the whole workspace instead of one session.
    #[serde(default)]
    pub include_all_sessions: bool,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page (of the same sort and search).
    pub cursor: Option<String>,
    /// Order of the files: `path` (default), `created_at` or `size`; ties by path.
    pub sort: Option<ListSort>,
    /// `asc` (default) or `desc`.
    pub order: Option<ListOrder>,
    /// Only files whose name contains this (ASCII case ignored).
    #[param(max_length = 255)]
    pub q: Option<String>,
    /// `/`: list the folder's immediate children, files and sub-folders (with counts), in path order.
    #[param(pattern = "^/$")]
    pub delimiter: Option<String>,
}

/// What a listing is sorted by.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListSort {
    /// Path, byte order.
    Path,
    /// Creation time of the current version.
    CreatedAt,
    /// Size in bytes.
    Size,
}

/// Ascending or descending.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ListOrder {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

impl From<ListSort> for SortKey {
    fn from(sort: ListSort) -> Self {
        match sort {
            ListSort::Path => Self::Path,
            ListSort::CreatedAt => Self::CreatedAt,
            ListSort::Size => Self::Size,
        }
    }
}

impl From<ListOrder> for SortOrder {
    fn from(order: ListOrder) -> Self {
        match order {
            ListOrder::Asc => Self::Asc,
            ListOrder::Desc => Self::Desc,
        }
    }
}

pub(crate) fn session_of(raw: Option<&str>) -> Result<Option<SessionId>, ApiError> {
    raw.filter(|s| !s.is_empty())
        .map(|s| SessionId::new(s).map_err(|e| ApiError::BadRequest("invalid_session", e.to_string())))
        .transpose()
}

/// Lists live files.
#[utoipa::path(get, path = "/api/workspace/files", tag = "files", operation_id = "list_files", params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of files", body = FileListResponse),
        (status = 400, description = "A malformed prefix, session, limit, cursor or query", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody)))]
pub async fn list_files(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<FileListResponse>, ApiError> {
    let session = session_of(query.session_id.as_deref())?;
    let manager = state.manager(&user, session).await?;
    let prefix =
        query.path_prefix.as_deref().map(|p| manager.resolve_prefix(p, query.include_all_sessions)).transpose()?;
    let delimiter = match query.delimiter.as_deref() {
        None | Some("") => false,
        Some("/") => true,
        Some(_) => return Err(ApiError::BadRequest("invalid_query", "`delimiter` can only be `/`".into())),
    };
    let page = manager
        .list(ListOptions {
            prefix,
            include_all_sessions: query.include_all_sessions,
            limit: query.limit.unwrap_or(100),
            cursor: query.cursor,
            sort: query.sort.map(Into::into).unwrap_or_default(),
            order: query.order.map(Into::into).unwrap_or_default(),
            query: query.q,
            delimiter,
        })
        .await?;
    let folders = delimiter.then(|| {
        page.folders
            .into_iter()
            .map(|f| FolderResponse { path: f.path.to_string(), file_count: f.file_count, size_bytes: f.size_bytes })
            .collect()
    });
    Ok(Json(FileListResponse {
        files: page.files.into_iter().map(Into::into).collect(),
        folders,
        next_cursor: page.next_cursor,
    }))
}

/// Info of one file.
#[utoipa::path(get, path = "/api/workspace/files/{id}", tag = "files", operation_id = "get_file",
    params(("id" = uuid::Uuid, Path, description = "File id (of the current file or of a version)")),
    security(("bearer" = [])),
    responses((status = 200, description = "The file", body = FileInfoResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such file (or in the trash, or another user's)", body = ErrorBody)))]
pub async fn get_file(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<FileInfoResponse>, ApiError> {
    let id = parse_file_id(&id)?;
    let info = state.manager(&user, None).await?.lookup(id).await?;
    Ok(Json(info.into()))
}

/// Moves a file (with its versions) to the trash; its path is free at once.
#[utoipa::path(delete, path = "/api/workspace/files/{id}", tag = "files", operation_id = "delete_file",
    params(("id" = uuid::Uuid, Path, description = "File id (the current version's)"),
        ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^(\*|"[0-9a-fA-F]{64}")$"#,
            description = "The ETag (quoted sha-256) the file must have, or `*`")),
    security(("bearer" = [])),
    responses((status = 204, description = "Moved to the trash"),
        (status = 400, description = "A malformed If-Match", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such file", body = ErrorBody),
        (status = 409, description = "The id is an older version; delete the current one", body = ErrorBody),
        (status = 412, description = "If-Match does not hold", body = ErrorBody)))]
pub async fn delete_file(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<StatusCode, ApiError> {
    let id = parse_file_id(&id)?;
    state.manager(&user, None).await?.delete(id, if_match(&headers)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
