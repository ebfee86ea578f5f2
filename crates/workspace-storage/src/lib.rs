#![doc = include_str!("../README.md")]

pub mod config;
pub mod conformance;
pub mod gcs;
pub mod local;

pub use config::{ConfigError, StorageConfig};
pub use gcs::{GcsCredentials, GcsStorage};
pub use local::LocalStorage;
