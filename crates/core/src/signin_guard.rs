//! Slows down password guessing: after a number of failed sign-ins for one username or from one
//! client address, further attempts are refused (HTTP 429) for a delay that doubles with every
//! further failure. Kept in memory per server node: it is a brake, not an audit log.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct GuardPolicy {
    /// Failures tolerated before the first lockout.
    pub threshold: u32,
    /// Length of the first lockout; each further failure doubles it.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A key with no failure for this long starts over.
    pub forget_after: Duration,
}

impl Default for GuardPolicy {
    fn default() -> Self {
        Self {
            threshold: 5,
            base_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(30 * 60),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GuardKey {
    Username(String),
    Address(IpAddr),
}

impl GuardKey {
    pub fn username(name: &str) -> Self {
        Self::Username(name.trim().to_lowercase())
    }
}

#[derive(Debug)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
}

/// Entries above this count trigger a sweep of forgotten ones, so memory stays bounded.
const SWEEP_AT: usize = 10_000;

#[derive(Debug, Default)]
pub struct SignInGuard {
    policy: GuardPolicy,
    entries: Mutex<HashMap<GuardKey, Entry>>,
}

impl SignInGuard {
    pub fn new(policy: GuardPolicy) -> Self {
        Self {
            policy,
            entries: Mutex::default(),
        }
    }

    /// `Err(remaining)` when any of the keys is locked out now.
    pub fn check(&self, keys: &[GuardKey]) -> Result<(), Duration> {
        let now = Instant::now();
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let wait = keys
            .iter()
            .filter_map(|k| entries.get(k)?.locked_until)
            .filter_map(|until| until.checked_duration_since(now))
            .max();
        match wait {
            Some(w) if !w.is_zero() => Err(w),
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, keys: &[GuardKey]) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= SWEEP_AT {
            let forget = self.policy.forget_after;
            entries.retain(|_, e| {
                e.locked_until.is_some_and(|u| u > now)
                    || now.duration_since(e.last_failure) < forget
            });
        }
        for key in keys {
            let entry = entries.entry(key.clone()).or_insert(Entry {
                failures: 0,
                last_failure: now,
                locked_until: None,
            });
            if now.duration_since(entry.last_failure) >= self.policy.forget_after {
                entry.failures = 0;
            }
            entry.failures += 1;
            entry.last_failure = now;
            if entry.failures >= self.policy.threshold {
                entry.locked_until = Some(now + self.delay_for(entry.failures));
            }
        }
    }

    /// A successful sign-in clears the username's record. The address keeps its record: one
    /// valid account must not let an address reset its counter while guessing others.
    pub fn record_success(&self, username: &GuardKey) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(username);
    }

    fn delay_for(&self, failures: u32) -> Duration {
        let doublings = (failures - self.policy.threshold).min(20);
        self.policy
            .base_delay
            .saturating_mul(1u32 << doublings)
            .min(self.policy.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> SignInGuard {
        SignInGuard::new(GuardPolicy {
            base_delay: Duration::from_millis(200),
            ..GuardPolicy::default()
        })
    }

    #[test]
    fn locks_after_threshold_and_grows() {
        let g = guard();
        let k = [GuardKey::username("Admin")];
        for _ in 0..4 {
            g.record_failure(&k);
            assert!(g.check(&k).is_ok());
        }
        g.record_failure(&k);
        let first = g.check(&[GuardKey::username("admin")]).unwrap_err();
        assert!(first <= Duration::from_millis(200) && first > Duration::from_millis(100));
        g.record_failure(&k);
        let second = g.check(&k).unwrap_err();
        assert!(second > Duration::from_millis(300), "{second:?}");
    }

    #[test]
    fn success_clears_username_not_address() {
        let g = guard();
        let user = GuardKey::username("a");
        let addr = GuardKey::Address("10.0.0.1".parse().unwrap());
        for _ in 0..5 {
            g.record_failure(&[user.clone(), addr.clone()]);
        }
        g.record_success(&user);
        assert!(g.check(std::slice::from_ref(&user)).is_ok());
        assert!(g.check(&[addr]).is_err());
    }

    #[test]
    fn delay_is_capped() {
        let g = guard();
        assert_eq!(
            g.delay_for(500),
            g.policy
                .max_delay
                .min(Duration::from_millis(200) * (1 << 20))
        );
    }
}
