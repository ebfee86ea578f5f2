//! Who runs what, and with which resources: the [`ExecutionContext`] a block receives, and the
//! executor-owned [`ExecEnv`] inside it (temp root, limits, fetcher).
//!
//! Design: the context *carries* everything `store_media_file` needs, so a block can never pair a
//! context with the wrong database or storage. The workspace is a [`WorkspaceManager`] held
//! inside the context (already bound to the user, workspace and session), so "the context has a
//! workspace" and "there is a database and storage to write to" are one and the same fact.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use workspace_core::{SessionId, UserId, WorkspaceId, WorkspaceManager};

use crate::error::ExecError;
use crate::fetch::{FetchConfig, Fetcher};
use crate::temp;

/// Default cap on one media file handled by `store_media_file` (100 MiB, the workspace's
/// default file size limit).
pub const DEFAULT_MAX_MEDIA_BYTES: u64 = 100 * 1024 * 1024;

/// The id of one graph execution. It names the execution's temp directory, so it must be one
/// safe path segment: 1 to 255 bytes, no `/`, `\`, control characters, and not `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GraphExecId(String);

impl GraphExecId {
    /// Validates an execution id.
    pub fn new(id: impl Into<String>) -> Result<Self, ExecError> {
        let id = id.into();
        let bad = |why: &str| Err(ExecError::InvalidInput(format!("graph execution id: {why}")));
        if id.is_empty() || id.len() > 255 {
            return bad("must be 1 to 255 bytes long");
        }
        if id == "." || id == ".." {
            return bad("may not be `.` or `..`");
        }
        if id.contains(['/', '\\']) || id.chars().any(char::is_control) {
            return bad("may not contain `/`, `\\` or control characters");
        }
        Ok(Self(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GraphExecId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an executor configures once.
#[derive(Debug, Clone)]
pub struct ExecConfig {
    /// The temp root; execution directories are `{temp_root}/exec_file/{graph_exec_id}/`.
    pub temp_root: PathBuf,
    /// Bytes one execution may keep in its temp directory (default 1 GiB).
    pub temp_dir_cap: u64,
    /// Largest media file `store_media_file` handles, whatever its source (default 100 MiB).
    pub max_media_bytes: u64,
    /// The SSRF-safe fetcher's settings (public addresses only by default).
    pub fetch: FetchConfig,
}

impl ExecConfig {
    /// Defaults with the given temp root (use [`std::env::temp_dir`] unless you have a reason).
    pub fn new(temp_root: impl Into<PathBuf>) -> Self {
        Self {
            temp_root: temp_root.into(),
            temp_dir_cap: temp::DEFAULT_TEMP_DIR_CAP,
            max_media_bytes: DEFAULT_MAX_MEDIA_BYTES,
            fetch: FetchConfig::default(),
        }
    }
}

/// The executor's environment: shared by every context it creates. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ExecEnv {
    inner: Arc<EnvInner>,
}

#[derive(Debug)]
struct EnvInner {
    config: ExecConfig,
    fetcher: Fetcher,
    /// Serialises "check the cap, then write" in temp directories.
    temp_lock: tokio::sync::Mutex<()>,
}

impl ExecEnv {
    /// Builds the environment.
    /// The fetcher's body cap is `max_media_bytes`: a fetched URL is media (stored, streamed, or
    /// returned like a data URI of the same cap), so raising the media cap raises it too.
    pub fn new(config: ExecConfig) -> Self {
        let mut fetch = config.fetch.clone();
        fetch.max_body_bytes = config.max_media_bytes;
        let fetcher = Fetcher::new(fetch);
        Self { inner: Arc::new(EnvInner { config, fetcher, temp_lock: tokio::sync::Mutex::new(()) }) }
    }

    /// The configuration.
    pub fn config(&self) -> &ExecConfig {
        &self.inner.config
    }

    /// The SSRF-safe fetcher every block should use for outbound HTTP.
    pub fn fetcher(&self) -> &Fetcher {
        &self.inner.fetcher
    }

    /// The temp directory of an execution (it may not exist yet).
    pub fn temp_dir(&self, graph_exec_id: &GraphExecId) -> PathBuf {
        temp::exec_dir(&self.inner.config.temp_root, graph_exec_id.as_str())
    }

    /// Deletes an execution's temp directory and everything in it. Call it when the execution
    /// ends, successful or not; a directory that does not exist is fine.
    pub async fn cleanup(&self, graph_exec_id: &GraphExecId) -> Result<(), ExecError> {
        Ok(temp::remove(&self.temp_dir(graph_exec_id)).await?)
    }

    pub(crate) async fn write_temp(&self, dir: &Path, name: &str, bytes: &[u8]) -> Result<(), ExecError> {
        let _guard = self.inner.temp_lock.lock().await;
        temp::write_new(dir, name, bytes, self.inner.config.temp_dir_cap).await
    }
}

/// The ids of one graph execution, as the executor knows them before any node runs.
#[derive(Debug, Clone)]
pub struct GraphRun {
    /// Whose execution this is.
    pub user_id: UserId,
    /// The graph.
    pub graph_id: String,
    /// Its version.
    pub graph_version: u32,
    /// This execution.
    pub graph_exec_id: GraphExecId,
}

/// What a block knows about the run it is part of (SPEC §8), plus the handles it needs to store
/// media. Create one per graph execution with [`ExecutionContext::new`], optionally bind a
/// workspace with [`with_workspace`](Self::with_workspace), and derive each node's context with
/// [`for_node`](Self::for_node).
#[derive(Debug, Clone)]
pub struct ExecutionContext {
    run: GraphRun,
    node_id: String,
    node_exec_id: String,
    workspace: Option<WorkspaceManager>,
    env: ExecEnv,
    /// The environment's fetcher, or one that also trusts an origin ([`Self::trusting_origin`]).
    fetcher: Fetcher,
}

impl ExecutionContext {
    /// A graph-level context without a workspace; node ids are empty until [`for_node`](Self::for_node).
    pub fn new(env: &ExecEnv, run: GraphRun) -> Self {
        Self {
            run,
            node_id: String::new(),
            node_exec_id: String::new(),
            workspace: None,
            env: env.clone(),
            fetcher: env.fetcher().clone(),
        }
    }

    /// Binds the user's workspace. The manager must act for this context's user; its session
    /// becomes the context's session.
    pub fn with_workspace(mut self, manager: WorkspaceManager) -> Result<Self, ExecError> {
        if manager.user_id() != &self.run.user_id {
            return Err(ExecError::InvalidInput(format!(
                "the workspace belongs to user {}, the execution to user {}",
                manager.user_id(),
                self.run.user_id
            )));
        }
        self.workspace = Some(manager);
        Ok(self)
    }

    /// The context of one node execution: a copy with the node's ids.
    pub fn for_node(&self, node_id: impl Into<String>, node_exec_id: impl Into<String>) -> Self {
        Self { node_id: node_id.into(), node_exec_id: node_exec_id.into(), ..self.clone() }
    }

    /// The user.
    pub fn user_id(&self) -> &UserId {
        &self.run.user_id
    }
    /// The graph.
    pub fn graph_id(&self) -> &str {
        &self.run.graph_id
    }
    /// The graph's version.
    pub fn graph_version(&self) -> u32 {
        self.run.graph_version
    }
    /// The graph execution.
    pub fn graph_exec_id(&self) -> &GraphExecId {
        &self.run.graph_exec_id
    }
    /// The node (empty in a graph-level context).
    pub fn node_id(&self) -> &str {
        &self.node_id
    }
    /// The node execution (empty in a graph-level context).
    pub fn node_exec_id(&self) -> &str {
        &self.node_exec_id
    }
    /// The workspace, when the execution has one.
    pub fn workspace_id(&self) -> Option<WorkspaceId> {
        self.workspace.as_ref().map(WorkspaceManager::workspace_id)
    }
    /// The session, when the execution has a workspace with a session.
    pub fn session_id(&self) -> Option<&SessionId> {
        self.workspace.as_ref().and_then(WorkspaceManager::session_id)
    }
    /// The workspace manager, when the execution has a workspace.
    pub fn workspace(&self) -> Option<&WorkspaceManager> {
        self.workspace.as_ref()
    }
    /// The executor's environment.
    pub fn env(&self) -> &ExecEnv {
        &self.env
    }
    /// The SSRF-safe fetcher; use it for every outbound HTTP request a block makes.
    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    /// A copy whose fetcher (and so `store_media_file`) also reaches the origin of `url` when its
    /// address is loopback or private ([`Fetcher::trusting_origin`]). For a block's own,
    /// operator-configured endpoint only: never pass a URL from the block's input or from a
    /// response. Keep the copy inside the block's run.
    pub fn trusting_origin(&self, url: &str) -> Result<Self, ExecError> {
        Ok(Self { fetcher: self.fetcher.trusting_origin(url)?, ..self.clone() })
    }

    /// This execution's temp directory (it may not exist yet).
    pub fn temp_dir(&self) -> PathBuf {
        self.env.temp_dir(&self.run.graph_exec_id)
    }

    /// The absolute path of a file that `store_media_file(…, ForLocalProcessing)` returned.
    /// Refuses anything outside the temp directory (`..`, absolute paths, symlinks leading out).
    pub async fn local_path(&self, relative: &str) -> Result<PathBuf, ExecError> {
        temp::resolve_inside(&self.temp_dir(), relative).await
    }
}
