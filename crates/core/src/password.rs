//! Operator password hashing with argon2id (PHC string format, parameters stored with the hash).

use argon2::password_hash::rand_core::RngCore;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use std::sync::{Arc, LazyLock};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
/// a fixed dummy hash so that the answer takes as long as for a real user. The permit (one of
/// [`HashSlots`]) is held until the hash is done, even if the caller stops waiting.
pub async fn verify_password(
    password: &Secret,
    stored_hash: Option<String>,
    permit: OwnedSemaphorePermit,
) -> bool {
    let password = password.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
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

/// Bounds the password hashes computed at once: each argon2id run holds about 19 MiB, so an
/// unbounded burst of sign-ins would take the server's memory with it.
#[derive(Clone, Debug)]
pub struct HashSlots(Arc<Semaphore>);

impl HashSlots {
    pub fn new(slots: usize) -> Self {
        Self(Arc::new(Semaphore::new(slots.max(1))))
    }

    /// About two per core: enough to keep the cores busy, never more memory than that.
    pub fn per_core() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new(2 * cores)
    }

    /// A free slot now, or `None` when every slot is busy.
    pub fn try_take(&self) -> Option<OwnedSemaphorePermit> {
        self.0.clone().try_acquire_owned().ok()
    }
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
        let slots = HashSlots::new(1);
        assert!(verify_password(&pw, Some(hash.clone()), slots.try_take().unwrap()).await);
        assert!(
            !verify_password(
                &Secret::new("wrong horse"),
                Some(hash),
                slots.try_take().unwrap()
            )
            .await
        );
    }

    #[tokio::test]
    async fn slots_are_bounded() {
        let slots = HashSlots::new(2);
        let a = slots.try_take().unwrap();
        let _b = slots.try_take().unwrap();
        assert!(slots.try_take().is_none());
        drop(a);
        assert!(slots.try_take().is_some());
    }

    #[tokio::test]
    async fn unknown_user_never_verifies() {
        let permit = HashSlots::new(1).try_take().unwrap();
        assert!(!verify_password(&Secret::new("anything"), None, permit).await);
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
