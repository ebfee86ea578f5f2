//! A real server on loopback for each test, on the test's own database and storage.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod python;

use std::net::SocketAddr;
use std::time::Duration;

use workspace_core::{Limits, Settings, UserId, Workspaces};
use workspace_http::{ApiConfig, AppState, JwtConfig, LinkSigner, RequestLimits};
use workspace_testkit::TestEnv;

pub const SECRET: &[u8] = b"test-secret-test-secret-test-secret";
pub const AUDIENCE: &str = "authenticated";

pub struct Server {
    pub base: String,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub env: TestEnv,
    jwt: JwtConfig,
}

pub fn api_config(request_limits: RequestLimits) -> ApiConfig {
    ApiConfig {
        jwt: JwtConfig::new(SECRET, Some(AUDIENCE.into())).unwrap(),
        links: LinkSigner::new(b"link-secret-link-secret").unwrap(),
        max_link_ttl: Duration::from_secs(3600),
        redirect_downloads: false,
        request_limits,
    }
}

/// The workspaces over `storage` and the test's database, with `limits`.
pub fn workspaces(env: &TestEnv, storage: workspace_core::Storage, limits: Limits) -> Workspaces {
    Workspaces::new(env.db.clone(), storage, Settings { limits, ..Settings::default() }).unwrap()
}

/// reqwest is built without a TLS provider of its own; tests only speak plain HTTP, but the client
/// builder still wants one installed.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Serves `state` on an ephemeral loopback port, with the server's own accept loop.
pub async fn serve(state: AppState) -> SocketAddr {
    serve_with(state, workspace_http::ServeLimits::default()).await
}

/// Serves `state` on an ephemeral loopback port with the given transport limits.
pub async fn serve_with(state: AppState, limits: workspace_http::ServeLimits) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = workspace_http::router(state);
    tokio::spawn(async move {
        workspace_http::serve(listener, router, limits, std::future::pending::<()>()).await.unwrap()
    });
    addr
}

impl Server {
    pub async fn start(env: TestEnv) -> Self {
        Self::with_limits(env, Limits::default()).await
    }

    pub async fn with_limits(env: TestEnv, limits: Limits) -> Self {
        let storage = env.storage.clone();
        Self::with_storage(env, storage, limits).await
    }

    /// A server on `storage` (for example a fault-injecting wrapper of the test's backend).
    pub async fn with_storage(env: TestEnv, storage: workspace_core::Storage, limits: Limits) -> Self {
        // The server's defaults, upload slots included: many clients of one user wait in line.
        Self::with_everything(env, storage, limits, RequestLimits::default()).await
    }

    /// A server with the given per-request limits (event streams, upload slots, body bounds).
    pub async fn with_request_limits(env: TestEnv, request: RequestLimits) -> Self {
        let storage = env.storage.clone();
        Self::with_everything(env, storage, Limits::default(), request).await
    }

    async fn with_everything(
        env: TestEnv,
        storage: workspace_core::Storage,
        limits: Limits,
        request: RequestLimits,
    ) -> Self {
        install_crypto();
        let state = AppState::new(workspaces(&env, storage, limits), api_config(request), None);
        let addr = serve(state).await;
        Self::on(addr, env)
    }

    /// A client of a server already serving at `addr` over `env` (built by the test itself).
    pub fn on(addr: SocketAddr, env: TestEnv) -> Self {
        Self {
            base: format!("http://{addr}"),
            addr,
            client: reqwest::Client::new(),
            env,
            jwt: JwtConfig::new(SECRET, Some(AUDIENCE.into())).unwrap(),
        }
    }

    pub fn token(&self, user: &str) -> String {
        self.jwt.mint(&UserId::new(user).unwrap(), chrono::Utc::now().timestamp() + 600).unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, user: &str, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(self.token(user))
    }

    pub fn post(&self, user: &str, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path)).bearer_auth(self.token(user))
    }

    pub fn delete(&self, user: &str, path: &str) -> reqwest::RequestBuilder {
        self.client.delete(self.url(path)).bearer_auth(self.token(user))
    }

    pub async fn upload(&self, user: &str, parts: &[Part<'_>]) -> reqwest::Response {
        self.upload_to(user, "/api/workspace/files", parts).await
    }

    pub async fn upload_to(&self, user: &str, path: &str, parts: &[Part<'_>]) -> reqwest::Response {
        let (content_type, body) = multipart(parts);
        self.client
            .post(self.url(path))
            .bearer_auth(self.token(user))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Uploads `bytes` as `filename` and returns the file info JSON.
    pub async fn upload_file(&self, user: &str, filename: &str, bytes: &[u8]) -> serde_json::Value {
        let response = self.upload(user, &[Part::file(filename, bytes)]).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        response.json().await.unwrap()
    }
}

/// One multipart part.
pub struct Part<'a> {
    pub name: &'a str,
    pub filename: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

impl<'a> Part<'a> {
    pub fn text(name: &'a str, value: &'a str) -> Self {
        Self { name, filename: None, content_type: None, body: value.as_bytes() }
    }
    pub fn file(filename: &'a str, body: &'a [u8]) -> Self {
        Self { name: "file", filename: Some(filename), content_type: None, body }
    }
    pub fn typed(mut self, content_type: &'a str) -> Self {
        self.content_type = Some(content_type);
        self
    }
}

pub const BOUNDARY: &str = "----workspace-test-boundary-7d1f";

/// A multipart/form-data body built by hand, so tests control every byte.
pub fn multipart(parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{}\"", part.name);
        if let Some(filename) = part.filename {
            disposition.push_str(&format!("; filename=\"{}\"", filename.replace('\\', "\\\\").replace('"', "\\\"")));
        }
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(b"\r\n");
        if let Some(ct) = part.content_type {
            body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(part.body);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}
