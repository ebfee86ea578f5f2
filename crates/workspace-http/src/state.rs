//! `AppState`: what every handler shares: the workspaces (database, storage, settings), the HTTP
//! configuration, metrics, the chat tools behind `/mcp`, and the per-user upload slots. Built
//! once, complete: there is nothing to set afterwards.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use workspace_core::{Db, SessionId, Storage, UserId, WorkspaceManager, Workspaces};

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
    /// Longest lifetime a signed link may ask for.
    pub max_link_ttl: Duration,
    /// Redirect downloads to the backend's own signed URL when it can make one.
    pub redirect_downloads: bool,
    /// Per-request limits (transport limits are in [`crate::ServeLimits`]).
    pub request_limits: RequestLimits,
}

/// Limits the router applies to each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Largest request body of every route except the upload (which streams and is capped by
    /// the file size limit) and `/mcp` (which carries file contents; see [`Self::mcp_body_bytes`]).
    pub max_body_bytes: usize,
    /// Uploads one user may have in flight at once; more wait for a slot.
    pub max_concurrent_uploads: usize,
    /// Uploads of one user that may wait for a slot; more are answered 429 at once.
    pub max_queued_uploads: usize,
    /// Longest an upload waits for a slot before it is answered 429.
    pub upload_queue_timeout: Duration,
    /// Change-feed streams (SSE) one user may hold open at once; more are answered 429.
    pub max_event_streams: usize,
    /// Interval of the keep-alive comments on an idle change-feed stream.
    pub event_keep_alive: Duration,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            max_concurrent_uploads: 4,
            max_queued_uploads: 64,
            upload_queue_timeout: Duration::from_secs(30),
            max_event_streams: 8,
            event_keep_alive: Duration::from_secs(15),
        }
    }
}

impl RequestLimits {
    /// Largest `/mcp` request body: a file of the largest allowed size in base64, plus room for
    /// the JSON-RPC envelope.
    pub fn mcp_body_bytes(&self, max_file_size: u64) -> usize {
        let base64 = max_file_size.saturating_add(2) / 3 * 4;
        usize::try_from(base64).unwrap_or(usize::MAX).saturating_add(self.max_body_bytes)
    }
}

/// Shared state of the router. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    workspaces: Workspaces,
    config: ApiConfig,
    metrics: Metrics,
    /// The chat tools behind `/mcp`, when the server offers them.
    copilot: Option<workspace_copilot::Copilot>,
    uploads: UploadSlots,
    /// Open change-feed streams per user.
    event_streams: Arc<Mutex<HashMap<UserId, usize>>>,
}

impl AppState {
    /// Builds the state; `copilot` turns on the MCP endpoint at `/mcp`.
    pub fn new(workspaces: Workspaces, config: ApiConfig, copilot: Option<workspace_copilot::Copilot>) -> Self {
        let uploads = UploadSlots::new(config.request_limits);
        Self(Arc::new(Inner {
            workspaces,
            config,
            metrics: Metrics::default(),
            copilot,
            uploads,
            event_streams: Arc::default(),
        }))
    }

    /// The workspaces.
    pub fn workspaces(&self) -> &Workspaces {
        &self.0.workspaces
    }
    /// The database.
    pub fn db(&self) -> &Db {
        self.0.workspaces.db()
    }
    /// The storage backend.
    pub fn storage(&self) -> &Storage {
        self.0.workspaces.storage()
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
    /// The per-request limits.
    pub fn request_limits(&self) -> RequestLimits {
        self.0.config.request_limits
    }
    /// The chat tools, when the MCP endpoint is on.
    pub fn copilot(&self) -> Option<&workspace_copilot::Copilot> {
        self.0.copilot.as_ref()
    }

    /// A manager for the user's workspace (created on first use), in `session` if given.
    pub async fn manager(&self, user: &UserId, session: Option<SessionId>) -> Result<WorkspaceManager, ApiError> {
        Ok(self.0.workspaces.manager(user, session).await?)
    }

    /// One of `user`'s upload slots: at once when one is free, else after waiting in line (SPEC
    /// §7: back-pressure never breaks the concurrency rules). Too long a wait, or too long a
    /// line, is [`ApiError::TooManyUploads`].
    pub async fn upload_slot(&self, user: &UserId) -> Result<UploadSlot, ApiError> {
        self.0.uploads.acquire(user).await.ok_or(ApiError::TooManyUploads(self.request_limits().max_concurrent_uploads))
    }

    /// One of `user`'s change-feed streams, or [`ApiError::TooManyEventStreams`] when the user
    /// holds the most allowed. Held for as long as the stream is open.
    pub fn event_stream_slot(&self, user: &UserId) -> Result<EventStreamSlot, ApiError> {
        let max = self.request_limits().max_event_streams;
        let mut open = self.0.event_streams.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(user.clone()).or_insert(0);
        if *count >= max {
            return Err(ApiError::TooManyEventStreams(max));
        }
        *count += 1;
        Ok(EventStreamSlot { user: user.clone(), open: Arc::clone(&self.0.event_streams) })
    }
}

/// One open change-feed stream of a user; dropping it (the stream ended or the client went
/// away) frees it.
#[derive(Debug)]
pub struct EventStreamSlot {
    user: UserId,
    open: Arc<Mutex<HashMap<UserId, usize>>>,
}

impl Drop for EventStreamSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.user);
            }
        }
    }
}

/// The upload slots of every user: a semaphore per user with uploads in flight or waiting.
#[derive(Debug)]
struct UploadSlots {
    limits: RequestLimits,
    users: Arc<Mutex<HashMap<UserId, Arc<UserSlots>>>>,
}

#[derive(Debug)]
struct UserSlots {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
}

impl UploadSlots {
    fn new(limits: RequestLimits) -> Self {
        Self { limits, users: Arc::default() }
    }

    async fn acquire(&self, user: &UserId) -> Option<UploadSlot> {
        let entry = {
            let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = users.entry(user.clone()).or_insert_with(|| {
                Arc::new(UserSlots {
                    slots: Arc::new(Semaphore::new(self.limits.max_concurrent_uploads)),
                    waiting: AtomicUsize::new(0),
                })
            });
            Arc::clone(entry)
        };
        let slot = |permit| UploadSlot {
            permit: Some(permit),
            entry: Arc::clone(&entry),
            user: user.clone(),
            users: Arc::clone(&self.users),
        };
        if let Ok(permit) = Arc::clone(&entry.slots).try_acquire_owned() {
            return Some(slot(permit));
        }
        if entry.waiting.fetch_add(1, Ordering::SeqCst) >= self.limits.max_queued_uploads {
            entry.waiting.fetch_sub(1, Ordering::SeqCst);
            release_if_idle(&self.users, user, &entry);
            return None;
        }
        let waited =
            tokio::time::timeout(self.limits.upload_queue_timeout, Arc::clone(&entry.slots).acquire_owned()).await;
        entry.waiting.fetch_sub(1, Ordering::SeqCst);
        match waited {
            Ok(Ok(permit)) => Some(slot(permit)),
            _ => {
                release_if_idle(&self.users, user, &entry);
                None
            }
        }
    }
}

/// Forgets a user's slots once nobody holds or waits for one: only the map and the caller's
/// `entry` refer to them. (New references are only taken under the map's lock.)
fn release_if_idle(users: &Mutex<HashMap<UserId, Arc<UserSlots>>>, user: &UserId, entry: &Arc<UserSlots>) {
    let mut users = users.lock().unwrap_or_else(PoisonError::into_inner);
    if Arc::strong_count(entry) == 2 && entry.waiting.load(Ordering::SeqCst) == 0 {
        users.remove(user);
    }
}

/// One of a user's upload slots; dropping it (the upload ended, failed or the client went
/// away) frees the slot for the next upload in line.
#[derive(Debug)]
pub struct UploadSlot {
    permit: Option<OwnedSemaphorePermit>,
    entry: Arc<UserSlots>,
    user: UserId,
    users: Arc<Mutex<HashMap<UserId, Arc<UserSlots>>>>,
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        drop(self.permit.take());
        release_if_idle(&self.users, &self.user, &self.entry);
    }
}
