//! The binary configured for an auth server's JWKS (`WS_JWT_JWKS_URL`), as an operator runs it:
//! it starts while the auth server is down, says so in `/readyz`, and accepts the auth server's
//! ES256 tokens once it answers, without a restart; `token` explains why it cannot mint.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use axum::Router;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{client, now, spawn};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::json;

const ISSUER: &str = "http://127.0.0.1/auth/v1";

fn command(dir: &Path, jwks_url: &str) -> Command {
    let mut cmd = common::clean_command();
    cmd.current_dir(dir)
        .env("WS_JWT_JWKS_URL", jwks_url)
        .env("WS_JWT_JWKS_MIN_REFRESH_SECS", "1")
        .env("WS_JWT_ISSUER", ISSUER)
        .env("WS_JWT_AUDIENCE", "authenticated");
    cmd
}

async fn readyz(base: &str) -> (u16, String) {
    let response = client().get(format!("{base}/readyz")).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn the_binary_waits_for_the_auth_server_and_then_takes_its_tokens() {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = key.public_key().as_ref();
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    let jwks = json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
        "x": b64(&point[1..33]), "y": b64(&point[33..]),
    }]});
    let input = format!(
        "{}.{}",
        b64(json!({"alg": "ES256", "typ": "JWT", "kid": "k1"}).to_string().as_bytes()),
        b64(json!({"sub": "alice", "exp": now() + 600, "aud": "authenticated", "iss": ISSUER}).to_string().as_bytes()),
    );
    let token = format!("{input}.{}", b64(key.sign(&rng, input.as_bytes()).unwrap().as_ref()));

    // The auth server's address, with nothing listening yet.
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let url = format!("http://{addr}/auth/v1/.well-known/jwks.json");
    let dir = tempfile::tempdir().unwrap();
    let server = spawn(command(dir.path(), &url), false);

    // JWKS is the only verifier and has no key: serving, but not ready; JWKS tokens get 503.
    let (status, body) = readyz(&server.base).await;
    assert_eq!((status, body.as_str()), (503, "jwks: no signing keys loaded; no token can be verified"));
    let r = client().get(format!("{}/api/workspace/usage", server.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(!dir.path().join("data/jwt-secret").exists(), "no HS256 secret generated beside a JWKS");
    let out = command(dir.path(), &url).args(["token", "--user", "alice"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("WS_JWT_SECRET"));

    // The auth server comes up: the timer's retry loads the keys, no restart.
    let router = Router::new()
        .route("/auth/v1/.well-known/jwks.json", axum::routing::get(move || async move { axum::Json(jwks) }));
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let deadline = Instant::now() + Duration::from_secs(15);
    while readyz(&server.base).await != (200, "ready".to_owned()) {
        assert!(Instant::now() < deadline, "never ready: {:?}", readyz(&server.base).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(b"signed by the auth server".to_vec()).file_name("a.txt"));
    let r = client()
        .post(format!("{}/api/workspace/files", server.base))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // With a secret beside the JWKS, `token` mints HS256 tokens again.
    let out = command(dir.path(), &url)
        .env("WS_JWT_SECRET", "0123456789abcdef0123456789abcdef")
        .args(["token", "--user", "alice"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
