//! Server configuration from the environment (SPEC §11). Every variable is listed in
//! `.env.default`. With nothing set, the server runs embedded: SQLite and files under `./data`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use sha2::{Digest, Sha256};
use workspace_core::{HistoryPolicy, Limits, Settings};
use workspace_exec::IpRange;
use workspace_http::{JwksOptions, RequestLimits, ServeLimits};
use workspace_storage::StorageConfig;
use workspace_storage::config::first_var;

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Directory for the embedded defaults (database, files, generated secret).
    pub data_dir: PathBuf,
    /// Database URL.
    pub database_url: String,
    /// Storage backend.
    pub storage: StorageConfig,
    /// Listen address.
    pub bind: String,
    /// HS256 secret for bearer tokens; `None` when only the JWKS verifies them (HS256 is then
    /// refused).
    pub jwt_secret: Option<Vec<u8>>,
    /// Whether the secret was generated (embedded mode) rather than configured.
    pub jwt_secret_generated: bool,
    /// Required `aud` claim, if any.
    pub jwt_audience: Option<String>,
    /// Required `iss` claim, if any (HS256 and JWKS tokens alike).
    pub jwt_issuer: Option<String>,
    /// Where the keys of ES256, RS256 and EdDSA tokens come from, if they are accepted.
    pub jwt_jwks: Option<JwksOptions>,
    /// Key for signed download links.
    pub link_secret: Vec<u8>,
    /// Size limits, history retention and the inline threshold.
    pub settings: Settings,
    /// Deadline of every storage call.
    pub storage_timeout: Duration,
    /// Longest wait for a database connection.
    pub database_timeout: Duration,
    /// Longest signed-link lifetime.
    pub max_link_ttl: Duration,
    /// Redirect downloads to backend-signed URLs when possible.
    pub redirect_downloads: bool,
    /// `json` for JSON logs.
    pub log_json: bool,
    /// Transport limits: header size, header read, body idle and write idle timeouts.
    pub serve_limits: ServeLimits,
    /// Request body bound of non-upload routes, concurrent uploads per user.
    pub request_limits: RequestLimits,
    /// Non-public address ranges the blocks' fetcher may reach anyway (`WS_FETCH_ALLOW`).
    pub fetch_allow: Vec<IpRange>,
    /// Largest media file `store_media_file` handles, fetched URLs included (`WS_MAX_MEDIA_BYTES`).
    pub max_media_bytes: u64,
}

fn parse_secs(name: &str, value: &str) -> anyhow::Result<Duration> {
    let secs: u64 = value.trim().parse().with_context(|| format!("{name}={value}: expected whole seconds"))?;
    if secs == 0 {
        bail!("{name}={value}: must be at least 1 second");
    }
    Ok(Duration::from_secs(secs))
}

/// Parses sizes such as `100MiB`, `250MB`, `1GiB`, `4096`.
pub fn parse_size(name: &str, value: &str) -> anyhow::Result<u64> {
    let v = value.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(split);
    let n: u64 = digits.parse().with_context(|| format!("{name}={value}: expected a size like 100MiB"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "kib" | "k" => 1024,
        "mb" => 1000 * 1000,
        "mib" | "m" => 1024 * 1024,
        "gb" => 1000 * 1000 * 1000,
        "gib" | "g" => 1024 * 1024 * 1024,
        other => bail!("{name}={value}: unknown unit `{other}` (use B, KiB, MiB, GiB, KB, MB or GB)"),
    };
    n.checked_mul(factor).with_context(|| format!("{name}={value}: too large"))
}

/// Parses a list of addresses or CIDR ranges separated by commas or spaces, such as
/// `127.0.0.1/32, 10.0.0.0/8`; an empty list is allowed.
pub fn parse_ranges(name: &str, value: &str) -> anyhow::Result<Vec<IpRange>> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|item| !item.is_empty())
        .map(|item| item.parse::<IpRange>().with_context(|| format!("{name}={value}")))
        .collect()
}

fn parse_bool(name: &str, value: &str) -> anyhow::Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => bail!("{name}={value}: expected true or false"),
    }
}

impl ServerConfig {
    /// Reads the process environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let var = |names: &[&str]| first_var(&lookup, names);
        let data_dir = PathBuf::from(var(&["WS_DATA_DIR"]).unwrap_or_else(|| "./data".into()));
        let database_url = var(&["WS_DATABASE_URL", "DATABASE_URL"])
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data_dir.join("workspace.db").display()));
        // Local files default to `{data_dir}/files` unless a directory (or its alias) is set.
        let default_files = data_dir.join("files").display().to_string();
        let dir_configured = var(&["WS_STORAGE_DIR", "WORKSPACE_STORAGE_DIR"]).is_some();
        let storage = StorageConfig::from_lookup(|name| {
            lookup(name).or_else(|| (name == "WS_STORAGE_DIR" && !dir_configured).then(|| default_files.clone()))
        })?;
        let secs = |name: &str, default: Duration| -> anyhow::Result<Duration> {
            var(&[name]).map(|v| parse_secs(name, &v)).transpose().map(|v| v.unwrap_or(default))
        };
        let jwt_jwks = jwks_options(&var, &secs)?;
        let (jwt_secret, jwt_secret_generated) = match (var(&["WS_JWT_SECRET", "SUPABASE_JWT_SECRET"]), &jwt_jwks) {
            (Some(secret), _) => (Some(secret.into_bytes()), false),
            // A JWKS and no secret: HS256 is off, and no generated secret becomes a way in.
            (None, Some(_)) => (None, false),
            (None, None) => (Some(load_or_create_secret(&data_dir.join("jwt-secret"))?), true),
        };
        if jwt_secret.as_ref().is_some_and(|secret| secret.len() < 16) {
            bail!("WS_JWT_SECRET must be at least 16 bytes long");
        }
        let link_secret = match (var(&["WS_LINK_SECRET"]), &jwt_secret) {
            (Some(secret), _) => secret.into_bytes(),
            // Derived from the JWT secret, so replicas that share it agree on links too.
            (None, Some(jwt_secret)) => {
                Sha256::digest([b"workspace-signed-links\n".as_slice(), jwt_secret].concat()).to_vec()
            }
            // JWKS only: no shared secret to derive from, so a key generated once and kept.
            (None, None) => load_or_create_secret(&data_dir.join("link-secret"))?,
        };
        let defaults = Limits::default();
        let limits = Limits {
            max_file_size: var(&["WS_MAX_FILE_SIZE"])
                .map(|v| parse_size("WS_MAX_FILE_SIZE", &v))
                .transpose()?
                .unwrap_or(defaults.max_file_size),
            quota_bytes: var(&["WS_QUOTA_BYTES"])
                .map(|v| parse_size("WS_QUOTA_BYTES", &v))
                .transpose()?
                .unwrap_or(defaults.quota_bytes),
        };
        let history_defaults = HistoryPolicy::default();
        let whole = |name: &str, default: u32| -> anyhow::Result<u32> {
            match var(&[name]) {
                Some(v) => v.trim().parse().with_context(|| format!("{name}={v}: expected a whole number")),
                None => Ok(default),
            }
        };
        let settings = Settings {
            limits,
            history: HistoryPolicy {
                days: whole("WS_HISTORY_DAYS", history_defaults.days)?,
                max_versions: whole("WS_MAX_VERSIONS", history_defaults.max_versions)?,
            },
            inline_max_bytes: var(&["WS_INLINE_MAX_BYTES"])
                .map(|v| parse_size("WS_INLINE_MAX_BYTES", &v))
                .transpose()?
                .unwrap_or(Settings::default().inline_max_bytes),
            grep_max_file_bytes: var(&["WS_GREP_MAX_FILE_BYTES"])
                .map(|v| parse_size("WS_GREP_MAX_FILE_BYTES", &v))
                .transpose()?
                .unwrap_or(Settings::default().grep_max_file_bytes),
            thumbnail_max_pixels: match var(&["WS_THUMBNAIL_MAX_PIXELS"]) {
                Some(v) => v.trim().parse().map_err(|_| {
                    anyhow!(
                        "WS_THUMBNAIL_MAX_PIXELS={v}: expected a whole number of pixels from 1 to {}",
                        workspace_core::previews::MAX_MAX_PIXELS
                    )
                })?,
                None => Settings::default().thumbnail_max_pixels,
            },
        };
        settings.validate().map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_start_matches("invalid input: ")))?;
        let max_link_ttl = Duration::from_secs(
            var(&["WS_MAX_LINK_TTL_SECS"])
                .map(|v| v.trim().parse().with_context(|| format!("WS_MAX_LINK_TTL_SECS={v}: expected seconds")))
                .transpose()?
                .unwrap_or(7 * 24 * 3600),
        );
        let bytes = |name: &str, default: usize| -> anyhow::Result<usize> {
            match var(&[name]) {
                Some(v) => usize::try_from(parse_size(name, &v)?).with_context(|| format!("{name}={v}: too large")),
                None => Ok(default),
            }
        };
        let serve_defaults = ServeLimits::default();
        let serve_limits = ServeLimits {
            header_read_timeout: secs("WS_HEADER_READ_TIMEOUT_SECS", serve_defaults.header_read_timeout)?,
            max_header_bytes: bytes("WS_MAX_HEADER_BYTES", serve_defaults.max_header_bytes)?,
            body_idle_timeout: secs("WS_BODY_IDLE_TIMEOUT_SECS", serve_defaults.body_idle_timeout)?,
            write_idle_timeout: secs("WS_WRITE_IDLE_TIMEOUT_SECS", serve_defaults.write_idle_timeout)?,
        };
        if serve_limits.max_header_bytes < 8192 {
            bail!("WS_MAX_HEADER_BYTES must be at least 8KiB");
        }
        let request_defaults = RequestLimits::default();
        let count = |name: &str, min: usize, default: usize| -> anyhow::Result<usize> {
            match var(&[name]) {
                Some(v) => match v.trim().parse::<usize>() {
                    Ok(n) if n >= min => Ok(n),
                    _ => bail!("{name}={v}: expected a whole number of at least {min}"),
                },
                None => Ok(default),
            }
        };
        let request_limits = RequestLimits {
            max_body_bytes: bytes("WS_MAX_REQUEST_BODY", request_defaults.max_body_bytes)?,
            max_concurrent_uploads: count("WS_MAX_CONCURRENT_UPLOADS", 1, request_defaults.max_concurrent_uploads)?,
            max_queued_uploads: count("WS_MAX_QUEUED_UPLOADS", 0, request_defaults.max_queued_uploads)?,
            upload_queue_timeout: secs("WS_UPLOAD_QUEUE_TIMEOUT_SECS", request_defaults.upload_queue_timeout)?,
            max_event_streams: count("WS_MAX_EVENT_STREAMS", 1, request_defaults.max_event_streams)?,
            event_keep_alive: secs("WS_EVENT_KEEP_ALIVE_SECS", request_defaults.event_keep_alive)?,
        };
        let storage_timeout = secs("WS_STORAGE_TIMEOUT_SECS", workspace_core::DEFAULT_STORAGE_TIMEOUT)?;
        let database_timeout = secs("WS_DATABASE_TIMEOUT_SECS", workspace_core::db::DEFAULT_DATABASE_TIMEOUT)?;
        Ok(Self {
            data_dir,
            database_url,
            storage,
            bind: var(&["WS_BIND"]).unwrap_or_else(|| "127.0.0.1:8080".into()),
            jwt_secret,
            jwt_secret_generated,
            jwt_audience: var(&["WS_JWT_AUDIENCE"]),
            jwt_issuer: var(&["WS_JWT_ISSUER"]),
            jwt_jwks,
            link_secret,
            settings,
            storage_timeout,
            database_timeout,
            max_link_ttl,
            redirect_downloads: var(&["WS_REDIRECT_DOWNLOADS"])
                .map(|v| parse_bool("WS_REDIRECT_DOWNLOADS", &v))
                .transpose()?
                .unwrap_or(false),
            log_json: var(&["WS_LOG_FORMAT"]).is_some_and(|v| v.eq_ignore_ascii_case("json")),
            serve_limits,
            request_limits,
            fetch_allow: var(&["WS_FETCH_ALLOW"])
                .map(|v| parse_ranges("WS_FETCH_ALLOW", &v))
                .transpose()?
                .unwrap_or_default(),
            max_media_bytes: var(&["WS_MAX_MEDIA_BYTES"])
                .map(|v| parse_size("WS_MAX_MEDIA_BYTES", &v))
                .transpose()?
                .unwrap_or(workspace_exec::context::DEFAULT_MAX_MEDIA_BYTES),
        })
    }
}

/// The JWKS settings: `WS_JWT_JWKS_URL` and its timers, which make no sense without it.
fn jwks_options(
    var: &impl Fn(&[&str]) -> Option<String>,
    secs: &impl Fn(&str, Duration) -> anyhow::Result<Duration>,
) -> anyhow::Result<Option<JwksOptions>> {
    const REFRESH: &str = "WS_JWT_JWKS_REFRESH_SECS";
    const MIN_REFRESH: &str = "WS_JWT_JWKS_MIN_REFRESH_SECS";
    let Some(url) = var(&["WS_JWT_JWKS_URL"]) else {
        if let Some(name) = [REFRESH, MIN_REFRESH].into_iter().find(|name| var(&[name]).is_some()) {
            bail!("{name} is set but WS_JWT_JWKS_URL is not: set the JWKS URL or remove {name}");
        }
        return Ok(None);
    };
    let mut options = JwksOptions::new(&url).map_err(|e| anyhow!("WS_JWT_JWKS_URL: {e}"))?;
    options.refresh_interval = secs(REFRESH, options.refresh_interval)?;
    options.min_refresh_interval = secs(MIN_REFRESH, options.min_refresh_interval)?;
    if options.min_refresh_interval > options.refresh_interval {
        bail!(
            "{MIN_REFRESH}={} is longer than {REFRESH}={}: refreshes for unknown keys cannot be rarer than the timer",
            options.min_refresh_interval.as_secs(),
            options.refresh_interval.as_secs()
        );
    }
    Ok(Some(options))
}

/// Reads the secret kept in `path`, creating a random one (mode 0600) the first time.
fn load_or_create_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim();
        if existing.len() >= 32 {
            return Ok(existing.as_bytes().to_vec());
        }
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut file, secret.as_bytes())?;
    Ok(secret.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> anyhow::Result<ServerConfig> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ServerConfig::from_lookup(move |name| map.get(name).cloned())
    }

    #[test]
    fn embedded_defaults_live_under_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let cfg = config(&[("WS_DATA_DIR", data.to_str().unwrap())]).unwrap();
        assert_eq!(cfg.database_url, format!("sqlite://{}?mode=rwc", data.join("workspace.db").display()));
        assert_eq!(cfg.storage, StorageConfig::Local { root: data.join("files") });
        assert!(cfg.jwt_secret_generated);
        assert!(cfg.jwt_secret.is_some());
        assert_eq!((cfg.jwt_jwks.as_ref(), cfg.jwt_issuer.as_ref(), cfg.jwt_audience.as_ref()), (None, None, None));
        assert_eq!(cfg.bind, "127.0.0.1:8080");
        assert_eq!(cfg.settings, Settings::default());
        assert_eq!(cfg.storage_timeout, Duration::from_secs(30));
        // The generated secret is kept: a restart accepts the tokens it printed before.
        let again = config(&[("WS_DATA_DIR", data.to_str().unwrap())]).unwrap();
        assert_eq!(again.jwt_secret, cfg.jwt_secret);
        assert_eq!(again.link_secret, cfg.link_secret);
    }

    #[test]
    fn explicit_values_and_aliases() {
        let cfg = config(&[
            ("DATABASE_URL", "postgres://db/x"),
            ("WS_JWT_SECRET", "0123456789abcdef0123"),
            ("WS_MAX_FILE_SIZE", "10MiB"),
            ("WS_QUOTA_BYTES", "1GB"),
            ("WORKSPACE_STORAGE_DIR", "/srv/files"),
        ])
        .unwrap();
        assert_eq!(cfg.database_url, "postgres://db/x");
        assert!(!cfg.jwt_secret_generated);
        assert_eq!(cfg.settings.limits, Limits { max_file_size: 10 * 1024 * 1024, quota_bytes: 1_000_000_000 });
        assert_eq!(cfg.storage, StorageConfig::Local { root: "/srv/files".into() });
    }

    #[test]
    fn protective_limits_are_configurable() {
        let secret = ("WS_JWT_SECRET", "0123456789abcdef0123");
        let cfg = config(&[secret]).unwrap();
        assert_eq!(cfg.serve_limits, ServeLimits::default());
        assert_eq!(cfg.request_limits, RequestLimits::default());
        let cfg = config(&[
            secret,
            ("WS_HEADER_READ_TIMEOUT_SECS", "5"),
            ("WS_BODY_IDLE_TIMEOUT_SECS", "7"),
            ("WS_WRITE_IDLE_TIMEOUT_SECS", "9"),
            ("WS_MAX_HEADER_BYTES", "16KiB"),
            ("WS_MAX_REQUEST_BODY", "1MiB"),
            ("WS_MAX_CONCURRENT_UPLOADS", "2"),
        ])
        .unwrap();
        assert_eq!(
            cfg.serve_limits,
            ServeLimits {
                header_read_timeout: Duration::from_secs(5),
                max_header_bytes: 16 * 1024,
                body_idle_timeout: Duration::from_secs(7),
                write_idle_timeout: Duration::from_secs(9),
            }
        );
        assert_eq!(
            cfg.request_limits,
            RequestLimits { max_body_bytes: 1024 * 1024, max_concurrent_uploads: 2, ..RequestLimits::default() }
        );
        let err = config(&[secret, ("WS_MAX_CONCURRENT_UPLOADS", "0")]).unwrap_err();
        assert!(err.to_string().contains("WS_MAX_CONCURRENT_UPLOADS=0"), "{err}");
        let err = config(&[secret, ("WS_BODY_IDLE_TIMEOUT_SECS", "0")]).unwrap_err();
        assert!(err.to_string().contains("WS_BODY_IDLE_TIMEOUT_SECS=0"), "{err}");
        let err = config(&[secret, ("WS_MAX_HEADER_BYTES", "1KiB")]).unwrap_err();
        assert!(err.to_string().contains("WS_MAX_HEADER_BYTES"), "{err}");
        // The change feed's streams: the per-user bound and the keep-alive interval.
        let cfg = config(&[secret, ("WS_MAX_EVENT_STREAMS", "3"), ("WS_EVENT_KEEP_ALIVE_SECS", "20")]).unwrap();
        assert_eq!(
            (cfg.request_limits.max_event_streams, cfg.request_limits.event_keep_alive),
            (3, Duration::from_secs(20))
        );
        assert_eq!(config(&[secret]).unwrap().request_limits.max_event_streams, 8);
        let err = config(&[secret, ("WS_MAX_EVENT_STREAMS", "0")]).unwrap_err();
        assert!(err.to_string().contains("WS_MAX_EVENT_STREAMS=0"), "{err}");
        let err = config(&[secret, ("WS_EVENT_KEEP_ALIVE_SECS", "soon")]).unwrap_err();
        assert!(err.to_string().contains("WS_EVENT_KEEP_ALIVE_SECS=soon"), "{err}");
    }

    #[test]
    fn history_and_inline_settings_are_read_and_checked() {
        let secret = ("WS_JWT_SECRET", "0123456789abcdef0123");
        let cfg = config(&[
            secret,
            ("WS_HISTORY_DAYS", "7"),
            ("WS_MAX_VERSIONS", "3"),
            ("WS_INLINE_MAX_BYTES", "0"),
            ("WS_STORAGE_TIMEOUT_SECS", "5"),
            ("WS_GREP_MAX_FILE_BYTES", "1MiB"),
            ("WS_THUMBNAIL_MAX_PIXELS", "1000000"),
        ])
        .unwrap();
        assert_eq!(cfg.settings.thumbnail_max_pixels, 1_000_000);
        assert_eq!(config(&[secret]).unwrap().settings.thumbnail_max_pixels, 50_000_000, "default 50 MP");
        assert_eq!(cfg.settings.history, HistoryPolicy { days: 7, max_versions: 3 });
        assert_eq!(cfg.settings.inline_max_bytes, 0);
        assert_eq!(cfg.settings.grep_max_file_bytes, 1024 * 1024);
        assert_eq!(config(&[secret]).unwrap().settings.grep_max_file_bytes, 10 * 1024 * 1024, "default 10 MiB");
        assert_eq!(cfg.storage_timeout, Duration::from_secs(5));
        for (name, value) in [
            ("WS_HISTORY_DAYS", "-1"),
            ("WS_HISTORY_DAYS", "thirty"),
            ("WS_HISTORY_DAYS", "100000"),
            ("WS_MAX_VERSIONS", "0"),
            ("WS_MAX_VERSIONS", "many"),
            ("WS_INLINE_MAX_BYTES", "2MiB"),
            ("WS_STORAGE_TIMEOUT_SECS", "0"),
            ("WS_THUMBNAIL_MAX_PIXELS", "0"),
            ("WS_THUMBNAIL_MAX_PIXELS", "50MP"),
            ("WS_THUMBNAIL_MAX_PIXELS", "-5"),
            ("WS_THUMBNAIL_MAX_PIXELS", "2000000000"),
        ] {
            let err = config(&[secret, (name, value)]).unwrap_err();
            assert!(err.to_string().contains(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn fetch_allow_list_is_parsed_and_names_itself_when_wrong() {
        let secret = ("WS_JWT_SECRET", "0123456789abcdef0123");
        assert!(config(&[secret]).unwrap().fetch_allow.is_empty(), "nothing private is reachable by default");
        let cfg = config(&[secret, ("WS_FETCH_ALLOW", "127.0.0.1/32, 10.0.0.0/8 fd00::/8,192.168.1.5")]).unwrap();
        let shown: Vec<String> = cfg.fetch_allow.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["127.0.0.1/32", "10.0.0.0/8", "fd00::/8", "192.168.1.5/32"]);
        for bad in ["localhost", "10.0.0.0/33", "127.0.0.1/8x", "10.0.0.0/8;rm"] {
            let err = config(&[secret, ("WS_FETCH_ALLOW", bad)]).unwrap_err();
            let text = format!("{err:#}");
            assert!(text.contains(&format!("WS_FETCH_ALLOW={bad}")), "{text}");
            assert!(text.contains("expected an address and a prefix length"), "{text}");
        }
    }

    #[test]
    fn jwks_alone_turns_hs256_off_and_keeps_a_link_key() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let vars = [
            ("WS_DATA_DIR", data.to_str().unwrap()),
            // Operator-configured: loopback and plain http are fine.
            ("WS_JWT_JWKS_URL", "http://127.0.0.1:9999/auth/v1/.well-known/jwks.json"),
            ("WS_JWT_ISSUER", "http://127.0.0.1:9999/auth/v1"),
            ("WS_JWT_AUDIENCE", "authenticated"),
        ];
        let cfg = config(&vars).unwrap();
        let jwks = cfg.jwt_jwks.as_ref().unwrap();
        assert_eq!(jwks.url.as_str(), "http://127.0.0.1:9999/auth/v1/.well-known/jwks.json");
        assert_eq!(jwks.refresh_interval, JwksOptions::DEFAULT_REFRESH_INTERVAL);
        assert_eq!(jwks.min_refresh_interval, JwksOptions::DEFAULT_MIN_REFRESH_INTERVAL);
        assert_eq!(cfg.jwt_issuer.as_deref(), Some("http://127.0.0.1:9999/auth/v1"));
        assert_eq!(cfg.jwt_audience.as_deref(), Some("authenticated"));
        assert_eq!(cfg.jwt_secret, None, "no generated HS256 secret beside a JWKS");
        assert!(!cfg.jwt_secret_generated);
        assert!(!data.join("jwt-secret").exists());
        // Signed links still need a key: generated once, kept, the same after a restart.
        assert!(data.join("link-secret").exists());
        assert_eq!(config(&vars).unwrap().link_secret, cfg.link_secret);

        // Both: the secret keeps HS256 on and keys links as before.
        let both = config(&[vars[1], ("WS_JWT_SECRET", "0123456789abcdef0123")]).unwrap();
        assert_eq!(both.jwt_secret.as_deref(), Some(b"0123456789abcdef0123".as_slice()));
        let hs256_only = config(&[("WS_JWT_SECRET", "0123456789abcdef0123")]).unwrap();
        assert_eq!(both.link_secret, hs256_only.link_secret);

        let tuned = config(&[
            ("WS_JWT_JWKS_URL", "https://project.supabase.co/auth/v1/.well-known/jwks.json"),
            ("WS_JWT_JWKS_REFRESH_SECS", "600"),
            ("WS_JWT_JWKS_MIN_REFRESH_SECS", "60"),
            ("WS_LINK_SECRET", "link-secret-link-secret"),
        ])
        .unwrap();
        let jwks = tuned.jwt_jwks.unwrap();
        assert_eq!(
            (jwks.refresh_interval, jwks.min_refresh_interval),
            (Duration::from_secs(600), Duration::from_secs(60))
        );
        assert_eq!(tuned.link_secret, b"link-secret-link-secret");
    }

    #[test]
    fn bad_jwks_settings_are_refused_naming_the_variable() {
        let url = ("WS_JWT_JWKS_URL", "http://127.0.0.1:9999/jwks.json");
        type Vars<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(Vars, &[&str])] = &[
            (&[("WS_JWT_JWKS_URL", "ftp://auth.internal/jwks.json")], &["WS_JWT_JWKS_URL", "http and https"]),
            (&[("WS_JWT_JWKS_URL", "auth.internal/jwks.json")], &["WS_JWT_JWKS_URL"]),
            (&[("WS_JWT_JWKS_URL", "file:///etc/jwks.json")], &["WS_JWT_JWKS_URL"]),
            (&[url, ("WS_JWT_JWKS_REFRESH_SECS", "0")], &["WS_JWT_JWKS_REFRESH_SECS=0"]),
            (&[url, ("WS_JWT_JWKS_MIN_REFRESH_SECS", "soon")], &["WS_JWT_JWKS_MIN_REFRESH_SECS=soon"]),
            (
                &[url, ("WS_JWT_JWKS_REFRESH_SECS", "60"), ("WS_JWT_JWKS_MIN_REFRESH_SECS", "120")],
                &["WS_JWT_JWKS_MIN_REFRESH_SECS=120", "WS_JWT_JWKS_REFRESH_SECS=60"],
            ),
            // Timers without a URL are a mistake, not a no-op.
            (&[("WS_JWT_JWKS_REFRESH_SECS", "60")], &["WS_JWT_JWKS_REFRESH_SECS", "WS_JWT_JWKS_URL is not"]),
            (&[("WS_JWT_JWKS_MIN_REFRESH_SECS", "5")], &["WS_JWT_JWKS_MIN_REFRESH_SECS", "WS_JWT_JWKS_URL is not"]),
            // A JWKS does not excuse a weak secret.
            (&[url, ("WS_JWT_SECRET", "short")], &["WS_JWT_SECRET", "at least 16 bytes"]),
        ];
        for (vars, expected) in cases {
            let dir = tempfile::tempdir().unwrap();
            let mut vars = vars.to_vec();
            vars.push(("WS_DATA_DIR", dir.path().to_str().unwrap()));
            let err = config(&vars).unwrap_err().to_string();
            for needle in *expected {
                assert!(err.contains(needle), "{vars:?}: {err}");
            }
        }
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = config(&[("WS_JWT_SECRET", "0123456789abcdef0123"), ("WS_MAX_FILE_SIZE", "ten")]).unwrap_err();
        assert!(err.to_string().contains("WS_MAX_FILE_SIZE=ten"), "{err}");
        let err = config(&[("WS_JWT_SECRET", "0123456789abcdef0123"), ("WS_QUOTA_BYTES", "5PB")]).unwrap_err();
        assert!(err.to_string().contains("unknown unit"), "{err}");
        let err = config(&[("WS_JWT_SECRET", "short")]).unwrap_err();
        assert!(err.to_string().contains("at least 16 bytes"), "{err}");
    }
}
