//! Shared set-up: a `Copilot` over the test's own database and storage, with the example blocks.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use workspace_copilot::{Copilot, ToolError};
use workspace_core::{SessionId, UserId, WorkspaceManager};
use workspace_exec::{ExecConfig, ExecEnv};
use workspace_testkit::TestEnv;

pub struct Harness {
    pub copilot: Copilot,
    pub env: TestEnv,
    pub tmp: tempfile::TempDir,
}

impl Harness {
    pub fn new(env: TestEnv) -> Self {
        Self::with_limits(env, workspace_core::Limits::default())
    }

    pub fn with_limits(env: TestEnv, limits: workspace_core::Limits) -> Self {
        Self::with_settings(env, workspace_core::Settings { limits, ..Default::default() })
    }

    pub fn with_settings(env: TestEnv, settings: workspace_core::Settings) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let exec = ExecEnv::new(ExecConfig::new(tmp.path()));
        let blocks = workspace_examples::registry(None).unwrap();
        let workspaces = env.workspaces_with(settings);
        let copilot = Copilot::new(workspaces, blocks, exec).unwrap();
        Self { copilot, env, tmp }
    }

    pub async fn call(&self, session: &str, tool: &str, args: Value) -> Result<Value, ToolError> {
        self.call_as("alice", session, tool, args).await
    }

    pub async fn call_as(&self, user: &str, session: &str, tool: &str, args: Value) -> Result<Value, ToolError> {
        let user = UserId::new(user).unwrap();
        let session = SessionId::new(session).unwrap();
        self.copilot.call(&user, &session, tool, args).await
    }

    /// A manager for alice's workspace outside any session, to check what the tools did.
    pub async fn manager(&self) -> WorkspaceManager {
        self.copilot.workspaces().manager(&UserId::new("alice").unwrap(), None).await.unwrap()
    }
}

/// Asserts an error with this code and returns its message.
#[track_caller]
pub fn expect_err(result: Result<Value, ToolError>, code: &str) -> String {
    match result {
        Ok(value) => panic!("expected error `{code}`, got {value}"),
        Err(err) => {
            assert_eq!(err.code, code, "{}", err.message);
            assert!(!err.message.is_empty());
            err.message
        }
    }
}
