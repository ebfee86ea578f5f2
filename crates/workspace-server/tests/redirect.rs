//! With GCS credentials that can sign and `redirect_downloads` on, the download route answers
//! 302 to a short-lived V4 signed URL, and that URL serves the file (from the emulator).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use workspace_core::{NewFile, Settings, Storage, UserId, Workspaces};
use workspace_http::{ApiConfig, AppState, JwtConfig, LinkSigner, RequestLimits};
use workspace_storage::{GcsCredentials, GcsStorage};
use workspace_testkit::{DbKind, TestEnv, gcs_service_account_key};

const SECRET: &[u8] = b"redirect-test-secret-redirect";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_redirect_to_a_signed_gcs_url() {
    let endpoint = match std::env::var("WS_GCS_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => endpoint,
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("CI=true needs the GCS emulator"),
        _ => {
            eprintln!("skipping: WS_GCS_ENDPOINT is not set (scripts/fake-gcs.sh start)");
            return;
        }
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let env = TestEnv::new(DbKind::Sqlite).await.unwrap();
    let bucket = format!("redirect-{}", uuid::Uuid::new_v4().simple());
    // The emulator takes no tokens, so writes go anonymously; the key only signs URLs.
    let writer = GcsStorage::new(bucket.clone(), Some(endpoint.clone()), &GcsCredentials::Anonymous).await.unwrap();
    writer.create_bucket().await.unwrap();
    let key = gcs_service_account_key();
    let signer = GcsStorage::new(bucket.clone(), Some(endpoint.clone()), &GcsCredentials::KeyFile(key.path.clone()))
        .await
        .unwrap();
    assert!(signer.can_sign());

    let user = UserId::new("alice").unwrap();
    // Small content would be kept in the database (and served by the API): store blobs only here.
    let settings = Settings { inline_max_bytes: 0, ..Settings::default() };
    let manager =
        Workspaces::new(env.db.clone(), Storage::new(writer), settings).unwrap().manager(&user, None).await.unwrap();
    let path = manager.resolve_path("/cat.txt").unwrap();
    let info = manager.write_bytes(NewFile::new(path), "signed and redirected").await.unwrap();

    let config = ApiConfig {
        jwt: JwtConfig::new(SECRET, None).unwrap(),
        links: LinkSigner::new(b"links-links-links-links").unwrap(),
        max_link_ttl: Duration::from_secs(3600),
        redirect_downloads: true,
        request_limits: RequestLimits::default(),
    };
    let state = AppState::new(Workspaces::new(env.db.clone(), Storage::new(signer), settings).unwrap(), config, None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, workspace_http::router(state)).await.unwrap() });

    let token = JwtConfig::new(SECRET, None).unwrap().mint(&user, chrono_now() + 600).unwrap();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = client
        .get(format!("http://{addr}/api/workspace/files/{}/download", info.id))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("{}/{bucket}/workspaces/", endpoint.trim_end_matches('/'))), "{location}");
    assert!(location.contains("X-Goog-Signature="), "{location}");
    assert!(location.contains("X-Goog-Expires=300"), "short-lived: {location}");
    let body = reqwest::get(&location).await.unwrap().text().await.unwrap();
    assert_eq!(body, "signed and redirected");

    // Another user's id still answers 404, never a redirect.
    let bob = JwtConfig::new(SECRET, None).unwrap().mint(&UserId::new("bob").unwrap(), chrono_now() + 600).unwrap();
    let response = client
        .get(format!("http://{addr}/api/workspace/files/{}/download", info.id))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}
