//! Identifier newtypes, so a file id can never be passed where a workspace id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::path::{PathError, check_segment};

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }
            /// Wraps an existing uuid.
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            /// The inner uuid.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::try_parse(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    };
}

uuid_id!(
    /// Identifies one stored file (one version of a path).
    FileId
);
uuid_id!(
    /// Identifies a user's workspace.
    WorkspaceId
);
uuid_id!(
    /// Identifies stored content: bytes kept once per workspace, shared by every version and
    /// copy with equal bytes.
    ContentId
);

/// The platform's user id (a JWT `sub`): 1 to 255 bytes, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// Validates a user id.
    pub fn new(id: impl Into<String>) -> Result<Self, IdError> {
        let id = id.into();
        if id.is_empty() || id.len() > 255 {
            return Err(IdError("a user id must be 1 to 255 bytes long".into()));
        }
        if id.chars().any(char::is_control) {
            return Err(IdError("a user id may not contain control characters".into()));
        }
        Ok(Self(id))
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A chat or execution session id. It becomes one segment of `/sessions/{id}/`, so it obeys the
/// segment rules of [`WorkspacePath`](crate::WorkspacePath) and may not contain `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    /// Validates a session id.
    pub fn new(id: impl Into<String>) -> Result<Self, PathError> {
        let id = id.into();
        if id.contains('/') {
            return Err(PathError::SessionHasSlash);
        }
        let id = crate::path::nfc(&id);
        check_segment(&id)?;
        Ok(Self(id))
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An identifier that broke its rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid id: {0}")]
pub struct IdError(pub String);
