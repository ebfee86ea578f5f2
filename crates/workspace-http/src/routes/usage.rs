//! Storage used by the caller's workspace.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Usage of a workspace.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UsageResponse {
    /// Bytes counted against the quota: current files and history.
    pub used_bytes: u64,
    /// Bytes of current files.
    pub live_bytes: u64,
    /// Bytes of versions and trashed files (purged, oldest first, when a write needs the room).
    pub history_bytes: u64,
    /// The quota.
    pub limit_bytes: u64,
    /// Current files.
    pub file_count: u64,
}

/// Bytes used, quota and file count.
#[utoipa::path(get, path = "/api/workspace/usage", tag = "usage", operation_id = "get_usage", security(("bearer" = [])),
    responses((status = 200, description = "Bytes used and the quota", body = UsageResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorBody)))]
pub async fn usage(State(state): State<AppState>, AuthUser(user): AuthUser) -> Result<Json<UsageResponse>, ApiError> {
    let usage = state.manager(&user, None).await?.usage().await?;
    Ok(Json(UsageResponse {
        used_bytes: usage.used_bytes,
        live_bytes: usage.live_bytes,
        history_bytes: usage.history_bytes,
        limit_bytes: usage.limit_bytes,
        file_count: usage.file_count,
    }))
}
