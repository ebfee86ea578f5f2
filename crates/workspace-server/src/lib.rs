//! The server: configuration, wiring, and the `serve`, `migrate`, `token` and `gc` commands.

pub mod config;

use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use workspace_copilot::Copilot;
use workspace_core::gc::GcOptions;
use workspace_core::{Db, SessionId, UserId, Workspaces};
use workspace_exec::{ExecConfig, ExecEnv};
use workspace_http::{ApiConfig, AppState, JwtConfig, LinkSigner};

pub use config::ServerConfig;

/// Agent workspace store: a persistent per-user file workspace for AI agents.
#[derive(Debug, Parser)]
#[command(name = "workspace-server", version, about)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate the database, then serve HTTP until SIGINT/SIGTERM.
    Serve,
    /// Run database migrations and exit.
    Migrate {
        /// Roll back the last migration instead.
        #[arg(long)]
        rollback: bool,
    },
    /// Print an HS256 bearer token for a user, signed with the configured (or generated) secret.
    /// Not available when only `WS_JWT_JWKS_URL` is set: tokens then come from the auth server.
    Token {
        /// The user id (`sub`).
        #[arg(long)]
        user: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 24 * 3600)]
        ttl: u64,
    },
    /// Serve the chat tools over MCP (Model Context Protocol) on stdin/stdout for one user; logs
    /// go to stderr. Uses the same database and storage as `serve`.
    Mcp {
        /// The user whose workspace the tools act on.
        #[arg(long)]
        user: String,
        /// The chat session: writes default to `/sessions/{session}/`.
        #[arg(long, default_value = workspace_copilot::DEFAULT_SESSION)]
        session: String,
    },
    /// Purge history (versions, trash) past `WS_HISTORY_DAYS`, events past their retention, and
    /// blobs no file refers to.
    Gc {
        /// Leave unreferenced blobs younger than this many minutes (writes in flight).
        #[arg(long, default_value_t = 60)]
        grace_minutes: u64,
        /// Keep change-feed events this many hours.
        #[arg(long, default_value_t = 7 * 24)]
        event_retention_hours: u64,
    },
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = ServerConfig::from_env()?;
    init_tracing(config.log_json);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate { rollback } => {
            let db = connect(&config).await?;
            if rollback {
                workspace_migrations::rollback(db.conn(), Some(1)).await?;
                println!("rolled back the last migration");
            } else {
                workspace_migrations::migrate(db.conn()).await?;
                println!("database is up to date");
            }
            Ok(())
        }
        Command::Mcp { user, session } => mcp_stdio(config, &user, &session).await,
        Command::Token { user, ttl } => {
            println!("{}", mint_token(&config, &user, ttl)?);
            Ok(())
        }
        Command::Gc { grace_minutes, event_retention_hours } => {
            let workspaces = open(&config).await?;
            let options = GcOptions {
                grace: Duration::from_secs(grace_minutes * 60),
                event_retention: Duration::from_secs(event_retention_hours * 3600),
            };
            let report = workspaces.gc(options).await?;
            println!(
                "gc: scanned {} blobs, removed {} orphans, purged {} history rows and {} events, removed {} \
                 unfinished uploads; removed {} of {} cached thumbnails",
                report.blobs_scanned,
                report.orphan_blobs_deleted,
                report.history_purged,
                report.events_deleted,
                report.incomplete_removed,
                report.orphan_thumbnails_deleted,
                report.thumbnails_scanned
            );
            Ok(())
        }
    }
}

/// HS256 token checking, when a secret is configured (or generated in embedded mode).
fn hs256(config: &ServerConfig) -> anyhow::Result<Option<JwtConfig>> {
    let Some(secret) = &config.jwt_secret else { return Ok(None) };
    Ok(Some(JwtConfig::new(secret, config.jwt_audience.clone())?.with_issuer(config.jwt_issuer.clone())))
}

/// How `serve` checks tokens: HS256, the keys of the JWKS URL, or both. The key cache starts
/// fetching in the background; the server does not wait for the auth server to answer.
fn jwt(config: &ServerConfig) -> anyhow::Result<JwtConfig> {
    let jwks = config.jwt_jwks.clone();
    Ok(match (hs256(config)?, jwks) {
        (Some(hs256), Some(jwks)) => hs256.with_jwks(jwks).context("WS_JWT_JWKS_URL")?,
        (Some(hs256), None) => hs256,
        (None, Some(jwks)) => JwtConfig::jwks_only(jwks, config.jwt_audience.clone())
            .context("WS_JWT_JWKS_URL")?
            .with_issuer(config.jwt_issuer.clone()),
        (None, None) => anyhow::bail!("no way to check bearer tokens: set WS_JWT_SECRET or WS_JWT_JWKS_URL"),
    })
}

/// An HS256 token for `user` valid for `ttl` seconds.
pub fn mint_token(config: &ServerConfig, user: &str, ttl: u64) -> anyhow::Result<String> {
    let user = UserId::new(user)?;
    let exp = chrono_now() + i64::try_from(ttl).context("ttl too large")?;
    let Some(hs256) = hs256(config)? else {
        anyhow::bail!(
            "no HS256 secret to sign with: WS_JWT_SECRET is not set, and with WS_JWT_JWKS_URL alone tokens come from your auth server"
        );
    };
    hs256.mint(&user, exp).context("no HS256 secret to sign with")
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

/// Connects to the database, creating the data directory for SQLite.
async fn connect(config: &ServerConfig) -> anyhow::Result<Db> {
    if config.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    }
    Db::connect_with(&config.database_url, config.database_timeout).await.context("connecting to the database")
}

/// Connects to the database, migrates it (under the database's lock, so replicas starting
/// together are safe) and opens the storage backend: what every serving command needs first.
async fn open(config: &ServerConfig) -> anyhow::Result<Workspaces> {
    let db = connect(config).await?;
    workspace_migrations::migrate(db.conn()).await.context("migrating the database")?;
    let storage = config.storage.build().await.context("opening storage")?.with_timeout(config.storage_timeout);
    Ok(Workspaces::new(db, storage, config.settings)?)
}

async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    let workspaces = open(&config).await?;
    let jwt = jwt(&config)?;
    tracing::info!(
        hs256 = jwt.accepts_hs256(),
        jwks = jwt.jwks().map(|jwks| jwks.url().as_str()),
        issuer = config.jwt_issuer.as_deref(),
        audience = config.jwt_audience.as_deref(),
        "bearer tokens"
    );
    let api = ApiConfig {
        jwt,
        links: LinkSigner::new(&config.link_secret)?,
        max_link_ttl: config.max_link_ttl,
        redirect_downloads: config.redirect_downloads,
        request_limits: config.request_limits,
    };
    let state = AppState::new(workspaces.clone(), api, Some(copilot(&config, workspaces.clone())?));
    let listener =
        tokio::net::TcpListener::bind(&config.bind).await.with_context(|| format!("binding {}", config.bind))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, database = %redact(&config.database_url), "listening");
    println!("workspace-server listening on http://{address}");
    if config.jwt_secret_generated {
        let token = mint_token(&config, "local-user", 30 * 24 * 3600)?;
        println!("\nToken for local-user (valid 30 days):\n{token}\n");
        println!("Try:\n  export TOKEN={token}");
        println!("  curl -F file=@README.md -H \"Authorization: Bearer $TOKEN\" http://{address}/api/workspace/files");
        println!("  curl -H \"Authorization: Bearer $TOKEN\" http://{address}/api/workspace/files");
    }
    // At the signal, end the change-feed streams too: graceful shutdown waits for open responses.
    let feed = workspaces.clone();
    let shutdown = async move {
        shutdown_signal().await;
        feed.close_feed();
    };
    workspace_http::serve(listener, workspace_http::router(state), config.serve_limits, shutdown)
        .await
        .context("serving")?;
    tracing::info!("shutting down: in-flight requests finished");
    workspaces.db().clone().close().await?;
    Ok(())
}

/// The chat tools over this database and storage, with the example blocks (image generation
/// only when `OPENAI_API_KEY` or `OPENAI_BASE_URL` is set). The blocks' fetcher reaches public
/// addresses and the `WS_FETCH_ALLOW` ranges; the image block also trusts its own configured
/// endpoint (`OPENAI_BASE_URL`), and nothing else.
fn copilot(config: &ServerConfig, workspaces: Workspaces) -> anyhow::Result<Copilot> {
    let image_gen = (std::env::var_os("OPENAI_API_KEY").is_some() || std::env::var_os("OPENAI_BASE_URL").is_some())
        .then(workspace_examples::ImageGenConfig::from_env);
    if let Some(image_gen) = &image_gen {
        // Refuse a base URL that could never be fetched now, not at the first run_block.
        workspace_exec::Fetcher::default()
            .trusting_origin(&image_gen.base_url)
            .with_context(|| format!("OPENAI_BASE_URL={}", image_gen.base_url))?;
    }
    let blocks = workspace_examples::registry(image_gen)?;
    let mut exec = ExecConfig::new(std::env::temp_dir());
    exec.fetch.allowed_ranges = config.fetch_allow.clone();
    exec.max_media_bytes = config.max_media_bytes;
    Ok(Copilot::new(workspaces, blocks, ExecEnv::new(exec))?)
}

/// `mcp`: MCP over stdio. stdout carries only protocol messages; everything else goes to stderr.
async fn mcp_stdio(config: ServerConfig, user: &str, session: &str) -> anyhow::Result<()> {
    let user = UserId::new(user)?;
    let session = SessionId::new(session)?;
    let workspaces = open(&config).await?;
    let copilot = copilot(&config, workspaces.clone())?;
    tracing::info!(%user, %session, "serving MCP on stdio");
    workspace_copilot::serve_stdio(copilot, user, session).await?;
    workspaces.db().clone().close().await?;
    Ok(())
}

/// Hides the password of a database URL for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[tokio::test]
    async fn the_token_command_needs_an_hs256_secret() {
        let dir = tempfile::tempdir().unwrap();
        let lookup = |vars: Vec<(&'static str, String)>| {
            ServerConfig::from_lookup(move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()))
                .unwrap()
        };
        let data = ("WS_DATA_DIR", dir.path().display().to_string());
        let url = ("WS_JWT_JWKS_URL", "http://127.0.0.1:9/jwks.json".to_owned());
        let err = mint_token(&lookup(vec![data.clone(), url.clone()]), "u", 60).unwrap_err().to_string();
        assert!(err.contains("WS_JWT_SECRET"), "{err}");
        // With a secret beside the JWKS, minted tokens carry the configured issuer.
        let secret = "0123456789abcdef0123";
        let issuer = "https://auth.example/v1";
        let vars = vec![data, url, ("WS_JWT_SECRET", secret.to_owned()), ("WS_JWT_ISSUER", issuer.to_owned())];
        let token = mint_token(&lookup(vars), "u", 60).unwrap();
        let now = chrono_now();
        let check = |issuer: &str| JwtConfig::new(secret.as_bytes(), None).unwrap().with_issuer(Some(issuer.into()));
        assert_eq!(check(issuer).verify(&token, now).await.unwrap().as_str(), "u");
        assert!(check("https://other.example/v1").verify(&token, now).await.is_err());
    }

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@host/db"), "postgres://***@host/db");
        assert_eq!(redact("sqlite://./data/x.db"), "sqlite://./data/x.db");
    }
}
