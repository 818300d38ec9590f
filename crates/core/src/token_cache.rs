//! Access tokens the state store has vouched for, kept in memory so the bearer check of a
//! request is a hash and a map look-up rather than a store query.
//!
//! Entries are keyed by the token's digest (the token itself is never kept) and bounded in
//! number (least recently used goes first). An entry is believed until the earliest of:
//! - the token's own expiry;
//! - [`REVALIDATE_AFTER`] from the moment the store was asked, so a revocation made by another
//!   process (another node sharing PostgreSQL, or the `m365backup admin` command) takes effect
//!   here within that period without any notification channel;
//! - any revocation made by this process ([`TokenCache::revoke_all`]), which takes effect at
//!   once. Revocations are rare (logout, refresh, password change, operator removal, purge), so
//!   this drops every entry instead of tracking which tokens a session or operator owns; each
//!   live token then costs one store query to come back.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lru::LruCache;

use crate::store::Principal;
use crate::token::TokenDigest;

/// How long the store's answer about a token is believed: the bound on how late a revocation
/// made elsewhere is seen by this process.
pub const REVALIDATE_AFTER: Duration = Duration::from_secs(1);
/// Distinct tokens remembered at most (an entry is a few hundred bytes).
const CAPACITY: usize = 10_000;

#[derive(Debug)]
struct Entry {
    principal: Principal,
    believed_until: Instant,
    /// The revocation epoch the store was asked in; an older one means the answer may be stale.
    epoch: u64,
}

/// Proof of a miss: when, and in which revocation epoch, the store is about to be asked.
/// Taken *before* the query, so an answer racing a revocation is never believed.
#[derive(Debug)]
pub struct Miss {
    asked_at: Instant,
    epoch: u64,
}

#[derive(Debug)]
pub struct TokenCache {
    entries: Mutex<LruCache<TokenDigest, Entry>>,
    /// Bumped by every revocation of this process; entries of an older epoch are ignored.
    epoch: AtomicU64,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

impl TokenCache {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            )),
            epoch: AtomicU64::new(0),
        }
    }

    /// The operator behind `digest` if a current answer is remembered; otherwise a [`Miss`] to
    /// hand to [`TokenCache::remember`] with the store's answer.
    pub fn lookup(&self, digest: &TokenDigest) -> Result<Principal, Miss> {
        // Read the epoch first: a revocation after this point makes the miss's answer stale.
        let epoch = self.epoch.load(Ordering::Acquire);
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(digest) {
            Some(e) if e.epoch == epoch && now < e.believed_until => Ok(e.principal.clone()),
            Some(_) => {
                entries.pop(digest);
                Err(Miss {
                    asked_at: now,
                    epoch,
                })
            }
            None => Err(Miss {
                asked_at: now,
                epoch,
            }),
        }
    }

    /// Remembers the store's answer to the query that `miss` preceded: the token is valid until
    /// `expires_at`.
    pub fn remember(
        &self,
        digest: TokenDigest,
        principal: Principal,
        expires_at: DateTime<Utc>,
        miss: Miss,
    ) {
        let left = (expires_at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        let believed_until = (miss.asked_at + REVALIDATE_AFTER).min(Instant::now() + left);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        // A revocation happened while the store was asked: its answer may predate it.
        if miss.epoch != self.epoch.load(Ordering::Acquire) {
            return;
        }
        entries.put(
            digest,
            Entry {
                principal,
                believed_until,
                epoch: miss.epoch,
            },
        );
    }

    /// Forgets every token: call after the store has committed a revocation (or may have).
    pub fn revoke_all(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// How many entries are held (stale ones included until they are met or pushed out).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{OperatorId, SessionId};
    use crate::Secret;

    fn principal() -> Principal {
        Principal {
            session_id: SessionId::new_random(),
            operator_id: OperatorId::new_random(),
            operator_name: "admin".into(),
        }
    }

    fn digest(token: &str) -> TokenDigest {
        TokenDigest::of(&Secret::new(token))
    }

    fn in_an_hour() -> DateTime<Utc> {
        Utc::now() + chrono::Duration::hours(1)
    }

    #[test]
    fn remembers_until_revoked() {
        let cache = TokenCache::default();
        let miss = cache.lookup(&digest("a")).unwrap_err();
        let p = principal();
        cache.remember(digest("a"), p.clone(), in_an_hour(), miss);
        assert_eq!(cache.lookup(&digest("a")).unwrap().session_id, p.session_id);
        assert!(cache.lookup(&digest("b")).is_err());
        cache.revoke_all();
        assert!(cache.lookup(&digest("a")).is_err());
    }

    #[test]
    fn an_answer_racing_a_revocation_is_not_believed() {
        let cache = TokenCache::default();
        let miss = cache.lookup(&digest("a")).unwrap_err();
        // The store answered before the revocation committed, but arrives after it.
        cache.revoke_all();
        cache.remember(digest("a"), principal(), in_an_hour(), miss);
        assert!(cache.lookup(&digest("a")).is_err());
        assert!(cache.is_empty());
    }

    #[test]
    fn honours_the_token_expiry_and_the_revalidation_period() {
        let cache = TokenCache::default();
        let miss = cache.lookup(&digest("expired")).unwrap_err();
        cache.remember(digest("expired"), principal(), Utc::now(), miss);
        assert!(cache.lookup(&digest("expired")).is_err());

        let miss = cache.lookup(&digest("a")).unwrap_err();
        let asked_at = miss.asked_at;
        cache.remember(digest("a"), principal(), in_an_hour(), miss);
        let believed_until = cache
            .entries
            .lock()
            .unwrap()
            .peek(&digest("a"))
            .unwrap()
            .believed_until;
        assert_eq!(believed_until, asked_at + REVALIDATE_AFTER);
    }

    #[test]
    fn bounded() {
        let cache = TokenCache::with_capacity(2);
        for t in ["a", "b", "c"] {
            let miss = cache.lookup(&digest(t)).unwrap_err();
            cache.remember(digest(t), principal(), in_an_hour(), miss);
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.lookup(&digest("a")).is_err());
        assert!(cache.lookup(&digest("c")).is_ok());
    }
}
