//! The throttling-aware account pool: one authenticated session per backup account, and a
//! scheduler that spreads SharePoint/OneDrive requests across them.
//!
//! Microsoft throttles per user and per app per tenant. For each request the pool picks the
//! account with the most budget left; each account is paced by a token bucket at a rate it
//! learns (additive increase while answers come back, multiplicative decrease on 429/503), and
//! bounded in flight. A throttled account pauses exactly as long as `Retry-After` says, and its
//! waiting work goes to the others at once. An account whose sign-in fails is quarantined and
//! reported; the rest carry on. The app's budget is a shared ceiling: `RateLimit-*` headers
//! (sent once 80 % of it is used) and throttles that hit several accounts at once slow the
//! whole pool down.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rand::Rng;
use serde::de::DeserializeOwned;

use crate::error::M365Error;
use crate::graph::GraphClient;

#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// Starting pace per account, requests/s (Microsoft publishes 3,000 per 5 minutes per user).
    pub initial_rate: f64,
    pub min_rate: f64,
    /// Requests in flight per account.
    pub max_in_flight: usize,
    /// Additive increase: pace gained per second without a throttle, as a share of the pace.
    pub increase_per_sec: f64,
    /// Multiplicative decrease of an account's pace when it is throttled.
    pub throttle_decrease: f64,
    /// Retries of a request after network failures (idempotent GETs only), with jittered backoff.
    pub network_retries: u32,
    /// Throttled answers tolerated for one request before it fails.
    pub throttle_retries: u32,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            initial_rate: 10.0,
            min_rate: 0.2,
            max_in_flight: 2,
            increase_per_sec: 0.015,
            throttle_decrease: 0.85,
            network_retries: 4,
            throttle_retries: 64,
        }
    }
}

/// Figures of one account, for job sessions and `/metrics`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AccountReport {
    pub login: String,
    pub requests: u64,
    pub throttled_429: u64,
    pub throttled_503: u64,
    pub paused: Duration,
    pub bytes: u64,
    /// The pace the account has learned, requests/s.
    pub rate: f64,
    /// Why the account was taken out of the pool, if it was.
    pub quarantined: Option<String>,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    throttled_429: AtomicU64,
    throttled_503: AtomicU64,
    paused_micros: AtomicU64,
    bytes: AtomicU64,
}

struct Pace {
    rate: f64,
    /// Before the first throttle the pace doubles every second (slow start, as TCP does); after
    /// it, it grows by `increase_per_sec`.
    probing: bool,
    tokens: f64,
    refilled: Instant,
    in_flight: usize,
    paused_until: Option<Instant>,
    quarantined: Option<String>,
    /// Since when the account has been sending without a throttle (the end of its last pause).
    window_start: Instant,
    /// Answers admitted since `window_start`.
    window_admitted: f64,
    /// The `Retry-After` of the last pause: how long the budget had to refill.
    last_pause: Option<Duration>,
}

/// Pace gained per second before an account's first throttle.
const SLOW_START_GROWTH: f64 = 0.3;

impl Pace {
    /// A lower bound of the account's sustainable rate, from the throttle that just came: since
    /// the last pause ended the budget held at most `rate × last_pause` units, and is now empty,
    /// so `admitted ≤ rate × (elapsed + last_pause)`.
    fn measured_rate(&self, now: Instant) -> Option<f64> {
        let pause = self.last_pause?;
        let elapsed = now.saturating_duration_since(self.window_start) + pause;
        (self.window_admitted > 0.0).then(|| self.window_admitted / elapsed.as_secs_f64())
    }

    fn refill(&mut self, now: Instant, cfg: &PoolConfig) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        // Additive increase while the account is not paused.
        if self.paused_until.is_none_or(|p| p <= now) {
            let growth = if self.probing {
                SLOW_START_GROWTH
            } else {
                cfg.increase_per_sec
            };
            self.rate += self.rate * growth * elapsed.min(1.0);
        }
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate.max(1.0));
        self.refilled = now;
    }
}

pub struct PooledAccount {
    pub login: String,
    client: GraphClient,
    pace: Mutex<Pace>,
    counters: Counters,
}

/// The app's shared budget, as far as the pool can see it.
struct AppCeiling {
    /// Pool-wide pace once the app budget has pushed back; `None` until then.
    rate: Option<f64>,
    tokens: f64,
    refilled: Instant,
    paused_until: Option<Instant>,
    /// When `RateLimit-*` headers last said the app's budget is running low.
    pressure_at: Option<Instant>,
    /// When the pool-wide pace was last lowered (one decrease per half second at most).
    lowered_at: Option<Instant>,
    /// Best lower bound of the app budget's refill rate seen in `RateLimit-*` headers.
    refill_estimate: Option<f64>,
    /// After the app itself was throttled, one request at a time until one is admitted: every
    /// request sent into the block would extend it.
    probe_only: bool,
    /// Requests in flight across the pool.
    in_flight: usize,
    /// Units handed out since the pool started, and the last `RateLimit-Remaining` reading
    /// (when, remaining, units handed out by then).
    units_sent: f64,
    last_reading: Option<(Instant, f64, f64)>,
    /// Recent throttles (when, which account), to tell app throttling from user throttling.
    recent_throttles: Vec<(Instant, usize)>,
    /// Requests sent recently (timestamps), to measure the pool's actual pace.
    sent: std::collections::VecDeque<(Instant, f64)>,
}

pub struct AccountPool {
    pub organization: String,
    accounts: Vec<Arc<PooledAccount>>,
    app: Mutex<AppCeiling>,
    config: PoolConfig,
    wake: tokio::sync::Notify,
    downloads: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("every account of the pool is quarantined: {0}")]
    NoUsableAccount(String),
    #[error(transparent)]
    M365(#[from] M365Error),
}

/// A slot on one account, released on drop.
struct Lease<'a> {
    pool: &'a AccountPool,
    index: usize,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut pace = self.pool.accounts[self.index]
            .pace
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        pace.in_flight -= 1;
        drop(pace);
        self.pool
            .app
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .in_flight -= 1;
        self.pool.wake.notify_waiters();
    }
}

/// Live pools of this process, for `/metrics`.
static REGISTRY: Mutex<Vec<Weak<AccountPool>>> = Mutex::new(Vec::new());

pub fn live_pools() -> Vec<Arc<AccountPool>> {
    let mut registry = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    registry.retain(|w| w.strong_count() > 0);
    registry.iter().filter_map(Weak::upgrade).collect()
}

impl AccountPool {
    /// A pool over `(login, client)` pairs, one per account, registered for `/metrics`.
    pub fn new(
        organization: impl Into<String>,
        accounts: Vec<(String, GraphClient)>,
        config: PoolConfig,
    ) -> Arc<Self> {
        let now = Instant::now();
        let accounts = accounts
            .into_iter()
            .map(|(login, client)| {
                Arc::new(PooledAccount {
                    login,
                    client,
                    pace: Mutex::new(Pace {
                        rate: config.initial_rate,
                        probing: true,
                        window_start: now,
                        window_admitted: 0.0,
                        last_pause: None,
                        tokens: config.initial_rate.max(1.0),
                        refilled: now,
                        in_flight: 0,
                        paused_until: None,
                        quarantined: None,
                    }),
                    counters: Counters::default(),
                })
            })
            .collect();
        let pool = Arc::new(Self {
            organization: organization.into(),
            accounts,
            app: Mutex::new(AppCeiling {
                rate: None,
                tokens: 0.0,
                refilled: now,
                paused_until: None,
                pressure_at: None,
                lowered_at: None,
                refill_estimate: None,
                probe_only: false,
                in_flight: 0,
                units_sent: 0.0,
                last_reading: None,
                recent_throttles: Vec::new(),
                sent: Default::default(),
            }),
            config,
            wake: tokio::sync::Notify::new(),
            downloads: crate::graph::http_client(),
        });
        REGISTRY
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::downgrade(&pool));
        pool
    }

    /// Signs every account in now; failures are quarantined. The number of usable accounts.
    pub async fn sign_in_all(&self) -> usize {
        let results = futures_util::future::join_all(
            self.accounts
                .iter()
                .map(|a| async move { (a, a.client.tokens().token().await) }),
        )
        .await;
        let mut usable = 0;
        for (account, result) in results {
            match result {
                Ok(_) => usable += 1,
                Err(e) => self.quarantine(account, &e),
            }
        }
        usable
    }

    pub fn report(&self) -> Vec<AccountReport> {
        self.accounts
            .iter()
            .map(|a| {
                let pace = a.pace.lock().unwrap_or_else(|p| p.into_inner());
                AccountReport {
                    login: a.login.clone(),
                    requests: a.counters.requests.load(Ordering::Relaxed),
                    throttled_429: a.counters.throttled_429.load(Ordering::Relaxed),
                    throttled_503: a.counters.throttled_503.load(Ordering::Relaxed),
                    paused: Duration::from_micros(a.counters.paused_micros.load(Ordering::Relaxed)),
                    bytes: a.counters.bytes.load(Ordering::Relaxed),
                    rate: pace.rate,
                    quarantined: pace.quarantined.clone(),
                }
            })
            .collect()
    }

    fn quarantine(&self, account: &PooledAccount, e: &M365Error) {
        let mut pace = account.pace.lock().unwrap_or_else(|p| p.into_inner());
        if pace.quarantined.is_none() {
            tracing::warn!(organization = %self.organization, account = %account.login, reason = %e, "backup account quarantined");
            pace.quarantined = Some(e.to_string());
        }
        drop(pace);
        self.wake.notify_waiters();
    }

    /// Waits for the account with the most budget left that may send now.
    async fn acquire(&self, units: f64) -> Result<Lease<'_>, PoolError> {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = Instant::now();
            let mut wake_at: Option<Instant> = None;
            {
                let mut app = self.app.lock().unwrap_or_else(|p| p.into_inner());
                let app_wait = self.app_wait(&mut app, now, units);
                if app.probe_only && app.in_flight > 0 && app_wait.is_none() {
                    // Wait for the probe's answer (a lease drop wakes us).
                } else if let Some(until) = app_wait {
                    wake_at = Some(until);
                } else {
                    let mut best: Option<(usize, f64)> = None;
                    let mut quarantined = 0;
                    for (i, a) in self.accounts.iter().enumerate() {
                        let mut pace = a.pace.lock().unwrap_or_else(|p| p.into_inner());
                        if pace.quarantined.is_some() {
                            quarantined += 1;
                            continue;
                        }
                        pace.refill(now, &self.config);
                        if let Some(until) = pace.paused_until.filter(|u| *u > now) {
                            wake_at = Some(wake_at.map_or(until, |w| w.min(until)));
                            continue;
                        }
                        if pace.in_flight >= self.config.max_in_flight {
                            continue;
                        }
                        // A request costing more than the bucket holds waits for a full bucket.
                        let need = units.min(pace.rate.max(1.0));
                        if pace.tokens >= need {
                            let share = pace.tokens / pace.rate.max(1.0);
                            if best.is_none_or(|(_, s)| share > s) {
                                best = Some((i, share));
                            }
                        } else {
                            let ready = now
                                + Duration::from_secs_f64(
                                    (need - pace.tokens) / pace.rate.max(1e-3),
                                );
                            wake_at = Some(wake_at.map_or(ready, |w| w.min(ready)));
                        }
                    }
                    if quarantined == self.accounts.len() {
                        let reasons: Vec<String> = self
                            .report()
                            .into_iter()
                            .filter_map(|r| r.quarantined.map(|q| format!("{}: {q}", r.login)))
                            .collect();
                        return Err(PoolError::NoUsableAccount(reasons.join("; ")));
                    }
                    if let Some((i, _)) = best {
                        let mut pace = self.accounts[i]
                            .pace
                            .lock()
                            .unwrap_or_else(|p| p.into_inner());
                        pace.tokens -= units;
                        pace.in_flight += 1;
                        if app.rate.is_some() {
                            app.tokens -= units;
                        }
                        app.sent.push_back((now, units));
                        app.units_sent += units;
                        app.in_flight += 1;
                        return Ok(Lease {
                            pool: self,
                            index: i,
                        });
                    }
                }
            }
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at.into()) => {},
                        _ = &mut notified => {},
                    }
                }
                None => notified.await,
            }
        }
    }

    /// When the app's ceiling holds requests back: the instant it lets the next one go.
    fn app_wait(&self, app: &mut AppCeiling, now: Instant, units: f64) -> Option<Instant> {
        if let Some(until) = app.paused_until.filter(|u| *u > now) {
            return Some(until);
        }
        while app
            .sent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > Duration::from_secs(2))
        {
            app.sent.pop_front();
        }
        let quiet = app
            .pressure_at
            .is_none_or(|p| now.duration_since(p) > Duration::from_secs(10));
        if quiet && app.refill_estimate.is_none() {
            app.rate = None; // no word of the app's budget for a while: no pool-wide ceiling
        }
        let rate = app.rate?;
        let elapsed = now.saturating_duration_since(app.refilled).as_secs_f64();
        let rate = rate + rate * self.config.increase_per_sec * elapsed;
        app.rate = Some(rate);
        app.tokens = (app.tokens + elapsed * rate).min(rate.max(1.0));
        app.refilled = now;
        let need = units.min(rate.max(1.0));
        (app.tokens < need)
            .then(|| now + Duration::from_secs_f64((need - app.tokens) / rate.max(1e-3)))
    }

    /// The pool's actual pace over the last two seconds, resource units/s.
    fn recent_rate(app: &AppCeiling) -> f64 {
        app.sent.iter().map(|(_, u)| u).sum::<f64>() / 2.0
    }

    /// The app's budget is running low: lower the pool-wide pace (at most twice a second), and
    /// after a throttle pause every account for `retry_after`.
    fn app_pushback(&self, retry_after: Option<Duration>, decrease: f64) {
        let now = Instant::now();
        let mut app = self.app.lock().unwrap_or_else(|p| p.into_inner());
        if app
            .lowered_at
            .is_none_or(|t| now.duration_since(t) >= Duration::from_millis(500))
        {
            let current = app
                .refill_estimate
                .map(|e| e * 0.98)
                .or(app.rate)
                .unwrap_or_else(|| Self::recent_rate(&app).max(self.config.min_rate));
            // Never below 90 % of what the headers showed the budget refills at.
            let floor = app
                .refill_estimate
                .map_or(self.config.min_rate, |e| e * 0.9);
            let lowered = (current * decrease).max(floor);
            app.rate = Some(lowered);
            app.tokens = app.tokens.min(lowered.max(1.0));
            app.refilled = now;
            app.lowered_at = Some(now);
        }
        if let Some(wait) = retry_after {
            let until = now + wait;
            app.paused_until = Some(app.paused_until.map_or(until, |p| p.max(until)));
            tracing::debug!(
                retry_after_ms = wait.as_millis() as u64,
                "app budget throttled; pool paused"
            );
        }
    }

    fn on_throttled(&self, index: usize, retry_after: Duration, status: u16) {
        let account = &self.accounts[index];
        let counter = if status == 503 {
            &account.counters.throttled_503
        } else {
            &account.counters.throttled_429
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        // Throttled while the app's budget was said to run low, or several accounts throttled
        // within a second: the app's shared budget is the one exhausted.
        let app_throttled = {
            let mut app = self.app.lock().unwrap_or_else(|p| p.into_inner());
            app.recent_throttles
                .retain(|(t, _)| now.duration_since(*t) < Duration::from_secs(1));
            app.recent_throttles.push((now, index));
            let mut distinct: Vec<usize> = app.recent_throttles.iter().map(|(_, i)| *i).collect();
            distinct.sort_unstable();
            distinct.dedup();
            let pressure = app
                .pressure_at
                .is_some_and(|p| now.duration_since(p) < Duration::from_secs(2));
            pressure || distinct.len() >= 3
        };
        {
            let mut pace = account.pace.lock().unwrap_or_else(|p| p.into_inner());
            pace.refill(now, &self.config);
            // Pause exactly as long as told; the waiting work goes to the other accounts.
            let until = now + retry_after;
            if pace.paused_until.is_none_or(|p| p < until) {
                let already = pace
                    .paused_until
                    .map_or(Duration::ZERO, |p| p.saturating_duration_since(now));
                account.counters.paused_micros.fetch_add(
                    (retry_after - already).as_micros() as u64,
                    Ordering::Relaxed,
                );
                // Answers to requests sent before this one may still bring throttles: learn once.
                if already.is_zero() {
                    let learned = match pace.measured_rate(now) {
                        Some(measured) => {
                            measured.max(pace.rate * self.config.throttle_decrease * 0.5)
                        }
                        None => pace.rate * 0.6, // end of the slow start: back near the last safe pace
                    };
                    pace.rate = learned.min(pace.rate).max(self.config.min_rate);
                }
                pace.paused_until = Some(until);
                pace.window_start = until;
                pace.window_admitted = 0.0;
                pace.last_pause = Some(retry_after);
            }
            pace.probing = false;
            pace.tokens = 0.0;
        }
        if app_throttled {
            self.app_pushback(Some(retry_after), 0.9);
            self.app
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .probe_only = true;
        }
        tracing::debug!(account = %account.login, status, retry_after_ms = retry_after.as_millis() as u64, "throttled; account paused");
    }

    /// Reads `RateLimit-Limit`/`-Remaining`/`-Reset` (the app's budget, sent once 80 % of it
    /// is used). `(limit − remaining) / reset` is a lower bound of the rate at which the budget
    /// refills; while under pressure the pool paces itself just under the best such bound.
    fn observe_headers(&self, response: &reqwest::Response) {
        let header = |n: &str| {
            response
                .headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        let (Some(limit), Some(remaining)) =
            (header("ratelimit-limit"), header("ratelimit-remaining"))
        else {
            return;
        };
        if limit <= 0.0 || remaining > 0.2 * limit {
            return;
        }
        let now = Instant::now();
        let mut app = self.app.lock().unwrap_or_else(|p| p.into_inner());
        app.pressure_at = Some(now);
        if let Some(reset) = header("ratelimit-reset").filter(|r| *r >= 1.0) {
            let bound = (limit - remaining) / reset;
            app.refill_estimate = Some(app.refill_estimate.map_or(bound, |e| e.max(bound)));
        }
        // Sharper: between two readings at least a second apart, the budget refilled by what it
        // gained plus what the pool spent meanwhile (the pool being its main spender).
        let spent = app.units_sent;
        match app.last_reading {
            Some((at, previous, spent_then))
                if now.duration_since(at) >= Duration::from_secs(1) =>
            {
                let flow = (remaining - previous + (spent - spent_then))
                    / now.duration_since(at).as_secs_f64();
                if flow > 0.0 {
                    let smoothed = app.refill_estimate.map_or(flow, |e| 0.5 * e + 0.5 * flow);
                    app.refill_estimate = Some(smoothed);
                }
                app.last_reading = Some((now, remaining, spent));
            }
            Some(_) => {}
            None => app.last_reading = Some((now, remaining, spent)),
        }
        let target = match app.refill_estimate {
            Some(estimate) => estimate * 0.98,
            None => Self::recent_rate(&app) * 0.7,
        }
        .max(self.config.min_rate);
        // Follow the estimate both ways: after a throttle it may have been set far lower. The
        // bucket keeps what it accrued (it refills from `refilled` on the next acquire).
        app.rate = Some(target);
    }

    fn on_admitted(&self, index: usize, units: f64) {
        let mut pace = self.accounts[index]
            .pace
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        pace.window_admitted += units;
        drop(pace);
        let mut app = self.app.lock().unwrap_or_else(|p| p.into_inner());
        if std::mem::take(&mut app.probe_only) {
            // The app's block is over: back to the pace its budget sustains.
            if let Some(estimate) = app.refill_estimate {
                app.rate = Some(estimate * 0.98);
            }
        }
    }

    /// Runs one GET through the pool; retries on other accounts as needed. The successful
    /// response (the body not yet read) and the account that got it.
    async fn send(&self, url: &str) -> Result<(reqwest::Response, Lease<'_>), PoolError> {
        let units = resource_units(url);
        let (mut throttles, mut failures) = (0, 0);
        loop {
            let lease = self.acquire(units).await?;
            let account = &self.accounts[lease.index];
            account.counters.requests.fetch_add(1, Ordering::Relaxed);
            match account.client.get_once(url).await {
                Ok(response) => {
                    self.on_admitted(lease.index, units);
                    self.observe_headers(&response);
                    return Ok((response, lease));
                }
                Err(M365Error::Throttled {
                    retry_after,
                    status,
                }) => {
                    self.on_throttled(lease.index, retry_after, status);
                    throttles += 1;
                    if throttles > self.config.throttle_retries {
                        return Err(M365Error::Throttled {
                            retry_after,
                            status,
                        }
                        .into());
                    }
                }
                Err(e @ M365Error::SignIn { .. }) => self.quarantine(account, &e),
                Err(e @ M365Error::Unreachable { .. })
                | Err(
                    e @ M365Error::Graph {
                        status: 401 | 500 | 502 | 504,
                        ..
                    },
                ) => {
                    failures += 1;
                    if failures > self.config.network_retries {
                        return Err(e.into());
                    }
                    drop(lease);
                    // Jittered exponential backoff: 100 ms, 200 ms, ... ±50 %.
                    let base = 100u64 << failures.min(6);
                    let jitter = rand::thread_rng().gen_range(base / 2..=base + base / 2);
                    tokio::time::sleep(Duration::from_millis(jitter)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, PoolError> {
        let (response, _lease) = self.send(url).await?;
        response.json::<T>().await.map_err(|e| {
            M365Error::Unreachable {
                url: url.split('?').next().unwrap_or(url).to_owned(),
                reason: crate::graph::reason(&e),
            }
            .into()
        })
    }

    /// Streams a file's content (`/drives/{d}/items/{i}/content`, following the redirect to
    /// the download URL) into `sink`, chunk by chunk; the number of bytes.
    pub async fn download(
        &self,
        content_url: &str,
        mut sink: impl FnMut(&[u8]),
    ) -> Result<u64, PoolError> {
        let (response, lease) = self.send(content_url).await?;
        let response = if response.status().is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| M365Error::Unreachable {
                    url: content_url.to_owned(),
                    reason: "redirect without a location".into(),
                })?
                .to_owned();
            // Pre-authenticated URL: no bearer token is sent to it.
            self.downloads
                .get(&location)
                .send()
                .await
                .map_err(|e| M365Error::Unreachable {
                    url: "download URL".into(),
                    reason: crate::graph::reason(&e),
                })?
        } else {
            response
        };
        if !response.status().is_success() {
            return Err(M365Error::Graph {
                status: response.status().as_u16(),
                code: "downloadFailed".into(),
                message: "the download URL refused the request".into(),
            }
            .into());
        }
        let mut total = 0u64;
        let mut stream = response.bytes_stream();
        use futures_util::StreamExt;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| M365Error::Unreachable {
                url: "download URL".into(),
                reason: crate::graph::reason(&e),
            })?;
            sink(&chunk);
            total += chunk.len() as u64;
        }
        self.accounts[lease.index]
            .counters
            .bytes
            .fetch_add(total, Ordering::Relaxed);
        Ok(total)
    }

    /// The app ceiling as the pool sees it (for benchmark traces).
    pub fn debug_state(&self) -> String {
        let app = self.app.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        format!(
            "app rate {:?} estimate {:?} probe_only {} in_flight {} paused {:?} recent {:.1}",
            app.rate.map(|r| r.round()),
            app.refill_estimate.map(|r| r.round()),
            app.probe_only,
            app.in_flight,
            app.paused_until.map(|p| p.saturating_duration_since(now)),
            Self::recent_rate(&app)
        )
    }

    pub fn accounts(&self) -> usize {
        self.accounts.len()
    }
}

/// What a Graph call costs against Microsoft's budgets (resource units): 2 for a multi-item
/// query (a collection, a delta without a token), 1 for a single item, a delta with a token or a
/// download. The pool paces accounts in units, so a listing-heavy phase is not over-sent.
pub fn resource_units(url: &str) -> f64 {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let path = path.trim_end_matches('/');
    if path.ends_with("/root/delta") {
        return if query.contains("token=") { 1.0 } else { 2.0 };
    }
    let last = path.rsplit('/').next().unwrap_or("");
    if ["users", "groups", "sites", "drives", "members", "children"].contains(&last) {
        2.0
    } else {
        1.0
    }
}

/// Prometheus text format of every live pool's figures.
pub fn render_metrics(pools: &[Arc<AccountPool>]) -> String {
    let mut out = String::new();
    let families: [(&str, &str, &str); 6] = [
        (
            "m365backup_account_requests_total",
            "counter",
            "Graph requests sent through the account",
        ),
        (
            "m365backup_account_throttled_total",
            "counter",
            "Throttled answers (429 or 503) the account received",
        ),
        (
            "m365backup_account_paused_seconds_total",
            "counter",
            "Time the account spent paused by Retry-After",
        ),
        (
            "m365backup_account_bytes_total",
            "counter",
            "Content bytes downloaded through the account",
        ),
        (
            "m365backup_account_rate",
            "gauge",
            "Learned sustainable request rate of the account (requests/s)",
        ),
        (
            "m365backup_account_quarantined",
            "gauge",
            "1 when the account's sign-in failed and it was taken out of the pool",
        ),
    ];
    for (name, kind, help) in families {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for pool in pools {
            for r in pool.report() {
                let labels = format!(
                    "organization=\"{}\",account=\"{}\"",
                    escape(&pool.organization),
                    escape(&r.login)
                );
                match name {
                    "m365backup_account_throttled_total" => {
                        out.push_str(&format!(
                            "{name}{{{labels},status=\"429\"}} {}\n",
                            r.throttled_429
                        ));
                        out.push_str(&format!(
                            "{name}{{{labels},status=\"503\"}} {}\n",
                            r.throttled_503
                        ));
                    }
                    _ => {
                        let value = match name {
                            "m365backup_account_requests_total" => r.requests as f64,
                            "m365backup_account_paused_seconds_total" => r.paused.as_secs_f64(),
                            "m365backup_account_bytes_total" => r.bytes as f64,
                            "m365backup_account_rate" => r.rate,
                            _ => f64::from(u8::from(r.quarantined.is_some())),
                        };
                        out.push_str(&format!("{name}{{{labels}}} {value}\n"));
                    }
                }
            }
        }
    }
    out
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
