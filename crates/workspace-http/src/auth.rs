//! Bearer-token authentication: HS256 JWTs (compatible with Supabase access tokens). Only HS256
//! is accepted, `exp` is required, `aud` is checked when configured, `sub` is the user id.

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
use crate::state::AppState;

type HmacSha256 = Hmac<Sha256>;

/// Seconds of clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: i64 = 30;

/// How tokens are checked (and minted by the server's `token` command).
#[derive(Clone)]
pub struct JwtConfig {
    mac: HmacSha256,
    audience: Option<String>,
}

impl std::fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtConfig").field("audience", &self.audience).finish_non_exhaustive()
    }
}

/// Why a token was refused. The message is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token: send `Authorization: Bearer <JWT>`")]
    Missing,
    /// Not three base64url parts of JSON.
    #[error("malformed token")]
    Malformed,
    /// `alg` is not HS256.
    #[error("unsupported token algorithm: only HS256 is accepted")]
    Algorithm,
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
    /// `sub` is missing or not a valid user id.
    #[error("token has no valid `sub` claim")]
    Subject,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
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
}

/// A secret that is too short to sign with.
#[derive(Debug, thiserror::Error)]
#[error("the JWT secret must be at least 16 bytes long")]
pub struct WeakSecret;

impl JwtConfig {
    /// Checks tokens signed with `secret`; if `audience` is set, tokens must name it in `aud`.
    pub fn new(secret: &[u8], audience: Option<String>) -> Result<Self, WeakSecret> {
        if secret.len() < 16 {
            return Err(WeakSecret);
        }
        let mac = HmacSha256::new_from_slice(secret).map_err(|_| WeakSecret)?;
        Ok(Self { mac, audience })
    }

    /// Verifies a compact JWT and returns its user.
    pub fn verify(&self, token: &str, now: i64) -> Result<UserId, AuthError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed);
        };
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).map_err(|_| AuthError::Malformed);
        let header: Header = serde_json::from_slice(&decode(header)?).map_err(|_| AuthError::Malformed)?;
        if header.alg != "HS256" {
            return Err(AuthError::Algorithm);
        }
        let mut mac = self.mac.clone();
        // The signing input is everything before the last `.`.
        mac.update(&token.as_bytes()[..token.len() - signature.len() - 1]);
        mac.verify_slice(&decode(signature)?).map_err(|_| AuthError::Signature)?;

        let claims: Claims = serde_json::from_slice(&decode(payload)?).map_err(|_| AuthError::Malformed)?;
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
        claims.sub.and_then(|sub| UserId::new(sub).ok()).ok_or(AuthError::Subject)
    }

    /// Mints an HS256 token for `user` that expires at `exp` (seconds since the epoch).
    pub fn mint(&self, user: &UserId, exp: i64) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let mut claims = serde_json::json!({ "sub": user.as_str(), "exp": exp });
        if let Some(aud) = &self.audience {
            claims["aud"] = aud.clone().into();
        }
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.mac.clone();
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }
}

/// The authenticated caller, extracted from `Authorization: Bearer <JWT>`.
#[derive(Debug, Clone)]
pub struct AuthUser(pub UserId);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        authenticate(&parts.headers, state.jwt()).map(AuthUser)
    }
}

/// Checks the bearer token of a request.
pub fn authenticate(headers: &HeaderMap, jwt: &JwtConfig) -> Result<UserId, ApiError> {
    let token = bearer_token(headers).ok_or(ApiError::Unauthorized(AuthError::Missing))?;
    jwt.verify(token, chrono::Utc::now().timestamp()).map_err(ApiError::Unauthorized)
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

    #[test]
    fn minted_tokens_verify() {
        let cfg = config(Some("authenticated"));
        let user = UserId::new("user-1").unwrap();
        assert_eq!(cfg.verify(&cfg.mint(&user, NOW + 60), NOW), Ok(user));
    }

    #[test]
    fn refusals() {
        let cfg = config(None);
        let hs = r#"{"alg":"HS256","typ":"JWT"}"#;
        let good = format!(r#"{{"sub":"u","exp":{}}}"#, NOW + 60);
        assert!(cfg.verify(&forge(hs, &good, SECRET), NOW).is_ok());
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
            assert_eq!(cfg.verify(&token, NOW), Err(expected.clone()), "{token}");
        }
        // A valid token with one signature byte changed.
        let mut token = forge(hs, &good, SECRET).into_bytes();
        let last = token.len() - 2;
        token[last] = if token[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(cfg.verify(std::str::from_utf8(&token).unwrap(), NOW), Err(AuthError::Signature));
    }

    #[test]
    fn audience_is_checked_when_configured() {
        let cfg = config(Some("authenticated"));
        let hs = r#"{"alg":"HS256"}"#;
        let with = |aud: &str| forge(hs, &format!(r#"{{"sub":"u","exp":{},"aud":{aud}}}"#, NOW + 60), SECRET);
        assert!(cfg.verify(&with(r#""authenticated""#), NOW).is_ok());
        assert!(cfg.verify(&with(r#"["x","authenticated"]"#), NOW).is_ok());
        assert_eq!(cfg.verify(&with(r#""anon""#), NOW), Err(AuthError::Audience));
        let none = forge(hs, &format!(r#"{{"sub":"u","exp":{}}}"#, NOW + 60), SECRET);
        assert_eq!(cfg.verify(&none, NOW), Err(AuthError::Audience));
        assert!(config(None).verify(&with(r#""anything""#), NOW).is_ok(), "no audience configured, none checked");
    }

    #[test]
    fn weak_secrets_are_refused() {
        assert!(JwtConfig::new(b"short", None).is_err());
    }
}
