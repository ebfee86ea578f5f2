//! The one place where errors become HTTP status codes and `{"error", "message"}` bodies.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use workspace_core::{StorageError, WorkspaceError};

use crate::auth::AuthError;

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A domain error from the manager.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// Missing or invalid credentials.
    #[error(transparent)]
    Unauthorized(AuthError),
    /// A signed link that is invalid or expired. The message says nothing about the file.
    #[error("invalid or expired link")]
    BadLink,
    /// Malformed request; the message names the rule.
    #[error("{1}")]
    BadRequest(&'static str, String),
    /// The request body is not what the route takes.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// No route or resource.
    #[error("{0}")]
    NotFound(String),
    /// The request body is larger than the route accepts.
    #[error("the request body is larger than {0} bytes")]
    BodyTooLarge(usize),
    /// The user already has the most uploads in flight the server allows.
    #[error("at most {0} uploads may run at once; retry when one has finished")]
    TooManyUploads(usize),
    /// The user already holds the most change-feed streams the server allows.
    #[error("at most {0} event streams may be open at once per user; close one and retry")]
    TooManyEventStreams(usize),
}

/// Seconds a client is told to wait (`Retry-After`) after [`ApiError::TooManyUploads`].
pub const UPLOAD_RETRY_AFTER_SECS: u32 = 5;
/// Seconds a client is told to wait (`Retry-After`) when the database or storage is unavailable.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u32 = 5;

/// Seconds a client is told to wait (`Retry-After`) when its token's keys cannot be fetched.
pub const AUTH_RETRY_AFTER_SECS: u32 = 10;

/// The JSON error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `not_found`, `quota_exceeded`.
    pub error: String,
    /// Human-readable explanation.
    pub message: String,
    /// With `precondition_failed`: the checksum (ETag) of the file the condition was about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_checksum: Option<String>,
    /// With `events_expired`: the oldest event id still held; resume after `oldest_id - 1` (or
    /// from `after=0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_id: Option<u64>,
}

impl ApiError {
    /// Status and stable code for this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Workspace(err) => match err {
                WorkspaceError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
                WorkspaceError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
                WorkspaceError::NotCurrent(_) => (StatusCode::CONFLICT, "not_current"),
                WorkspaceError::PreconditionFailed { .. } => (StatusCode::PRECONDITION_FAILED, "precondition_failed"),
                WorkspaceError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
                WorkspaceError::QuotaExceeded { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded"),
                WorkspaceError::InvalidPath(_) => (StatusCode::BAD_REQUEST, "invalid_path"),
                WorkspaceError::InvalidInput(_) => (StatusCode::BAD_REQUEST, "invalid_input"),
                WorkspaceError::EventsExpired { .. } => (StatusCode::GONE, "events_expired"),
                WorkspaceError::UnsupportedMediaType(_) => {
                    (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
                }
                WorkspaceError::ImageTooLarge(_) => (StatusCode::UNPROCESSABLE_ENTITY, "image_too_large"),
                WorkspaceError::InvalidImage(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_image"),
                WorkspaceError::Storage(StorageError::RangeNotSatisfiable { .. }) => {
                    (StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable")
                }
                WorkspaceError::Storage(StorageError::NotFound(_)) => (StatusCode::NOT_FOUND, "not_found"),
                // Transient faults of the database or storage: retry later. Anything else is ours.
                WorkspaceError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
                WorkspaceError::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, "storage_error"),
                WorkspaceError::Database(_) => (StatusCode::INTERNAL_SERVER_ERROR, "database_error"),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
            },
            // The JWKS endpoint cannot be read: a fault of ours, not the client's token.
            Self::Unauthorized(AuthError::KeysUnavailable) => (StatusCode::SERVICE_UNAVAILABLE, "auth_unavailable"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::BadLink => (StatusCode::FORBIDDEN, "invalid_link"),
            Self::BadRequest(code, _) => (StatusCode::BAD_REQUEST, code),
            Self::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::BodyTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            Self::TooManyUploads(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_uploads"),
            Self::TooManyEventStreams(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_event_streams"),
        }
    }
}

impl ApiError {
    /// The `message` a client reads for a 4xx answer: the error's own text, except where the
    /// lower layer's wording names the wrong culprit for an HTTP client.
    fn client_message(&self) -> String {
        match self {
            // The backend's "range not satisfiable for an object" arrives wrapped as a storage
            // error, but nothing failed in storage: the client asked for bytes the file lacks.
            Self::Workspace(WorkspaceError::Storage(StorageError::RangeNotSatisfiable { size })) => {
                let bytes = if *size == 1 { "byte" } else { "bytes" };
                format!("the requested range is not satisfiable for a file of {size} {bytes}")
            }
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        // Server-side failures are logged in full and answered without internals. An
        // unreachable JWKS endpoint is logged once per fetch by the key cache, not per request.
        let message = if matches!(self, Self::Unauthorized(AuthError::KeysUnavailable)) {
            self.to_string()
        } else if status.is_server_error() {
            tracing::error!(error = %self, code, "request failed");
            match status {
                StatusCode::SERVICE_UNAVAILABLE => {
                    "the database or storage is temporarily unavailable; try again shortly".to_owned()
                }
                _ => "internal error; the server log has details".to_owned(),
            }
        } else {
            self.client_message()
        };
        let current_checksum = match &self {
            Self::Workspace(WorkspaceError::PreconditionFailed { current_checksum, .. }) => current_checksum.clone(),
            _ => None,
        };
        let oldest_id = match &self {
            Self::Workspace(WorkspaceError::EventsExpired { oldest, .. }) => Some(*oldest),
            _ => None,
        };
        let mut response =
            (status, Json(ErrorBody { error: code.to_owned(), message, current_checksum, oldest_id })).into_response();
        if let Self::Workspace(WorkspaceError::Storage(StorageError::RangeNotSatisfiable { size })) = &self
            && let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}"))
        {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
        if matches!(self, Self::TooManyUploads(_) | Self::TooManyEventStreams(_)) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(UPLOAD_RETRY_AFTER_SECS));
        }
        if matches!(self, Self::Unauthorized(AuthError::KeysUnavailable)) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(AUTH_RETRY_AFTER_SECS));
        } else if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECS));
        } else if matches!(self, Self::Unauthorized(_)) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
