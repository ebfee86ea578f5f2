#![doc = include_str!("../README.md")]

pub mod db;
pub mod entity;
pub mod error;
pub mod gc;
pub mod ids;
pub mod manager;
pub mod memory;
mod meter;
pub mod mime;
pub mod model;
pub mod path;
pub mod storage;
pub mod uri;

pub use db::Db;
pub use error::{Result, StorageError, WorkspaceError};
pub use ids::{FileId, SessionId, UserId, WorkspaceId};
pub use manager::WorkspaceManager;
pub use memory::InMemoryStorage;
pub use model::{FileInfo, FilePage, FileSource, Limits, NewFile, Usage};
pub use path::{PathError, PathPrefix, WorkspacePath};
pub use storage::{
    BlobKey, BodyStream, ByteRange, ByteStream, GetResult, ObjectMeta, Storage, WorkspaceStorageBackend,
};
pub use uri::{UriError, WorkspaceUri};
