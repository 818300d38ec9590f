//! How close the account pool gets to what Microsoft's throttling allows, measured in one run
//! against m365sim in both throttling profiles:
//! - `fast`: per-user budget R = 10 units/s, per-app A = 100 units/s (token buckets, RateLimit
//!   headers on every call);
//! - `realistic`: Microsoft's published limits for a tenant of 60,000 licences — R = 3,000
//!   requests per 5 minutes (10/s), A = 6,250 units per minute (104.2/s), T = 93,750 units per
//!   5 minutes (312.5/s) — with every window 20 times shorter (`time_scale` 0.05: 5 minutes
//!   last 15 s, the app's minute 3 s, and Retry-After caps at 15 s instead of 5 minutes), no
//!   RateLimit headers for the accounts' delegated calls, refused calls counted as usage;
//! - for N = 1, 2, 4, 8, 16 backup accounts, the probe's achieved rate ÷ min(N·R, A, T) (in
//!   requests/s when the users' budgets bind, which count requests in the realistic profile, else
//!   in resource units/s, as the simulator counted them), and the share of requests answered
//!   429/503;
//! - a naive baseline per profile: one account, fixed concurrency, exponential backoff on 429
//!   (ignoring Retry-After), as common tools do;
//! - peak resident memory streaming 256 KiB files and then 16 MiB files (flat in file size).
//!
//! `cargo bench -p m365backup-engine --bench pool_scaling` (env: BENCH_SECS per N, default 60;
//! BENCH_PROFILE=fast|realistic for one profile; BENCH_N for one N).

// Test and benchmark code panics on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/engine/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use m365backup_core::backup_accounts::BackupAccountSession;
use m365backup_engine::pool_builder::build_pool;
use m365backup_engine::probe::{probe, ProbeOptions, ProbeProgress};
use m365backup_m365::pool::PoolConfig;
use m365sim::{RunningSim, TenantSpec, ThrottleConfig};
use support::connection;

const SEED: u64 = 21;
/// The realistic profile's tenant size: the app's budget of the largest tier.
const LICENSES: u64 = 60_000;
/// The realistic profile's windows, as a share of Microsoft's.
const TIME_SCALE: f64 = 0.05;

#[derive(Clone, Copy, PartialEq)]
enum Profile {
    Fast,
    Realistic,
}

impl Profile {
    fn name(self) -> &'static str {
        match self {
            Profile::Fast => "fast",
            Profile::Realistic => "realistic",
        }
    }

    /// Per-user R, per-app A and per-tenant T budgets (per second).
    fn budgets(self) -> (f64, f64, f64) {
        match self {
            Profile::Fast => (10.0, 100.0, f64::INFINITY),
            Profile::Realistic => {
                let (minute, _, tenant) = m365sim::throttle::tier(LICENSES);
                (3_000.0 / 300.0, minute / 60.0, tenant / 300.0)
            }
        }
    }

    /// Left out of the measurement: sign-ins, the first listings and the pool learning its
    /// pace (longer in the realistic profile: a user's window holds 15 s of budget, which the
    /// first seconds spend in a burst).
    fn warm_up_secs(self) -> u64 {
        match self {
            Profile::Fast => 8,
            Profile::Realistic => 35,
        }
    }
}

/// Probes an unthrottled tenant with one file of `size` bytes per drive; the peak resident
/// memory of the process (simulator included) while doing so, MiB.
async fn stream_files(size: u64) -> (f64, m365backup_engine::probe::ProbeReport) {
    // Linux: writing 5 to clear_refs resets the peak RSS (VmHWM).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let unthrottled = ThrottleConfig {
        enabled: false,
        ..ThrottleConfig::default()
    };
    let sim = start_sim(unthrottled, 1, size, size).await;
    let pool = build_pool(
        "bench",
        accounts(&sim, 4),
        connection(&sim, "x", "x"),
        PoolConfig {
            initial_rate: 1000.0,
            ..PoolConfig::default()
        },
    )
    .unwrap();
    let options = ProbeOptions {
        workers: 16,
        keep_file_list: false,
    };
    let report = probe(pool, options, Arc::new(ProbeProgress::default()))
        .await
        .unwrap();
    sim.shutdown().await;
    (peak_rss_mib(), report)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

async fn start_sim(
    throttling: ThrottleConfig,
    files_per_drive: usize,
    min: u64,
    max: u64,
) -> RunningSim {
    let tenant = TenantSpec {
        seed: SEED,
        users: 100,
        backup_accounts: 32,
        sites: 4,
        licenses: Some(LICENSES),
        files_per_drive,
        min_file_size: min,
        max_file_size: max,
        ..TenantSpec::default()
    };
    support::start_sim(tenant, throttling).await
}

/// The profile's budgets; `BENCH_LATENCY_MS` adds a latency to every Graph answer (Microsoft's
/// are tens to hundreds of milliseconds), `BENCH_503` answers that share of throttles with 503.
fn throttled(profile: Profile) -> ThrottleConfig {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok());
    let (r, a, _) = profile.budgets();
    let base = match profile {
        Profile::Fast => ThrottleConfig {
            user_rate: r,
            user_burst: 2.0 * r,
            app_rate: a,
            app_burst: 2.0 * a,
            ..ThrottleConfig::default()
        },
        Profile::Realistic => ThrottleConfig::realistic(TIME_SCALE),
    };
    ThrottleConfig {
        latency_ms: env("BENCH_LATENCY_MS").unwrap_or(0.0) as u64,
        fraction_503: env("BENCH_503").unwrap_or(0.0),
        ..base
    }
}

fn accounts(sim: &RunningSim, n: usize) -> Vec<BackupAccountSession> {
    (1..=n)
        .map(|i| support::backup_account(sim, i, SEED))
        .collect()
}

/// Units admitted, requests admitted, requests and throttled answers so far (every request
/// goes through the app).
fn app_stats(sim: &m365sim::Sim) -> (f64, f64, f64, f64) {
    let app = sim.app_stats();
    (
        app.units,
        app.admitted as f64,
        app.requests as f64,
        (app.throttled429 + app.throttled503) as f64,
    )
}

/// What a window measured: admitted units/s and requests/s, and the throttled share.
struct Measured {
    units: f64,
    requests: f64,
    throttled: f64,
}

/// Rates and throttled share over a window after a warm-up, while `work` runs.
async fn measure(
    sim: &RunningSim,
    warm_up: u64,
    secs: u64,
    work: impl std::future::Future<Output = ()> + Send + 'static,
) -> Measured {
    let task = tokio::spawn(work);
    tokio::time::sleep(Duration::from_secs(warm_up)).await;
    let (u0, a0, r0, t0) = app_stats(&sim.sim);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (u1, a1, r1, t1) = app_stats(&sim.sim);
    let elapsed = start.elapsed().as_secs_f64();
    task.abort();
    Measured {
        units: (u1 - u0) / elapsed,
        requests: (a1 - a0) / elapsed,
        throttled: (t1 - t0) / (r1 - r0).max(1.0),
    }
}

/// The achieved rate against the limit min(N·R, A, T): requests/s when the users' budgets bind
/// in the realistic profile (they count requests), else units/s. (rate, limit)
fn against_limit(profile: Profile, n: usize, m: &Measured) -> (f64, f64) {
    let (r, a, t) = profile.budgets();
    let users = n as f64 * r;
    let limit = users.min(a).min(t);
    let rate = if profile == Profile::Realistic && users <= a.min(t) {
        m.requests
    } else {
        m.units
    };
    (rate, limit)
}

/// A common tool: one account, 8 requests at a time, exponential backoff on 429/503.
async fn naive(sim: Arc<RunningSim>, account: BackupAccountSession) {
    let (endpoints, credentials) = m365backup_m365::gateway::client_parts(&account.connection);
    let client = Arc::new(m365backup_m365::GraphClient::new(endpoints, credentials).unwrap());
    let urls: Vec<String> = sim
        .tenant()
        .drives
        .iter()
        .flat_map(|d| {
            d.state
                .read()
                .unwrap()
                .items
                .iter()
                .filter(|i| i.file.is_some())
                .map(|i| format!("/drives/{}/items/{}/content", d.id, i.id))
                .collect::<Vec<_>>()
        })
        .collect();
    let queue = Arc::new(tokio::sync::Mutex::new(urls.into_iter()));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, queue) = (client.clone(), queue.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(url) = queue.lock().await.next() else {
                    return;
                };
                let mut attempt = 0u32;
                loop {
                    match client.get_once(&url).await {
                        Ok(r) => {
                            let _ = r.bytes().await;
                            break;
                        }
                        Err(m365backup_m365::M365Error::Throttled { .. }) => {
                            attempt += 1;
                            tokio::time::sleep(Duration::from_millis(100 << attempt.min(7))).await;
                        }
                        Err(_) => break,
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let only: Option<usize> = std::env::var("BENCH_N").ok().and_then(|v| v.parse().ok());
    let profiles: Vec<Profile> = match std::env::var("BENCH_PROFILE").as_deref() {
        Ok("fast") => vec![Profile::Fast],
        Ok("realistic") => vec![Profile::Realistic],
        _ => vec![Profile::Fast, Profile::Realistic],
    };
    for profile in profiles {
        run_profile(profile, secs, only).await;
    }
    // Memory: the same number of files, 256 KiB and then 16 MiB each, unthrottled; the peak is
    // reset before each phase so that the two are compared side by side.
    let (small_peak, _) = stream_files(256 << 10).await;
    let (big_peak, big) = stream_files(16 << 20).await;
    println!(
        "  memory: peak RSS {small_peak:.0} MiB streaming {} files of 256 KiB; {big_peak:.0} MiB streaming {} files of 16 MiB ({:.1} GiB at {:.0} MB/s)",
        big.files,
        big.files,
        big.bytes as f64 / (1u64 << 30) as f64,
        big.bytes as f64 / big.elapsed.as_secs_f64() / 1e6
    );
}

async fn run_profile(profile: Profile, secs: u64, only: Option<usize>) {
    let (r, a, t) = profile.budgets();
    let warm_up = profile.warm_up_secs();
    println!(
        "pool_scaling, {} profile: per-user budget R = {r} /s, per-app budget A = {a:.1} units/s, tenant T = {t:.1} units/s; {secs} s measured after {warm_up} s warm-up",
        profile.name()
    );
    println!(
        "  {:>10} {:>12} {:>12} {:>8} {:>9}",
        "accounts", "rate/s", "limit", "ratio", "throttled"
    );
    let counts = only.map_or_else(|| vec![1usize, 2, 4, 8, 16], |n| vec![n]);
    for n in counts {
        let sim = start_sim(throttled(profile), 120, 1024, 64 << 10).await;
        let pool = build_pool(
            "bench",
            accounts(&sim, n),
            support::app_connection(&sim),
            PoolConfig::default(),
        )
        .unwrap();
        let options = ProbeOptions {
            workers: (4 * n).max(8),
            keep_file_list: false,
        };
        let pool_report = Arc::new(std::sync::Mutex::new(Vec::new()));
        let measured = {
            let watched = pool.clone();
            let trace = std::env::var("BENCH_VERBOSE").is_ok().then(|| {
                // Once a second: units the simulator admitted, the pool's requests so far and its
                // view of the first account and of the app ceiling.
                let traced = pool.clone();
                let shared = sim.sim.clone();
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_secs(1));
                    tick.tick().await;
                    let mut last_units = 0.0;
                    loop {
                        tick.tick().await;
                        let report = traced.report();
                        let requests: u64 = report.iter().map(|a| a.requests).sum();
                        let throttled: u64 = report
                            .iter()
                            .map(|a| a.throttled_429 + a.throttled_503)
                            .sum();
                        let (units, _, _, _) = app_stats(&shared);
                        println!(
                            "      +{:.0} units, {requests} requests, {throttled} throttled; {}",
                            units - last_units,
                            traced.debug_state()
                        );
                        last_units = units;
                    }
                })
            });
            let result = measure(&sim, warm_up, secs, async move {
                let _ = probe(pool, options, Arc::new(ProbeProgress::default())).await;
            })
            .await;
            *pool_report.lock().unwrap() = watched.report();
            if let Some(trace) = trace {
                trace.abort();
            }
            result
        };
        let (rate, limit) = against_limit(profile, n, &measured);
        println!(
            "  {n:>10} {rate:>12.1} {limit:>12.1} {:>8.3} {:>8.2}%",
            rate / limit,
            100.0 * measured.throttled
        );
        if std::env::var("BENCH_VERBOSE").is_ok() {
            for a in pool_report.lock().unwrap().iter() {
                println!(
                    "      {} req {} 429 {} paused {:?} rate {:.1}",
                    a.login, a.requests, a.throttled_429, a.paused, a.rate
                );
            }
        }
        sim.shutdown().await;
    }
    if only.is_some() {
        return;
    }
    let sim = Arc::new(start_sim(throttled(profile), 120, 1024, 64 << 10).await);
    let account = accounts(&sim, 1).remove(0);
    let measured = measure(&sim, warm_up, secs, naive(sim.clone(), account)).await;
    let (rate, limit) = against_limit(profile, 1, &measured);
    println!(
        "  {:>10} {rate:>12.1} {limit:>12.1} {:>8.3} {:>8.2}%  (naive: 1 account, 8 in flight, exponential backoff)",
        "naive",
        rate / limit,
        100.0 * measured.throttled
    );
    if let Ok(sim) = Arc::try_unwrap(sim) {
        sim.shutdown().await;
    }
}
