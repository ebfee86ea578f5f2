//! `Copilot`: the tools wired to a database, storage, blocks and an execution environment, so a
//! caller (the MCP server, a chat backend) only says which user and session a call is for.

use std::sync::Arc;

use serde_json::Value;
use workspace_core::{Limits, SessionId, UserId, Workspaces};
use workspace_exec::{BlockRegistry, ExecEnv};

use crate::error::ToolError;
use crate::registry::{ToolContext, ToolRegistry};
use crate::tools::{
    CopyFileTool, DeleteFileTool, EditFileTool, GlobFilesTool, GrepFilesTool, ListFilesTool, ListVersionsTool,
    MoveFileTool, ReadFileTool, RestoreFileTool, RunBlockTool, UsageTool, WriteFileTool,
};

impl ToolRegistry {
    /// The workspace tools: SPEC §9's `list_workspace_files`, `read_workspace_file`,
    /// `write_workspace_file`, `delete_workspace_file` and `run_block` over `blocks`, and §15's
    /// history tools `list_workspace_versions`, `restore_workspace_file` and `workspace_usage`,
    /// its structure tools `move_workspace_file` and `copy_workspace_file`, and its agent I/O tools
    /// `grep_workspace_files`, `glob_workspace_files` and `edit_workspace_file`.
    pub fn workspace_tools(blocks: Arc<BlockRegistry>, limits: Limits) -> Result<Self, ToolError> {
        let mut registry = Self::new();
        registry.register(ListFilesTool)?;
        registry.register(ReadFileTool)?;
        registry.register(WriteFileTool::new(limits))?;
        registry.register(DeleteFileTool)?;
        registry.register(RunBlockTool::new(blocks))?;
        registry.register(ListVersionsTool)?;
        registry.register(RestoreFileTool)?;
        registry.register(UsageTool)?;
        registry.register(MoveFileTool)?;
        registry.register(CopyFileTool)?;
        registry.register(GrepFilesTool)?;
        registry.register(GlobFilesTool)?;
        registry.register(EditFileTool)?;
        Ok(registry)
    }
}

/// The workspace tools bound to their resources. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Copilot(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    workspaces: Workspaces,
    env: ExecEnv,
    tools: ToolRegistry,
}

impl Copilot {
    /// The workspace tools over `workspaces`, with `blocks` for `run_block`.
    pub fn new(workspaces: Workspaces, blocks: BlockRegistry, env: ExecEnv) -> Result<Self, ToolError> {
        let limits: Limits = workspaces.settings().limits;
        let tools = ToolRegistry::workspace_tools(Arc::new(blocks), limits)?;
        Ok(Self(Arc::new(Inner { workspaces, env, tools })))
    }

    /// The workspaces the tools act on.
    pub fn workspaces(&self) -> &Workspaces {
        &self.0.workspaces
    }

    /// The tool registry (definitions, OpenAI / Anthropic exports, validation).
    pub fn tools(&self) -> &ToolRegistry {
        &self.0.tools
    }

    /// The context of a call for `user` in `session`; the user's workspace is created on first use.
    pub async fn context(&self, user: &UserId, session: &SessionId) -> Result<ToolContext, ToolError> {
        let manager = self.0.workspaces.manager(user, Some(session.clone())).await?;
        ToolContext::new(manager, self.0.env.clone())
    }

    /// Calls tool `name` for `user` in `session`.
    pub async fn call(&self, user: &UserId, session: &SessionId, name: &str, args: Value) -> Result<Value, ToolError> {
        // Refuse unknown tools and bad arguments before touching the database.
        let args = self.tools().prepare(name, args)?;
        let ctx = self.context(user, session).await?;
        self.tools().call(name, args, &ctx).await
    }
}
