#![doc = include_str!("../README.md")]

pub mod address;
pub mod block;
pub mod context;
pub mod data_uri;
pub mod error;
pub mod fetch;
pub mod media;
mod temp;

pub use address::{IpRange, non_public_reason};
pub use block::{Block, BlockRegistry, parse_input};
pub use context::{ExecConfig, ExecEnv, ExecutionContext, GraphExecId, GraphRun};
pub use data_uri::{DataUri, DataUriError};
pub use error::ExecError;
pub use fetch::{
    FetchConfig, FetchError, FetchRequest, FetchResponse, FetchStream, Fetcher, Resolver, StaticResolver,
    SystemResolver,
};
pub use media::{MediaFile, MediaKind, MediaReturnFormat, store_media_file};
pub use temp::DEFAULT_TEMP_DIR_CAP;
