//! Liveness, readiness and metrics.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::auth::Readiness;
use crate::state::AppState;

/// The process is up.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "Alive", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// The database and the storage backend answer, and some token can be verified. A JWKS endpoint
/// that is down while HS256 still works is noted after `ready; `, and is not a reason for 503.
#[utoipa::path(get, path = "/readyz", responses((status = 200, description = "Ready", body = String),
    (status = 503, description = "Not ready", body = String)))]
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
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics().render())
}
