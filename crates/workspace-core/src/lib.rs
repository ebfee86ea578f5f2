#![doc = include_str!("../README.md")]

pub mod batch;
mod content;
pub mod db;
mod direct;
pub mod edit;
pub mod entity;
pub mod error;
pub mod events;
pub mod feed;
pub mod gc;
pub mod grep;
mod history;
pub mod ids;
pub mod lines;
mod listing;
pub mod manager;
pub mod memory;
mod meter;
pub mod mime;
pub mod model;
pub mod path;
pub mod previews;
mod rows;
pub mod storage;
mod structure;
mod txn;
pub mod uri;
pub mod workspaces;
mod writes;

pub use batch::{BatchWork, BatchWorker, ChunkBatch};
pub use db::Db;
pub use edit::{Edit, EditOutcome};
pub use error::{Result, StorageError, WorkspaceError};
pub use events::{Event, EventKind};
pub use feed::{FeedStart, Subscription};
pub use grep::{GrepMatch, GrepOptions, GrepResult, PathGlob};
pub use ids::{ContentId, FileId, SessionId, UserId, WorkspaceId};
pub use lines::{LineCursor, LineRange, LineRead, NumberedLine};
pub use listing::SEARCH_WINDOW;
pub use manager::{Opened, StageCap, Staged, WorkspaceManager};
pub use memory::InMemoryStorage;
pub use model::{
    Checksum, FileInfo, FilePage, FileRef, FileSource, FolderInfo, HistoryPolicy, Limits, ListOptions, NewFile,
    Precondition, RestoreOptions, Settings, SortKey, SortOrder, TrashEntry, TrashPage, Usage, VersionInfo,
};
pub use path::{PathError, PathPrefix, WorkspacePath};
pub use previews::{Thumbnail, ThumbnailSize};
pub use storage::{
    BlobKey, BodyStream, ByteRange, ByteStream, DEFAULT_STORAGE_TIMEOUT, GetResult, ObjectMeta, ObjectStream, Storage,
    WorkspaceStorageBackend,
};
pub use structure::{FolderChange, PlaceOptions};
pub use uri::{UriError, WorkspaceUri};
pub use workspaces::Workspaces;
