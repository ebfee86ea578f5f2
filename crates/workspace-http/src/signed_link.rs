//! Signed download links: a URL carrying an expiry and an HMAC, so an `<img src>` can load a
//! file without an `Authorization` header. The MAC binds the workspace, the file and the expiry.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use workspace_core::{FileId, WorkspaceId};

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks links with one secret key.
#[derive(Clone)]
pub struct LinkSigner {
    mac: HmacSha256,
}

/// Shortest accepted key, in bytes.
pub const MIN_KEY_LEN: usize = 16;

/// The key was too short to be a secret.
#[derive(Debug, thiserror::Error)]
#[error("a signing key must be at least {MIN_KEY_LEN} bytes long")]
pub struct WeakKey;

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner(..)")
    }
}

impl LinkSigner {
    /// A signer with the given key; keys shorter than [`MIN_KEY_LEN`] are refused.
    pub fn new(key: &[u8]) -> Result<Self, WeakKey> {
        if key.len() < MIN_KEY_LEN {
            return Err(WeakKey);
        }
        HmacSha256::new_from_slice(key).map(|mac| Self { mac }).map_err(|_| WeakKey)
    }

    fn mac(&self, workspace: WorkspaceId, file: FileId, expires: i64) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(format!("workspace-link-v1\n{workspace}\n{file}\n{expires}").as_bytes());
        mac
    }

    /// The hex signature for a link.
    pub fn sign(&self, workspace: WorkspaceId, file: FileId, expires: i64) -> String {
        hex::encode(self.mac(workspace, file, expires).finalize().into_bytes())
    }

    /// Whether `signature` is right for these values and `expires` is still in the future.
    /// The comparison is constant-time.
    pub fn verify(&self, workspace: WorkspaceId, file: FileId, expires: i64, signature: &str, now: i64) -> bool {
        if expires <= now {
            return false;
        }
        let Ok(bytes) = hex::decode(signature) else { return false };
        self.mac(workspace, file, expires).verify_slice(&bytes).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies() {
        let signer = LinkSigner::new(b"secret-secret-secret").unwrap();
        let (ws, file) = (WorkspaceId::new(), FileId::new());
        let sig = signer.sign(ws, file, 1000);
        assert!(signer.verify(ws, file, 1000, &sig, 999));
        assert!(!signer.verify(ws, file, 1000, &sig, 1000), "expired at the instant");
        assert!(!signer.verify(ws, file, 1001, &sig, 999), "expiry changed");
        assert!(!signer.verify(ws, FileId::new(), 1000, &sig, 999), "other file");
        assert!(!signer.verify(WorkspaceId::new(), file, 1000, &sig, 999), "other workspace");
        assert!(!LinkSigner::new(b"other-other-other").unwrap().verify(ws, file, 1000, &sig, 999), "other key");
        assert!(!signer.verify(ws, file, 1000, "zz", 999));
        assert!(LinkSigner::new(b"short").is_err());
        let mut flipped = sig.into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        assert!(!signer.verify(ws, file, 1000, std::str::from_utf8(&flipped).unwrap(), 999));
    }
}
