//! The one error type of the core crate: every failure a caller can act on has its own kind.
//!
//! Faults of the database and of storage are split by what a caller can do about them: a
//! transient fault (a connection refused or reset, a timeout, a busy database, a service
//! answering 5xx) is [`WorkspaceError::Unavailable`] and worth retrying; anything else is a
//! permanent [`WorkspaceError::Database`] or [`WorkspaceError::Storage`] error, a bug or a
//! misconfiguration that retrying will not fix. The conversions below decide which is which.

use std::io;

use crate::path::PathError;

/// Errors from the workspace domain. Each kind maps to one HTTP status and one
/// machine-readable code (see [`WorkspaceError::code`]); the mapping itself lives in the HTTP crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkspaceError {
    /// No such file (or workspace) in this workspace: unknown, another user's, or in the trash.
    #[error("not found: {0}")]
    NotFound(String),
    /// A live file already holds the path and overwrite was not requested.
    #[error("conflict: a file already exists at {0} (set overwrite to replace it)")]
    Conflict(String),
    /// The id names an older version, and the operation acts on a file's current version (the
    /// message names it).
    #[error("{0}")]
    NotCurrent(String),
    /// A precondition (`If-Match` / `if_match`, `If-None-Match: *`) does not hold; nothing changed.
    #[error("{message}")]
    PreconditionFailed {
        /// What did not match.
        message: String,
        /// The checksum of the file the precondition was about, when there is one.
        current_checksum: Option<String>,
    },
    /// The file is larger than the per-file size limit.
    #[error("file too large: the limit is {limit} bytes")]
    TooLarge {
        /// The configured per-file limit in bytes.
        limit: u64,
    },
    /// Storing the file would push the workspace's live files over its quota.
    #[error("quota exceeded: {used} of {limit} bytes used by current files, this change needs {needed} more")]
    QuotaExceeded {
        /// Bytes used by current files before this change.
        used: u64,
        /// The workspace quota in bytes.
        limit: u64,
        /// Bytes this change would add.
        needed: u64,
    },
    /// The virtual path broke one of the path rules.
    #[error(transparent)]
    InvalidPath(#[from] PathError),
    /// Some other input was malformed; the message names the rule.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A change-feed resume from before what is retained: the events after `after` were purged
    /// (SPEC §16). Resume after `oldest - 1` (missing what was purged) or from the start (0).
    #[error(
        "events after {after} are no longer retained; the oldest event held is {oldest} (resume after {} or from 0)",
        oldest.saturating_sub(1)
    )]
    EventsExpired {
        /// The id the caller asked to resume after.
        after: u64,
        /// The oldest event id still held (the next id when none is).
        oldest: u64,
    },
    /// The file's bytes are not of a type the operation takes (a thumbnail of a text file); the
    /// message names the types it takes.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// An image is larger than a preview may decode (the pixel cap or the memory bound, SPEC
    /// §17); the message names the cap.
    #[error("image too large: {0}")]
    ImageTooLarge(String),
    /// An image is truncated or corrupt.
    #[error("invalid image: {0}")]
    InvalidImage(String),
    /// The database or the storage backend is unreachable, overloaded or too slow right now;
    /// the same request may succeed later.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// The storage backend failed in a way retrying will not fix.
    #[error("storage error: {0}")]
    Storage(StorageError),
    /// The database failed in a way retrying will not fix.
    #[error("database error: {0}")]
    Database(sea_orm::DbErr),
}

impl WorkspaceError {
    /// A stable, machine-readable code for this kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::NotCurrent(_) => "not_current",
            Self::PreconditionFailed { .. } => "precondition_failed",
            Self::TooLarge { .. } => "too_large",
            Self::QuotaExceeded { .. } => "quota_exceeded",
            Self::InvalidPath(_) => "invalid_path",
            Self::InvalidInput(_) => "invalid_input",
            Self::EventsExpired { .. } => "events_expired",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::ImageTooLarge(_) => "image_too_large",
            Self::InvalidImage(_) => "invalid_image",
            Self::Unavailable(_) => "unavailable",
            Self::Storage(StorageError::RangeNotSatisfiable { .. }) => "range_not_satisfiable",
            Self::Storage(_) => "storage_error",
            Self::Database(_) => "database_error",
        }
    }

    /// Whether retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl From<sea_orm::DbErr> for WorkspaceError {
    fn from(err: sea_orm::DbErr) -> Self {
        if db_error_is_transient(&err) { Self::Unavailable(format!("database: {err}")) } else { Self::Database(err) }
    }
}

impl From<StorageError> for WorkspaceError {
    fn from(err: StorageError) -> Self {
        if err.is_transient() { Self::Unavailable(format!("storage: {err}")) } else { Self::Storage(err) }
    }
}

/// Whether a database error is a fault of the moment (connection lost or refused, pool
/// exhausted, server shutting down, busy or locked, serialization failure, deadlock) rather than
/// a bug in the statement or the data.
pub fn db_error_is_transient(err: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => sqlx_is_transient(e),
        _ => false,
    }
}

fn sqlx_is_transient(err: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error;
    match err {
        Error::Io(_) | Error::Tls(_) | Error::PoolTimedOut | Error::PoolClosed | Error::WorkerCrashed => true,
        Error::Database(db) => db.code().is_some_and(|code| transient_code(&code)),
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs and SQLite result codes that mean "try again".
fn transient_code(code: &str) -> bool {
    // A SQLSTATE is always five characters; SQLite's codes are shorter numbers.
    if code.len() < 5
        && let Ok(sqlite) = code.parse::<i64>()
    {
        // Primary result code in the low byte: BUSY, LOCKED, IOERR, FULL, CANTOPEN.
        return matches!(sqlite & 0xff, 5 | 6 | 10 | 13 | 14);
    }
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources
        || code.starts_with("57P") // operator intervention: shutdown, cannot connect now
        || matches!(code, "40001" | "40P01" | "55P03") // serialization failure, deadlock, lock not available
}

/// Errors from a storage backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// No object at that key.
    #[error("object not found: {0}")]
    NotFound(String),
    /// The requested byte range does not overlap the object.
    #[error("range not satisfiable for an object of {size} bytes")]
    RangeNotSatisfiable {
        /// Size of the whole object.
        size: u64,
    },
    /// The key is not acceptable to the backend (for example it would leave its root).
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The body stream handed to `put` failed; nothing was stored.
    #[error("upload body failed: {0}")]
    Body(io::Error),
    /// The backend did not answer within the storage deadline, or answered that it is
    /// unavailable (overloaded, unreachable, a 5xx): worth retrying later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// An I/O or service error.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Anything else the backend reports.
    #[error("{0}")]
    Other(String),
}

impl StorageError {
    /// Whether retrying later may succeed: [`StorageError::Unavailable`], and I/O errors of a
    /// connection (refused, reset, timed out) or of a full disk.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unavailable(_) => true,
            Self::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::NotConnected
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::Interrupted
                    | io::ErrorKind::StorageFull
                    | io::ErrorKind::QuotaExceeded
                    | io::ErrorKind::ResourceBusy
            ),
            _ => false,
        }
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = WorkspaceError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_codes() {
        for code in ["08006", "08001", "53300", "57P01", "40001", "40P01", "5", "517", "6", "10"] {
            assert!(transient_code(code), "{code}");
        }
        for code in ["23505", "42P01", "22001", "19", "2067", "1"] {
            assert!(!transient_code(code), "{code}");
        }
    }

    #[test]
    fn storage_faults_are_split_by_kind() {
        assert!(WorkspaceError::from(StorageError::Unavailable("timeout".into())).is_transient());
        assert!(WorkspaceError::from(StorageError::Io(io::ErrorKind::ConnectionRefused.into())).is_transient());
        let permanent = WorkspaceError::from(StorageError::Io(io::ErrorKind::PermissionDenied.into()));
        assert!(matches!(permanent, WorkspaceError::Storage(_)));
        assert_eq!(WorkspaceError::from(StorageError::RangeNotSatisfiable { size: 0 }).code(), "range_not_satisfiable");
    }

    #[test]
    fn database_faults_are_split_by_kind() {
        let refused = sea_orm::DbErr::Conn(sea_orm::RuntimeErr::Internal("connection refused".into()));
        assert!(WorkspaceError::from(refused).is_transient());
        let bug = sea_orm::DbErr::Custom("syntax".into());
        assert!(matches!(WorkspaceError::from(bug), WorkspaceError::Database(_)));
    }
}
