//! A throwaway GCS service-account key (a fresh RSA key made with the `openssl` tool), for tests
//! of V4 URL signing. The emulator serves signed URLs without checking them, so tests that care
//! about the signature verify it with the returned public key.

use std::path::PathBuf;
use std::process::Command;

/// The `client_email` of the generated key.
pub const GCS_TEST_CLIENT_EMAIL: &str = "workspace-test@example-project.iam.gserviceaccount.com";

/// A generated key: its JSON file and its public key (PKCS#1 DER).
#[derive(Debug)]
pub struct ServiceAccountKey {
    /// Keeps the files alive.
    pub dir: tempfile::TempDir,
    /// The service-account JSON file.
    pub path: PathBuf,
    /// The public key, DER-encoded RSAPublicKey.
    pub public_der: Vec<u8>,
}

/// Generates a 2048-bit RSA key and writes a service-account JSON around it.
pub fn gcs_service_account_key() -> ServiceAccountKey {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("key.pem");
    let der = dir.path().join("public.der");
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().expect("the openssl command line tool is installed");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", pem.to_str().unwrap()]);
    run(&["rsa", "-in", pem.to_str().unwrap(), "-RSAPublicKey_out", "-outform", "DER", "-out", der.to_str().unwrap()]);
    let key = serde_json::json!({
        "type": "service_account",
        "project_id": "example-project",
        "private_key_id": "0123456789abcdef",
        "private_key": std::fs::read_to_string(&pem).unwrap(),
        "client_email": GCS_TEST_CLIENT_EMAIL,
        "client_id": "1234567890",
        "token_uri": "https://oauth2.googleapis.com/token",
    });
    let path = dir.path().join("service-account.json");
    std::fs::write(&path, key.to_string()).unwrap();
    let public_der = std::fs::read(der).unwrap();
    ServiceAccountKey { dir, path, public_der }
}
