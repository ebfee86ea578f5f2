//! The routes of SPEC §7, one module per concern.

pub mod download;
pub mod files;
pub mod health;
pub mod links;
pub mod upload;
pub mod usage;

use workspace_core::FileId;

use crate::error::ApiError;

/// `Query`, but a malformed query string is answered like every other error: JSON
/// `{"error": "invalid_query", …}` with 400 (axum's own rejection is plain text).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|rejection| ApiError::BadRequest("invalid_query", rejection.body_text()))
    }
}

/// Parses a file id from the path. A malformed id is a 404 like any unknown id.
pub(crate) fn parse_file_id(raw: &str) -> Result<FileId, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound(format!("file {}", raw.chars().take(64).collect::<String>())))
}
