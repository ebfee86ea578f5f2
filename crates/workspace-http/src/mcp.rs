//! Mounts the MCP endpoint at `/mcp`: bearer-token authentication here (401 without a valid
//! token), the protocol itself in `workspace-copilot`, which reads the caller this layer puts
//! into the request's extensions.

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use workspace_copilot::{McpCaller, McpHttpOptions};

use crate::auth::authenticate;
use crate::state::AppState;

/// Where the streamable HTTP MCP endpoint lives. `?session=` names the chat session.
pub const MCP_PATH: &str = "/mcp";

/// The `/mcp` route when the state carries a [`workspace_copilot::Copilot`], else no routes.
pub fn routes(state: &AppState) -> Router<AppState> {
    let Some(copilot) = state.copilot() else {
        return Router::new();
    };
    let service = workspace_copilot::http_service(copilot.clone(), McpHttpOptions::default());
    Router::new()
        .route_service(MCP_PATH, service)
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
}

/// Lets a request through only with a valid bearer token, recording who sent it.
async fn require_token(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    match authenticate(request.headers(), state.jwt()).await {
        Ok(user) => {
            request.extensions_mut().insert(McpCaller { user });
            next.run(request).await
        }
        Err(err) => err.into_response(),
    }
}
