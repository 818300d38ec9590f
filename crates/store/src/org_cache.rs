//! The organization list kept in memory: v5 portals and scripts poll `GET /v5/Organizations`
//! far more often than organizations change, and a query costs more than the rest of the request.
//!
//! Writes through this store clear the list at once (a later read on this node sees them). A
//! list is trusted for [`ORGANIZATION_LIST_TTL`] after it was read, so changes made elsewhere
//! (another node on the same PostgreSQL) show within that time. A read that raced a write never
//! stores what it read: each write bumps a generation the read checks before storing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a list read from the database is served without reading it again.
pub const ORGANIZATION_LIST_TTL: Duration = Duration::from_secs(1);

/// A list read from the database, kept in memory (here: the organizations).
pub(crate) struct ListCache<T> {
    list: Mutex<Option<Cached<T>>>,
    generation: AtomicU64,
}

struct Cached<T> {
    read_at: Instant,
    items: Vec<T>,
}

impl<T> Default for ListCache<T> {
    fn default() -> Self {
        Self {
            list: Mutex::new(None),
            generation: AtomicU64::new(0),
        }
    }
}

impl<T: Clone> ListCache<T> {
    /// The list, when one was read less than the TTL ago.
    pub(crate) fn fresh(&self) -> Option<Vec<T>> {
        let list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        list.as_ref()
            .filter(|c| c.read_at.elapsed() < ORGANIZATION_LIST_TTL)
            .map(|c| c.items.clone())
    }

    /// The generation to hand back to [`Self::store`] once a read started now has finished.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Keeps a list read from the database, unless a write ran since the read began.
    pub(crate) fn store(&self, read_in: u64, items: &[T], read_at: Instant) {
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        if self.generation.load(Ordering::Acquire) == read_in {
            *list = Some(Cached {
                read_at,
                items: items.to_vec(),
            });
        }
    }

    /// Forgets the list: one of its items was written.
    pub(crate) fn invalidate(&self) {
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        *list = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_that_raced_a_write_is_not_kept() {
        let cache = ListCache::<String>::default();
        let before = cache.generation();
        cache.invalidate();
        cache.store(before, &["stale".to_string()], Instant::now());
        assert!(cache.fresh().is_none());
        let now = cache.generation();
        cache.store(now, &["a".to_string()], Instant::now());
        assert_eq!(cache.fresh().unwrap(), ["a"]);
        cache.invalidate();
        assert!(cache.fresh().is_none());
    }

    #[test]
    fn a_list_expires() {
        let cache = ListCache::<String>::default();
        let old = Instant::now() - ORGANIZATION_LIST_TTL;
        cache.store(cache.generation(), &["a".to_string()], old);
        assert!(cache.fresh().is_none());
    }
}
