//! Operator password hashing with argon2id (PHC string format, parameters stored with the hash).

use argon2::password_hash::rand_core::RngCore;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::{Arc, LazyLock, Mutex};
use subtle::ConstantTimeEq;
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
            .map_err(|e| CoreError::internal("hashing a password", e))
    })
    .await
    .map_err(|e| CoreError::internal("hashing a password", e))?
}

/// Verifies a password against a stored PHC hash. With `None` (unknown user) it verifies against
/// a fixed dummy hash so that the answer takes as long as for a real user. The slot (one of
/// [`HashSlots`]) lends the argon2 working memory and is held until the hash is done, even if
/// the caller stops waiting.
pub async fn verify_password(
    password: &Secret,
    stored_hash: Option<String>,
    mut slot: HashSlot,
) -> bool {
    let password = password.clone();
    tokio::task::spawn_blocking(move || {
        let known = stored_hash.is_some();
        let hash = stored_hash.unwrap_or_else(|| DUMMY_HASH.clone());
        let ok = verify_in(&mut slot.memory, password.expose().as_bytes(), &hash);
        known && ok
    })
    .await
    .unwrap_or(false)
}

/// Largest argon2 memory cost a stored hash may ask for (KiB): ours use 19 MiB.
const MAX_MEMORY_KIB: u32 = 256 * 1024;

/// argon2 over a PHC string, in `memory` (grown once to the hash's size, then reused), the
/// digests compared in constant time.
fn verify_in(memory: &mut Vec<Block>, password: &[u8], phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let version = parsed
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or_default();
    if params.m_cost() > MAX_MEMORY_KIB {
        return false;
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let hashed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password,
        salt,
        &mut out,
        &mut memory[..blocks],
    );
    hashed.is_ok() && bool::from(expected.as_bytes().ct_eq(&out))
}

/// Bounds the password hashes computed at once, and owns their working memory: each argon2id
/// run needs about 19 MiB, and memory freed on arbitrary blocking threads stays with the
/// allocator's per-thread arenas, so an unbounded burst of sign-ins would take the server's
/// memory with it. Each slot's memory is allocated once and reused.
#[derive(Clone, Debug)]
pub struct HashSlots {
    permits: Arc<Semaphore>,
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
}

/// One hashing slot: a permit and its working memory, returned to the pool on drop.
pub struct HashSlot {
    _permit: OwnedSemaphorePermit,
    memory: Vec<Block>,
    pool: Arc<Mutex<Vec<Vec<Block>>>>,
}

impl Drop for HashSlot {
    fn drop(&mut self) {
        let memory = std::mem::take(&mut self.memory);
        self.pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(memory);
    }
}

impl HashSlots {
    pub fn new(slots: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(slots.max(1))),
            memory: Arc::default(),
        }
    }

    /// The default number of slots, two per core: enough to keep the cores busy, never more
    /// memory than that.
    pub fn per_core_count() -> usize {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        2 * cores
    }

    /// A free slot now, or `None` when every slot is busy.
    pub fn try_take(&self) -> Option<HashSlot> {
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        let memory = self
            .memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default();
        Some(HashSlot {
            _permit: permit,
            memory,
            pool: self.memory.clone(),
        })
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
        // Cannot fail with the default parameters; were it to, an empty hash verifies nothing.
        .unwrap_or_default()
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

    #[test]
    fn verification_agrees_with_the_argon2_crate() {
        use argon2::PasswordVerifier;
        let hash = Argon2::default()
            .hash_password(b"pw", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(Argon2::default().verify_password(b"pw", &parsed).is_ok());
        let mut memory = Vec::new();
        assert!(verify_in(&mut memory, b"pw", &hash));
        assert!(!verify_in(&mut memory, b"pX", &hash));
        assert!(!verify_in(&mut memory, b"pw", "not a hash"));
        // The memory is the hash's size, and reused.
        assert_eq!(memory.len(), 19 * 1024);
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
        let slot = HashSlots::new(1).try_take().unwrap();
        assert!(!verify_password(&Secret::new("anything"), None, slot).await);
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
