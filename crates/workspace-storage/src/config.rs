//! `StorageConfig`: which backend to build, read from the environment (SPEC §11).

use std::path::PathBuf;

use workspace_core::{InMemoryStorage, Storage, StorageError};

use crate::gcs::{GcsCredentials, GcsStorage};
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
    /// A Google Cloud Storage bucket.
    Gcs {
        /// The bucket's name.
        bucket: String,
        /// Another endpoint than the public one (an emulator such as fake-gcs-server).
        endpoint: Option<String>,
        /// How to authenticate.
        credentials: GcsCredentials,
    },
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
    /// A variable the chosen backend needs is not set.
    #[error("{name} must be set: {expected}")]
    Missing {
        /// The variable.
        name: &'static str,
        /// What it must hold.
        expected: &'static str,
    },
    /// Building the backend failed.
    #[error("could not open storage: {0}")]
    Open(#[from] std::io::Error),
    /// The backend refused its configuration.
    #[error("could not open storage: {0}")]
    Backend(#[from] StorageError),
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
    /// - `WS_STORAGE_BACKEND`: `local` (default), `gcs` or `memory`;
    /// - `WS_STORAGE_DIR` (alias `WORKSPACE_STORAGE_DIR`): the local root, default `./data/files`;
    /// - `WS_GCS_BUCKET` (alias `MEDIA_GCS_BUCKET_NAME`): the bucket, required for `gcs`;
    /// - `WS_GCS_ENDPOINT`: an endpoint override (an emulator), default the public endpoint;
    /// - `WS_GCS_CREDENTIALS`: `anonymous`, the path of a service-account JSON key file, or
    ///   unset (or `default`) for application default credentials.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let backend = first_var(&lookup, &["WS_STORAGE_BACKEND"]).unwrap_or_else(|| "local".into());
        match backend.trim().to_ascii_lowercase().as_str() {
            "local" => {
                let root = first_var(&lookup, &["WS_STORAGE_DIR", "WORKSPACE_STORAGE_DIR"])
                    .unwrap_or_else(|| DEFAULT_LOCAL_DIR.into());
                Ok(Self::Local { root: PathBuf::from(root) })
            }
            "memory" => Ok(Self::Memory),
            "gcs" => {
                let bucket =
                    first_var(&lookup, &["WS_GCS_BUCKET", "MEDIA_GCS_BUCKET_NAME"]).ok_or(ConfigError::Missing {
                        name: "WS_GCS_BUCKET",
                        expected: "the bucket name when WS_STORAGE_BACKEND=gcs (alias MEDIA_GCS_BUCKET_NAME)",
                    })?;
                let endpoint = first_var(&lookup, &["WS_GCS_ENDPOINT"]).map(|e| e.trim().to_owned());
                let credentials = GcsCredentials::from_setting(first_var(&lookup, &["WS_GCS_CREDENTIALS"]).as_deref());
                Ok(Self::Gcs { bucket: bucket.trim().to_owned(), endpoint, credentials })
            }
            _ => Err(ConfigError::Invalid {
                name: "WS_STORAGE_BACKEND",
                value: backend,
                expected: "local, gcs or memory",
            }),
        }
    }

    /// Opens the configured backend.
    pub async fn build(&self) -> Result<Storage, ConfigError> {
        match self {
            Self::Local { root } => Ok(Storage::new(LocalStorage::new(root)?)),
            Self::Memory => Ok(Storage::new(InMemoryStorage::new())),
            Self::Gcs { bucket, endpoint, credentials } => {
                Ok(Storage::new(GcsStorage::new(bucket.clone(), endpoint.clone(), credentials).await?))
            }
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
    fn gcs_reads_bucket_endpoint_and_credentials() {
        let cfg = StorageConfig::from_lookup(lookup(&[
            ("WS_STORAGE_BACKEND", "gcs"),
            ("WS_GCS_BUCKET", "media"),
            ("WS_GCS_ENDPOINT", "http://127.0.0.1:80"),
            ("WS_GCS_CREDENTIALS", "anonymous"),
        ]))
        .unwrap();
        assert_eq!(
            cfg,
            StorageConfig::Gcs {
                bucket: "media".into(),
                endpoint: Some("http://127.0.0.1:80".into()),
                credentials: GcsCredentials::Anonymous
            }
        );
        let cfg = StorageConfig::from_lookup(lookup(&[
            ("WS_STORAGE_BACKEND", "GCS"),
            ("WS_GCS_BUCKET", "media"),
            ("WS_GCS_CREDENTIALS", "/etc/ws/sa.json"),
        ]))
        .unwrap();
        assert_eq!(
            cfg,
            StorageConfig::Gcs {
                bucket: "media".into(),
                endpoint: None,
                credentials: GcsCredentials::KeyFile("/etc/ws/sa.json".into())
            }
        );
    }

    #[test]
    fn gcs_defaults_to_application_default_credentials() {
        let cfg =
            StorageConfig::from_lookup(lookup(&[("WS_STORAGE_BACKEND", "gcs"), ("WS_GCS_BUCKET", "media")])).unwrap();
        assert_eq!(
            cfg,
            StorageConfig::Gcs {
                bucket: "media".into(),
                endpoint: None,
                credentials: GcsCredentials::ApplicationDefault
            }
        );
    }

    #[test]
    fn gcs_accepts_the_reference_bucket_alias_and_prefers_our_name() {
        let only_alias =
            StorageConfig::from_lookup(lookup(&[("WS_STORAGE_BACKEND", "gcs"), ("MEDIA_GCS_BUCKET_NAME", "legacy")]))
                .unwrap();
        assert!(matches!(only_alias, StorageConfig::Gcs { ref bucket, .. } if bucket == "legacy"), "{only_alias:?}");
        let both = StorageConfig::from_lookup(lookup(&[
            ("WS_STORAGE_BACKEND", "gcs"),
            ("MEDIA_GCS_BUCKET_NAME", "legacy"),
            ("WS_GCS_BUCKET", "ours"),
        ]))
        .unwrap();
        assert!(matches!(both, StorageConfig::Gcs { ref bucket, .. } if bucket == "ours"), "{both:?}");
    }

    #[test]
    fn gcs_without_a_bucket_names_the_variable() {
        let err = StorageConfig::from_lookup(lookup(&[("WS_STORAGE_BACKEND", "gcs")])).unwrap_err();
        assert!(err.to_string().contains("WS_GCS_BUCKET"), "{err}");
        assert!(err.to_string().contains("MEDIA_GCS_BUCKET_NAME"), "{err}");
    }

    #[test]
    fn unknown_backend_names_the_variable() {
        let err = StorageConfig::from_lookup(lookup(&[("WS_STORAGE_BACKEND", "ftp")])).unwrap_err();
        assert!(err.to_string().contains("WS_STORAGE_BACKEND=ftp"), "{err}");
    }
}
