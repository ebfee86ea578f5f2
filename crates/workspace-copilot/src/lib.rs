#![doc = include_str!("../README.md")]

pub mod copilot;
pub mod error;
pub mod mcp;
pub mod registry;
pub mod resources;
pub mod subscriptions;
pub mod text;
pub mod tools;

pub use copilot::Copilot;
pub use error::ToolError;
pub use mcp::{DEFAULT_SESSION, McpCaller, McpHttpOptions, McpServer, http_service, serve_stdio};
pub use registry::{SCHEMA_DIALECT, Tool, ToolContext, ToolDefinition, ToolRegistry};
