//! `AppState`: what every handler shares (database, storage, configuration, metrics).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use workspace_core::{Db, Limits, SessionId, Storage, UserId, WorkspaceId, WorkspaceManager};

use crate::auth::JwtConfig;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::signed_link::LinkSigner;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// How bearer tokens are checked.
    pub jwt: JwtConfig,
    /// How download links are signed.
    pub links: LinkSigner,
    /// Size limits for writes.
    pub limits: Limits,
    /// Longest lifetime a signed link may ask for.
    pub max_link_ttl: Duration,
    /// Redirect downloads to the backend's own signed URL when it can make one.
    pub redirect_downloads: bool,
}

/// Shared state of the router. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    db: Db,
    storage: Storage,
    config: ApiConfig,
    metrics: Metrics,
    /// user → workspace, so a request costs no upsert once the workspace is known.
    workspaces: Mutex<HashMap<UserId, WorkspaceId>>,
    /// The chat tools behind `/mcp`, when the server offers them.
    copilot: OnceLock<workspace_copilot::Copilot>,
}

impl AppState {
    /// Builds the state.
    pub fn new(db: Db, storage: Storage, config: ApiConfig) -> Self {
        Self(Arc::new(Inner {
            db,
            storage,
            config,
            metrics: Metrics::default(),
            workspaces: Mutex::default(),
            copilot: OnceLock::new(),
        }))
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.0.db
    }
    /// The storage backend.
    pub fn storage(&self) -> &Storage {
        &self.0.storage
    }
    /// The configuration.
    pub fn config(&self) -> &ApiConfig {
        &self.0.config
    }
    /// Token checking.
    pub fn jwt(&self) -> &JwtConfig {
        &self.0.config.jwt
    }
    /// Request metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// Offers the chat tools over MCP at `/mcp` (see [`crate::mcp`]). Call before building the router.
    pub fn with_copilot(self, copilot: workspace_copilot::Copilot) -> Self {
        let _ = self.0.copilot.set(copilot);
        self
    }

    /// The chat tools, when the MCP endpoint is on.
    pub fn copilot(&self) -> Option<&workspace_copilot::Copilot> {
        self.0.copilot.get()
    }

    /// A manager for the user's workspace (created on first use), in `session` if given.
    pub async fn manager(&self, user: &UserId, session: Option<SessionId>) -> Result<WorkspaceManager, ApiError> {
        let cached = self.0.workspaces.lock().unwrap_or_else(PoisonError::into_inner).get(user).copied();
        let workspace = match cached {
            Some(id) => id,
            None => {
                let id = WorkspaceManager::get_or_create_workspace(self.db(), user).await?;
                self.0.workspaces.lock().unwrap_or_else(PoisonError::into_inner).insert(user.clone(), id);
                id
            }
        };
        Ok(WorkspaceManager::new(self.db().clone(), self.storage().clone(), user.clone(), workspace, session)
            .with_limits(self.0.config.limits))
    }
}
