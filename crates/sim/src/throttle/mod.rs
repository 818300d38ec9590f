//! Microsoft-style throttling, in two profiles.
//!
//! Each Graph request costs resource units (1 for a single-item read, a delta call with a token
//! or a download; 2 for multi-item queries and writes; 5 for permission operations) and draws
//! from the budgets of
//! the signed-in user (delegated tokens), of the app in the tenant and of the tenant. Over
//! budget, it is answered 429 (or, for a configurable share, 503) with `Retry-After`.
//!
//! - `fast` (`fast.rs`): token buckets per second, a block extended by every request sent
//!   during it, `RateLimit-*` headers on every call once 80 % of the app's bucket is used.
//! - `realistic` (`realistic.rs`): Microsoft's published windows and limits (per user requests
//!   per 5 minutes and egress per hour, per app units per minute and per day by the tenant's
//!   licences, per tenant units per 5 minutes), refused calls counted as usage, `Retry-After`
//!   growing for callers that keep sending, `RateLimit-*` headers only for app-only calls,
//!   describing the app's 1-minute window. `time_scale` shortens the windows for tests.
//!
//! Downloads (the pre-authenticated URLs) are charged to the user's egress budget, uploads
//! (simple uploads and upload-session fragments) to its ingress budget.

mod fast;
mod realistic;
mod window;

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use realistic::{tier, Budget};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    #[default]
    Fast,
    Realistic,
}

/// Throttling parameters; all may be changed at run time through the control API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleConfig {
    pub enabled: bool,
    pub profile: Profile,
    /// Fast: units per second each user principal may spend (Microsoft: 3,000 requests per
    /// 5 minutes).
    pub user_rate: f64,
    /// Fast: bucket size per user: how many units may be spent at once after idling.
    pub user_burst: f64,
    /// Fast: units per second for the app in this tenant.
    pub app_rate: f64,
    pub app_burst: f64,
    /// Fast: seconds added to a principal's block by each request sent while blocked.
    pub extension_secs: f64,
    /// Realistic: how long Microsoft's windows last here (1 = as published; 0.05 = 5 minutes
    /// become 15 s holding 1/20 of the budget, so rates stay Microsoft's). Waits scale too.
    pub time_scale: f64,
    /// Realistic: requests per user per 5 minutes.
    pub user_requests_per_5min: f64,
    /// Realistic: the app's units per minute and per day, the tenant's per 5 minutes; by the
    /// tenant's licences when absent.
    pub app_units_per_minute: Option<f64>,
    pub app_units_per_day: Option<f64>,
    pub tenant_units_per_5min: Option<f64>,
    /// Realistic: the longest `Retry-After` (before `time_scale`) for a caller that keeps
    /// sending while told to wait.
    pub max_retry_after_secs: f64,
    /// Bytes a user may download per hour (both profiles).
    pub user_egress_bytes_per_hour: f64,
    /// Bytes a user may upload per hour (both profiles).
    pub user_ingress_bytes_per_hour: f64,
    /// Share of throttled answers that are 503 Service Unavailable instead of 429.
    pub fraction_503: f64,
    /// Added latency per Graph request, milliseconds (0: none).
    pub latency_ms: u64,
    /// Cost of a single-item read, a delta call with a token, a download redirect.
    pub cost_single: f64,
    /// Cost of a multi-item query (lists, delta without a token).
    pub cost_multi: f64,
    /// Cost of a write (create, upload, update, delete, restore of a version).
    pub cost_write: f64,
    /// Cost of a permissions read or write.
    pub cost_permissions: f64,
}

impl Default for ThrottleConfig {
    /// The fast profile at Microsoft's per-user rate, with the app's raised so that up to 10
    /// backup accounts scale before it binds (tests and benchmarks set their own figures).
    fn default() -> Self {
        Self {
            enabled: true,
            profile: Profile::Fast,
            user_rate: 10.0,
            user_burst: 20.0,
            app_rate: 100.0,
            app_burst: 200.0,
            extension_secs: 1.0,
            time_scale: 1.0,
            user_requests_per_5min: 3_000.0,
            app_units_per_minute: None,
            app_units_per_day: None,
            tenant_units_per_5min: None,
            max_retry_after_secs: 300.0,
            user_egress_bytes_per_hour: 100e9,
            user_ingress_bytes_per_hour: 50e9,
            fraction_503: 0.0,
            latency_ms: 0,
            cost_single: 1.0,
            cost_multi: 2.0,
            cost_write: 2.0,
            cost_permissions: 5.0,
        }
    }
}

impl ThrottleConfig {
    /// Microsoft's published limits with windows shortened by `time_scale`.
    pub fn realistic(time_scale: f64) -> Self {
        Self {
            profile: Profile::Realistic,
            time_scale,
            ..Self::default()
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Principal {
    User(Uuid),
    App(Uuid),
    /// The tenant as a whole (every app's calls).
    Tenant,
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::User(id) => write!(f, "user:{id}"),
            Principal::App(id) => write!(f, "app:{id}"),
            Principal::Tenant => write!(f, "tenant"),
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
    /// Bytes downloaded.
    pub bytes: u64,
    /// Bytes uploaded.
    pub ingress_bytes: u64,
    /// Requests that arrived while this principal's `Retry-After` was still pending (refused).
    /// A client that honours `Retry-After` sends none once the throttled answer has reached
    /// it; only requests already in flight at that moment may land here.
    pub early: u64,
}

/// Which way bytes go through a pre-authenticated URL or an upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// A download: the user's egress budget.
    Egress,
    /// An upload: the user's ingress budget.
    Ingress,
}

/// A Graph call to be charged.
#[derive(Clone, Copy, Debug)]
pub struct Call {
    /// The signed-in user of a delegated token.
    pub user: Option<Uuid>,
    pub app: Uuid,
    pub units: f64,
}

impl Call {
    fn principals(&self) -> Vec<Principal> {
        let mut p = Vec::with_capacity(3);
        p.extend(self.user.map(Principal::User));
        p.push(Principal::App(self.app));
        p.push(Principal::Tenant);
        p
    }

    /// Who is told to wait: the user of a delegated call, else the app.
    fn caller(&self) -> Principal {
        self.user.map_or(Principal::App(self.app), Principal::User)
    }
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

/// Everything kept per principal.
#[derive(Debug)]
struct Ledger {
    stats: PrincipalStats,
    bucket: fast::Bucket,
    egress: fast::Bucket,
    ingress: fast::Bucket,
    told: realistic::Told,
    meters: Vec<realistic::Meter>,
}

impl Ledger {
    fn new(cfg: &ThrottleConfig, p: &Principal, now: Instant) -> Self {
        Self {
            stats: PrincipalStats::default(),
            bucket: fast::Bucket::full(bucket_of(cfg, p).1, now),
            egress: fast::Bucket::full(
                fast::transfer_bucket(cfg.user_egress_bytes_per_hour).1,
                now,
            ),
            ingress: fast::Bucket::full(
                fast::transfer_bucket(cfg.user_ingress_bytes_per_hour).1,
                now,
            ),
            told: realistic::Told::default(),
            meters: Vec::new(),
        }
    }

    /// The bucket and the realistic budget of a transfer.
    fn transfer(&mut self, direction: Direction) -> (&mut fast::Bucket, Budget) {
        match direction {
            Direction::Egress => (&mut self.egress, Budget::UserEgress),
            Direction::Ingress => (&mut self.ingress, Budget::UserIngress),
        }
    }

    fn meter(
        &mut self,
        budget: Budget,
        cfg: &ThrottleConfig,
        licenses: u64,
    ) -> &mut realistic::Meter {
        let at = match self.meters.iter().position(|m| m.budget == budget) {
            Some(at) => at,
            None => {
                self.meters
                    .push(realistic::Meter::new(budget, cfg, licenses));
                self.meters.len() - 1
            }
        };
        &mut self.meters[at]
    }
}

pub struct Throttler {
    config: Mutex<ThrottleConfig>,
    licenses: u64,
    state: Mutex<(HashMap<Principal, Ledger>, ChaCha8Rng)>,
}

/// `Retry-After` in whole seconds, at least one.
fn whole_secs(d: Duration) -> u64 {
    d.as_secs_f64().ceil().max(1.0) as u64
}

impl Throttler {
    /// Throttling for a tenant with `licenses` licences (the realistic profile's app and tenant
    /// budgets scale with them).
    pub fn new(config: ThrottleConfig, seed: u64, licenses: u64) -> Self {
        Self {
            config: Mutex::new(config),
            licenses,
            state: Mutex::new((HashMap::new(), ChaCha8Rng::seed_from_u64(seed))),
        }
    }

    pub fn config(&self) -> ThrottleConfig {
        self.config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Changes the parameters; windows and buckets start afresh when the profile or the time
    /// scale changes.
    pub fn set_config(&self, config: ThrottleConfig) {
        let mut current = self.config.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = current.profile != config.profile || current.time_scale != config.time_scale;
        *current = config;
        drop(current);
        if fresh {
            for ledger in self
                .state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .0
                .values_mut()
            {
                ledger.meters.clear();
                ledger.told = realistic::Told::default();
            }
        }
    }

    /// The budgets in force, units or requests per window (for `/_sim/throttling` readers).
    pub fn licenses(&self) -> u64 {
        self.licenses
    }

    /// Charges a call to its budgets, or refuses it.
    pub fn admit(&self, call: &Call) -> Admission {
        let cfg = self.config();
        let now = Instant::now();
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (ledgers, rng) = &mut *guard;
        let principals = call.principals();
        for p in &principals {
            ledger_of(ledgers, &cfg, p, now).stats.requests += 1;
        }
        let outcome = if !cfg.enabled {
            Ok(None)
        } else {
            match cfg.profile {
                Profile::Fast => self.admit_fast(&cfg, now, ledgers, &principals, call.units),
                Profile::Realistic => self.admit_realistic(&cfg, now, ledgers, call),
            }
        };
        match outcome {
            Ok(rate_limit) => {
                for p in &principals {
                    let s = &mut ledger_of(ledgers, &cfg, p, now).stats;
                    s.admitted += 1;
                    s.units += call.units;
                }
                Admission::Admitted { rate_limit }
            }
            Err(wait) => {
                let service_unavailable =
                    cfg.fraction_503 > 0.0 && rng.gen::<f64>() < cfg.fraction_503;
                for p in &principals {
                    let s = &mut ledger_of(ledgers, &cfg, p, now).stats;
                    if service_unavailable {
                        s.throttled503 += 1;
                    } else {
                        s.throttled429 += 1;
                    }
                }
                Admission::Throttled {
                    retry_after_secs: whole_secs(wait),
                    service_unavailable,
                }
            }
        }
    }

    fn admit_fast(
        &self,
        cfg: &ThrottleConfig,
        now: Instant,
        ledgers: &mut HashMap<Principal, Ledger>,
        principals: &[Principal],
        cost: f64,
    ) -> Result<Option<RateLimitInfo>, Duration> {
        // The tenant has no bucket of its own in this profile.
        let principals: Vec<Principal> = principals
            .iter()
            .copied()
            .filter(|p| *p != Principal::Tenant)
            .collect();
        for p in &principals {
            let (rate, burst) = bucket_of(cfg, p);
            ledger_of(ledgers, cfg, p, now)
                .bucket
                .refill(now, rate, burst);
        }
        // Already blocked: refuse, and extend the block (continued traffic during a throttle).
        let mut wait: Option<Duration> = None;
        for p in &principals {
            let ledger = ledger_of(ledgers, cfg, p, now);
            if let Some(left) = ledger.bucket.check_blocked(now, cfg.extension_secs) {
                ledger.stats.early += 1;
                wait = wait.max(Some(left));
            }
        }
        // Otherwise: every bucket must hold the cost.
        if wait.is_none() {
            for p in &principals {
                let (rate, _) = bucket_of(cfg, p);
                let b = &mut ledger_of(ledgers, cfg, p, now).bucket;
                wait = wait.max(b.check_cost(now, cost, rate));
            }
        }
        if let Some(wait) = wait {
            return Err(wait);
        }
        let mut rate_limit: Option<RateLimitInfo> = None;
        for p in &principals {
            let (rate, burst) = bucket_of(cfg, p);
            let b = &mut ledger_of(ledgers, cfg, p, now).bucket;
            b.spend(cost);
            // Like Microsoft, the headers describe the app's budget, not a user's.
            if matches!(p, Principal::App(_)) && b.tokens().floor() <= 0.2 * burst {
                rate_limit = Some(RateLimitInfo {
                    limit: burst as u64,
                    remaining: b.tokens().max(0.0) as u64,
                    reset_secs: ((burst - b.tokens()) / rate.max(1e-9)).ceil() as u64,
                });
            }
        }
        Ok(rate_limit)
    }

    /// The windows a call draws from, with the amount it spends in each.
    fn draws(call: &Call) -> Vec<(Principal, Budget, f64)> {
        let mut d = Vec::with_capacity(4);
        if let Some(u) = call.user {
            d.push((Principal::User(u), Budget::UserRequests, 1.0));
        }
        d.push((Principal::App(call.app), Budget::AppMinute, call.units));
        d.push((Principal::App(call.app), Budget::AppDay, call.units));
        d.push((Principal::Tenant, Budget::TenantFiveMinutes, call.units));
        d
    }

    fn admit_realistic(
        &self,
        cfg: &ThrottleConfig,
        now: Instant,
        ledgers: &mut HashMap<Principal, Ledger>,
        call: &Call,
    ) -> Result<Option<RateLimitInfo>, Duration> {
        let draws = Self::draws(call);
        let charge = |ledgers: &mut HashMap<Principal, Ledger>| {
            for (p, budget, amount) in &draws {
                let ledger = ledger_of(ledgers, cfg, p, now);
                ledger
                    .meter(*budget, cfg, self.licenses)
                    .window
                    .add(now, *amount);
            }
        };
        let caller = call.caller();
        let told = ledger_of(ledgers, cfg, &caller, now).told.arrive(now, cfg);
        if let Some(wait) = told {
            ledger_of(ledgers, cfg, &caller, now).stats.early += 1;
            charge(ledgers); // refused calls count as usage
            return Err(wait);
        }
        let mut wait: Option<Duration> = None;
        for (p, budget, amount) in &draws {
            let ledger = ledger_of(ledgers, cfg, p, now);
            let w = ledger.meter(*budget, cfg, self.licenses).wait_for(
                now,
                *amount,
                cfg,
                self.licenses,
            );
            wait = wait.max(w);
        }
        charge(ledgers);
        if let Some(wait) = wait {
            ledger_of(ledgers, cfg, &caller, now)
                .told
                .tell(now, whole_secs(wait));
            return Err(wait);
        }
        // Only app-only calls learn of the app's minute budget, once 80 % of it is spent.
        if call.user.is_some() {
            return Ok(None);
        }
        let (_, limit) = Budget::AppMinute.scaled(cfg, self.licenses);
        let meter = ledger_of(ledgers, cfg, &Principal::App(call.app), now).meter(
            Budget::AppMinute,
            cfg,
            self.licenses,
        );
        let used = meter.window.used(now);
        Ok((used >= 0.8 * limit).then(|| RateLimitInfo {
            limit: limit.round() as u64,
            remaining: (limit - used).max(0.0).floor() as u64,
            reset_secs: whole_secs(meter.window.time_until_empty(now)),
        }))
    }

    /// A transfer of `bytes` by `user` (or the app): a download through a pre-authenticated
    /// URL, charged to the user's egress budget, or an upload, charged to its ingress budget;
    /// refused while that budget is spent (or, in the realistic profile, while the caller was
    /// told to wait).
    pub fn admit_transfer(
        &self,
        direction: Direction,
        user: Option<Uuid>,
        app: Uuid,
        bytes: u64,
    ) -> Admission {
        let cfg = self.config();
        let now = Instant::now();
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let ledgers = &mut guard.0;
        let mut principals = vec![Principal::App(app)];
        principals.extend(user.map(Principal::User));
        let caller = user.map_or(Principal::App(app), Principal::User);
        for p in &principals {
            ledger_of(ledgers, &cfg, p, now);
        }
        let per_hour = match direction {
            Direction::Egress => cfg.user_egress_bytes_per_hour,
            Direction::Ingress => cfg.user_ingress_bytes_per_hour,
        };
        let mut wait = None;
        if cfg.enabled {
            if let Some(u) = user.map(Principal::User) {
                let ledger = ledger_of(ledgers, &cfg, &u, now);
                wait = match cfg.profile {
                    Profile::Fast => {
                        let (rate, burst) = fast::transfer_bucket(per_hour);
                        let (bucket, _) = ledger.transfer(direction);
                        bucket.refill(now, rate, burst);
                        bucket.check_debt(rate)
                    }
                    Profile::Realistic => ledger.told.arrive(now, &cfg).or_else(|| {
                        let budget = ledger.transfer(direction).1;
                        ledger.meter(budget, &cfg, self.licenses).wait_for(
                            now,
                            bytes as f64,
                            &cfg,
                            self.licenses,
                        )
                    }),
                };
            }
        }
        if let Some(wait) = wait {
            let ledger = ledger_of(ledgers, &cfg, &caller, now);
            ledger.stats.throttled429 += 1;
            if cfg.profile == Profile::Realistic && ledger.told.until.is_none_or(|u| u <= now) {
                ledger.told.tell(now, whole_secs(wait));
            }
            return Admission::Throttled {
                retry_after_secs: whole_secs(wait),
                service_unavailable: false,
            };
        }
        for p in &principals {
            let ledger = ledger_of(ledgers, &cfg, p, now);
            match direction {
                Direction::Egress => ledger.stats.bytes += bytes,
                Direction::Ingress => ledger.stats.ingress_bytes += bytes,
            }
            if matches!(p, Principal::User(_)) {
                let (bucket, budget) = ledger.transfer(direction);
                bucket.spend(bytes as f64);
                ledger
                    .meter(budget, &cfg, self.licenses)
                    .window
                    .add(now, bytes as f64);
            }
        }
        Admission::Admitted { rate_limit: None }
    }

    pub fn stats(&self) -> Vec<(Principal, PrincipalStats)> {
        let guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        guard.0.iter().map(|(p, l)| (*p, l.stats.clone())).collect()
    }

    /// Forgets all budgets and figures (budgets start full again).
    pub fn reset(&self) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clear();
    }
}

/// The ledger of `p`, opened on its first call (every principal of a call has one before its
/// budgets are checked, so this never opens one halfway through a call).
fn ledger_of<'a>(
    ledgers: &'a mut HashMap<Principal, Ledger>,
    cfg: &ThrottleConfig,
    p: &Principal,
    now: Instant,
) -> &'a mut Ledger {
    ledgers
        .entry(*p)
        .or_insert_with(|| Ledger::new(cfg, p, now))
}

fn bucket_of(cfg: &ThrottleConfig, p: &Principal) -> (f64, f64) {
    match p {
        Principal::User(_) => fast::user_bucket(cfg),
        _ => fast::app_bucket(cfg),
    }
}

#[cfg(test)]
mod tests;
