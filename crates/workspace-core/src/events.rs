//! The change feed's records (SPEC §16): every change appends an event in its own transaction
//! ([`crate::txn::WriteTxn`]), with ids increasing per workspace, so an event exists if and only if
//! its change committed.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::entity::workspace_event;
use crate::error::{Result, WorkspaceError};
use crate::ids::FileId;
use crate::model::{Checksum, FileInfo};

/// What happened to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A file appeared at a free path.
    Created,
    /// A new version replaced the current one at a path.
    Overwritten,
    /// A file changed path (same id).
    Moved,
    /// A new file was made from another's content.
    Copied,
    /// A file went to the trash.
    Deleted,
    /// A file came back from the trash, or an old version became current again.
    Restored,
    /// A file or version was removed for good (trash emptied, retention, quota room).
    Purged,
}

impl EventKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Overwritten => "overwritten",
            Self::Moved => "moved",
            Self::Copied => "copied",
            Self::Deleted => "deleted",
            Self::Restored => "restored",
            Self::Purged => "purged",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "created" => Self::Created,
            "overwritten" => Self::Overwritten,
            "moved" => Self::Moved,
            "copied" => Self::Copied,
            "deleted" => Self::Deleted,
            "restored" => Self::Restored,
            "purged" => Self::Purged,
            other => return Err(WorkspaceError::InvalidInput(format!("unknown event kind `{other}` in the database"))),
        })
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One committed change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Increasing per workspace.
    pub id: u64,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The file (version) it happened to.
    pub file_id: FileId,
    /// Its path after the change.
    pub path: String,
    /// Its path before a move.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    /// Its size.
    pub size_bytes: u64,
    /// Its checksum.
    pub checksum: String,
    /// When the change committed.
    pub at: DateTime<Utc>,
}

impl TryFrom<workspace_event::Model> for Event {
    type Error = WorkspaceError;
    fn try_from(m: workspace_event::Model) -> Result<Self> {
        Ok(Self {
            id: u64::try_from(m.id).unwrap_or(0),
            kind: EventKind::parse(&m.kind)?,
            file_id: FileId::from_uuid(m.file_id),
            path: m.path,
            old_path: m.old_path,
            size_bytes: u64::try_from(m.size_bytes).unwrap_or(0),
            checksum: m.checksum,
            at: m.at,
        })
    }
}

/// An event staged in a transaction, before its id is known.
#[derive(Debug, Clone)]
pub(crate) struct PendingEvent {
    pub kind: EventKind,
    pub file_id: FileId,
    pub path: String,
    pub old_path: Option<String>,
    pub size_bytes: u64,
    pub checksum: Checksum,
}

impl PendingEvent {
    pub(crate) fn about(kind: EventKind, file: &FileInfo) -> Self {
        Self {
            kind,
            file_id: file.id,
            path: file.path.to_string(),
            old_path: None,
            size_bytes: file.size_bytes,
            checksum: file.checksum.clone(),
        }
    }
}
