//! The routes of SPEC §7, one module per concern.

pub(crate) mod access;
pub mod download;
pub mod events;
pub mod files;
pub mod health;
pub mod history;
pub mod links;
pub mod structure;
pub mod thumbnail;
pub mod upload;
pub mod usage;

use axum::http::{HeaderMap, header};
use workspace_core::{Checksum, FileId, Precondition};

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

/// The `If-Match` precondition of a request (SPEC §14): one strong ETag (the quoted sha-256 of
/// the file), or `*` for "any file". Weak and listed ETags are refused: a file has one checksum.
pub(crate) fn if_match(headers: &HeaderMap) -> Result<Precondition, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else { return Ok(Precondition::None) };
    let bad = || {
        ApiError::BadRequest(
            "invalid_precondition",
            "If-Match must be `*` or one quoted sha-256 ETag, e.g. \"2cf24d…9824\"".to_owned(),
        )
    };
    let text = value.to_str().map_err(|_| bad())?.trim();
    if text == "*" {
        return Ok(Precondition::IfExists);
    }
    let inner = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).ok_or_else(bad)?;
    Ok(Precondition::IfMatch(Checksum::parse(inner).map_err(|_| bad())?))
}

/// The preconditions of an upload: `If-Match` as [`if_match`], or `If-None-Match: *` (the path
/// must be free). Both at once is refused.
pub(crate) fn upload_precondition(headers: &HeaderMap) -> Result<Precondition, ApiError> {
    let matching = if_match(headers)?;
    let Some(value) = headers.get(header::IF_NONE_MATCH) else { return Ok(matching) };
    if value.to_str().map(str::trim).ok() != Some("*") {
        return Err(ApiError::BadRequest(
            "invalid_precondition",
            "If-None-Match on an upload must be `*` (create only if the path is free)".to_owned(),
        ));
    }
    if matching != Precondition::None {
        return Err(ApiError::BadRequest(
            "invalid_precondition",
            "send either If-Match or If-None-Match, not both".to_owned(),
        ));
    }
    Ok(Precondition::IfNoneMatch)
}
