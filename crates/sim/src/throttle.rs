//! Microsoft-style throttling: token buckets per user principal and per app (per tenant).
//!
//! Each Graph request costs resource units (1 for a single-item read, a delta call with a token or
//! a download; 2 for multi-item queries). A request is admitted when every bucket it draws from
//! (the signed-in user's, if any, and the app's) holds enough units. Otherwise it is answered 429
//! (or, for a configurable fraction, 503) with `Retry-After`, and the short principal is blocked
//! for that long; requests that keep coming while blocked are refused and extend the block, as
//! SharePoint does. `RateLimit-*` headers appear once 80 % of a bucket is used.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Throttling parameters; all may be changed at run time through the control API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleConfig {
    pub enabled: bool,
    /// Units per second each user principal may spend (Microsoft: 3,000 requests per 5 minutes).
    pub user_rate: f64,
    /// Bucket size per user: how many units may be spent at once after idling.
    pub user_burst: f64,
    /// Units per second for the app in this tenant (Microsoft: 1,250 per minute for small tenants).
    pub app_rate: f64,
    pub app_burst: f64,
    /// Seconds added to a principal's block by each request sent while blocked.
    pub extension_secs: f64,
    /// Share of throttled answers that are 503 Service Unavailable instead of 429.
    pub fraction_503: f64,
    /// Added latency per Graph request, milliseconds (0: none).
    pub latency_ms: u64,
    /// Cost of a single-item read, a delta call with a token, a download redirect.
    pub cost_single: f64,
    /// Cost of a multi-item query (lists, delta without a token).
    pub cost_multi: f64,
}

impl Default for ThrottleConfig {
    /// Microsoft's published limits, scaled 1:1 per second for users and raised for the app so
    /// that up to 10 backup accounts scale before the app budget binds (tests and benchmarks set
    /// their own figures).
    fn default() -> Self {
        Self {
            enabled: true,
            user_rate: 10.0,
            user_burst: 20.0,
            app_rate: 100.0,
            app_burst: 200.0,
            extension_secs: 1.0,
            fraction_503: 0.0,
            latency_ms: 0,
            cost_single: 1.0,
            cost_multi: 2.0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Principal {
    User(Uuid),
    App(Uuid),
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::User(id) => write!(f, "user:{id}"),
            Principal::App(id) => write!(f, "app:{id}"),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalStats {
    pub requests: u64,
    pub admitted: u64,
    pub throttled429: u64,
    pub throttled503: u64,
    pub units: f64,
    pub bytes: u64,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
    blocked_until: Option<Instant>,
    stats: PrincipalStats,
}

/// The outcome of a request against the budgets.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    Admitted {
        rate_limit: Option<RateLimitInfo>,
    },
    Throttled {
        retry_after_secs: u64,
        service_unavailable: bool,
    },
}

/// Values of the `RateLimit-Limit`, `-Remaining`, `-Reset` headers.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitInfo {
    pub limit: u64,
    pub remaining: u64,
    pub reset_secs: u64,
}

pub struct Throttler {
    config: Mutex<ThrottleConfig>,
    state: Mutex<(HashMap<Principal, Bucket>, ChaCha8Rng)>,
}

impl Throttler {
    pub fn new(config: ThrottleConfig, seed: u64) -> Self {
        Self {
            config: Mutex::new(config),
            state: Mutex::new((HashMap::new(), ChaCha8Rng::seed_from_u64(seed))),
        }
    }

    pub fn config(&self) -> ThrottleConfig {
        self.config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_config(&self, config: ThrottleConfig) {
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = config;
    }

    /// Charges `cost` units to every principal (user first, then app) or refuses the request.
    pub fn admit(&self, principals: &[Principal], cost: f64) -> Admission {
        let cfg = self.config();
        let now = Instant::now();
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (buckets, rng) = &mut *guard;
        for p in principals {
            let (rate, burst) = rates(&cfg, p);
            let b = buckets.entry(*p).or_insert(Bucket {
                tokens: burst,
                refilled: now,
                blocked_until: None,
                stats: PrincipalStats::default(),
            });
            b.tokens = (b.tokens + now.duration_since(b.refilled).as_secs_f64() * rate).min(burst);
            b.refilled = now;
            b.stats.requests += 1;
        }
        if !cfg.enabled {
            for p in principals {
                let b = buckets.get_mut(p).expect("inserted above");
                b.stats.admitted += 1;
                b.stats.units += cost;
            }
            return Admission::Admitted { rate_limit: None };
        }

        // Already blocked: refuse, and extend the block (continued traffic during a throttle).
        let mut wait: Option<Duration> = None;
        for p in principals {
            let b = buckets.get_mut(p).expect("inserted above");
            if let Some(until) = b.blocked_until.filter(|u| *u > now) {
                let extended = until + Duration::from_secs_f64(cfg.extension_secs.max(0.0));
                b.blocked_until = Some(extended);
                wait = wait.max(Some(extended - now));
            }
        }
        // Otherwise: every bucket must hold the cost.
        if wait.is_none() {
            for p in principals {
                let (rate, _) = rates(&cfg, p);
                let b = buckets.get_mut(p).expect("inserted above");
                if b.tokens < cost {
                    let secs = ((cost - b.tokens) / rate.max(1e-9)).ceil().max(1.0);
                    let block = Duration::from_secs_f64(secs);
                    b.blocked_until = Some(now + block);
                    wait = wait.max(Some(block));
                }
            }
        }
        if let Some(wait) = wait {
            let retry_after_secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let service_unavailable = cfg.fraction_503 > 0.0 && rng.gen::<f64>() < cfg.fraction_503;
            for p in principals {
                let b = buckets.get_mut(p).expect("inserted above");
                if service_unavailable {
                    b.stats.throttled503 += 1;
                } else {
                    b.stats.throttled429 += 1;
                }
            }
            return Admission::Throttled {
                retry_after_secs,
                service_unavailable,
            };
        }

        let mut rate_limit: Option<RateLimitInfo> = None;
        for p in principals {
            let (rate, burst) = rates(&cfg, p);
            let b = buckets.get_mut(p).expect("inserted above");
            b.tokens -= cost;
            b.stats.admitted += 1;
            b.stats.units += cost;
            // Like Microsoft, the headers describe the app's budget, not a user's.
            if matches!(p, Principal::App(_)) && b.tokens.floor() <= 0.2 * burst {
                let info = RateLimitInfo {
                    limit: burst as u64,
                    remaining: b.tokens.max(0.0) as u64,
                    reset_secs: ((burst - b.tokens) / rate.max(1e-9)).ceil() as u64,
                };
                if rate_limit
                    .as_ref()
                    .is_none_or(|r| info.remaining < r.remaining)
                {
                    rate_limit = Some(info);
                }
            }
        }
        Admission::Admitted { rate_limit }
    }

    pub fn add_bytes(&self, principals: &[Principal], bytes: u64) {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for p in principals {
            if let Some(b) = guard.0.get_mut(p) {
                b.stats.bytes += bytes;
            }
        }
    }

    pub fn stats(&self) -> Vec<(Principal, PrincipalStats)> {
        let guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        guard.0.iter().map(|(p, b)| (*p, b.stats.clone())).collect()
    }

    /// Forgets all buckets and figures (budgets start full again).
    pub fn reset(&self) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clear();
    }
}

fn rates(cfg: &ThrottleConfig, p: &Principal) -> (f64, f64) {
    match p {
        Principal::User(_) => (cfg.user_rate, cfg.user_burst.max(1.0)),
        Principal::App(_) => (cfg.app_rate, cfg.app_burst.max(1.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> ThrottleConfig {
        ThrottleConfig {
            user_rate: 10.0,
            user_burst: 5.0,
            app_rate: 1000.0,
            app_burst: 1000.0,
            ..ThrottleConfig::default()
        }
    }

    #[test]
    fn burst_then_throttle_with_retry_after() {
        let t = Throttler::new(small(), 1);
        let u = [Principal::User(Uuid::nil())];
        for _ in 0..5 {
            assert!(matches!(t.admit(&u, 1.0), Admission::Admitted { .. }));
        }
        assert_eq!(
            t.admit(&u, 1.0),
            Admission::Throttled {
                retry_after_secs: 1,
                service_unavailable: false
            }
        );
        // Still blocked: refused, and the block grows.
        match t.admit(&u, 1.0) {
            Admission::Throttled {
                retry_after_secs, ..
            } => assert_eq!(retry_after_secs, 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rate_limit_headers_after_80_percent() {
        let cfg = ThrottleConfig {
            app_rate: 10.0,
            app_burst: 5.0,
            user_rate: 100.0,
            user_burst: 100.0,
            ..small()
        };
        let t = Throttler::new(cfg, 1);
        let u = [Principal::User(Uuid::nil()), Principal::App(Uuid::nil())];
        assert_eq!(t.admit(&u, 1.0), Admission::Admitted { rate_limit: None });
        assert_eq!(t.admit(&u, 1.0), Admission::Admitted { rate_limit: None });
        assert_eq!(t.admit(&u, 1.0), Admission::Admitted { rate_limit: None });
        match t.admit(&u, 1.0) {
            Admission::Admitted {
                rate_limit: Some(r),
            } => assert_eq!((r.limit, r.remaining), (5, 1)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn app_budget_is_shared_by_users() {
        let cfg = ThrottleConfig {
            user_rate: 100.0,
            user_burst: 100.0,
            app_rate: 1.0,
            app_burst: 3.0,
            ..ThrottleConfig::default()
        };
        let t = Throttler::new(cfg, 1);
        let app = Principal::App(Uuid::nil());
        for i in 0..3u128 {
            assert!(matches!(
                t.admit(&[Principal::User(Uuid::from_u128(i + 1)), app], 1.0),
                Admission::Admitted { .. }
            ));
        }
        assert!(matches!(
            t.admit(&[Principal::User(Uuid::from_u128(9)), app], 1.0),
            Admission::Throttled { .. }
        ));
    }

    #[test]
    fn fraction_503_is_deterministic() {
        let cfg = ThrottleConfig {
            fraction_503: 0.5,
            user_burst: 1.0,
            extension_secs: 0.0,
            ..small()
        };
        let run = || {
            let t = Throttler::new(cfg.clone(), 7);
            let u = [Principal::User(Uuid::nil())];
            (0..20).map(|_| t.admit(&u, 1.0)).collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        assert!(a.iter().any(|x| matches!(
            x,
            Admission::Throttled {
                service_unavailable: true,
                ..
            }
        )));
        assert!(a.iter().any(|x| matches!(
            x,
            Admission::Throttled {
                service_unavailable: false,
                ..
            }
        )));
    }
}
