//! Slows down password guessing, in memory per server node (a brake, not an audit log).
//!
//! Three counters, each refusing further attempts (HTTP 429) for a delay that doubles with every
//! further failure:
//! - per **user name at a client address** (IPv6 addresses grouped per /64): the normal lockout;
//! - per **client address**: one address guessing many names;
//! - per **user name** alone, at a much higher threshold: guesses for one name spread over many
//!   addresses. It does not apply to an address that has never failed, so nobody can keep an
//!   operator locked out by failing on its name from elsewhere.
//!
//! An attempt counts while it is being verified, so concurrent guesses cannot overtake the
//! lockout: with a threshold of 5, a sixth attempt in flight is refused at once. The counters
//! live in an LRU map of bounded size, keyed by normalized names (at most 256 bytes).

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lru::LruCache;

#[derive(Clone, Debug)]
pub struct GuardPolicy {
    /// Failures tolerated per (name, address) and per address before the first lockout.
    pub threshold: u32,
    /// Failures tolerated for one name across all addresses.
    pub name_threshold: u32,
    /// Length of the first lockout; each further failure doubles it.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A counter with no failure for this long starts over.
    pub forget_after: Duration,
    /// Counters remembered at most (least recently used ones are forgotten first).
    pub capacity: usize,
}

/// How many times the per-address threshold one name may fail in all before it is locked
/// for addresses that have failed too.
pub const NAME_THRESHOLD_FACTOR: u32 = 10;

impl Default for GuardPolicy {
    fn default() -> Self {
        Self {
            threshold: 5,
            name_threshold: 5 * NAME_THRESHOLD_FACTOR,
            base_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(30 * 60),
            capacity: 100_000,
        }
    }
}

/// How long a client is told to wait when its earlier attempts are still being verified.
const IN_FLIGHT_RETRY: Duration = Duration::from_secs(1);

/// A client address as the guard counts it: IPv4 whole, IPv6 per /64 (one subscriber's
/// allocation), IPv4-mapped IPv6 as IPv4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    Self(IpAddr::V6(prefix.into()))
                }
            },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum GuardKey {
    NameAtAddress(String, ClientKey),
    Address(ClientKey),
    Name(String),
}

#[derive(Debug)]
struct Entry {
    failures: u32,
    in_flight: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Self {
            failures: 0,
            in_flight: 0,
            last_failure: now,
            locked_until: None,
        }
    }

    /// Failures that still count at `now`.
    fn live_failures(&self, now: Instant, forget_after: Duration) -> u32 {
        if now.duration_since(self.last_failure) >= forget_after {
            0
        } else {
            self.failures
        }
    }
}

/// The normalized form of a user name, as the guard and the operator table key it.
pub fn normalize_name(name: &str) -> String {
    name.trim().to_lowercase()
}

pub struct SignInGuard {
    policy: GuardPolicy,
    entries: Mutex<LruCache<GuardKey, Entry>>,
}

impl std::fmt::Debug for SignInGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInGuard")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// One sign-in attempt being verified. Report its outcome with [`Attempt::failed`] or
/// [`Attempt::succeeded`]; dropped without either (the client went away), it counts as neither.
pub struct Attempt<'a> {
    guard: &'a SignInGuard,
    keys: Vec<GuardKey>,
    open: bool,
}

impl SignInGuard {
    pub fn new(policy: GuardPolicy) -> Self {
        let capacity = NonZeroUsize::new(policy.capacity.max(16)).unwrap_or(NonZeroUsize::MIN);
        Self {
            policy,
            entries: Mutex::new(LruCache::new(capacity)),
        }
    }

    fn threshold(&self, key: &GuardKey) -> u32 {
        match key {
            GuardKey::Name(_) => self.policy.name_threshold,
            _ => self.policy.threshold,
        }
        .max(1)
    }

    /// Starts a password attempt for `name` (or a refresh-token attempt, `None`) from `client`.
    /// `Err(wait)` when a counter is locked, or when the attempts already in flight could reach
    /// the threshold.
    pub fn begin(&self, name: Option<&str>, client: IpAddr) -> Result<Attempt<'_>, Duration> {
        let now = Instant::now();
        let client = ClientKey::from(client);
        let mut keys = vec![GuardKey::Address(client)];
        if let Some(name) = name {
            let name = normalize_name(name);
            keys.push(GuardKey::NameAtAddress(name.clone(), client));
            keys.push(GuardKey::Name(name));
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let forget = self.policy.forget_after;
        let address_failed = entries
            .peek(&keys[0])
            .is_some_and(|e| e.live_failures(now, forget) > 0);
        for key in &keys {
            if matches!(key, GuardKey::Name(_)) && !address_failed {
                continue;
            }
            let Some(entry) = entries.peek(key) else {
                continue;
            };
            if let Some(wait) = entry
                .locked_until
                .and_then(|until| until.checked_duration_since(now))
                .filter(|w| !w.is_zero())
            {
                return Err(wait);
            }
            // Past a lockout one attempt at a time; before it, no more in flight than the
            // failures still tolerated.
            let allowed = self
                .threshold(key)
                .saturating_sub(entry.live_failures(now, forget))
                .max(1);
            if entry.in_flight >= allowed {
                return Err(IN_FLIGHT_RETRY);
            }
        }
        for key in &keys {
            entries
                .get_or_insert_mut(key.clone(), || Entry::new(now))
                .in_flight += 1;
        }
        Ok(Attempt {
            guard: self,
            keys,
            open: true,
        })
    }

    fn finish(&self, keys: &[GuardKey], failed: bool, succeeded: bool) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        for key in keys {
            let threshold = self.threshold(key);
            let Some(entry) = entries.peek_mut(key) else {
                continue;
            };
            entry.in_flight = entry.in_flight.saturating_sub(1);
            if failed {
                entry.failures = entry.live_failures(now, self.policy.forget_after) + 1;
                entry.last_failure = now;
                if entry.failures >= threshold {
                    entry.locked_until = Some(now + self.delay_for(entry.failures - threshold));
                }
            }
        }
        if succeeded {
            // The name's record at this address is cleared. The address keeps its record (one
            // valid account must not reset an address guessing others), and so does the name
            // (failures elsewhere are someone else's).
            if let Some(key) = keys
                .iter()
                .find(|k| matches!(k, GuardKey::NameAtAddress(..)))
            {
                if entries.peek(key).is_some_and(|e| e.in_flight == 0) {
                    entries.pop(key);
                }
            }
        }
    }

    fn delay_for(&self, past_threshold: u32) -> Duration {
        self.policy
            .base_delay
            .saturating_mul(1u32 << past_threshold.min(20))
            .min(self.policy.max_delay)
    }

    /// Counters held now (for tests of the memory bound).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Attempt<'_> {
    pub fn failed(mut self) {
        self.open = false;
        self.guard.finish(&self.keys, true, false);
    }

    pub fn succeeded(mut self) {
        self.open = false;
        self.guard.finish(&self.keys, false, true);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.open {
            self.guard.finish(&self.keys, false, false);
        }
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

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn locks_after_threshold_and_grows() {
        let g = guard();
        for _ in 0..5 {
            g.begin(Some("Admin"), ip("10.0.0.1")).unwrap().failed();
        }
        let first = g.begin(Some(" admin"), ip("10.0.0.1")).err().unwrap();
        assert!(first <= Duration::from_millis(200) && first > Duration::from_millis(100));
        std::thread::sleep(first);
        g.begin(Some("admin"), ip("10.0.0.1")).unwrap().failed();
        let second = g.begin(Some("admin"), ip("10.0.0.1")).err().unwrap();
        assert!(second > Duration::from_millis(300), "{second:?}");
    }

    #[test]
    fn attempts_in_flight_count() {
        let g = guard();
        let held: Vec<_> = (0..5)
            .map(|_| g.begin(Some("a"), ip("10.0.0.1")).unwrap())
            .collect();
        assert_eq!(
            g.begin(Some("a"), ip("10.0.0.1")).err(),
            Some(IN_FLIGHT_RETRY),
            "the sixth concurrent attempt is refused"
        );
        // Abandoned attempts free their slots without counting as failures.
        drop(held);
        for _ in 0..4 {
            g.begin(Some("a"), ip("10.0.0.1")).unwrap().failed();
        }
        let last = g.begin(Some("a"), ip("10.0.0.1")).unwrap();
        assert!(g.begin(Some("a"), ip("10.0.0.1")).is_err());
        last.failed();
        assert!(g.begin(Some("a"), ip("10.0.0.1")).is_err());
    }

    #[test]
    fn success_clears_the_name_at_that_address_only() {
        let g = guard();
        for _ in 0..4 {
            g.begin(Some("a"), ip("10.0.0.1")).unwrap().failed();
        }
        g.begin(Some("a"), ip("10.0.0.1")).unwrap().succeeded();
        // The address still carries its four failures: one more locks it, for any name.
        g.begin(Some("b"), ip("10.0.0.1")).unwrap().failed();
        assert!(g.begin(Some("c"), ip("10.0.0.1")).is_err());
    }

    #[test]
    fn a_name_locked_elsewhere_still_signs_in_from_a_clean_address() {
        let g = SignInGuard::new(GuardPolicy {
            name_threshold: 6,
            ..GuardPolicy::default()
        });
        // An attacker fails on "admin" from six addresses: the name is locked.
        for i in 0..6 {
            g.begin(Some("admin"), ip(&format!("10.0.1.{i}")))
                .unwrap()
                .failed();
        }
        assert!(g.begin(Some("admin"), ip("10.0.1.0")).is_err());
        // The operator, from an address that never failed, is let in.
        g.begin(Some("admin"), ip("192.0.2.7")).unwrap().succeeded();
        // An address that has failed (on any name) meets the name's lock.
        g.begin(Some("other"), ip("192.0.2.8")).unwrap().failed();
        assert!(g.begin(Some("admin"), ip("192.0.2.8")).is_err());
    }

    #[test]
    fn ipv6_is_grouped_per_64() {
        let g = guard();
        for i in 0..5 {
            g.begin(None, ip(&format!("2001:db8:1:2::{i}")))
                .unwrap()
                .failed();
        }
        assert!(g.begin(None, ip("2001:db8:1:2:ffff::1")).is_err());
        assert!(g.begin(None, ip("2001:db8:1:3::1")).is_ok());
        assert_eq!(
            ClientKey::from(ip("::ffff:10.0.0.1")),
            ClientKey::from(ip("10.0.0.1"))
        );
    }

    #[test]
    fn memory_is_bounded() {
        let g = SignInGuard::new(GuardPolicy {
            capacity: 1000,
            ..GuardPolicy::default()
        });
        for i in 0..10_000u32 {
            let addr = IpAddr::V4(i.into());
            g.begin(Some(&format!("user{i}")), addr).unwrap().failed();
        }
        assert!(g.len() <= 1000, "{}", g.len());
    }

    #[test]
    fn delay_is_capped() {
        let g = guard();
        assert_eq!(g.delay_for(500), g.policy.max_delay);
    }
}
