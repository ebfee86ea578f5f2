//! Identifier newtypes, so a file id can never be passed where a workspace id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::path::{PathError, check_segment};

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $(#[$new_doc:meta])* new: $new:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            $(#[$new_doc])*
            pub fn new() -> Self {
                Self($new())
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
    FileId,
    /// A fresh id, ordered by time (UUIDv7, `uuid`'s `now_v7`: 48 bits of milliseconds, a 42-bit
    /// counter started at random each millisecond and counted up within it, then 32 random bits).
    ///
    /// Every index that holds a file id (the primary key, the version chains, which start at
    /// their first version's id) then grows at its end: the rows a batch of writes inserts share
    /// its last pages, where random ids put each row on a page of its own, anywhere in the
    /// index. That is a page written to the WAL (and later checkpointed) per row and index, and
    /// pages read back once the index outgrows the cache. The 32 random bits of each id keep it
    /// unguessable; that a file id tells when it was made says nothing `created_at` does not.
    new: Uuid::now_v7
);
uuid_id!(
    /// Identifies a user's workspace.
    WorkspaceId,
    /// A fresh random id (UUIDv4): made once per user, so its order helps no index.
    new: Uuid::new_v4
);
uuid_id!(
    /// Identifies stored content: bytes kept once per workspace, shared by every version and
    /// copy with equal bytes.
    ContentId,
    /// A fresh id, ordered by time (UUIDv7), for the reasons given at [`FileId::new`]: the content
    /// table's primary key and the files' content index grow at their ends.
    new: Uuid::now_v7
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_content_ids_are_made_in_order_and_workspace_ids_at_random() {
        let files: Vec<FileId> = (0..2000).map(|_| FileId::new()).collect();
        assert!(files.windows(2).all(|w| w[0] < w[1]), "file ids sort in the order they were made");
        assert!(files.iter().all(|id| id.as_uuid().get_version_num() == 7));
        let contents: Vec<ContentId> = (0..2000).map(|_| ContentId::new()).collect();
        assert!(contents.windows(2).all(|w| w[0] < w[1]), "content ids sort in the order they were made");
        // The last 8 bytes (the counter's low bits and 32 random bits) differ between ids made in
        // the same millisecond.
        let tails: std::collections::HashSet<[u8; 8]> =
            files.iter().map(|id| id.as_uuid().as_bytes()[8..].try_into().unwrap_or_default()).collect();
        assert_eq!(tails.len(), files.len(), "each id has its own random bits");
        assert_eq!(WorkspaceId::new().as_uuid().get_version_num(), 4);
    }
}
