//! The signing keys of a JWKS endpoint (RFC 7517), for asymmetric bearer tokens (SPEC §7): what
//! Supabase's JWT signing keys and Better Auth publish.
//!
//! The URL is the operator's (`WS_JWT_JWKS_URL`), not a user's: it may name loopback or a private
//! network (an auth server beside this one), over http or https. It is fetched with a timeout, a
//! cap on the response size and no redirects.
//!
//! Keys are cached. They are fetched at start, again on a timer, and when a token names a `kid`
//! the cache does not hold: such a refresh happens at most once per
//! [`JwksOptions::min_refresh_interval`], and callers arriving while one is in flight wait for it
//! instead of starting their own, so a flood of made-up `kid`s costs the auth server at most one
//! request per interval. A failed fetch keeps the keys of the last good one; a good one replaces
//! the whole set, so a key removed from the endpoint stops verifying.
//!
//! Every cached key is bound to the one algorithm its type allows: EC P-256 → ES256, RSA (2048 to
//! 4096 bits) → RS256, OKP Ed25519 → EdDSA. A JWK whose `alg`, `use` or `key_ops` disagrees with
//! that, a symmetric (`oct`) key, and any other type or curve are left out. Signatures are checked
//! by `jsonwebtoken` (RustCrypto backend); nothing here does cryptography.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use crate::auth::AuthError;

/// Where the keys are and how they are fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksOptions {
    /// The JWKS URL (http or https; loopback and private addresses allowed).
    pub url: reqwest::Url,
    /// Time between two timed refreshes (after a failed fetch the next try comes after
    /// `min_refresh_interval`, at least one second).
    pub refresh_interval: Duration,
    /// Shortest time between two fetches triggered by tokens naming an unknown `kid`.
    pub min_refresh_interval: Duration,
    /// Longest a fetch may take, connection and body included.
    pub timeout: Duration,
    /// Largest response body accepted.
    pub max_bytes: usize,
}

impl JwksOptions {
    /// Default time between timed refreshes.
    pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(300);
    /// Default shortest time between refreshes triggered by unknown `kid`s.
    pub const DEFAULT_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
    /// Default fetch timeout.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default response size cap (a JWKS of a dozen RSA-4096 keys is about 12 KiB).
    pub const DEFAULT_MAX_BYTES: usize = 256 * 1024;

    /// Options for `url` with the defaults; refuses what is not an absolute http(s) URL with a host.
    pub fn new(url: &str) -> Result<Self, JwksError> {
        let parsed = reqwest::Url::parse(url.trim()).map_err(|e| JwksError::Url(format!("{url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(JwksError::Url(format!("{url:?}: only http and https URLs are fetched")));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(JwksError::Url(format!("{url:?}: the URL names no host")));
        }
        Ok(Self {
            url: parsed,
            refresh_interval: Self::DEFAULT_REFRESH_INTERVAL,
            min_refresh_interval: Self::DEFAULT_MIN_REFRESH_INTERVAL,
            timeout: Self::DEFAULT_TIMEOUT,
            max_bytes: Self::DEFAULT_MAX_BYTES,
        })
    }
}

/// Why the key cache could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The URL is not an absolute http(s) URL.
    #[error("invalid JWKS URL {0}")]
    Url(String),
    /// No Tokio runtime to run the refresh timer on.
    #[error("the JWKS key cache must be started inside a Tokio runtime")]
    NoRuntime,
    /// The HTTP client or the signature backend could not be set up.
    #[error("setting up JWKS verification: {0}")]
    Setup(String),
}

/// What the cache holds and how the last fetch went (for `/readyz` and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksStatus {
    /// Usable keys in the cache.
    pub keys: usize,
    /// Their `kid`s, in the endpoint's order (keys without one are left out).
    pub kids: Vec<String>,
    /// When the keys were last fetched successfully.
    pub fetched_at: Option<SystemTime>,
    /// The error of the latest fetch, if it failed.
    pub last_error: Option<String>,
    /// Fetches finished so far, successful or not.
    pub fetches: u64,
}

/// One usable key: the algorithm it verifies, and the key.
pub(crate) struct SigningKey {
    kid: Option<String>,
    pub(crate) alg: Algorithm,
    pub(crate) key: DecodingKey,
}

/// The cache as of its latest fetch.
#[derive(Default)]
struct Snapshot {
    keys: Arc<Vec<Arc<SigningKey>>>,
    fetched_at: Option<SystemTime>,
    last_error: Option<String>,
}

/// The cached keys of one JWKS endpoint. Cheap to clone; the refresh timer stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct Jwks(Arc<Inner>);

struct Inner {
    options: JwksOptions,
    client: reqwest::Client,
    snapshot: RwLock<Snapshot>,
    /// Held for the length of a fetch: callers that find it taken wait and reuse its result.
    fetch_lock: tokio::sync::Mutex<Option<Instant>>,
    /// Fetches finished so far (a caller that saw an older count knows the cache changed since).
    fetches: AtomicU64,
    /// Whether HS256 tokens are accepted too (only changes what the log says).
    hs256_too: bool,
    timer: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(timer) = self.timer.get_mut().unwrap_or_else(PoisonError::into_inner).take() {
            timer.abort();
        }
    }
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks").field("url", &self.0.options.url.as_str()).finish_non_exhaustive()
    }
}

/// What a lookup in the cache found.
enum Lookup {
    /// Keys that may have signed the token (same `kid`, same algorithm).
    Found(Vec<Arc<SigningKey>>),
    /// The `kid` is known, but for another algorithm.
    WrongAlgorithm,
    /// No such key.
    Missing,
}

impl Jwks {
    /// Sets up the cache and starts its refresh timer, whose first fetch begins at once. Returns
    /// without waiting for it: tokens arriving before it ends wait for it instead. `hs256_too`
    /// says whether HS256 tokens are accepted beside these keys (the log says so when it fails).
    pub(crate) fn start(options: JwksOptions, hs256_too: bool) -> Result<Self, JwksError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| JwksError::NoRuntime)?;
        // The build enables exactly one backend; a second one enabled by feature unification
        // would make `jsonwebtoken` panic on first use, so find out here.
        if CryptoProvider::try_get_default().is_none() {
            return Err(JwksError::Setup("jsonwebtoken has no single crypto backend".into()));
        }
        // reqwest is built without a TLS provider of its own; the tree's rustls uses ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(options.timeout.min(Duration::from_secs(5)))
            .timeout(options.timeout)
            .user_agent(concat!("workspace-server/", env!("CARGO_PKG_VERSION"), " (jwks)"))
            .build()
            .map_err(|e| JwksError::Setup(format!("HTTP client: {e}")))?;
        let jwks = Self(Arc::new(Inner {
            options,
            client,
            snapshot: RwLock::default(),
            fetch_lock: tokio::sync::Mutex::new(None),
            fetches: AtomicU64::new(0),
            hs256_too,
            timer: Mutex::new(None),
        }));
        let timer = runtime.spawn(refresh_on_a_timer(Arc::downgrade(&jwks.0)));
        *jwks.0.timer.lock().unwrap_or_else(PoisonError::into_inner) = Some(timer.abort_handle());
        Ok(jwks)
    }

    /// The endpoint.
    pub fn url(&self) -> &reqwest::Url {
        &self.0.options.url
    }

    /// The cache and the outcome of the latest fetch.
    pub fn status(&self) -> JwksStatus {
        let snapshot = self.0.snapshot.read().unwrap_or_else(PoisonError::into_inner);
        JwksStatus {
            keys: snapshot.keys.len(),
            kids: snapshot.keys.iter().filter_map(|k| k.kid.clone()).collect(),
            fetched_at: snapshot.fetched_at,
            last_error: snapshot.last_error.clone(),
            fetches: self.0.fetches.load(Ordering::Acquire),
        }
    }

    /// The keys that may have signed a token with this `kid` and `alg`. An unknown key triggers
    /// one refresh (rate-limited, shared with concurrent callers) before the answer is final.
    pub(crate) async fn keys_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<Vec<Arc<SigningKey>>, AuthError> {
        let seen = self.0.fetches.load(Ordering::Acquire);
        match self.0.lookup(kid, alg) {
            Lookup::Found(keys) => return Ok(keys),
            Lookup::WrongAlgorithm => return Err(AuthError::Algorithm),
            Lookup::Missing => {}
        }
        self.0.refresh_for_unknown_key(seen).await;
        match self.0.lookup(kid, alg) {
            Lookup::Found(keys) => Ok(keys),
            Lookup::WrongAlgorithm => Err(AuthError::Algorithm),
            // The endpoint could not be read: the key may exist, so this is not the token's fault.
            Lookup::Missing if self.0.last_fetch_failed() => Err(AuthError::KeysUnavailable),
            Lookup::Missing => Err(AuthError::UnknownKey),
        }
    }
}

impl Inner {
    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> Lookup {
        let keys = Arc::clone(&self.snapshot.read().unwrap_or_else(PoisonError::into_inner).keys);
        match kid {
            Some(kid) => {
                let named: Vec<_> = keys.iter().filter(|k| k.kid.as_deref() == Some(kid)).collect();
                if named.is_empty() {
                    return Lookup::Missing;
                }
                let usable: Vec<_> = named.into_iter().filter(|k| k.alg == alg).cloned().collect();
                if usable.is_empty() { Lookup::WrongAlgorithm } else { Lookup::Found(usable) }
            }
            // Without a `kid`, only a key that is the one of its algorithm can be meant.
            None => {
                let usable: Vec<_> = keys.iter().filter(|k| k.alg == alg).cloned().collect();
                if usable.len() == 1 { Lookup::Found(usable) } else { Lookup::Missing }
            }
        }
    }

    fn last_fetch_failed(&self) -> bool {
        self.snapshot.read().unwrap_or_else(PoisonError::into_inner).last_error.is_some()
    }

    /// Fetches again unless a fetch ended since the caller looked (`seen`) or the last one began
    /// less than `min_refresh_interval` ago. A fetch in flight is waited for, not repeated.
    async fn refresh_for_unknown_key(&self, seen: u64) {
        let mut last_start = self.fetch_lock.lock().await;
        if self.fetches.load(Ordering::Acquire) != seen {
            return;
        }
        if last_start.is_some_and(|at| at.elapsed() < self.options.min_refresh_interval) {
            return;
        }
        self.fetch_locked(&mut last_start).await;
    }

    /// One fetch; the caller holds `fetch_lock`.
    async fn fetch_locked(&self, last_start: &mut Option<Instant>) {
        *last_start = Some(Instant::now());
        let url = self.options.url.as_str();
        let outcome = self.fetch().await;
        let mut snapshot = self.snapshot.write().unwrap_or_else(PoisonError::into_inner);
        match outcome {
            Ok(KeySet { keys, left_out }) => {
                // Said once per change of the key set, not at every timed refresh.
                let kids = |keys: &[Arc<SigningKey>]| keys.iter().map(|k| k.kid.clone()).collect::<Vec<_>>();
                let news = snapshot.fetched_at.is_none()
                    || snapshot.last_error.is_some()
                    || kids(&snapshot.keys) != kids(&keys);
                if news {
                    let kids: Vec<_> = keys.iter().map(|k| k.kid.as_deref().unwrap_or("-")).collect();
                    tracing::info!(url, keys = keys.len(), kids = ?kids, "jwks: signing keys loaded");
                    for reason in &left_out {
                        tracing::warn!(url, "jwks: key left out: {reason}");
                    }
                    if keys.is_empty() {
                        tracing::warn!(url, "jwks: the endpoint lists no usable signing key");
                    }
                }
                snapshot.keys = Arc::new(keys);
                snapshot.fetched_at = Some(SystemTime::now());
                snapshot.last_error = None;
            }
            Err(error) => {
                let meanwhile = match (snapshot.keys.len(), self.hs256_too) {
                    (0, true) => "no JWKS token can be verified until it answers; HS256 tokens are still accepted",
                    (0, false) => "no token can be verified until it answers",
                    (_, true) => "tokens of the cached keys and HS256 tokens are still accepted",
                    (_, false) => "tokens of the cached keys are still accepted",
                };
                tracing::warn!(url, %error, cached_keys = snapshot.keys.len(), "jwks: fetching signing keys failed; {meanwhile}");
                snapshot.last_error = Some(error);
            }
        }
        drop(snapshot);
        self.fetches.fetch_add(1, Ordering::AcqRel);
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let url = &self.options.url;
        let accept = "application/jwk-set+json, application/json";
        let mut response = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, accept)
            .send()
            .await
            .map_err(|e| with_sources("request failed", &e))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok());
            return Err(format!(
                "HTTP {status} to {}: redirects are not followed, configure the final URL",
                location.unwrap_or("?")
            ));
        }
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        let max = self.options.max_bytes;
        if response.content_length().is_some_and(|len| len > max as u64) {
            return Err(format!("the response is larger than {max} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| with_sources("reading the response", &e))? {
            if body.len() + chunk.len() > max {
                return Err(format!("the response is larger than {max} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        parse_key_set(&body)
    }
}

/// Refreshes the keys now, then every `refresh_interval` (sooner after a failure), until the
/// cache is dropped.
async fn refresh_on_a_timer(cache: Weak<Inner>) {
    loop {
        let Some(inner) = cache.upgrade() else { return };
        let mut last_start = inner.fetch_lock.lock().await;
        inner.fetch_locked(&mut last_start).await;
        drop(last_start);
        let wait = if inner.last_fetch_failed() {
            inner.options.min_refresh_interval.max(Duration::from_secs(1))
        } else {
            inner.options.refresh_interval
        };
        drop(inner);
        tokio::time::sleep(wait).await;
    }
}

/// An error with its chain of causes (reqwest's own message leaves out why a connection failed).
fn with_sources(context: &str, error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = format!("{context}: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}

/// The members of a JWK this cache reads.
#[derive(Deserialize)]
struct JwkFields {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

#[derive(Deserialize)]
struct KeySetDocument {
    keys: Vec<serde_json::Value>,
}

/// A JWK set document, read.
struct KeySet {
    /// The usable keys, in the document's order.
    keys: Vec<Arc<SigningKey>>,
    /// Why each other key was left out (`kid: reason`).
    left_out: Vec<String>,
}

/// The usable keys of a JWK set document, and why the others are not.
fn parse_key_set(body: &[u8]) -> Result<KeySet, String> {
    let document: KeySetDocument =
        serde_json::from_slice(body).map_err(|e| format!("the response is not a JWK set: {e}"))?;
    let (mut keys, mut left_out) = (Vec::new(), Vec::new());
    for value in document.keys {
        let kid = value.get("kid").and_then(|k| k.as_str()).unwrap_or("-").to_owned();
        match serde_json::from_value::<JwkFields>(value).map_err(|e| e.to_string()).and_then(signing_key) {
            Ok(key) => keys.push(Arc::new(key)),
            Err(reason) => left_out.push(format!("kid {kid:?}: {reason}")),
        }
    }
    Ok(KeySet { keys, left_out })
}

/// The key a JWK describes, bound to the one algorithm its type allows.
fn signing_key(jwk: JwkFields) -> Result<SigningKey, String> {
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        return Err("`use` is not `sig`".into());
    }
    if jwk.key_ops.as_ref().is_some_and(|ops| !ops.iter().any(|op| op == "verify")) {
        return Err("`key_ops` does not include `verify`".into());
    }
    let member = |value: &Option<String>, name: &str| value.clone().ok_or_else(|| format!("no `{name}`"));
    let (alg, key) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("EC", Some("P-256")) => {
            let (x, y) = (member(&jwk.x, "x")?, member(&jwk.y, "y")?);
            exact_length(&x, 32, "x")?;
            exact_length(&y, 32, "y")?;
            (Algorithm::ES256, DecodingKey::from_ec_components(&x, &y).map_err(|e| e.to_string())?)
        }
        ("RSA", _) => {
            let (n, e) = (member(&jwk.n, "n")?, member(&jwk.e, "e")?);
            let bits = modulus_bits(&n)?;
            if !(2048..=4096).contains(&bits) {
                return Err(format!("an RSA modulus of {bits} bits (2048 to 4096 are accepted)"));
            }
            (Algorithm::RS256, DecodingKey::from_rsa_components(&n, &e).map_err(|e| e.to_string())?)
        }
        ("OKP", Some("Ed25519")) => {
            let x = member(&jwk.x, "x")?;
            exact_length(&x, 32, "x")?;
            (Algorithm::EdDSA, DecodingKey::from_ed_components(&x).map_err(|e| e.to_string())?)
        }
        ("oct", _) => return Err("a symmetric key: HMAC keys are never taken from a JWKS".into()),
        (kty, crv) => return Err(format!("key type {kty:?} with curve {crv:?} is not accepted")),
    };
    let agrees = matches!(
        (alg, jwk.alg.as_deref()),
        (_, None)
            | (Algorithm::ES256, Some("ES256"))
            | (Algorithm::RS256, Some("RS256"))
            | (Algorithm::EdDSA, Some("EdDSA" | "Ed25519"))
    );
    if !agrees {
        return Err(format!("`alg` {:?} disagrees with the key type, which verifies {alg:?} only", jwk.alg));
    }
    // Build the verifier once, so a malformed key (a point off the curve) is left out here.
    let provider = CryptoProvider::try_get_default().ok_or("jsonwebtoken has no crypto backend")?;
    (provider.verifier_factory)(&alg, &key).map_err(|e| format!("unusable key: {e}"))?;
    Ok(SigningKey { kid: jwk.kid, alg, key })
}

fn exact_length(b64: &str, len: usize, name: &str) -> Result<(), String> {
    let bytes = URL_SAFE_NO_PAD.decode(b64).map_err(|_| format!("`{name}` is not base64url"))?;
    if bytes.len() == len { Ok(()) } else { Err(format!("`{name}` is {} bytes, not {len}", bytes.len())) }
}

fn modulus_bits(n: &str) -> Result<usize, String> {
    let bytes = URL_SAFE_NO_PAD.decode(n).map_err(|_| "`n` is not base64url".to_owned())?;
    let significant = bytes.iter().position(|&b| b != 0).map_or(&[][..], |start| &bytes[start..]);
    Ok(significant.first().map_or(0, |first| significant.len() * 8 - first.leading_zeros() as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(json: serde_json::Value) -> Result<SigningKey, String> {
        signing_key(serde_json::from_value(json).unwrap())
    }

    // A valid P-256 point (the generator) and Ed25519 public key (of the all-zero seed).
    const P256_X: &str = "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY";
    const P256_Y: &str = "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU";
    const ED_X: &str = "O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik";

    #[test]
    fn each_key_type_is_bound_to_one_algorithm() {
        let ec = key(serde_json::json!({"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y, "kid": "e"})).unwrap();
        assert_eq!(ec.alg, Algorithm::ES256);
        let ed = key(serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": ED_X, "alg": "EdDSA"})).unwrap();
        assert_eq!(ed.alg, Algorithm::EdDSA);
        let n = URL_SAFE_NO_PAD.encode([0xc1; 256]);
        let rsa = key(serde_json::json!({"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256"})).unwrap();
        assert_eq!(rsa.alg, Algorithm::RS256);
        assert_eq!(ec.kid.as_deref(), Some("e"));
    }

    #[test]
    fn keys_that_disagree_or_cannot_sign_are_left_out() {
        let ec = |extra: serde_json::Value| {
            let mut jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y});
            jwk.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            jwk
        };
        let refused = [
            // `alg` disagreeing with kty/crv.
            (ec(serde_json::json!({"alg": "RS256"})), "disagrees"),
            (ec(serde_json::json!({"alg": "HS256"})), "disagrees"),
            (ec(serde_json::json!({"alg": "ES384"})), "disagrees"),
            (serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": ED_X, "alg": "ES256"}), "disagrees"),
            // Curves and types this server does not take.
            (ec(serde_json::json!({"crv": "P-384"})), "not accepted"),
            (serde_json::json!({"kty": "OKP", "crv": "P-256", "x": ED_X}), "not accepted"),
            (serde_json::json!({"kty": "OKP", "crv": "Ed448", "x": ED_X}), "not accepted"),
            (serde_json::json!({"kty": "EC", "crv": "Ed25519", "x": ED_X, "y": ED_X}), "not accepted"),
            (serde_json::json!({"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ"}), "symmetric"),
            // Encryption keys, keys not for verifying.
            (ec(serde_json::json!({"use": "enc"})), "`use`"),
            (ec(serde_json::json!({"key_ops": ["encrypt"]})), "`key_ops`"),
            // Malformed: a short Ed25519 key (the verifier would panic on it), a point off the
            // curve, a weak RSA modulus, missing members.
            (serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}), "3 bytes, not 32"),
            (ec(serde_json::json!({"y": P256_X})), "unusable key"),
            (serde_json::json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode([0xc1; 128]), "e": "AQAB"}), "1024 bits"),
            (serde_json::json!({"kty": "EC", "crv": "P-256", "x": P256_X}), "no `y`"),
        ];
        for (jwk, reason) in refused {
            let err = key(jwk.clone()).err().unwrap_or_else(|| panic!("accepted {jwk}"));
            assert!(err.contains(reason), "{jwk}: {err}");
        }
        // The same key with consistent metadata is accepted.
        assert!(key(ec(serde_json::json!({"alg": "ES256", "use": "sig", "key_ops": ["verify"]}))).is_ok());
    }

    #[test]
    fn modulus_sizes() {
        assert_eq!(modulus_bits(&URL_SAFE_NO_PAD.encode([0, 0x80, 0])).unwrap(), 16);
        assert_eq!(modulus_bits(&URL_SAFE_NO_PAD.encode([0x01; 256])).unwrap(), 2041);
        assert_eq!(modulus_bits(&URL_SAFE_NO_PAD.encode([0xff; 256])).unwrap(), 2048);
        assert_eq!(modulus_bits("").unwrap(), 0);
    }

    #[test]
    fn urls_must_be_http() {
        assert!(JwksOptions::new("http://127.0.0.1:9999/.well-known/jwks.json").is_ok());
        assert!(JwksOptions::new("https://auth.internal/jwks").is_ok());
        for bad in ["ftp://x/jwks", "file:///etc/jwks.json", "not a url", "/jwks.json", "http://"] {
            assert!(JwksOptions::new(bad).is_err(), "{bad}");
        }
    }
}
