//! `StorageConfig`: which backend to build, read from the environment (SPEC §11).

use std::path::PathBuf;

use workspace_core::{InMemoryStorage, Storage};

use crate::local::LocalStorage;

/// Where blobs live.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageConfig {
    /// Files under a directory.
    Local {
        /// The root directory.
        root: PathBuf,
    },
    /// Process memory; for tests and throwaway demos only.
    Memory,
}

/// A configuration value that could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A variable held a value outside its allowed set.
    #[error("{name}={value} is not valid: {expected}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What it held.
        value: String,
        /// What it may hold.
        expected: &'static str,
    },
    /// Building the backend failed.
    #[error("could not open storage: {0}")]
    Open(#[from] std::io::Error),
}

/// Default directory for local blobs.
pub const DEFAULT_LOCAL_DIR: &str = "./data/files";

/// The first of `names` that is set to a non-empty value.
pub fn first_var(lookup: &impl Fn(&str) -> Option<String>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| lookup(name).filter(|v| !v.trim().is_empty()))
}

impl StorageConfig {
    /// Reads the process environment. See [`StorageConfig::from_lookup`].
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`:
    /// - `WS_STORAGE_BACKEND`: `local` (default) or `memory`;
    /// - `WS_STORAGE_DIR` (alias `WORKSPACE_STORAGE_DIR`): the local root, default `./data/files`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let backend = first_var(&lookup, &["WS_STORAGE_BACKEND"]).unwrap_or_else(|| "local".into());
        match backend.trim().to_ascii_lowercase().as_str() {
            "local" => {
                let root = first_var(&lookup, &["WS_STORAGE_DIR", "WORKSPACE_STORAGE_DIR"])
                    .unwrap_or_else(|| DEFAULT_LOCAL_DIR.into());
                Ok(Self::Local { root: PathBuf::from(root) })
            }
            "memory" => Ok(Self::Memory),
            _ => Err(ConfigError::Invalid { name: "WS_STORAGE_BACKEND", value: backend, expected: "local or memory" }),
        }
    }

    /// Opens the configured backend.
    pub async fn build(&self) -> Result<Storage, ConfigError> {
        match self {
            Self::Local { root } => Ok(Storage::new(LocalStorage::new(root)?)),
            Self::Memory => Ok(Storage::new(InMemoryStorage::new())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_to_local_under_data() {
        let cfg = StorageConfig::from_lookup(lookup(&[])).unwrap();
        assert_eq!(cfg, StorageConfig::Local { root: DEFAULT_LOCAL_DIR.into() });
    }

    #[test]
    fn accepts_the_reference_alias_and_prefers_our_name() {
        let cfg = StorageConfig::from_lookup(lookup(&[("WORKSPACE_STORAGE_DIR", "/srv/a")])).unwrap();
        assert_eq!(cfg, StorageConfig::Local { root: "/srv/a".into() });
        let cfg =
            StorageConfig::from_lookup(lookup(&[("WORKSPACE_STORAGE_DIR", "/srv/a"), ("WS_STORAGE_DIR", "/srv/b")]))
                .unwrap();
        assert_eq!(cfg, StorageConfig::Local { root: "/srv/b".into() });
    }

    #[test]
    fn unknown_backend_names_the_variable() {
        let err = StorageConfig::from_lookup(lookup(&[("WS_STORAGE_BACKEND", "ftp")])).unwrap_err();
        assert!(err.to_string().contains("WS_STORAGE_BACKEND=ftp"), "{err}");
    }
}
