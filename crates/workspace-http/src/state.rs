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

/// Limits the router applies to each request (transport limits are in [`crate::ServeLimits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Largest request body of every route except the upload (which streams and is capped by
    /// the file size limit) and `/mcp` (which carries file contents; see [`Self::mcp_body_bytes`]).
    pub max_body_bytes: usize,
    /// Uploads one user may have in flight at once; more are answered 429.
    pub max_concurrent_uploads: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self { max_body_bytes: 64 * 1024, max_concurrent_uploads: 4 }
    }
}

impl RequestLimits {
    /// Largest `/mcp` request body: a file of the largest allowed size in base64, plus room for
    /// the JSON-RPC envelope.
    pub fn mcp_body_bytes(&self, limits: &Limits) -> usize {
        let base64 = limits.max_file_size.saturating_add(2) / 3 * 4;
        usize::try_from(base64).unwrap_or(usize::MAX).saturating_add(self.max_body_bytes)
    }
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
    /// Per-request limits, when not the defaults.
    request_limits: OnceLock<RequestLimits>,
    /// user → uploads in flight.
    uploads: Mutex<HashMap<UserId, usize>>,
}

/// One of a user's upload slots; dropping it (the upload ended, failed or the client went
/// away) frees the slot.
#[derive(Debug)]
pub struct UploadSlot {
    state: AppState,
    user: UserId,
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        let mut uploads = self.state.0.uploads.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = uploads.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                uploads.remove(&self.user);
            }
        }
    }
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
            request_limits: OnceLock::new(),
            uploads: Mutex::default(),
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

    /// Sets the per-request limits (default: [`RequestLimits::default`]). Call before building
    /// the router.
    pub fn with_request_limits(self, limits: RequestLimits) -> Self {
        let _ = self.0.request_limits.set(limits);
        self
    }

    /// The per-request limits.
    pub fn request_limits(&self) -> RequestLimits {
        self.0.request_limits.get().copied().unwrap_or_default()
    }

    /// Takes one of `user`'s upload slots, or `None` when all are in use.
    pub fn try_start_upload(&self, user: &UserId) -> Option<UploadSlot> {
        let max = self.request_limits().max_concurrent_uploads;
        let mut uploads = self.0.uploads.lock().unwrap_or_else(PoisonError::into_inner);
        let count = uploads.entry(user.clone()).or_insert(0);
        if *count >= max {
            if *count == 0 {
                uploads.remove(user);
            }
            return None;
        }
        *count += 1;
        Some(UploadSlot { state: self.clone(), user: user.clone() })
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
