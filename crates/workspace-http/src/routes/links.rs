//! Signed download links for `<img src>` and other places that cannot send a header.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorBody};
use crate::routes::ApiQuery;
use crate::routes::parse_file_id;
use crate::state::AppState;

/// Default lifetime of a link, in seconds.
pub const DEFAULT_LINK_TTL: u64 = 300;

/// Link options.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinkQuery {
    /// Lifetime in seconds (default 300, at most the server's limit `WS_MAX_LINK_TTL_SECS`,
    /// 604800 unless configured; longer is answered 400).
    #[param(minimum = 1, maximum = 604800)]
    pub expires_in: Option<u64>,
}

/// A signed link.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LinkResponse {
    /// Download URL (relative to the server) that works without a token until it expires.
    pub url: String,
    /// Expiry, seconds since the epoch.
    pub expires_at: i64,
}

/// Creates a signed download link.
#[utoipa::path(post, path = "/api/workspace/files/{id}/link", tag = "links", operation_id = "create_link",
    params(("id" = uuid::Uuid, Path, description = "File id"), LinkQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "A download URL with its signature in the query (`w`, `exp`, `sig`)",
            body = LinkResponse),
        (status = 400, description = "`expires_in` out of range", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such file", body = ErrorBody)))]
pub async fn create_link(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<LinkQuery>,
) -> Result<Json<LinkResponse>, ApiError> {
    let id = parse_file_id(&id)?;
    let max = state.config().max_link_ttl.as_secs();
    let ttl = query.expires_in.unwrap_or(DEFAULT_LINK_TTL);
    if ttl == 0 || ttl > max {
        return Err(ApiError::BadRequest("invalid_input", format!("`expires_in` must be between 1 and {max} seconds")));
    }
    let manager = state.manager(&user, None).await?;
    let info = manager.lookup(id).await?;
    let expires_at = chrono::Utc::now().timestamp() + i64::try_from(ttl).unwrap_or(i64::MAX / 2);
    let sig = state.config().links.sign(manager.workspace_id(), info.id, expires_at);
    let url =
        format!("/api/workspace/files/{}/download?w={}&exp={expires_at}&sig={sig}", info.id, manager.workspace_id());
    Ok(Json(LinkResponse { url, expires_at }))
}
