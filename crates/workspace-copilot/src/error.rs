//! `ToolError`: the one failure shape a tool hands back to the model, `{"error": code, "message": …}`,
//! so the model can read what went wrong and act on it (fix its input, pick another file…).

use serde_json::{Value, json};
use workspace_core::WorkspaceError;
use workspace_exec::ExecError;

/// A tool failure the model can act on. `code` is stable and machine-readable; `message` says
/// what to change. Internal details (SQL, I/O) are logged, never returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ToolError {
    /// Stable code, e.g. `not_found`, `invalid_input`, `too_large`.
    pub code: &'static str,
    /// What happened and what to do about it.
    pub message: String,
}

impl ToolError {
    /// A failure with a code and a message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// The input broke a rule; the message names it.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new("invalid_input", message)
    }

    /// No such tool, file or block.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new("not_found", message)
    }

    /// Something broke on the server side; details were logged.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("internal_error", message)
    }

    /// The JSON the model sees: `{"error": code, "message": …}`.
    pub fn to_json(&self) -> Value {
        json!({ "error": self.code, "message": self.message })
    }
}

impl From<WorkspaceError> for ToolError {
    fn from(err: WorkspaceError) -> Self {
        match err {
            WorkspaceError::Storage(_) | WorkspaceError::Database(_) | WorkspaceError::Unavailable(_) => {
                tracing::warn!(error = %err, "workspace tool failed on the server side");
                Self::new(err.code(), "the workspace could not complete the request; try again later")
            }
            other => Self::new(other.code(), other.to_string()),
        }
    }
}

impl From<ExecError> for ToolError {
    fn from(err: ExecError) -> Self {
        match err {
            ExecError::Workspace(inner) => inner.into(),
            ExecError::Io(_) => {
                tracing::warn!(error = %err, "block execution failed on the server side");
                Self::new(err.code(), "the block could not complete because of a server-side I/O error")
            }
            other => Self::new(other.code(), other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use workspace_core::StorageError;

    #[test]
    fn internal_details_are_not_returned() {
        let err: ToolError = WorkspaceError::Storage(StorageError::Other("bucket secret-bucket refused".into())).into();
        assert_eq!(err.code, "storage_error");
        assert!(!err.message.contains("secret-bucket"), "{}", err.message);
        let err: ToolError = WorkspaceError::NotFound("file x".into()).into();
        assert_eq!(err.to_json(), json!({"error": "not_found", "message": "not found: file x"}));
    }
}
