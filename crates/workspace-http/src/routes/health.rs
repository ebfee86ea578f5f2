//! Liveness, readiness and metrics.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::auth::Readiness;
use crate::state::AppState;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "check_health",
    responses((status = 200, description = "Alive: `ok`", body = String, content_type = "text/plain")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// The database and the storage backend answer, and some token can be verified. A JWKS endpoint
/// that is down while HS256 still works is noted after `ready; `, and is not a reason for 503.
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "check_readiness",
    responses(
        (status = 200, description = "Ready (`ready`, or `ready; ` and a note)", body = String,
            content_type = "text/plain"),
        (status = 503, description = "Not ready: what is unreachable", body = String, content_type = "text/plain")))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    let db = state.db().ping().await;
    let storage = state.storage().ping().await;
    let auth = state.jwt().readiness();
    let mut problems = Vec::new();
    if let Err(e) = db {
        tracing::warn!(error = %e, "readiness: database");
        problems.push("database unreachable".to_owned());
    }
    if let Err(e) = storage {
        tracing::warn!(error = %e, "readiness: storage");
        problems.push("storage unreachable".to_owned());
    }
    match auth {
        Readiness::Ready => {}
        Readiness::Degraded(note) if problems.is_empty() => return (StatusCode::OK, format!("ready; {note}")),
        Readiness::Degraded(note) | Readiness::NotReady(note) => problems.push(note),
    }
    if problems.is_empty() {
        (StatusCode::OK, "ready".into())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, problems.join(", "))
    }
}

/// Prometheus text metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "get_metrics",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", body = String,
        content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics().render())
}
