//! Operator password hashing with argon2id (PHC string format, parameters stored with the hash).

use argon2::password_hash::rand_core::RngCore;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use std::sync::LazyLock;

use crate::error::{CoreError, CoreResult};
use crate::Secret;

/// Minimum length of an operator password chosen by a person.
pub const MIN_PASSWORD_LEN: usize = 8;
const MAX_PASSWORD_LEN: usize = 1024;

pub fn validate_new_password(password: &Secret) -> CoreResult<()> {
    let len = password.expose().chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(CoreError::Invalid(format!(
            "password must be at least {MIN_PASSWORD_LEN} characters long"
        )));
    }
    if len > MAX_PASSWORD_LEN {
        return Err(CoreError::Invalid(format!(
            "password must be at most {MAX_PASSWORD_LEN} characters long"
        )));
    }
    Ok(())
}

/// Hashes on a blocking thread: argon2id takes tens of milliseconds by design.
pub async fn hash_password(password: &Secret) -> CoreResult<String> {
    let password = password.clone();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| CoreError::Internal(format!("argon2 hash: {e}")))
    })
    .await
    .map_err(|e| CoreError::Internal(format!("hash task: {e}")))?
}

/// Verifies a password against a stored PHC hash. With `None` (unknown user) it verifies against
/// a fixed dummy hash so that the answer takes as long as for a real user.
pub async fn verify_password(password: &Secret, stored_hash: Option<String>) -> bool {
    let password = password.clone();
    tokio::task::spawn_blocking(move || {
        let known = stored_hash.is_some();
        let hash = stored_hash.unwrap_or_else(|| DUMMY_HASH.clone());
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        // argon2's verifier compares the digests in constant time.
        let ok = Argon2::default()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok();
        known && ok
    })
    .await
    .unwrap_or(false)
}

/// argon2id hash, with the same parameters as real ones, of a random string nobody knows.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let mut random = [0u8; 32];
    OsRng.fill_bytes(&mut random);
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(&random, &salt)
        .map(|h| h.to_string())
        .expect("argon2 with default parameters hashes any input")
});

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let pw = Secret::new("correct horse");
        let hash = hash_password(&pw).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&pw, Some(hash.clone())).await);
        assert!(!verify_password(&Secret::new("wrong horse"), Some(hash)).await);
    }

    #[tokio::test]
    async fn unknown_user_never_verifies() {
        assert!(!verify_password(&Secret::new("anything"), None).await);
        assert!(
            PasswordHash::new(&DUMMY_HASH).is_ok(),
            "dummy hash must parse, or timing differs"
        );
    }

    #[test]
    fn policy() {
        assert!(validate_new_password(&Secret::new("short")).is_err());
        assert!(validate_new_password(&Secret::new("long enough")).is_ok());
    }
}
