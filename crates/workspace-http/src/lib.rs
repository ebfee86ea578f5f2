#![doc = include_str!("../README.md")]

pub mod auth;
pub mod disposition;
pub mod error;
pub mod jwks;
pub mod mcp;
pub mod metrics;
pub mod openapi;
pub mod range;
pub mod routes;
pub mod serve;
pub mod signed_link;
pub mod state;
pub mod ui;

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Request};
use axum::routing::{get, post};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use auth::{AuthError, JwtConfig, Readiness};
pub use error::ApiError;
pub use jwks::{Jwks, JwksError, JwksOptions, JwksStatus};
pub use serve::{ServeLimits, serve};
pub use signed_link::LinkSigner;
pub use state::{ApiConfig, AppState, EventStreamSlot, RequestLimits};

/// Every route as (method, path template), in the order of the router. The OpenAPI test checks
/// each one is documented.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/workspace/files"),
    ("post", "/api/workspace/files"),
    ("get", "/api/workspace/files/{id}"),
    ("delete", "/api/workspace/files/{id}"),
    ("get", "/api/workspace/files/{id}/download"),
    ("get", "/api/workspace/files/{id}/thumbnail"),
    ("post", "/api/workspace/files/{id}/link"),
    ("post", "/api/workspace/files/{id}/move"),
    ("post", "/api/workspace/files/{id}/copy"),
    ("post", "/api/workspace/folders/move"),
    ("delete", "/api/workspace/folders"),
    ("get", "/api/workspace/files/{id}/versions"),
    ("post", "/api/workspace/files/{id}/restore"),
    ("get", "/api/workspace/trash"),
    ("delete", "/api/workspace/trash"),
    ("delete", "/api/workspace/trash/{id}"),
    ("get", "/api/workspace/usage"),
    ("get", "/api/workspace/events"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/openapi.json"),
];

/// Longest time a request may take to produce its response head.
pub const DEFAULT_LINK_TTL_LIMIT: Duration = Duration::from_secs(7 * 24 * 3600);

/// The whole application router.
pub fn router(state: AppState) -> Router {
    use routes::{download, events, files, health, history, links, structure, thumbnail, upload, usage};
    let request_id = HeaderName::from_static("x-request-id");
    let api = Router::new()
        .route("/api/workspace/files", get(files::list_files).post(upload::upload_file))
        .route("/api/workspace/files/{id}", get(files::get_file).delete(files::delete_file))
        .route("/api/workspace/files/{id}/download", get(download::download_file))
        .route("/api/workspace/files/{id}/thumbnail", get(thumbnail::file_thumbnail))
        .route("/api/workspace/files/{id}/link", post(links::create_link))
        .route("/api/workspace/files/{id}/move", post(structure::move_file))
        .route("/api/workspace/files/{id}/copy", post(structure::copy_file))
        .route("/api/workspace/folders/move", post(structure::move_folder))
        .route("/api/workspace/folders", axum::routing::delete(structure::delete_folder))
        .route("/api/workspace/files/{id}/versions", get(history::list_versions))
        .route("/api/workspace/files/{id}/restore", post(history::restore_file))
        .route("/api/workspace/trash", get(history::list_trash).delete(history::empty_trash))
        .route("/api/workspace/trash/{id}", axum::routing::delete(history::purge_file))
        .route("/api/workspace/usage", get(usage::usage))
        .route("/api/workspace/events", get(events::events))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/api/openapi.json", get(openapi::openapi_json))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track));
    // The MCP endpoint (streamable HTTP, bearer token), when the state carries the chat tools.
    let api = api.merge(mcp::routes(&state));
    // The web UI (SPEC §10): static pages, no auth of their own.
    let api = api.merge(ui::router());
    api.fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), uri = %request.uri().path(), request_id = %id)
        }))
        .layer(axum::middleware::from_fn_with_state(state.clone(), limit_request_body))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Bounds the body of every request except the upload, which streams its file part and caps it
/// at the file size limit itself. A declared `Content-Length` over the bound is answered 413 at
/// once; a chunked body fails when it crosses the bound.
async fn limit_request_body(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = request.uri().path();
    if request.method() == axum::http::Method::POST && path == "/api/workspace/files" {
        return next.run(request).await;
    }
    let limits = state.request_limits();
    let limit = if path == mcp::MCP_PATH {
        limits.mcp_body_bytes(state.workspaces().settings().limits.max_file_size)
    } else {
        limits.max_body_bytes
    };
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return ApiError::BodyTooLarge(limit).into_response();
    }
    next.run(request.map(|body| axum::body::Body::new(http_body_util::Limited::new(body, limit)))).await
}
