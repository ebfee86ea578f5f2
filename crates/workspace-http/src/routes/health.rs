//! Liveness, readiness and metrics.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::state::AppState;

/// The process is up.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "Alive", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// The database and the storage backend answer.
#[utoipa::path(get, path = "/readyz", responses((status = 200, description = "Ready", body = String),
    (status = 503, description = "Not ready", body = String)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    let db = state.db().ping().await;
    let storage = state.storage().ping().await;
    match (db, storage) {
        (Ok(()), Ok(())) => (StatusCode::OK, "ready".into()),
        (db, storage) => {
            let mut problems = Vec::new();
            if let Err(e) = db {
                tracing::warn!(error = %e, "readiness: database");
                problems.push("database unreachable");
            }
            if let Err(e) = storage {
                tracing::warn!(error = %e, "readiness: storage");
                problems.push("storage unreachable");
            }
            (StatusCode::SERVICE_UNAVAILABLE, problems.join(", "))
        }
    }
}

/// Prometheus text metrics.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics().render())
}
