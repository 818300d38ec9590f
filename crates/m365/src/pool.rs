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
            max_in_flight: 4,
            increase_per_sec: 0.02,
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
}

impl Pace {
    fn refill(&mut self, now: Instant, cfg: &PoolConfig) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        // Additive increase while the account is not paused.
        if self.paused_until.is_none_or(|p| p <= now) {
            let growth = if self.probing {
                1.0
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
    /// Recent throttles (when, which account), to tell app throttling from user throttling.
    recent_throttles: Vec<(Instant, usize)>,
    /// Requests sent recently (timestamps), to measure the pool's actual pace.
    sent: std::collections::VecDeque<Instant>,
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
    async fn acquire(&self) -> Result<Lease<'_>, PoolError> {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = Instant::now();
            let mut wake_at: Option<Instant> = None;
            {
                let mut app = self.app.lock().unwrap_or_else(|p| p.into_inner());
                let app_wait = self.app_wait(&mut app, now);
                if let Some(until) = app_wait {
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
                        if pace.tokens >= 1.0 {
                            let share = pace.tokens / pace.rate.max(1.0);
                            if best.is_none_or(|(_, s)| share > s) {
                                best = Some((i, share));
                            }
                        } else {
                            let ready = now
                                + Duration::from_secs_f64(
                                    (1.0 - pace.tokens) / pace.rate.max(1e-3),
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
                        pace.tokens -= 1.0;
                        pace.in_flight += 1;
                        if app.rate.is_some() {
                            app.tokens -= 1.0;
                        }
                        app.sent.push_back(now);
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
    fn app_wait(&self, app: &mut AppCeiling, now: Instant) -> Option<Instant> {
        if let Some(until) = app.paused_until.filter(|u| *u > now) {
            return Some(until);
        }
        while app
            .sent
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(2))
        {
            app.sent.pop_front();
        }
        let rate = app.rate?;
        let elapsed = now.saturating_duration_since(app.refilled).as_secs_f64();
        let rate = rate + rate * self.config.increase_per_sec * elapsed;
        app.rate = Some(rate);
        app.tokens = (app.tokens + elapsed * rate).min(rate.max(1.0));
        app.refilled = now;
        (app.tokens < 1.0)
            .then(|| now + Duration::from_secs_f64((1.0 - app.tokens) / rate.max(1e-3)))
    }

    /// The pool's actual pace over the last two seconds, requests/s.
    fn recent_rate(app: &AppCeiling) -> f64 {
        app.sent.len() as f64 / 2.0
    }

    /// The app's budget is running low (headers) or throttled several accounts: slow the pool.
    fn app_pushback(&self, retry_after: Option<Duration>, decrease: f64) {
        let now = Instant::now();
        let mut app = self.app.lock().unwrap_or_else(|p| p.into_inner());
        let current = app
            .rate
            .unwrap_or_else(|| Self::recent_rate(&app).max(self.config.min_rate));
        let lowered = (current * decrease).max(self.config.min_rate);
        if app.rate.is_none_or(|r| lowered < r) {
            app.rate = Some(lowered);
            app.tokens = app.tokens.min(lowered.max(1.0));
            app.refilled = now;
        }
        if let Some(wait) = retry_after {
            let until = now + wait;
            app.paused_until = Some(app.paused_until.map_or(until, |p| p.max(until)));
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
        {
            let mut pace = account.pace.lock().unwrap_or_else(|p| p.into_inner());
            pace.refill(now, &self.config);
            // Pause exactly as long as told; the waiting work goes to the other accounts.
            let until = now + retry_after;
            if pace.paused_until.is_none_or(|p| p < until) {
                account
                    .counters
                    .paused_micros
                    .fetch_add(retry_after.as_micros() as u64, Ordering::Relaxed);
                pace.paused_until = Some(until);
            }
            pace.rate = (pace.rate * self.config.throttle_decrease).max(self.config.min_rate);
            pace.probing = false;
            pace.tokens = 0.0;
        }
        // Several accounts throttled within a second: the shared app budget is exhausted.
        let several = {
            let mut app = self.app.lock().unwrap_or_else(|p| p.into_inner());
            app.recent_throttles
                .retain(|(t, _)| now.duration_since(*t) < Duration::from_secs(1));
            app.recent_throttles.push((now, index));
            let mut distinct: Vec<usize> = app.recent_throttles.iter().map(|(_, i)| *i).collect();
            distinct.sort_unstable();
            distinct.dedup();
            distinct.len() >= 2 && self.accounts.len() >= 2
        };
        if several {
            self.app_pushback(Some(retry_after), 0.8);
        }
        tracing::debug!(account = %account.login, status, retry_after_ms = retry_after.as_millis() as u64, "throttled; account paused");
    }

    /// Reads `RateLimit-Remaining`/`-Limit`: at 10 % or less of the app's budget, slow down.
    fn observe_headers(&self, response: &reqwest::Response) {
        let header = |n: &str| {
            response
                .headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        if let (Some(remaining), Some(limit)) =
            (header("ratelimit-remaining"), header("ratelimit-limit"))
        {
            if limit > 0.0 && remaining <= 0.1 * limit {
                self.app_pushback(None, 0.97);
            }
        }
    }

    /// Runs one GET through the pool; retries on other accounts as needed. The successful
    /// response (the body not yet read) and the account that got it.
    async fn send(&self, url: &str) -> Result<(reqwest::Response, Lease<'_>), PoolError> {
        let (mut throttles, mut failures) = (0, 0);
        loop {
            let lease = self.acquire().await?;
            let account = &self.accounts[lease.index];
            account.counters.requests.fetch_add(1, Ordering::Relaxed);
            match account.client.get_once(url).await {
                Ok(response) => {
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

    pub fn accounts(&self) -> usize {
        self.accounts.len()
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
