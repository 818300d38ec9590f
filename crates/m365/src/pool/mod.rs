//! The throttling-aware account pool: one authenticated session per backup account, and a
//! scheduler that spreads SharePoint/OneDrive requests across them.
//!
//! Microsoft throttles per user and per app per tenant. For each request the pool picks the
//! account with the most budget left; each account is paced by a token bucket at a rate it
//! learns (`pace.rs`: slow start, a measured bound after each throttle, then a slow increase
//! while the pace is used), and keeps only as many requests in flight as its pace needs. A throttled account pauses exactly as long as `Retry-After` says, and its
//! waiting work goes to the others at once. An account whose sign-in fails is quarantined and
//! reported; the rest carry on. The app's budget is a shared ceiling (`app_ceiling.rs`): the
//! pool reads `RateLimit-*` headers (sent once 80 % of it is used, to app-only calls only) and
//! paces itself at the rate the budget refills, or, never seeing headers, learns it from the
//! app's throttles.
//!
//! Downloads (`download.rs`) are read in ranges, so a user's egress budget fills evenly and a
//! large file moves on to another account when its account is told to wait.
//!
//! Access (`access.rs`): a backup account reads only what its user may. The pool learns from
//! `403`s which accounts can read which site or drive (a 403 is neither a throttle nor a broken
//! account), sends a drive's requests only to accounts that can read it, falls back to the
//! organization's own credentials where none can, and reports what nobody could read.

mod access;
mod app_ceiling;
mod download;
mod metrics;
mod pace;
pub mod writes;

pub use access::{access_scope, AccessReport};
pub use app_ceiling::RateLimitReading;
pub use download::RANGE_BYTES;
pub use metrics::render_metrics;

use pace::Readiness;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rand::Rng;
use serde::de::DeserializeOwned;

use crate::error::M365Error;
use crate::graph::{GraphClient, RequestBody};
use m365backup_core::log_text::LogText;

#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// Starting pace per account, resource units/s (Microsoft publishes 3,000 per 5 minutes per
    /// user).
    pub initial_rate: f64,
    pub min_rate: f64,
    /// Upper bound of requests in flight per account; below it the pool keeps as many as the
    /// account's pace needs given its answer times.
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
    /// The pace the account has learned, resource units/s.
    pub rate: f64,
    /// Why the account was taken out of the pool, if it was.
    pub quarantined: Option<String>,
    /// The organization's own credentials (used where no backup account can read).
    pub organization: bool,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    throttled_429: AtomicU64,
    throttled_503: AtomicU64,
    paused_micros: AtomicU64,
    bytes: AtomicU64,
}

pub struct PooledAccount {
    pub login: String,
    client: GraphClient,
    /// The organization's own credentials, not a backup account.
    organization: bool,
    /// Signs in with application permissions (no user).
    app_only: bool,
    pace: Mutex<pace::Pace>,
    counters: Arc<Counters>,
}

pub struct AccountPool {
    pub organization: String,
    /// The backup accounts, then (if given) the organization's own credentials.
    accounts: Vec<Arc<PooledAccount>>,
    access: Mutex<access::Access>,
    app: Mutex<app_ceiling::AppCeiling>,
    /// Where the next scan for an account starts.
    rotation: AtomicUsize,
    config: PoolConfig,
    wake: tokio::sync::Notify,
    downloads: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("every account of the pool is quarantined: {0}")]
    NoUsableAccount(String),
    /// No backup account and not the organization's credentials may read this site or drive.
    #[error("no credential of the organization may read {0}")]
    AccessDenied(String),
    /// An upload session's URL answered `404`: it expired (or was cancelled); the upload
    /// starts again in a new session.
    #[error("the upload session expired before the file was complete")]
    UploadSessionExpired,
    #[error(transparent)]
    M365(#[from] M365Error),
}

/// One Graph call as the pool sends it.
struct Call<'a> {
    method: reqwest::Method,
    url: &'a str,
    body: RequestBody,
    /// What it costs against Microsoft's budgets.
    units: f64,
    /// Whether a network failure or a 5xx may be answered by sending it again.
    retry_failures: bool,
}

/// A slot on one account, released on drop.
struct Lease<'a> {
    pool: &'a AccountPool,
    index: usize,
    /// What the app's budget had been charged when this request was handed out.
    charged: f64,
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
    /// A pool over `(login, client)` pairs, one per account, registered for `/metrics`. Fails
    /// when the HTTP client for downloads cannot start (see [`crate::graph::http_client`]).
    pub fn new(
        organization: impl Into<String>,
        accounts: Vec<(String, GraphClient)>,
        config: PoolConfig,
    ) -> reqwest::Result<Arc<Self>> {
        Self::with_organization(organization, accounts, None, config)
    }

    /// A pool over backup accounts plus the organization's own credentials, which serve what
    /// no backup account may read (and everything when there are no backup accounts).
    pub fn with_organization(
        organization: impl Into<String>,
        accounts: Vec<(String, GraphClient)>,
        own: Option<(String, GraphClient)>,
        config: PoolConfig,
    ) -> reqwest::Result<Arc<Self>> {
        let downloads = crate::graph::http_client()?;
        let now = Instant::now();
        let backup = accounts.into_iter().map(|a| (a, false));
        let accounts: Vec<Arc<PooledAccount>> = backup
            .chain(own.map(|a| (a, true)))
            .map(|((login, client), organization)| {
                Arc::new(PooledAccount {
                    app_only: client.tokens().is_app_only(),
                    login,
                    client,
                    organization,
                    pace: Mutex::new(pace::Pace::new(config.initial_rate, now)),
                    counters: Arc::default(),
                })
            })
            .collect();
        // Accounts that run out of their own budgets at about the same time are common; all or
        // most of them being refused at once is the app's budget.
        let mut app_ceiling = app_ceiling::AppCeiling::new(now);
        let backup = accounts.iter().filter(|a| !a.organization).count();
        app_ceiling.quorum = backup.div_ceil(2).max(3);
        let pool = Arc::new(Self {
            organization: organization.into(),
            accounts,
            access: Mutex::default(),
            app: Mutex::new(app_ceiling),
            rotation: AtomicUsize::new(0),
            config,
            wake: tokio::sync::Notify::new(),
            downloads,
        });
        REGISTRY
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::downgrade(&pool));
        Ok(pool)
    }

    /// Signs every account in now; failures are quarantined. The number of usable accounts
    /// that carry the work: backup accounts, or the organization's credentials without them.
    pub async fn sign_in_all(&self) -> usize {
        let results = futures_util::future::join_all(
            self.accounts
                .iter()
                .map(|a| async move { (a, a.client.tokens().token().await) }),
        )
        .await;
        let has_backup = self.accounts.iter().any(|a| !a.organization);
        let mut usable = 0;
        for (account, result) in results {
            match result {
                Ok(_) => usable += usize::from(account.organization != has_backup),
                Err(e) => self.quarantine(account, &e),
            }
        }
        usable
    }

    /// Which sites and drives were read with the organization's credentials, and which no
    /// credential could read.
    pub fn access_report(&self) -> AccessReport {
        self.access
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .report()
    }

    /// Access to `scope` (e.g. `drives/{id}`) is decided by `parent` (e.g. `sites/{id}`): what
    /// the pool learned of one holds for the other.
    pub fn same_access(&self, scope: &str, parent: &str) {
        self.access
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .alias(scope, parent);
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
                    organization: a.organization,
                }
            })
            .collect()
    }

    fn quarantine(&self, account: &PooledAccount, e: &M365Error) {
        let mut pace = account.pace.lock().unwrap_or_else(|p| p.into_inner());
        if pace.quarantined.is_none() {
            tracing::warn!(organization = %self.organization, account = %LogText(&account.login), reason = %e, "backup account quarantined");
            pace.quarantined = Some(e.to_string());
        }
        drop(pace);
        self.wake.notify_waiters();
    }

    /// Waits for the account with the most budget left that may send now, among those `route`
    /// allows.
    async fn acquire(&self, units: f64, route: &access::Route) -> Result<Lease<'_>, PoolError> {
        loop {
            let eligible = self
                .access
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .eligible(route, &self.roles())?;
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = Instant::now();
            let mut wake_at: Option<Instant> = None;
            {
                let mut app = self.app.lock().unwrap_or_else(|p| p.into_inner());
                let app_wait = app.wait(now, units);
                if app.probe_only && app.in_flight > 0 && app_wait.is_none() {
                    // Wait for the probe's answer (a lease drop wakes us).
                } else if let Some(until) = app_wait {
                    wake_at = Some(until);
                } else {
                    let mut best: Option<(usize, f64)> = None;
                    let mut quarantined = 0;
                    // Scan from a rotating start: among equally rested accounts the work is
                    // spread evenly, not given to the first.
                    let start = self.rotation.fetch_add(1, Ordering::Relaxed);
                    let count = self.accounts.len();
                    for i in (0..count).map(|k| (start + k) % count) {
                        if !eligible[i] {
                            continue;
                        }
                        let readiness = self.accounts[i]
                            .pace
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .readiness(now, units, &self.config);
                        match readiness {
                            Readiness::Quarantined => quarantined += 1,
                            Readiness::Ready { share } => {
                                if best.is_none_or(|(_, s)| share > s) {
                                    best = Some((i, share));
                                }
                            }
                            Readiness::Later(Some(at)) => {
                                wake_at = Some(wake_at.map_or(at, |w| w.min(at)));
                            }
                            Readiness::Later(None) => {}
                        }
                    }
                    if quarantined == eligible.iter().filter(|&&e| e).count() {
                        let reasons: Vec<String> = self
                            .report()
                            .into_iter()
                            .filter_map(|r| r.quarantined.map(|q| format!("{}: {q}", r.login)))
                            .collect();
                        return Err(PoolError::NoUsableAccount(reasons.join("; ")));
                    }
                    if let Some((i, _)) = best {
                        self.accounts[i]
                            .pace
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .take(units);
                        let charged = app.take(now, units);
                        return Ok(Lease {
                            pool: self,
                            index: i,
                            charged,
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

    fn on_throttled(&self, lease: &Lease<'_>, units: f64, retry_after: Duration, status: u16) {
        let account = &self.accounts[lease.index];
        let counter = if status == 503 {
            &account.counters.throttled_503
        } else {
            &account.counters.throttled_429
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let settled = !account
            .pace
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .in_slow_start();
        let app_throttled = {
            let mut app = self.app.lock().unwrap_or_else(|p| p.into_inner());
            app.refused(units);
            app.throttled(now, lease.index, retry_after, settled)
        };
        // Pause exactly as long as told; the waiting work goes to the other accounts. The
        // account's own pace only learns from throttles of its own budget.
        let paused = account
            .pace
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .throttled(now, retry_after, !app_throttled, &self.config);
        account
            .counters
            .paused_micros
            .fetch_add(paused.as_micros() as u64, Ordering::Relaxed);
        if app_throttled {
            tracing::debug!(
                retry_after_ms = retry_after.as_millis() as u64,
                "app budget throttled; pool paused"
            );
        }
        tracing::debug!(account = %LogText(&account.login), status, retry_after_ms = retry_after.as_millis() as u64, "throttled; account paused");
    }

    /// Whether a request throttled `throttles` times may be tried again.
    fn may_retry(
        &self,
        throttles: u32,
        retry_after: Duration,
        status: u16,
    ) -> Result<(), PoolError> {
        if throttles > self.config.throttle_retries {
            return Err(M365Error::Throttled {
                retry_after,
                status,
            }
            .into());
        }
        Ok(())
    }

    /// A throttle of the account's own budget outside Graph (the download service: the user's
    /// egress budget, counted in bytes): the account pauses as told, but its request pace
    /// learns nothing from it. The request budget is a different one; lowering the pace here
    /// left an egress-bound account sending its next `/content` up to 1/`min_rate` seconds
    /// after its pause ended, every file.
    fn pause_account(&self, index: usize, retry_after: Duration, status: u16) {
        let account = &self.accounts[index];
        let counter = if status == 503 {
            &account.counters.throttled_503
        } else {
            &account.counters.throttled_429
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let paused = account
            .pace
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .throttled(Instant::now(), retry_after, false, &self.config);
        account
            .counters
            .paused_micros
            .fetch_add(paused.as_micros() as u64, Ordering::Relaxed);
        self.wake.notify_waiters();
    }

    fn on_admitted(&self, lease: &Lease<'_>, units: f64, response: &reqwest::Response) {
        let account = &self.accounts[lease.index];
        account
            .pace
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .admitted(units);
        let reading = rate_limit_reading(response.headers());
        self.app.lock().unwrap_or_else(|p| p.into_inner()).admitted(
            Instant::now(),
            reading,
            lease.charged,
            account.app_only,
        );
    }

    /// Whether each account is the organization's own (`true`) or a backup account.
    fn roles(&self) -> Vec<bool> {
        self.accounts.iter().map(|a| a.organization).collect()
    }

    /// Runs one GET through the pool; retries on other accounts as needed. The successful
    /// response (the body not yet read) and the account that got it. The account's slot is
    /// free again once the answer's headers are in: reading the body cannot be throttled.
    async fn send(
        &self,
        url: &str,
        route: &access::Route,
    ) -> Result<(reqwest::Response, usize), PoolError> {
        let call = Call {
            method: reqwest::Method::GET,
            url,
            body: RequestBody::None,
            units: resource_units(url),
            retry_failures: true,
        };
        self.send_call(&call, route).await
    }

    /// Runs one call through the pool: an account with budget takes it, throttles pause that
    /// account and hand the call to another, network failures are retried when the call may
    /// be repeated.
    async fn send_call(
        &self,
        call: &Call<'_>,
        route: &access::Route,
    ) -> Result<(reqwest::Response, usize), PoolError> {
        let (url, units) = (call.url, call.units);
        let (mut throttles, mut failures) = (0, 0);
        loop {
            let lease = self.acquire(units, route).await?;
            let account = &self.accounts[lease.index];
            account.counters.requests.fetch_add(1, Ordering::Relaxed);
            let sent = Instant::now();
            let result = account
                .client
                .send_once(call.method.clone(), url, call.body.clone())
                .await;
            if matches!(&result, Ok(_) | Err(M365Error::Throttled { .. })) {
                account
                    .pace
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .answered_in(sent.elapsed());
            }
            match result {
                Ok(response) => {
                    self.on_admitted(&lease, units, &response);
                    return Ok((response, lease.index));
                }
                Err(M365Error::Throttled {
                    retry_after,
                    status,
                }) => {
                    self.on_throttled(&lease, units, retry_after, status);
                    throttles += 1;
                    self.may_retry(throttles, retry_after, status)?;
                }
                Err(e) => {
                    // Not charged to the app's budget either.
                    self.app
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .refused(units);
                    match e {
                        e @ M365Error::SignIn { .. } => self.quarantine(account, &e),
                        // Not a throttle, not a broken account: this one may not read it.
                        e if e.is_access_denied() && route.scope.is_some() => {
                            let scope = route.scope.as_deref().unwrap_or_default();
                            tracing::debug!(account = %LogText(&account.login), scope, "access denied; trying another credential");
                            let unreadable = self
                                .access
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .denied(scope, lease.index, account.organization);
                            if unreadable {
                                tracing::warn!(organization = %self.organization, scope, "no credential may read this");
                                return Err(PoolError::AccessDenied(scope.to_owned()));
                            }
                        }
                        e @ (M365Error::Unreachable { .. }
                        | M365Error::Graph {
                            status: 401 | 500 | 502 | 504,
                            ..
                        }) if call.retry_failures => {
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
                        e => return Err(e.into()),
                    }
                }
            }
        }
    }

    pub async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, PoolError> {
        self.get_json_routed(url, &access::Route::for_url(url))
            .await
    }

    /// A GET that needs application permissions (e.g. `/sites/getAllSites`): the
    /// organization's own credentials answer it.
    pub async fn get_json_as_organization<T: DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<T, PoolError> {
        self.get_json_routed(url, &access::Route::organization())
            .await
    }

    async fn get_json_routed<T: DeserializeOwned>(
        &self,
        url: &str,
        route: &access::Route,
    ) -> Result<T, PoolError> {
        let (response, account) = self.send(url, route).await?;
        if let Some(scope) = &route.scope {
            self.access
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .readable(scope, account, self.accounts[account].organization);
        }
        let url = url.split('?').next().unwrap_or(url);
        crate::response::json_capped(response, crate::response::MAX_GRAPH_BODY, url)
            .await
            .map_err(PoolError::from)
    }

    /// The rate at which the app's budget in the tenant refills, units/s, as the pool has
    /// learned it from `RateLimit-*` headers and app-level throttles; `None` while the app's
    /// budget has not pushed back.
    pub fn app_budget(&self) -> Option<f64> {
        self.app
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .estimate()
    }

    /// The app ceiling as the pool sees it (for benchmark traces).
    pub fn debug_state(&self) -> String {
        // One lock at a time (`acquire` takes the app's before an account's).
        let first = self.accounts[0]
            .pace
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .describe(self.config.max_in_flight);
        format!(
            "first account: {first}; {}",
            self.app
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .describe(Instant::now())
        )
    }

    pub fn accounts(&self) -> usize {
        self.accounts.len()
    }
}

/// `RateLimit-Limit` / `-Remaining` / `-Reset` of an answer: the app's budget, when it runs low.
fn rate_limit_reading(headers: &reqwest::header::HeaderMap) -> Option<RateLimitReading> {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    Some(RateLimitReading {
        limit: header("ratelimit-limit")?,
        remaining: header("ratelimit-remaining")?,
        reset_secs: header("ratelimit-reset"),
    })
}

/// What a Graph call costs against Microsoft's budgets (resource units): 2 for a multi-item
/// query (a collection, a delta without a token), 5 for permissions, 1 for a single item, a
/// delta with a token or a download. The pool paces accounts in units, so a listing-heavy phase is not over-sent.
pub fn resource_units(url: &str) -> f64 {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let path = path.trim_end_matches('/');
    if path.ends_with("/root/delta") {
        return if query.contains("token=") { 1.0 } else { 2.0 };
    }
    let last = path.rsplit('/').next().unwrap_or("");
    if last == "permissions" {
        5.0
    } else if [
        "users",
        "groups",
        "sites",
        "getAllSites",
        "drives",
        "members",
        "children",
        "versions",
    ]
    .contains(&last)
    {
        2.0
    } else {
        1.0
    }
}
