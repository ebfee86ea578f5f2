#![doc = include_str!("../README.md")]

pub mod config;
pub mod conformance;
pub mod local;

pub use config::{ConfigError, StorageConfig};
pub use local::LocalStorage;
