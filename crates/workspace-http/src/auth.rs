//! Bearer-token authentication (SPEC §7). Two kinds of JWT are accepted, each only when
//! configured: HS256 signed with a shared secret (Supabase's legacy tokens, and what the server's
//! `token` command mints), and ES256, RS256 and EdDSA verified against the keys of a JWKS URL
//! (`jwks.rs`: Supabase's JWT signing keys, Better Auth).
//!
//! The algorithm comes from the key, never from the token alone: HS256 is checked with the
//! secret and nothing else (so a token "signed" with a public key as HMAC secret fails), an
//! asymmetric `alg` only against a JWKS key of that algorithm, and every other `alg` (`none`
//! included) is refused. Keys embedded in or pointed to by a token (`jwk`, `jku`, `x5u`, `x5c`)
//! are never used, and `crit` is refused. Then the same claims rules apply to both: `exp`
//! required, `nbf`, a leeway of [`LEEWAY_SECS`], `aud` and `iss` when configured, and `sub` is
//! the user id.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;
use workspace_core::UserId;

use crate::error::ApiError;
use crate::jwks::{Jwks, JwksError, JwksOptions};
use crate::state::AppState;

type HmacSha256 = Hmac<Sha256>;

/// Seconds of clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: i64 = 30;

/// How tokens are checked (and minted by the server's `token` command): an HS256 secret, the
/// keys of a JWKS endpoint, or both, and the claims every token must carry.
#[derive(Clone)]
pub struct JwtConfig {
    hs256: Option<HmacSha256>,
    jwks: Option<Jwks>,
    audience: Option<String>,
    issuer: Option<String>,
}

impl std::fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtConfig")
            .field("hs256", &self.hs256.is_some())
            .field("jwks", &self.jwks)
            .field("audience", &self.audience)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// Why a token was refused. The message is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token: send `Authorization: Bearer <JWT>`")]
    Missing,
    /// Not three base64url parts of JSON.
    #[error("malformed token")]
    Malformed,
    /// `alg` is not one this server verifies, or not the algorithm of the key named by `kid`.
    #[error(
        "unsupported token algorithm: HS256 with the shared secret, or ES256, RS256 and EdDSA with the configured JWKS keys"
    )]
    Algorithm,
    /// The header lists `crit` extensions, which this server does not implement.
    #[error("token header has critical extensions (`crit`) this server does not understand")]
    Critical,
    /// No JWKS key matches the token's `kid`, even after refreshing the keys.
    #[error("token signing key (`kid`) is not known")]
    UnknownKey,
    /// The token needs a JWKS key that is not cached and the JWKS endpoint cannot be read now.
    #[error("the keys to verify this token cannot be fetched right now; try again shortly")]
    KeysUnavailable,
    /// The signature does not match.
    #[error("invalid token signature")]
    Signature,
    /// `exp` is missing.
    #[error("token has no `exp` claim")]
    NoExpiry,
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token not valid yet")]
    NotYetValid,
    /// `aud` does not include the configured audience.
    #[error("token audience is not accepted")]
    Audience,
    /// `iss` is not the configured issuer.
    #[error("token issuer is not accepted")]
    Issuer,
    /// `sub` is missing or not a valid user id.
    #[error("token has no valid `sub` claim")]
    Subject,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    exp: Option<f64>,
    nbf: Option<f64>,
    aud: Option<Audience>,
    iss: Option<String>,
}

/// A secret that is too short to sign with.
#[derive(Debug, thiserror::Error)]
#[error("the JWT secret must be at least 16 bytes long")]
pub struct WeakSecret;

/// Whether the configured verifiers can check tokens now (for `/readyz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Every verifier is ready.
    Ready,
    /// Some tokens can be verified, some cannot (or only with stale keys); the note says which.
    Degraded(String),
    /// No token can be verified; the note says why.
    NotReady(String),
}

impl JwtConfig {
    /// Checks HS256 tokens signed with `secret`; if `audience` is set, tokens must name it in `aud`.
    pub fn new(secret: &[u8], audience: Option<String>) -> Result<Self, WeakSecret> {
        if secret.len() < 16 {
            return Err(WeakSecret);
        }
        let mac = HmacSha256::new_from_slice(secret).map_err(|_| WeakSecret)?;
        Ok(Self { hs256: Some(mac), jwks: None, audience, issuer: None })
    }

    /// Checks only asymmetric tokens, against the keys of the JWKS at `options.url`; HS256
    /// tokens are refused. Starts the key cache (see [`Jwks`]): call inside a Tokio runtime.
    pub fn jwks_only(options: JwksOptions, audience: Option<String>) -> Result<Self, JwksError> {
        Ok(Self { hs256: None, jwks: Some(Jwks::start(options, false)?), audience, issuer: None })
    }

    /// Also checks asymmetric tokens, against the keys of the JWKS at `options.url`. Starts the
    /// key cache (see [`Jwks`]): call inside a Tokio runtime.
    pub fn with_jwks(mut self, options: JwksOptions) -> Result<Self, JwksError> {
        self.jwks = Some(Jwks::start(options, self.hs256.is_some())?);
        Ok(self)
    }

    /// Requires `iss` to equal `issuer` (when `Some`), for every kind of token.
    pub fn with_issuer(mut self, issuer: Option<String>) -> Self {
        self.issuer = issuer;
        self
    }

    /// The JWKS key cache, when one is configured.
    pub fn jwks(&self) -> Option<&Jwks> {
        self.jwks.as_ref()
    }

    /// Whether HS256 tokens are accepted.
    pub fn accepts_hs256(&self) -> bool {
        self.hs256.is_some()
    }

    /// Verifies a compact JWT and returns its user. Waits for a JWKS refresh when the token
    /// names a key the cache does not hold (see `jwks.rs` for how often that may happen).
    pub async fn verify(&self, token: &str, now: i64) -> Result<UserId, AuthError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed);
        };
        let header: Header = serde_json::from_slice(&decode(header)?).map_err(|_| AuthError::Malformed)?;
        if header.crit.is_some() {
            return Err(AuthError::Critical);
        }
        // The signing input is everything before the last `.`.
        let signing_input = &token.as_bytes()[..token.len() - signature.len() - 1];
        let alg = match header.alg.as_str() {
            "HS256" => None,
            "ES256" => Some(jsonwebtoken::Algorithm::ES256),
            "RS256" => Some(jsonwebtoken::Algorithm::RS256),
            "EdDSA" => Some(jsonwebtoken::Algorithm::EdDSA),
            _ => return Err(AuthError::Algorithm),
        };
        match alg {
            // HS256 is checked with the configured secret only, never with a JWKS key.
            None => {
                let mut mac = self.hs256.clone().ok_or(AuthError::Algorithm)?;
                mac.update(signing_input);
                mac.verify_slice(&decode(signature)?).map_err(|_| AuthError::Signature)?;
            }
            Some(alg) => {
                let jwks = self.jwks.as_ref().ok_or(AuthError::Algorithm)?;
                let keys = jwks.keys_for(header.kid.as_deref(), alg).await?;
                let verified = keys
                    .iter()
                    .any(|k| jsonwebtoken::crypto::verify(signature, signing_input, &k.key, k.alg).unwrap_or(false));
                if !verified {
                    return Err(AuthError::Signature);
                }
            }
        }
        self.check_claims(&decode(payload)?, now)
    }

    /// The rules every verified token's claims must meet, whatever signed it.
    fn check_claims(&self, payload: &[u8], now: i64) -> Result<UserId, AuthError> {
        let claims: Claims = serde_json::from_slice(payload).map_err(|_| AuthError::Malformed)?;
        let exp = claims.exp.ok_or(AuthError::NoExpiry)?;
        if exp + (LEEWAY_SECS as f64) <= now as f64 {
            return Err(AuthError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > (now + LEEWAY_SECS) as f64) {
            return Err(AuthError::NotYetValid);
        }
        if let Some(expected) = &self.audience {
            let ok = match &claims.aud {
                Some(Audience::One(aud)) => aud == expected,
                Some(Audience::Many(auds)) => auds.iter().any(|a| a == expected),
                None => false,
            };
            if !ok {
                return Err(AuthError::Audience);
            }
        }
        if let Some(expected) = &self.issuer
            && claims.iss.as_ref() != Some(expected)
        {
            return Err(AuthError::Issuer);
        }
        claims.sub.and_then(|sub| UserId::new(sub).ok()).ok_or(AuthError::Subject)
    }

    /// Mints an HS256 token for `user` that expires at `exp` (seconds since the epoch), with the
    /// configured `aud` and `iss`; `None` when no HS256 secret is configured.
    pub fn mint(&self, user: &UserId, exp: i64) -> Option<String> {
        let mut mac = self.hs256.clone()?;
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let mut claims = serde_json::json!({ "sub": user.as_str(), "exp": exp });
        if let Some(aud) = &self.audience {
            claims["aud"] = aud.clone().into();
        }
        if let Some(iss) = &self.issuer {
            claims["iss"] = iss.clone().into();
        }
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{payload}");
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        Some(format!("{signing_input}.{signature}"))
    }

    /// Whether tokens can be verified now. HS256 always can; JWKS tokens need keys: with none
    /// ever loaded the server is not ready when JWKS is its only verifier, and degraded (HS256
    /// still works) otherwise; a failed refresh with keys cached is degraded.
    pub fn readiness(&self) -> Readiness {
        let Some(jwks) = &self.jwks else { return Readiness::Ready };
        let status = jwks.status();
        match (status.keys, status.last_error.is_some(), self.hs256.is_some()) {
            (0, _, true) => Readiness::Degraded("jwks: no signing keys loaded; only HS256 tokens are accepted".into()),
            (0, _, false) => Readiness::NotReady("jwks: no signing keys loaded; no token can be verified".into()),
            (_, true, _) => Readiness::Degraded("jwks: the last refresh failed; cached keys are still used".into()),
            (_, false, _) => Readiness::Ready,
        }
    }
}

fn decode(part: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).map_err(|_| AuthError::Malformed)
}

/// The authenticated caller, extracted from `Authorization: Bearer <JWT>`.
#[derive(Debug, Clone)]
pub struct AuthUser(pub UserId);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        authenticate(&parts.headers, state.jwt()).await.map(AuthUser)
    }
}

/// Checks the bearer token of a request.
pub async fn authenticate(headers: &HeaderMap, jwt: &JwtConfig) -> Result<UserId, ApiError> {
    let token = bearer_token(headers).ok_or(ApiError::Unauthorized(AuthError::Missing))?;
    jwt.verify(token, chrono::Utc::now().timestamp()).await.map_err(ApiError::Unauthorized)
}

/// The token of an `Authorization: Bearer …` header, if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(aud: Option<&str>) -> JwtConfig {
        JwtConfig::new(b"0123456789abcdef0123456789abcdef", aud.map(str::to_owned)).unwrap()
    }

    fn forge(header: &str, claims: &str, secret: &[u8]) -> String {
        let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
        let mut mac = HmacSha256::new_from_slice(secret).unwrap();
        mac.update(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    const NOW: i64 = 1_800_000_000;
    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[tokio::test]
    async fn minted_tokens_verify() {
        let cfg = config(Some("authenticated")).with_issuer(Some("https://auth.example/v1".into()));
        let user = UserId::new("user-1").unwrap();
        assert_eq!(cfg.verify(&cfg.mint(&user, NOW + 60).unwrap(), NOW).await, Ok(user));
    }

    #[tokio::test]
    async fn refusals() {
        let cfg = config(None);
        let hs = r#"{"alg":"HS256","typ":"JWT"}"#;
        let good = format!(r#"{{"sub":"u","exp":{}}}"#, NOW + 60);
        assert!(cfg.verify(&forge(hs, &good, SECRET), NOW).await.is_ok());
        let cases = [
            ("".to_owned(), AuthError::Malformed),
            ("a.b".to_owned(), AuthError::Malformed),
            ("a.b.c.d".to_owned(), AuthError::Malformed),
            ("!!.!!.!!".to_owned(), AuthError::Malformed),
            (forge(r#"{"alg":"none"}"#, &good, SECRET), AuthError::Algorithm),
            (
                format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#), URL_SAFE_NO_PAD.encode(&good)),
                AuthError::Algorithm,
            ),
            (forge(r#"{"alg":"HS512"}"#, &good, SECRET), AuthError::Algorithm),
            (forge(r#"{"alg":"hs256"}"#, &good, SECRET), AuthError::Algorithm),
            // Asymmetric algorithms without a JWKS configured.
            (forge(r#"{"alg":"ES256","kid":"k"}"#, &good, SECRET), AuthError::Algorithm),
            (forge(r#"{"alg":"RS256"}"#, &good, SECRET), AuthError::Algorithm),
            (forge(r#"{"alg":"EdDSA"}"#, &good, SECRET), AuthError::Algorithm),
            // Extensions this server does not implement, and headers it never trusts.
            (forge(r#"{"alg":"HS256","crit":["b64"],"b64":false}"#, &good, SECRET), AuthError::Critical),
            (forge(r#"{"alg":"HS256","alg":"none"}"#, &good, SECRET), AuthError::Malformed),
            (forge(hs, &good, b"another-secret-another-secret"), AuthError::Signature),
            (forge(hs, r#"{"sub":"u"}"#, SECRET), AuthError::NoExpiry),
            (forge(hs, &format!(r#"{{"sub":"u","exp":{}}}"#, NOW - 31), SECRET), AuthError::Expired),
            (
                forge(hs, &format!(r#"{{"sub":"u","exp":{},"nbf":{}}}"#, NOW + 600, NOW + 300), SECRET),
                AuthError::NotYetValid,
            ),
            (forge(hs, &format!(r#"{{"exp":{}}}"#, NOW + 60), SECRET), AuthError::Subject),
            (forge(hs, &format!(r#"{{"sub":"","exp":{}}}"#, NOW + 60), SECRET), AuthError::Subject),
            (forge(hs, "not json", SECRET), AuthError::Malformed),
        ];
        for (token, expected) in cases {
            assert_eq!(cfg.verify(&token, NOW).await, Err(expected.clone()), "{token}");
        }
        // A valid token with one signature byte changed.
        let mut token = forge(hs, &good, SECRET).into_bytes();
        let last = token.len() - 2;
        token[last] = if token[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(cfg.verify(std::str::from_utf8(&token).unwrap(), NOW).await, Err(AuthError::Signature));
    }

    #[tokio::test]
    async fn audience_is_checked_when_configured() {
        let cfg = config(Some("authenticated"));
        let hs = r#"{"alg":"HS256"}"#;
        let with = |aud: &str| forge(hs, &format!(r#"{{"sub":"u","exp":{},"aud":{aud}}}"#, NOW + 60), SECRET);
        assert!(cfg.verify(&with(r#""authenticated""#), NOW).await.is_ok());
        assert!(cfg.verify(&with(r#"["x","authenticated"]"#), NOW).await.is_ok());
        assert_eq!(cfg.verify(&with(r#""anon""#), NOW).await, Err(AuthError::Audience));
        let none = forge(hs, &format!(r#"{{"sub":"u","exp":{}}}"#, NOW + 60), SECRET);
        assert_eq!(cfg.verify(&none, NOW).await, Err(AuthError::Audience));
        assert!(config(None).verify(&with(r#""anything""#), NOW).await.is_ok(), "no audience configured, none checked");
    }

    #[tokio::test]
    async fn issuer_is_checked_when_configured() {
        let issuer = "https://project.supabase.co/auth/v1";
        let cfg = config(None).with_issuer(Some(issuer.into()));
        let hs = r#"{"alg":"HS256"}"#;
        let with = |iss: &str| forge(hs, &format!(r#"{{"sub":"u","exp":{},"iss":{iss}}}"#, NOW + 60), SECRET);
        assert!(cfg.verify(&with(&format!("{issuer:?}")), NOW).await.is_ok());
        assert_eq!(cfg.verify(&with(r#""https://evil.example/auth/v1""#), NOW).await, Err(AuthError::Issuer));
        assert_eq!(cfg.verify(&with(&format!("{:?}", format!("{issuer}/"))), NOW).await, Err(AuthError::Issuer));
        // Not a string: refused, never compared loosely.
        assert_eq!(cfg.verify(&with(&format!("[{issuer:?}]")), NOW).await, Err(AuthError::Malformed));
        let none = forge(hs, &format!(r#"{{"sub":"u","exp":{}}}"#, NOW + 60), SECRET);
        assert_eq!(cfg.verify(&none, NOW).await, Err(AuthError::Issuer));
        assert!(config(None).verify(&with(r#""anything""#), NOW).await.is_ok(), "no issuer configured, none checked");
    }

    #[tokio::test]
    async fn without_a_secret_hs256_is_neither_minted_nor_accepted() {
        // Nothing listens on the discard port: the key cache stays empty.
        let options = JwksOptions::new("http://127.0.0.1:9/jwks.json").unwrap();
        let cfg = JwtConfig::jwks_only(options, None).unwrap();
        assert!(!cfg.accepts_hs256());
        assert_eq!(cfg.mint(&UserId::new("u").unwrap(), NOW + 60), None);
        let hs = forge(r#"{"alg":"HS256"}"#, &format!(r#"{{"sub":"u","exp":{}}}"#, NOW + 60), SECRET);
        assert_eq!(cfg.verify(&hs, NOW).await, Err(AuthError::Algorithm));
        assert!(config(None).accepts_hs256());
    }

    #[test]
    fn weak_secrets_are_refused() {
        assert!(JwtConfig::new(b"short", None).is_err());
    }
}
