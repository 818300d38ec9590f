//! Secrets at rest: XChaCha20-Poly1305 under the server key. Every ciphertext is bound to the
//! record it belongs to (associated data), so a blob copied to another row does not open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::error::{CoreError, CoreResult};

/// Format version of sealed blobs: `[version][24-byte nonce][ciphertext + tag]`.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
pub const KEY_LEN: usize = 32;

pub struct SecretSealer {
    cipher: XChaCha20Poly1305,
}

impl SecretSealer {
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(Key::from_slice(key)),
        }
    }

    /// A fresh random key (for a new server key file).
    pub fn generate_key() -> Zeroizing<[u8; KEY_LEN]> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        key
    }

    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> CoreResult<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .map_err(|_| CoreError::internal("sealing a secret", "the cipher refused the input"))?;
        let mut blob = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        blob.push(VERSION);
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ciphertext);
        Ok(blob)
    }

    pub fn open(&self, context: &[u8], blob: &[u8]) -> CoreResult<Zeroizing<Vec<u8>>> {
        if blob.len() < 1 + NONCE_LEN || blob[0] != VERSION {
            return Err(CoreError::internal(
                "opening a sealed secret",
                "unknown format",
            ));
        }
        let (nonce, ciphertext) = blob[1..].split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| {
                CoreError::internal(
                    "opening a sealed secret",
                    "it does not open with this server's key",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_bound_to_context() {
        let key = SecretSealer::generate_key();
        let s = SecretSealer::new(&key);
        let blob = s.seal(b"org-1", b"hunter2").unwrap();
        assert!(!blob.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(&s.open(b"org-1", &blob).unwrap()[..], b"hunter2");
        assert!(s.open(b"org-2", &blob).is_err(), "bound to its record");
        let other = SecretSealer::new(&SecretSealer::generate_key());
        assert!(other.open(b"org-1", &blob).is_err(), "bound to the key");
        assert_ne!(
            s.seal(b"org-1", b"hunter2").unwrap(),
            blob,
            "fresh nonce each time"
        );
    }
}
