//! Asymmetric bearer tokens (ES256, RS256, EdDSA) checked against a real JWKS server on loopback,
//! with keys generated here and tokens signed by ring (not by the library that verifies them):
//! every route takes them; keys rotate in and out; the auth server may be down at start or fail
//! later; the classic attacks (`alg: none`, HS256 with a public key as secret, mismatched key
//! types, keys brought by the token) are refused; a flood of made-up `kid`s costs the auth server
//! one request per interval; the fetch itself is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{AUDIENCE, SECRET, api_config, install_crypto, serve};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};
use workspace_copilot::Copilot;
use workspace_core::{Limits, UserId};
use workspace_exec::{BlockRegistry, ExecConfig, ExecEnv};
use workspace_http::{ApiConfig, AppState, AuthError, JwksOptions, JwtConfig, RequestLimits};
use workspace_testkit::{DbKind, TestEnv, db_tests};

const ISSUER: &str = "http://127.0.0.1/auth/v1";
/// The gap between refreshes for unknown `kid`s in most tests; sleeping past it allows one more.
const MIN_REFRESH: Duration = Duration::from_millis(200);

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

// ---------------------------------------------------------------------------------------------
// Keys and tokens, signed with ring.

enum Pair {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A key pair, its public JWK and the `alg` its tokens carry.
struct TestKey {
    kid: String,
    alg: &'static str,
    pair: Pair,
    jwk: Value,
}

impl TestKey {
    fn ec(kid: &str, alg: &'static str, crv: &str, ring_alg: &'static signature::EcdsaSigningAlgorithm) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(ring_alg, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(ring_alg, pkcs8.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let half = (point.len() - 1) / 2;
        let jwk = json!({
            "kty": "EC", "crv": crv, "kid": kid, "alg": alg, "use": "sig",
            "x": b64(&point[1..=half]), "y": b64(&point[1 + half..]),
        });
        Self { kid: kid.into(), alg, pair: Pair::Ec(pair), jwk }
    }

    fn es256(kid: &str) -> Self {
        Self::ec(kid, "ES256", "P-256", &signature::ECDSA_P256_SHA256_FIXED_SIGNING)
    }

    fn es384(kid: &str) -> Self {
        Self::ec(kid, "ES384", "P-384", &signature::ECDSA_P384_SHA384_FIXED_SIGNING)
    }

    fn eddsa(kid: &str) -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwk = json!({
            "kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "use": "sig",
            "x": b64(pair.public_key().as_ref()),
        });
        Self { kid: kid.into(), alg: "EdDSA", pair: Pair::Ed(pair), jwk }
    }

    /// An RSA-3072 key: generated here by the `rsa` crate (about 1 to 3 s in a debug build).
    fn rs256(kid: &str) -> Self {
        use rsa::Generate;
        use rsa::pkcs8::EncodePrivateKey;
        let key = rsa::PrivateKey::generate();
        let pair = RsaKeyPair::from_pkcs8(key.to_pkcs8_der().unwrap().as_bytes()).unwrap();
        let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public());
        let jwk = json!({
            "kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": b64(&public.n), "e": b64(&public.e),
        });
        Self { kid: kid.into(), alg: "RS256", pair: Pair::Rsa(pair), jwk }
    }

    fn sign(&self, input: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Ec(pair) => pair.sign(&rng, input).unwrap().as_ref().to_vec(),
            Pair::Ed(pair) => pair.sign(input).as_ref().to_vec(),
            Pair::Rsa(pair) => {
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &rng, input, &mut signature).unwrap();
                signature
            }
        }
    }

    /// A token for `user` with the standard claims, this key's `alg` and `kid`.
    fn token(&self, user: &str) -> String {
        self.token_with(&self.header(), &claims(user))
    }

    fn header(&self) -> Value {
        json!({"alg": self.alg, "typ": "JWT", "kid": self.kid})
    }

    fn token_with(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        format!("{input}.{}", b64(self.sign(input.as_bytes())))
    }

    /// The public key as a PEM document, as an operator would keep it on disk.
    fn public_pem(&self) -> String {
        let der = match &self.pair {
            Pair::Ec(pair) => {
                // SubjectPublicKeyInfo of a P-256 key: the fixed algorithm prefix, then the point.
                let mut der = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
                der.extend_from_slice(pair.public_key().as_ref());
                der
            }
            Pair::Ed(pair) => {
                let mut der = hex::decode("302a300506032b6570032100").unwrap();
                der.extend_from_slice(pair.public_key().as_ref());
                der
            }
            Pair::Rsa(_) => unreachable!("RSA PEMs come from the rsa crate in the test"),
        };
        pem("PUBLIC KEY", &der)
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<_> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

fn claims(user: &str) -> Value {
    json!({"sub": user, "exp": now() + 600, "aud": AUDIENCE, "iss": ISSUER})
}

/// An HS256 token signed with `secret`.
fn hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    format!("{input}.{}", b64(ring::hmac::sign(&key, input.as_bytes())))
}

// ---------------------------------------------------------------------------------------------
// The auth server: a JWKS endpoint on loopback that counts its requests and can misbehave.

#[derive(Clone)]
enum Mode {
    /// The current key set.
    Serve,
    /// This status and an empty body.
    Status(StatusCode),
    /// These bytes as the body; `chunked` leaves out `Content-Length`.
    Raw { body: Vec<u8>, chunked: bool },
    /// Accept the request and never answer.
    Hang,
    /// A redirect to this URL.
    Redirect(String),
}

#[derive(Clone)]
struct AuthState {
    keys: Arc<Mutex<Vec<Value>>>,
    mode: Arc<Mutex<Mode>>,
    hits: Arc<AtomicUsize>,
}

struct AuthServer {
    addr: SocketAddr,
    state: AuthState,
}

impl AuthServer {
    async fn start(keys: &[&TestKey]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener, keys)
    }

    fn start_on(listener: tokio::net::TcpListener, keys: &[&TestKey]) -> Self {
        let addr = listener.local_addr().unwrap();
        let state = AuthState {
            keys: Arc::new(Mutex::new(keys.iter().map(|k| k.jwk.clone()).collect())),
            mode: Arc::new(Mutex::new(Mode::Serve)),
            hits: Arc::default(),
        };
        let router =
            Router::new().route("/auth/v1/.well-known/jwks.json", axum::routing::get(jwks)).with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { addr, state }
    }

    fn url(&self) -> String {
        url_at(self.addr)
    }

    fn set_keys(&self, keys: &[&TestKey]) {
        self.set_jwks(keys.iter().map(|k| k.jwk.clone()).collect());
    }

    fn set_jwks(&self, jwks: Vec<Value>) {
        *self.state.keys.lock().unwrap() = jwks;
    }

    fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }
}

fn url_at(addr: SocketAddr) -> String {
    format!("http://{addr}/auth/v1/.well-known/jwks.json")
}

async fn jwks(State(state): State<AuthState>) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let mode = state.mode.lock().unwrap().clone();
    match mode {
        Mode::Serve => {
            let body = json!({"keys": *state.keys.lock().unwrap()}).to_string();
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Mode::Status(status) => status.into_response(),
        Mode::Raw { body, chunked: false } => body.into_response(),
        Mode::Raw { body, chunked: true } => {
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body.chunks(4096).map(|c| Ok(c.to_vec())).collect();
            Body::from_stream(futures::stream::iter(chunks)).into_response()
        }
        Mode::Hang => std::future::pending::<Response>().await,
        Mode::Redirect(to) => (StatusCode::FOUND, [(header::LOCATION, to)]).into_response(),
    }
}

/// A loopback address nothing listens on (yet): an auth server that is down.
async fn dead_address() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Verifiers.

fn options(url: &str) -> JwksOptions {
    let mut options = JwksOptions::new(url).unwrap();
    options.min_refresh_interval = MIN_REFRESH;
    options.timeout = Duration::from_secs(2);
    options
}

fn jwks_only(options: JwksOptions) -> JwtConfig {
    install_crypto();
    JwtConfig::jwks_only(options, Some(AUDIENCE.into())).unwrap().with_issuer(Some(ISSUER.into()))
}

fn hs256_and_jwks(options: JwksOptions) -> JwtConfig {
    install_crypto();
    JwtConfig::new(SECRET, Some(AUDIENCE.into())).unwrap().with_jwks(options).unwrap().with_issuer(Some(ISSUER.into()))
}

fn hs256_token(user: &str) -> String {
    JwtConfig::new(SECRET, Some(AUDIENCE.into()))
        .unwrap()
        .with_issuer(Some(ISSUER.into()))
        .mint(&UserId::new(user).unwrap(), now() + 600)
        .unwrap()
}

/// Waits until the key cache has finished `n` fetches (the first one starts with the cache).
async fn fetches_done(jwt: &JwtConfig, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while jwt.jwks().unwrap().status().fetches < n {
        assert!(Instant::now() < deadline, "the key cache never finished fetch {n}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn verify(jwt: &JwtConfig, token: &str) -> Result<String, AuthError> {
    jwt.verify(token, now()).await.map(|user| user.as_str().to_owned())
}

/// A test world on SQLite, for tests about authentication rather than storage.
async fn sqlite() -> TestEnv {
    TestEnv::new(DbKind::Sqlite).await.unwrap()
}

// ---------------------------------------------------------------------------------------------
// A workspace server on loopback with the chat tools, so `/mcp` is there too.

struct Workspace {
    base: String,
    client: reqwest::Client,
    _env: TestEnv,
    _tmp: tempfile::TempDir,
}

impl Workspace {
    async fn start(env: TestEnv, jwt: JwtConfig) -> Self {
        install_crypto();
        let tmp = tempfile::tempdir().unwrap();
        let workspaces = common::workspaces(&env, env.storage.clone(), Limits::default());
        let copilot =
            Copilot::new(workspaces.clone(), BlockRegistry::new(), ExecEnv::new(ExecConfig::new(tmp.path()))).unwrap();
        let config = ApiConfig { jwt, ..api_config(RequestLimits::default()) };
        let state = AppState::new(workspaces, config, Some(copilot));
        let addr = serve(state).await;
        Self { base: format!("http://{addr}"), client: reqwest::Client::new(), _env: env, _tmp: tmp }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn status(&self, path: &str, token: &str) -> u16 {
        self.client.get(self.url(path)).bearer_auth(token).send().await.unwrap().status().as_u16()
    }

    async fn readyz(&self) -> (u16, String) {
        let response = self.client.get(self.url("/readyz")).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    async fn mcp(&self, token: &str, id: u64, method: &str, params: Value) -> reqwest::Response {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.client
            .post(self.url("/mcp?session=jwks"))
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-06-18")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }
}

/// The JSON-RPC message of an MCP answer (plain JSON or the last SSE `data:` line).
async fn mcp_message(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    let data = text.lines().filter_map(|l| l.strip_prefix("data:")).rfind(|d| !d.trim().is_empty());
    serde_json::from_str(data.unwrap_or(&text).trim()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Every route takes JWKS tokens.

async fn jwks_tokens_work_on_rest_links_and_mcp(env: TestEnv) {
    let keys = [TestKey::es256("es"), TestKey::rs256("rs"), TestKey::eddsa("ed")];
    let auth = AuthServer::start(&keys.iter().collect::<Vec<_>>()).await;
    let jwt = hs256_and_jwks(options(&auth.url()));
    fetches_done(&jwt, 1).await;
    let ws = Workspace::start(env, jwt).await;
    assert_eq!(ws.readyz().await, (200, "ready".to_owned()));

    // One user, whichever key signed the token: the same workspace.
    let mut ids = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let (content_type, body) =
            common::multipart(&[common::Part::file(&format!("{}.txt", key.alg), key.alg.as_bytes())]);
        let response = ws
            .client
            .post(ws.url("/api/workspace/files"))
            .bearer_auth(key.token("alice"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}: {}", key.alg, response.text().await.unwrap());
        let info: Value = response.json().await.unwrap();
        ids.push(info["id"].as_str().unwrap().to_owned());
        let next = &keys[(i + 1) % keys.len()];
        let list: Value = ws
            .client
            .get(ws.url("/api/workspace/files"))
            .bearer_auth(next.token("alice"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list["files"].as_array().unwrap().len(), i + 1, "{} sees what {} wrote", next.alg, key.alg);
    }
    let hs = hs256_token("alice");
    assert_eq!(ws.status("/api/workspace/usage", &hs).await, 200, "HS256 still works beside the JWKS");

    for (key, id) in keys.iter().zip(&ids) {
        // Another user's token: 404, never the file.
        assert_eq!(ws.status(&format!("/api/workspace/files/{id}"), &key.token("bob")).await, 404);
        // Download with the header, then mint a signed link and use it without one.
        assert_eq!(ws.status(&format!("/api/workspace/files/{id}/download"), &key.token("alice")).await, 200);
        let link = ws
            .client
            .post(ws.url(&format!("/api/workspace/files/{id}/link")))
            .bearer_auth(key.token("alice"))
            .send()
            .await
            .unwrap();
        assert_eq!(link.status(), 200, "{}", key.alg);
        let link: Value = link.json().await.unwrap();
        let body = ws.client.get(ws.url(link["url"].as_str().unwrap())).send().await.unwrap();
        assert_eq!(body.status(), 200);
        assert_eq!(body.text().await.unwrap(), key.alg);

        // MCP: initialize, then a tool call that sees alice's files.
        let params = json!({
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "jwks-test", "version": "1"},
        });
        let init = ws.mcp(&key.token("alice"), 1, "initialize", params).await;
        assert_eq!(init.status(), 200, "{}", key.alg);
        assert_eq!(mcp_message(init).await["result"]["serverInfo"]["name"], "workspace-copilot");
        let call = ws
            .mcp(
                &key.token("alice"),
                2,
                "tools/call",
                json!({"name": "list_workspace_files", "arguments": {"include_all_sessions": true}}),
            )
            .await;
        assert_eq!(call.status(), 200);
        let result = mcp_message(call).await;
        assert_eq!(result["result"]["isError"], false, "{result}");
        assert_eq!(result["result"]["structuredContent"]["files"].as_array().unwrap().len(), 3, "{result}");
        // A JWKS token that fails a claims rule is refused on /mcp too.
        let expired = key
            .token_with(&key.header(), &json!({"sub": "alice", "exp": now() - 3600, "aud": AUDIENCE, "iss": ISSUER}));
        let refused = ws.mcp(&expired, 3, "initialize", json!({})).await;
        assert_eq!(refused.status(), 401);
    }
}

// ---------------------------------------------------------------------------------------------
// Rotation.

#[tokio::test]
async fn a_new_kid_is_picked_up_on_first_use_and_a_removed_key_stops_working() {
    let (old, new) = (TestKey::es256("2024-key"), TestKey::eddsa("2025-key"));
    let auth = AuthServer::start(&[&old]).await;
    let jwt = jwks_only(options(&auth.url()));
    fetches_done(&jwt, 1).await;
    assert_eq!(verify(&jwt, &old.token("alice")).await.as_deref(), Ok("alice"));
    assert_eq!(auth.hits(), 1, "a known key costs no fetch");

    // A standby key is published; its first token fetches the keys again and is accepted.
    auth.set_keys(&[&old, &new]);
    tokio::time::sleep(MIN_REFRESH + Duration::from_millis(100)).await;
    assert_eq!(verify(&jwt, &new.token("alice")).await.as_deref(), Ok("alice"));
    assert_eq!(auth.hits(), 2);
    assert_eq!(jwt.jwks().unwrap().status().kids, ["2024-key", "2025-key"]);

    // The old key is removed. Until the cache is refreshed it still verifies...
    auth.set_keys(&[&new]);
    assert_eq!(verify(&jwt, &old.token("alice")).await.as_deref(), Ok("alice"));
    // ...then any refresh (here one caused by an unknown kid) drops it, for good.
    tokio::time::sleep(MIN_REFRESH + Duration::from_millis(100)).await;
    let stranger = TestKey::es256("never-published");
    assert_eq!(verify(&jwt, &stranger.token("alice")).await, Err(AuthError::UnknownKey));
    assert_eq!(auth.hits(), 3);
    assert_eq!(verify(&jwt, &old.token("alice")).await, Err(AuthError::UnknownKey), "rotated out");
    assert_eq!(verify(&jwt, &new.token("alice")).await.as_deref(), Ok("alice"));
}

#[tokio::test]
async fn the_timer_refreshes_keys_without_any_token() {
    let (old, new) = (TestKey::es256("old"), TestKey::es256("new"));
    let auth = AuthServer::start(&[&old]).await;
    let mut options = options(&auth.url());
    options.refresh_interval = Duration::from_millis(300);
    options.min_refresh_interval = Duration::from_millis(100);
    let jwt = jwks_only(options);
    fetches_done(&jwt, 1).await;
    assert_eq!(jwt.jwks().unwrap().status().kids, ["old"]);
    auth.set_keys(&[&new]);
    let seen = jwt.jwks().unwrap().status().fetches;
    fetches_done(&jwt, seen + 2).await;
    assert_eq!(jwt.jwks().unwrap().status().kids, ["new"], "the timer alone replaced the key set");
    assert_eq!(verify(&jwt, &old.token("alice")).await, Err(AuthError::UnknownKey));
    assert_eq!(verify(&jwt, &new.token("alice")).await.as_deref(), Ok("alice"));
}

// ---------------------------------------------------------------------------------------------
// The auth server down at start, failing later.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hs256_works_while_the_auth_server_is_down_and_jwks_once_it_is_up() {
    let key = TestKey::es256("k1");
    let addr = dead_address().await;
    let jwt = hs256_and_jwks(options(&url_at(addr)));
    fetches_done(&jwt, 1).await;
    assert!(jwt.jwks().unwrap().status().last_error.is_some());
    let ws = Workspace::start(sqlite().await, jwt).await;

    let (status, body) = ws.readyz().await;
    assert_eq!(status, 200, "HS256 still works: ready, with a note");
    assert!(body.starts_with("ready; jwks: no signing keys loaded"), "{body}");
    assert_eq!(ws.status("/api/workspace/usage", &hs256_token("alice")).await, 200);
    // A JWKS token cannot be checked yet: 503 with Retry-After, not a 401 that logs the user out.
    let response = ws.client.get(ws.url("/api/workspace/usage")).bearer_auth(key.token("alice")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "10");
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "auth_unavailable");

    // The auth server comes up on the configured address: no restart needed.
    let auth = AuthServer::start_on(tokio::net::TcpListener::bind(addr).await.unwrap(), &[&key]);
    tokio::time::sleep(MIN_REFRESH + Duration::from_millis(100)).await;
    assert_eq!(ws.status("/api/workspace/usage", &key.token("alice")).await, 200);
    assert!(auth.hits() >= 1);
    assert_eq!(ws.readyz().await, (200, "ready".to_owned()));

    // It fails later: cached keys keep working, readiness says so, unknown kids answer 503.
    auth.set_mode(Mode::Status(StatusCode::INTERNAL_SERVER_ERROR));
    tokio::time::sleep(MIN_REFRESH + Duration::from_millis(100)).await;
    assert_eq!(ws.status("/api/workspace/usage", &TestKey::es256("k2").token("alice")).await, 503);
    assert_eq!(ws.status("/api/workspace/usage", &key.token("alice")).await, 200);
    let (status, body) = ws.readyz().await;
    assert_eq!((status, body.as_str()), (200, "ready; jwks: the last refresh failed; cached keys are still used"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jwks_as_the_only_verifier_is_not_ready_until_keys_load() {
    let key = TestKey::eddsa("k1");
    let addr = dead_address().await;
    let jwt = jwks_only(options(&url_at(addr)));
    fetches_done(&jwt, 1).await;
    let ws = Workspace::start(sqlite().await, jwt).await;
    // Serving, but telling the load balancer that no token can be verified.
    let (status, body) = ws.readyz().await;
    assert_eq!((status, body.as_str()), (503, "jwks: no signing keys loaded; no token can be verified"));
    assert_eq!(ws.status("/healthz", "").await, 200);
    assert_eq!(ws.status("/api/workspace/usage", &key.token("alice")).await, 503);
    assert_eq!(ws.status("/api/workspace/usage", &hs256_token("alice")).await, 401, "no secret: HS256 refused");

    let _auth = AuthServer::start_on(tokio::net::TcpListener::bind(addr).await.unwrap(), &[&key]);
    // The timer retries a failed fetch after `min_refresh_interval` (at least 1 s): no token needed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while ws.readyz().await.0 != 200 {
        assert!(Instant::now() < deadline, "never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ws.status("/api/workspace/usage", &key.token("alice")).await, 200);
    assert_eq!(ws.status("/api/workspace/usage", &hs256_token("alice")).await, 401);
}

// ---------------------------------------------------------------------------------------------
// Attacks.

#[tokio::test]
async fn alg_none_is_refused() {
    let key = TestKey::es256("k1");
    let auth = AuthServer::start(&[&key]).await;
    for jwt in [jwks_only(options(&auth.url())), hs256_and_jwks(options(&auth.url()))] {
        fetches_done(&jwt, 1).await;
        let payload = b64(claims("alice").to_string());
        for alg in ["none", "None", "NONE", "nOnE"] {
            let header = b64(json!({"alg": alg, "kid": "k1"}).to_string());
            assert_eq!(verify(&jwt, &format!("{header}.{payload}.")).await, Err(AuthError::Algorithm), "{alg}");
            // Even with a valid ES256 signature over the same input.
            let signed = key.token_with(&json!({"alg": alg, "kid": "k1"}), &claims("alice"));
            assert_eq!(verify(&jwt, &signed).await, Err(AuthError::Algorithm), "{alg}");
        }
        let no_alg = key.token_with(&json!({"kid": "k1"}), &claims("alice"));
        assert_eq!(verify(&jwt, &no_alg).await, Err(AuthError::Malformed));
        assert_eq!(verify(&jwt, &key.token("alice")).await.as_deref(), Ok("alice"));
    }
}

#[tokio::test]
async fn hs256_signed_with_a_public_key_is_refused() {
    use rsa::Generate;
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::pkcs8::EncodePublicKey;
    let (ec, ed) = (TestKey::es256("ec"), TestKey::eddsa("ed"));
    let rsa_key = rsa::PrivateKey::generate();
    let rsa_pair = {
        use rsa::pkcs8::EncodePrivateKey;
        RsaKeyPair::from_pkcs8(rsa_key.to_pkcs8_der().unwrap().as_bytes()).unwrap()
    };
    let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(rsa_pair.public());
    let rsa_jwk = json!({"kty": "RSA", "kid": "rsa", "alg": "RS256", "n": b64(&public.n), "e": b64(&public.e)});
    let auth = AuthServer::start(&[&ec, &ed]).await;
    auth.set_jwks(vec![ec.jwk.clone(), ed.jwk.clone(), rsa_jwk.clone()]);

    // Every form in which the server, or anyone, has the public keys.
    let rsa_public = rsa_key.to_public_key();
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("EC PEM", ec.public_pem().into_bytes()),
        ("EC PEM without newline", ec.public_pem().trim_end().as_bytes().to_vec()),
        ("EC JWK", ec.jwk.to_string().into_bytes()),
        ("EC point", URL_SAFE_NO_PAD.decode(ec.jwk["x"].as_str().unwrap()).unwrap()),
        ("Ed25519 PEM", ed.public_pem().into_bytes()),
        ("Ed25519 JWK", ed.jwk.to_string().into_bytes()),
        ("Ed25519 key", URL_SAFE_NO_PAD.decode(ed.jwk["x"].as_str().unwrap()).unwrap()),
        ("RSA SPKI PEM", pem("PUBLIC KEY", rsa_public.to_public_key_der().unwrap().as_bytes()).into_bytes()),
        ("RSA PKCS#1 PEM", pem("RSA PUBLIC KEY", rsa_public.to_pkcs1_der().unwrap().as_bytes()).into_bytes()),
        ("RSA JWK", rsa_jwk.to_string().into_bytes()),
        ("RSA modulus", public.n.clone()),
        ("JWKS document", json!({"keys": [ec.jwk, ed.jwk, rsa_jwk]}).to_string().into_bytes()),
    ];
    // JWKS only: HS256 is not accepted at all. With a secret too: only that secret verifies it.
    let cases = [
        (jwks_only(options(&auth.url())), AuthError::Algorithm),
        (hs256_and_jwks(options(&auth.url())), AuthError::Signature),
    ];
    for (jwt, expected) in cases {
        fetches_done(&jwt, 1).await;
        for (what, secret) in &secrets {
            for kid in ["ec", "ed", "rsa"] {
                let token = hs256(&json!({"alg": "HS256", "typ": "JWT", "kid": kid}), &claims("alice"), secret);
                assert_eq!(verify(&jwt, &token).await, Err(expected.clone()), "HMAC keyed with the {what}, kid {kid}");
            }
        }
        assert_eq!(verify(&jwt, &ec.token("alice")).await.as_deref(), Ok("alice"));
    }
}

#[tokio::test]
async fn an_unknown_kid_is_refused_after_one_refresh() {
    let key = TestKey::es256("known");
    let auth = AuthServer::start(&[&key]).await;
    let jwt = jwks_only(options(&auth.url()));
    fetches_done(&jwt, 1).await;
    tokio::time::sleep(MIN_REFRESH + Duration::from_millis(100)).await;
    // Signed by the known key, but naming another kid: the kid picks the key, and there is none.
    let renamed = key.token_with(&json!({"alg": "ES256", "kid": "unknown"}), &claims("alice"));
    assert_eq!(verify(&jwt, &renamed).await, Err(AuthError::UnknownKey));
    assert_eq!(auth.hits(), 2, "the unknown kid caused exactly one refresh");
    // Without a kid, a key is only guessed when it is the one key of that algorithm.
    let no_kid = key.token_with(&json!({"alg": "ES256"}), &claims("alice"));
    assert_eq!(verify(&jwt, &no_kid).await.as_deref(), Ok("alice"));
    let other = TestKey::es256("other");
    auth.set_keys(&[&key, &other]);
    tokio::time::sleep(MIN_REFRESH + Duration::from_millis(100)).await;
    assert_eq!(verify(&jwt, &other.token("alice")).await.as_deref(), Ok("alice"));
    assert_eq!(verify(&jwt, &no_kid).await, Err(AuthError::UnknownKey), "two ES256 keys: no guessing");
}

#[tokio::test]
async fn the_key_decides_the_algorithm() {
    let (ec, ed, rs) = (TestKey::es256("ec"), TestKey::eddsa("ed"), TestKey::rs256("rsa"));
    let p384 = TestKey::es384("p384");
    let mislabelled = TestKey::es256("ec-says-rs256");
    let encryption = TestKey::es256("ec-for-encryption");
    let auth = AuthServer::start(&[&ec, &ed, &rs, &p384]).await;
    let mut jwks: Vec<Value> = [&ec, &ed, &rs, &p384].iter().map(|k| k.jwk.clone()).collect();
    let mut jwk = mislabelled.jwk.clone();
    jwk["alg"] = "RS256".into();
    jwks.push(jwk);
    let mut jwk = encryption.jwk.clone();
    jwk["use"] = "enc".into();
    jwks.push(jwk);
    auth.set_jwks(jwks);
    let jwt = jwks_only(options(&auth.url()));
    fetches_done(&jwt, 1).await;
    assert_eq!(jwt.jwks().unwrap().status().kids, ["ec", "ed", "rsa"], "only the consistent keys are cached");

    // Each key verifies its own algorithm.
    for key in [&ec, &ed, &rs] {
        assert_eq!(verify(&jwt, &key.token("alice")).await.as_deref(), Ok("alice"), "{}", key.alg);
    }
    // A token whose alg is not its key's: refused before any signature check.
    let with_alg = |key: &TestKey, alg: &str| key.token_with(&json!({"alg": alg, "kid": key.kid}), &claims("alice"));
    let mismatched = [
        (with_alg(&ec, "RS256"), "ES256 key, RS256 token"),
        (with_alg(&ec, "EdDSA"), "ES256 key, EdDSA token"),
        (with_alg(&ed, "ES256"), "EdDSA key, ES256 token"),
        (with_alg(&rs, "EdDSA"), "RS256 key, EdDSA token"),
        (with_alg(&rs, "ES256"), "RS256 key, ES256 token"),
        (with_alg(&rs, "PS256"), "PS256 is not accepted"),
        (with_alg(&rs, "RS512"), "RS512 is not accepted"),
        (with_alg(&p384, "ES384"), "ES384 is not accepted"),
        (with_alg(&ec, "HS256"), "HS256 without a secret"),
    ];
    for (token, what) in &mismatched {
        assert_eq!(verify(&jwt, token).await, Err(AuthError::Algorithm), "{what}");
    }
    // Keys left out of the cache verify nothing, whatever the token claims.
    tokio::time::sleep(MIN_REFRESH + Duration::from_millis(100)).await;
    let left_out = [
        (mislabelled.token("alice"), "EC key published with alg RS256"),
        (with_alg(&mislabelled, "RS256"), "EC key published with alg RS256, RS256 token"),
        (encryption.token("alice"), "EC key published for encryption"),
        (with_alg(&p384, "ES256"), "P-384 key, ES256 token"),
    ];
    for (token, what) in &left_out {
        assert_eq!(verify(&jwt, token).await, Err(AuthError::UnknownKey), "{what}");
    }
    // The right kid and alg but another key's signature.
    let forged = TestKey::es256("ec");
    assert_eq!(verify(&jwt, &forged.token("alice")).await, Err(AuthError::Signature));
    let forged = TestKey::rs256("rsa");
    assert_eq!(verify(&jwt, &forged.token("alice")).await, Err(AuthError::Signature));
    // An ES256 signature of another curve's key under the right kid.
    let other_key = p384.token_with(&json!({"alg": "ES256", "kid": "ec"}), &claims("alice"));
    assert_eq!(verify(&jwt, &other_key).await, Err(AuthError::Signature));
}

#[tokio::test]
async fn tokens_cannot_bring_their_own_keys() {
    let key = TestKey::es256("k1");
    let auth = AuthServer::start(&[&key]).await;
    let attacker = TestKey::es256("attacker");
    let attacker_jwks = AuthServer::start(&[&attacker]).await;
    let jwt = jwks_only(options(&auth.url()));
    fetches_done(&jwt, 1).await;
    let headers = [
        json!({"alg": "ES256", "kid": "attacker", "jwk": attacker.jwk}),
        json!({"alg": "ES256", "kid": "k1", "jwk": attacker.jwk}),
        json!({"alg": "ES256", "kid": "attacker", "jku": attacker_jwks.url()}),
        json!({"alg": "ES256", "kid": "k1", "jku": attacker_jwks.url()}),
        json!({"alg": "ES256", "kid": "k1", "x5u": attacker_jwks.url()}),
        json!({"alg": "ES256", "jwk": attacker.jwk}),
    ];
    for header in headers {
        let token = attacker.token_with(&header, &claims("alice"));
        // Naming the real key (or no key, when it is the only one) gets a signature check against
        // it, which the attacker's signature fails; naming the attacker's key finds nothing.
        let names_attacker = header["kid"] == "attacker";
        let expected = if names_attacker { AuthError::UnknownKey } else { AuthError::Signature };
        assert_eq!(verify(&jwt, &token).await, Err(expected), "{header}");
    }
    assert_eq!(attacker_jwks.hits(), 0, "a URL in a token is never fetched");
    // Extensions marked critical are refused even with a valid signature.
    let critical = key.token_with(&json!({"alg": "ES256", "kid": "k1", "crit": ["exp"], "exp": 1}), &claims("alice"));
    assert_eq!(verify(&jwt, &critical).await, Err(AuthError::Critical));
}

#[tokio::test]
async fn claims_rules_apply_to_jwks_tokens() {
    let key = TestKey::eddsa("k1");
    let auth = AuthServer::start(&[&key]).await;
    let jwt = jwks_only(options(&auth.url()));
    fetches_done(&jwt, 1).await;
    let t = now();
    let cases = [
        (json!({"sub": "alice", "aud": AUDIENCE, "iss": ISSUER}), AuthError::NoExpiry),
        (json!({"sub": "alice", "exp": t - 3600, "aud": AUDIENCE, "iss": ISSUER}), AuthError::Expired),
        (
            json!({"sub": "alice", "exp": t + 3600, "nbf": t + 600, "aud": AUDIENCE, "iss": ISSUER}),
            AuthError::NotYetValid,
        ),
        (json!({"sub": "alice", "exp": t + 600, "aud": "anon", "iss": ISSUER}), AuthError::Audience),
        (json!({"sub": "alice", "exp": t + 600, "iss": ISSUER}), AuthError::Audience),
        (
            json!({"sub": "alice", "exp": t + 600, "aud": AUDIENCE, "iss": "https://evil.example/auth/v1"}),
            AuthError::Issuer,
        ),
        (json!({"sub": "alice", "exp": t + 600, "aud": AUDIENCE}), AuthError::Issuer),
        (json!({"exp": t + 600, "aud": AUDIENCE, "iss": ISSUER}), AuthError::Subject),
        (json!({"sub": "", "exp": t + 600, "aud": AUDIENCE, "iss": ISSUER}), AuthError::Subject),
        (json!({"sub": 42, "exp": t + 600, "aud": AUDIENCE, "iss": ISSUER}), AuthError::Malformed),
    ];
    for (claims, expected) in cases {
        let token = key.token_with(&key.header(), &claims);
        assert_eq!(verify(&jwt, &token).await, Err(expected), "{claims}");
    }
    // Within the leeway, and Supabase's shape (aud as a list, extra claims).
    let supabase = json!({"sub": "alice", "exp": t - 10, "aud": ["authenticated"], "iss": ISSUER, "role": "authenticated", "session_id": "s"});
    assert_eq!(verify(&jwt, &key.token_with(&key.header(), &supabase)).await.as_deref(), Ok("alice"));
}

// ---------------------------------------------------------------------------------------------
// The refresh rate limit.

/// 200 concurrent requests, each with a fresh random `kid`; each must be answered `expected`.
async fn flood(ws: &Workspace, key: &TestKey, expected: u16) {
    let tokens: Vec<String> = (0..200)
        .map(|_| key.token_with(&json!({"alg": "ES256", "kid": uuid::Uuid::new_v4().to_string()}), &claims("alice")))
        .collect();
    let statuses = futures::future::join_all(tokens.iter().map(|t| ws.status("/api/workspace/files", t))).await;
    assert!(statuses.iter().all(|&s| s == expected), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_random_kids_costs_one_fetch_per_interval() {
    const INTERVAL: Duration = Duration::from_secs(3);
    let past_interval = INTERVAL + Duration::from_millis(100);
    let key = TestKey::es256("real");
    let auth = AuthServer::start(&[&key]).await;
    let mut options = options(&auth.url());
    options.min_refresh_interval = INTERVAL;
    let jwt = jwks_only(options);
    fetches_done(&jwt, 1).await;
    let ws = Workspace::start(sqlite().await, jwt).await;
    assert_eq!(auth.hits(), 1);

    // Past the interval: 200 concurrent made-up kids share one fetch.
    tokio::time::sleep(past_interval).await;
    flood(&ws, &key, 401).await;
    assert_eq!(auth.hits(), 2);
    // Within the interval: none.
    flood(&ws, &key, 401).await;
    flood(&ws, &key, 401).await;
    assert_eq!(auth.hits(), 2);
    assert_eq!(ws.status("/api/workspace/files", &key.token("alice")).await, 200, "known keys never wait");
    tokio::time::sleep(past_interval).await;
    flood(&ws, &key, 401).await;
    assert_eq!(auth.hits(), 3);

    // The same while the auth server fails: 503s, and still one fetch per interval.
    auth.set_mode(Mode::Status(StatusCode::INTERNAL_SERVER_ERROR));
    tokio::time::sleep(past_interval).await;
    flood(&ws, &key, 503).await;
    flood(&ws, &key, 503).await;
    assert_eq!(auth.hits(), 4);
    assert_eq!(ws.status("/api/workspace/files", &key.token("alice")).await, 200, "cached keys still verify");
}

// ---------------------------------------------------------------------------------------------
// The fetch is bounded.

#[tokio::test]
async fn the_fetch_is_bounded_and_failures_keep_the_cached_keys() {
    let key = TestKey::es256("k1");
    let auth = AuthServer::start(&[&key]).await;
    let mut options = options(&auth.url());
    options.timeout = Duration::from_millis(500);
    options.max_bytes = 16 * 1024;
    let jwt = jwks_only(options);
    fetches_done(&jwt, 1).await;
    let redirect_target = AuthServer::start(&[&key]).await;
    let huge = json!({"keys": [key.jwk], "padding": "x".repeat(32 * 1024)}).to_string().into_bytes();
    let cases = [
        (Mode::Raw { body: huge.clone(), chunked: false }, "larger than 16384 bytes"),
        (Mode::Raw { body: huge, chunked: true }, "larger than 16384 bytes"),
        (Mode::Hang, "timed out"),
        (Mode::Redirect(redirect_target.url()), "redirects are not followed"),
        (Mode::Status(StatusCode::NOT_FOUND), "HTTP 404"),
        (Mode::Raw { body: b"<html>login</html>".to_vec(), chunked: false }, "not a JWK set"),
    ];
    for (n, (mode, error)) in cases.into_iter().enumerate() {
        auth.set_mode(mode);
        tokio::time::sleep(MIN_REFRESH + Duration::from_millis(100)).await;
        let started = Instant::now();
        let unknown = TestKey::es256(&format!("unknown-{n}"));
        assert_eq!(verify(&jwt, &unknown.token("alice")).await, Err(AuthError::KeysUnavailable));
        assert!(started.elapsed() < Duration::from_secs(3), "{error}: took {:?}", started.elapsed());
        let status = jwt.jwks().unwrap().status();
        let last_error = status.last_error.unwrap();
        assert!(last_error.contains(error), "{last_error}");
        assert_eq!(status.kids, ["k1"], "a failed fetch keeps the keys");
        assert_eq!(verify(&jwt, &key.token("alice")).await.as_deref(), Ok("alice"));
    }
    assert_eq!(redirect_target.hits(), 0);
    // Back to normal: the error clears.
    auth.set_mode(Mode::Serve);
    tokio::time::sleep(MIN_REFRESH + Duration::from_millis(100)).await;
    assert_eq!(verify(&jwt, &TestKey::es256("unknown").token("alice")).await, Err(AuthError::UnknownKey));
    assert_eq!(jwt.jwks().unwrap().status().last_error, None);
}

db_tests!(jwks_tokens_work_on_rest_links_and_mcp);
