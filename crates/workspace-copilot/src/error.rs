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
    /// With `precondition_failed`: the checksum the file has now (SPEC §15).
    pub current_checksum: Option<String>,
}

impl ToolError {
    /// A failure with a code and a message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), current_checksum: None }
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

    /// The JSON the model sees: `{"error": code, "message": …}`, and `current_checksum` when a
    /// precondition failed.
    pub fn to_json(&self) -> Value {
        let mut value = json!({ "error": self.code, "message": self.message });
        if let Some(checksum) = &self.current_checksum {
            value["current_checksum"] = checksum.clone().into();
        }
        value
    }
}

impl From<WorkspaceError> for ToolError {
    fn from(err: WorkspaceError) -> Self {
        match err {
            WorkspaceError::Storage(_) | WorkspaceError::Database(_) | WorkspaceError::Unavailable(_) => {
                tracing::warn!(error = %err, "workspace tool failed on the server side");
                Self::new(err.code(), "the workspace could not complete the request; try again later")
            }
            WorkspaceError::QuotaExceeded { used, limit, needed } => {
                Self::new(err.code(), quota_message(used, limit, needed))
            }
            WorkspaceError::PreconditionFailed { message, current_checksum } => Self {
                code: "precondition_failed",
                message: format!("{message}. Read the file again (its checksum is in the file metadata) and retry."),
                current_checksum,
            },
            other => Self::new(other.code(), other.to_string()),
        }
    }
}

/// A quota error the model can act on (SPEC §9): how far over the quota the write is, how many
/// bytes must go, and which tools find and free them.
fn quota_message(used: u64, limit: u64, needed: u64) -> String {
    let over = used.saturating_add(needed).saturating_sub(limit);
    let situation =
        format!("quota exceeded: the workspace uses {used} of its {limit} bytes and this file needs {needed} more");
    if needed > limit {
        return format!(
            "{situation}, more than the whole quota: it cannot be stored even in an empty workspace. \
             Save a smaller file instead (split it, or compress it)."
        );
    }
    format!(
        "{situation}, so at least {over} bytes must be freed first. To recover: call `workspace_usage` \
         (or `list_workspace_files` with include_all_sessions=true) to find large files, delete files the \
         user no longer needs with `delete_workspace_file` until at least {over} bytes are free, then retry \
         this write. Ask the user before deleting anything they may still want."
    )
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

    #[test]
    fn quota_errors_say_how_to_recover() {
        let err: ToolError = WorkspaceError::QuotaExceeded { used: 4000, limit: 4096, needed: 200 }.into();
        assert_eq!(err.code, "quota_exceeded");
        for needle in [
            "4000 of its 4096 bytes",
            "needs 200 more",
            "at least 104 bytes must be freed",
            "`workspace_usage`",
            "`list_workspace_files`",
            "`delete_workspace_file`",
            "retry",
        ] {
            assert!(err.message.contains(needle), "{needle:?} in {}", err.message);
        }
        // Through an execution (run_block storing a block's output) the same advice arrives.
        let err: ToolError =
            ExecError::Workspace(WorkspaceError::QuotaExceeded { used: 0, limit: 10, needed: 11 }).into();
        assert_eq!(err.code, "quota_exceeded");
        assert!(err.message.contains("more than the whole quota"), "{}", err.message);
        assert!(!err.message.contains("delete_workspace_file"), "deleting cannot help: {}", err.message);
    }
}
