//! Opaque bearer tokens: random values given to the client once, stored only as SHA-256 digests.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::Secret;

/// 256 random bits, base64url: unguessable, so a fast hash (not a password hash) is enough.
pub fn generate_token() -> Secret {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Secret::new(URL_SAFE_NO_PAD.encode(bytes))
}

/// The digest under which a token is stored and looked up. A leaked database yields no tokens.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenDigest(pub String);

impl TokenDigest {
    pub fn of(token: &Secret) -> Self {
        Self(hex_lower(&Sha256::digest(token.expose().as_bytes())))
    }
}

impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenDigest({}…)", &self.0[..8.min(self.0.len())])
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_digests_stable() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 43);
        assert_eq!(TokenDigest::of(&a), TokenDigest::of(&a.clone()));
        assert_eq!(TokenDigest::of(&a).0.len(), 64);
    }
}
