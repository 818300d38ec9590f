//! Backup jobs end to end against what Microsoft's throttling allows, in one run: the real server
//! in-process runs a job over a generated m365sim tenant (delta, downloads, repository writes,
//! commits: storage included), in both of the simulator's throttling profiles, with budgets,
//! ratio and baseline defined as `pool_scaling` (crates/engine/benches) defines them:
//! - `fast`: per-user R = 10 units/s, per-app A = 100 units/s (token buckets of 2 s);
//! - `realistic`: Microsoft's published limits for a 60,000-licence tenant (R = 3,000 requests
//!   per 5 minutes, A = 6,250 units per minute, T = 93,750 units per 5 minutes) with every window
//!   20 times shorter (`time_scale` 0.05).
//!
//! Parts (`BENCH_ONLY`, a comma list; all by default):
//! - `scaling`: a full backup of a tenant of ≥ 50 OneDrives and 10 sites (≥ 2 GiB) with
//!   N = 1, 4, 16 backup accounts: the request rate over the whole run (from the job's start to
//!   its session's end) ÷ min(N·R, A, T) — requests/s where the users' budgets bind in the
//!   realistic profile (they count requests), else resource units/s — and the share of Graph
//!   requests answered 429/503. The rate counts what was admitted beyond what the binding
//!   budget held at the start (a window's limit, a bucket's burst): a run starting with full
//!   budgets gets that on top of the rate, and a short run's plain rate passed 1 × the limit
//!   by it. Beside it, `÷budget`: what was admitted ÷ the most the budgets admit over that
//!   same wall time starting full. A tenant whose requests all fit in the budgets' first
//!   windows (the `BENCH_QUICK` one with 4 or more accounts) measures the machine, not the
//!   pool: its ratio says little. Then `incremental`:
//!   1 % of the files changed, the job run again: wall time and Graph requests against the full
//!   run's.
//! - `baselines`: the same backup driven as open-source peers drive it (one identity, no pool;
//!   `backup_scaling/baseline.rs`): (a) a fixed 20 requests/s token bucket, every worker waiting
//!   out a Retry-After; (b) rclone's pacer. Their rate over their first 30 s (the whole backup
//!   takes one identity minutes) against the limit of N = 1.
//! - `egress`: a tenant of 50–500 MiB files where each user's egress budget binds (E = 10 MiB/s
//!   per user, scaled down from Microsoft's 100 GB/h so that 16 accounts stay below what this
//!   machine can back up): admitted bytes/s ÷ min(N·E, C), where C is the same backup's rate
//!   with throttling off and 16 accounts (what this machine can do). The download service admits
//!   a file whole, so a plain window is off by up to a file per account: in `fast` (a bucket of
//!   E/s holding 2E, admitting while out of debt) each account's rate is taken between its
//!   first and last admissions in a 40-s window; in `realistic` (a sliding window W = 60 s of E,
//!   `time_scale` 1/60, so that it holds the largest file) the bytes admitted in one window of
//!   exactly W ÷ W, which no account can push past E·W. The job is then stopped.
//! - `memory`: peak resident memory of the backup server (this process; the simulator runs in a
//!   child process, this binary started again in simulator mode) during a full unthrottled
//!   backup of a tenant (8 MiB files), then of the same tenant with files 10 times larger (the
//!   peak is reset between them); target: < 50 MiB more.
//!
//! `cargo bench -p m365backup --bench backup_scaling` (about 20 minutes on 2 cores;
//! `BENCH_QUICK=1`: a few minutes, smaller tenants and windows). Env: `BENCH_ONLY`,
//! `BENCH_PROFILE=fast|realistic`, `BENCH_N` (one N of any size); sizes `BENCH_USERS` (50),
//! `BENCH_SITES` (10), `BENCH_FILES` per drive (16), `BENCH_MAX_MIB` (8; sizes are log-uniform
//! from 64 KiB); `BENCH_BASELINE_SECS` (30; 0 runs the baselines to the end);
//! `BENCH_EGRESS_MIB` (E, MiB/s per user; 10), `BENCH_EGRESS_FILES` per drive (8),
//! `BENCH_EGRESS_WINDOW` (W, s), `BENCH_EGRESS_WARMUP` / `BENCH_EGRESS_SECS` (seconds);
//! `BENCH_MEMORY_MIB` (the smaller memory tenant's file size, 8); `BENCH_LATENCY_MS` (a latency
//! on every Graph answer), `BENCH_VERBOSE` (per-account lines), `BENCH_TRACE` (the app's
//! budget and the pool's view of it, each second), `BENCH_OBJECTS_AT_ONCE`,
//! `BENCH_DOWNLOADS_PER_OBJECT` (the engine's settings).

// Test and benchmark code panics on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "../../engine/tests/engine/support/mod.rs"]
#[allow(dead_code)]
mod engine_support;

#[path = "backup_scaling/baseline.rs"]
mod baseline;
#[path = "backup_scaling/rig.rs"]
mod rig;

use std::time::{Duration, Instant};

use m365sim::{TenantSpec, ThrottleConfig};
use rig::{peak_rss_mib, pool_bytes, reset_peak_rss, Rig, Run, SimCounters, SimSide};

const SEED: u64 = 13;
/// The realistic profile's tenant size: the app's budget of the largest tier.
const LICENSES: u64 = 60_000;
const TIME_SCALE: f64 = 0.05;
const MIB: f64 = 1024.0 * 1024.0;

fn env_f64(name: &str) -> Option<f64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn env_or(name: &str, default: f64) -> f64 {
    env_f64(name).unwrap_or(default)
}

#[derive(Clone, Copy, PartialEq)]
enum Profile {
    Fast,
    Realistic,
}

/// What the budgets admit over a run: per constraint, in its own measure.
struct Capacity {
    /// The backup accounts' budgets together (units in `fast`, requests in `realistic`).
    users: f64,
    app: f64,
    tenant: f64,
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

    fn throttling(self) -> ThrottleConfig {
        let (r, a, _) = self.budgets();
        let base = match self {
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
            latency_ms: env_or("BENCH_LATENCY_MS", 0.0) as u64,
            ..base
        }
    }

    /// The measure of the users' budgets: units in `fast`, requests in `realistic`.
    fn users_unit(self) -> &'static str {
        match self {
            Profile::Fast => "units/s",
            Profile::Realistic => "req/s",
        }
    }

    /// The most the budgets admit in `secs` from full: a bucket's rate plus its capacity; a
    /// sliding window's limit once per window begun (at `secs` = 0: what they hold at first).
    fn capacity(self, n: usize, secs: f64) -> Capacity {
        let (r, a, t) = self.budgets();
        match self {
            Profile::Fast => Capacity {
                users: n as f64 * (r * secs + 2.0 * r),
                app: a * secs + 2.0 * a,
                tenant: t,
            },
            Profile::Realistic => {
                let window = |length: f64, rate: f64| {
                    let length = length * TIME_SCALE;
                    rate * length * (secs / length).ceil().max(1.0)
                };
                Capacity {
                    users: n as f64 * window(300.0, r),
                    app: window(60.0, a),
                    tenant: window(300.0, t),
                }
            }
        }
    }
}

/// A run's rate against the limit.
struct Rates {
    rate: f64,
    limit: f64,
    unit: &'static str,
    /// Admitted ÷ what the budgets admit over the run's wall time (the binding one).
    budget: f64,
    /// Graph requests answered 429/503, share.
    throttled: f64,
}

fn rates(profile: Profile, n: usize, secs: f64, c: &SimCounters) -> Rates {
    let (r, a, t) = profile.budgets();
    let users = n as f64 * r;
    let limit = users.min(a).min(t);
    let users_bind = users <= a.min(t);
    // What the binding budget held at the start: a run starting with full budgets is admitted
    // that much on top of the rate (a bucket's burst, a window's limit), which a short run's
    // plain rate counted as rate (a quick N = 4 run measured 1.498 × N·R on a run shorter
    // than one user window, which had held all of its requests).
    let start = profile.capacity(n, 0.0);
    let (admitted, slack, unit) = if users_bind {
        let admitted = match profile {
            Profile::Realistic => c.app_admitted,
            Profile::Fast => c.app_units,
        };
        (admitted, start.users, profile.users_unit())
    } else {
        (c.app_units, start.app.min(start.tenant), "units/s")
    };
    let rate = (admitted - slack).max(0.0) / secs;
    let cap = profile.capacity(n, secs);
    let user_used = match profile {
        Profile::Fast => c.user_units,
        Profile::Realistic => c.user_admitted,
    };
    let budget = (user_used / cap.users)
        .max(c.app_units / cap.app)
        .max(c.app_units / cap.tenant);
    Rates {
        rate,
        limit,
        unit,
        budget,
        throttled: c.app_throttled / c.app_requests.max(1.0),
    }
}

/// The request-bound tenant: ≥ 50 OneDrives and 10 sites, files log-uniform 64 KiB – 8 MiB.
fn scaling_tenant() -> TenantSpec {
    TenantSpec {
        seed: SEED,
        users: env_or("BENCH_USERS", 50.0) as usize,
        sites: env_or("BENCH_SITES", 10.0) as usize,
        backup_accounts: 16,
        licenses: Some(LICENSES),
        files_per_drive: env_or("BENCH_FILES", if quick() { 4.0 } else { 16.0 }) as usize,
        min_file_size: 64 << 10,
        max_file_size: (env_or("BENCH_MAX_MIB", 8.0) * MIB) as u64,
        ..TenantSpec::default()
    }
}

/// Drives, files and bytes of the tenant as generated.
fn describe_tenant(t: &m365sim::Tenant) -> String {
    let (mut files, mut bytes) = (0u64, 0u64);
    for d in &t.drives {
        let state = d.state.read().unwrap();
        for i in state.items.iter().filter(|i| !i.deleted) {
            if let Some(f) = i.file {
                files += 1;
                bytes += f.size;
            }
        }
    }
    let onedrives = t
        .drives
        .iter()
        .filter(|d| matches!(d.owner, m365sim::tenant::DriveOwner::User(_)))
        .count();
    format!(
        "{onedrives} OneDrives, {} sites, {} drives, {files} files, {:.2} GiB",
        t.sites.len(),
        t.drives.len(),
        bytes as f64 / MIB / 1024.0
    )
}

/// Changes the content of 1 % of the tenant's files (every hundredth, at least one); how many.
fn change_one_percent(sim: &m365sim::RunningSim) -> usize {
    let now = chrono::Utc::now();
    let mut k = 0usize;
    let mut changed = 0;
    for d in &sim.tenant().drives {
        let mut state = d.state.write().unwrap();
        let files: Vec<(String, u64)> = state
            .items
            .iter()
            .filter(|i| !i.deleted)
            .filter_map(|i| i.file.map(|f| (i.id.clone(), f.size)))
            .collect();
        for (id, size) in files {
            if k % 100 == 0 {
                state.modify_file(&id, size, now, None).unwrap();
                changed += 1;
            }
            k += 1;
        }
    }
    changed
}

/// `BENCH_QUICK`: a few minutes instead of a quarter of an hour (a smaller tenant, shorter
/// windows); its figures are rougher.
fn quick() -> bool {
    std::env::var("BENCH_QUICK").is_ok_and(|v| v != "0")
}

fn counts() -> Vec<usize> {
    env_f64("BENCH_N").map_or_else(|| vec![1, 4, 16], |n| vec![n as usize])
}

fn check(run: &Run, what: &str) {
    if run.status() != "Success" {
        println!(
            "    ! {what} ended {}: {}",
            run.status(),
            run.session["details"]
        );
    }
}

async fn scaling(profile: Profile) {
    let (r, a, t) = profile.budgets();
    println!(
        "backup_scaling, {} profile: R = {r} /s per user, A = {a:.1} units/s, T = {t:.1} units/s",
        profile.name()
    );
    println!(
        "  {:>3} {:>8} {:>7} {:>9} {:>7} {:>7} {:>8} {:>6} | {:>8} {:>7} {:>9}",
        "N",
        "wall s",
        "MiB/s",
        "rate",
        "limit",
        "ratio",
        "÷budget",
        "429s",
        "incr s",
        "incr req",
        "full req"
    );
    for n in counts() {
        let rig = Rig::start(scaling_tenant(), profile.throttling(), n).await;
        if n == counts()[0] {
            println!("  tenant: {}", describe_tenant(rig.sim.tenant()));
        }
        let tracer = trace(&rig.sim);
        let full = rig.run().await;
        if let Some(t) = tracer {
            t.abort();
        }
        check(&full, "full backup");
        let changed = change_one_percent(&rig.sim);
        let incremental = rig.run().await;
        check(&incremental, "incremental");
        let m = rates(profile, n, full.secs, &full.counters);
        println!(
            "  {n:>3} {:>8.1} {:>7.1} {:>9} {:>7.1} {:>7.3} {:>8.3} {:>5.2}% | {:>8.1} {:>7.0} {:>9.0}",
            full.secs,
            full.bytes() as f64 / MIB / full.secs,
            format!("{:.1} {}", m.rate, m.unit.trim_end_matches("/s")),
            m.limit,
            m.rate / m.limit,
            m.budget,
            100.0 * m.throttled,
            incremental.secs,
            incremental.counters.app_requests,
            full.counters.app_requests,
        );
        let accounts = full.accounts();
        println!(
            "      accounts: {} requests, {} 429, {} 503, paused {:.0} s in all (longest {:.0} s); incremental: {changed} files changed, {:.1}% of the full run's time, {:.1}% of its requests",
            accounts.requests,
            accounts.throttled_429,
            accounts.throttled_503,
            accounts.paused_secs,
            accounts.max_paused_secs,
            100.0 * incremental.secs / full.secs,
            100.0 * incremental.counters.app_requests / full.counters.app_requests,
        );
        if std::env::var("BENCH_VERBOSE").is_ok() {
            for line in full
                .log
                .iter()
                .filter(|l| l.contains(" account ") || l.contains("credentials"))
            {
                println!("      {line}");
            }
        }
        rig.shutdown().await;
    }
}

/// `BENCH_TRACE`: once a second, the app's admitted and refused units over that second and
/// the pool's view of the app's budget (what a run of `scaling` spends where).
fn trace(sim: &m365sim::RunningSim) -> Option<tokio::task::JoinHandle<()>> {
    std::env::var("BENCH_TRACE").ok()?;
    let sim = sim.sim().clone();
    let app = move || {
        sim.throttler
            .stats()
            .into_iter()
            .filter(|(p, _)| matches!(p, m365sim::throttle::Principal::App(_)))
            .fold((0.0, 0u64), |(u, t), (_, s)| {
                (u + s.units, t + s.throttled429 + s.throttled503)
            })
    };
    Some(tokio::spawn(async move {
        let start = Instant::now();
        let mut last = app();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let now = app();
            let state = m365backup_m365::pool::live_pools()
                .iter()
                .map(|p| p.debug_state())
                .collect::<Vec<_>>()
                .join(" | ");
            println!(
                "      t {:>5.1} s: app admitted {:>6.1} units, {:>3} requests refused; {state}",
                start.elapsed().as_secs_f64(),
                now.0 - last.0,
                now.1 - last.1
            );
            last = now;
        }
    }))
}

async fn baselines(profile: Profile) {
    let cut = env_f64("BENCH_BASELINE_SECS")
        .or(Some(if quick() { 15.0 } else { 30.0 }))
        .filter(|&s| s > 0.0)
        .map(Duration::from_secs_f64);
    for pacing in [baseline::Pacing::TokenBucket, baseline::Pacing::Pacer] {
        let rig = Rig::start(scaling_tenant(), profile.throttling(), 0).await;
        let repo = rig.repository().await;
        let c0 = SimCounters::read(&rig.sim);
        let t0 = Instant::now();
        let work = baseline::run(&rig.sim, SEED, repo, &rig.org, pacing);
        let report = match cut {
            Some(cut) => tokio::time::timeout(cut, work).await.ok(),
            None => Some(work.await),
        };
        let secs = t0.elapsed().as_secs_f64();
        let c = SimCounters::read(&rig.sim).since(&c0);
        let m = rates(profile, 1, secs, &c);
        let done = match report {
            Some(r) => format!(
                "{} files, {:.2} GiB, {} failed",
                r.files,
                r.bytes as f64 / MIB / 1024.0,
                r.failed_files
            ),
            None => format!("its first {:.0} s", secs),
        };
        println!(
            "  {:<58} {:>7.1} s {:>9} {:>7.1} {:>7.3} {:>8.3} {:>5.2}%  ({done})",
            pacing.describe(),
            secs,
            format!("{:.1} {}", m.rate, m.unit.trim_end_matches("/s")),
            m.limit,
            m.rate / m.limit,
            m.budget,
            100.0 * m.throttled,
        );
        rig.shutdown().await;
    }
}

/// The large-file tenant: 50–500 MiB files (log-uniform), one folder level.
fn egress_tenant() -> TenantSpec {
    TenantSpec {
        seed: SEED + 1,
        users: 20,
        sites: 2,
        m365_groups: 0,
        backup_accounts: 16,
        licenses: Some(LICENSES),
        folders_per_drive: 1,
        files_per_drive: env_or("BENCH_EGRESS_FILES", 8.0) as usize,
        min_file_size: 50 << 20,
        max_file_size: 500 << 20,
        max_versions: 1,
        shared_fraction: 0.0,
        ..TenantSpec::default()
    }
}

/// E, bytes/s per user: scaled down from Microsoft's 100 GB/h (26.5 MiB/s) so that 16 accounts'
/// budgets together stay below what this machine can back up (C, measured).
fn egress_per_user() -> f64 {
    env_or("BENCH_EGRESS_MIB", 10.0) * MIB
}

/// The realistic profile's egress window here: long enough to hold the largest file (500 MiB)
/// with room to spare, as Microsoft's hour holds 100 GB.
fn egress_window_secs() -> f64 {
    env_or(
        "BENCH_EGRESS_WINDOW",
        (600.0 * MIB / egress_per_user()).max(1.0),
    )
}

fn egress_throttling(profile: Option<Profile>) -> ThrottleConfig {
    let per_hour = egress_per_user() * 3600.0;
    match profile {
        None => ThrottleConfig {
            enabled: false,
            ..ThrottleConfig::default()
        },
        Some(Profile::Fast) => ThrottleConfig {
            user_egress_bytes_per_hour: per_hour,
            ..Profile::Fast.throttling()
        },
        Some(Profile::Realistic) => ThrottleConfig {
            user_egress_bytes_per_hour: per_hour,
            latency_ms: env_or("BENCH_LATENCY_MS", 0.0) as u64,
            ..ThrottleConfig::realistic(egress_window_secs() / 3600.0)
        },
    }
}

/// What an egress window measured.
struct Window {
    /// Bytes/s the download service admitted to the backup accounts (see [`admitted_rate`]).
    admitted_per_sec: f64,
    /// Accounts whose rate was measured, of those that downloaded.
    measured: (usize, usize),
    /// Bytes the accounts streamed in the window ÷ its length.
    streamed_per_sec: f64,
    throttled: f64,
    requests: f64,
}

/// The users' admissions of download bytes, sampled every 100 ms over `secs`: per user, (when,
/// bytes) of each.
async fn admissions(
    sim: &m365sim::RunningSim,
    secs: f64,
) -> std::collections::HashMap<m365sim::throttle::Principal, Vec<(f64, u64)>> {
    use std::collections::HashMap;
    let bytes_by_user = || -> HashMap<m365sim::throttle::Principal, u64> {
        sim.sim()
            .throttler
            .stats()
            .into_iter()
            .filter(|(p, _)| matches!(p, m365sim::throttle::Principal::User(_)))
            .map(|(p, s)| (p, s.bytes))
            .collect()
    };
    let mut seen: HashMap<_, Vec<(f64, u64)>> = HashMap::new();
    let mut last = bytes_by_user();
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while start.elapsed().as_secs_f64() < secs {
        tick.tick().await;
        let now = bytes_by_user();
        let at = start.elapsed().as_secs_f64();
        for (user, &after) in &now {
            let before = last.get(user).copied().unwrap_or(0);
            if after > before {
                seen.entry(*user).or_default().push((at, after - before));
            }
        }
        last = now;
    }
    seen
}

/// The accounts' summed admission rate, bytes/s, and how many accounts it was measured on, of
/// those that downloaded. A file is admitted whole, so a plain window is off by up to a file
/// per account; instead:
/// - `fast` (a token bucket that admits while out of debt): per account, the bytes admitted
///   from its first admission in the window up to its last ÷ the time between them (with a
///   full bucket at the first, at most E·span + 2E); accounts with fewer than two admissions
///   in the window (one that took a 500-MiB file just before it is in debt for 50 s) are left
///   out and the sum is scaled to all `n` accounts;
/// - `realistic` (a sliding window W): the bytes admitted in the window of exactly W ÷ W, which
///   no account can push past E·W whatever it did before.
fn admitted_rate(
    profile: Profile,
    n: usize,
    seen: &std::collections::HashMap<m365sim::throttle::Principal, Vec<(f64, u64)>>,
    secs: f64,
) -> (f64, (usize, usize)) {
    let active = seen.len().max(n);
    match profile {
        Profile::Realistic => {
            let bytes: u64 = seen.values().flatten().map(|(_, b)| b).sum();
            (bytes as f64 / secs, (active, active))
        }
        Profile::Fast => {
            let rates: Vec<f64> = seen
                .values()
                .filter(|a| a.len() >= 2)
                .map(|a| {
                    let bytes: u64 = a[..a.len() - 1].iter().map(|(_, b)| b).sum();
                    bytes as f64 / (a[a.len() - 1].0 - a[0].0)
                })
                .collect();
            let sum: f64 = rates.iter().sum();
            let scaled = if rates.is_empty() {
                0.0
            } else {
                sum * active as f64 / rates.len() as f64
            };
            (scaled, (rates.len(), active))
        }
    }
}

/// The job's download rates over `secs` after `warm_up`; the job is stopped afterwards.
async fn egress_window(n: usize, profile: Option<Profile>, warm_up: f64, secs: f64) -> Window {
    let rig = Rig::start(egress_tenant(), egress_throttling(profile), n).await;
    let before = rig.start_job().await;
    tokio::time::sleep(Duration::from_secs_f64(warm_up)).await;
    let report = || {
        m365backup_m365::pool::live_pools()
            .iter()
            .flat_map(|p| p.report())
            .fold((0.0, 0.0), |(r, t), a| {
                (
                    r + a.requests as f64,
                    t + (a.throttled_429 + a.throttled_503) as f64,
                )
            })
    };
    let (b0, (r0, t0), at) = (pool_bytes(), report(), Instant::now());
    let seen = admissions(&rig.sim, secs).await;
    let (b1, (r1, t1)) = (pool_bytes(), report());
    let elapsed = at.elapsed().as_secs_f64();
    rig.stop_job().await;
    let (session, _) = rig.wait_for_end(before.as_deref()).await;
    if session["status"] != "Stopped" {
        println!(
            "    ! the job ended {} before the window did: the tenant is too small for this E",
            session["status"]
        );
    }
    rig.shutdown().await;
    let (admitted_per_sec, measured) =
        admitted_rate(profile.unwrap_or(Profile::Realistic), n, &seen, secs);
    Window {
        admitted_per_sec,
        measured,
        streamed_per_sec: (b1 - b0) as f64 / elapsed,
        throttled: t1 - t0,
        requests: r1 - r0,
    }
}

async fn egress(profiles: &[Profile], quick: bool) {
    let e = egress_per_user();
    println!(
        "backup_scaling, egress-bound: E = {:.1} MiB/s per user; tenant: {}",
        e / MIB,
        describe_tenant(&m365sim::Tenant::generate(&egress_tenant()).unwrap())
    );
    // What the machine does with throttling off, with the most accounts (more objects and
    // downloads at once): the other term of the limit.
    let top = counts().into_iter().max().unwrap_or(1);
    let c = egress_window(top, None, 5.0, if quick { 8.0 } else { 15.0 })
        .await
        .streamed_per_sec;
    println!(
        "  unthrottled, N = {top}: C = {:.0} MiB/s (this machine: delta, downloads, chunking, hashing, compression, encryption, writes)",
        c / MIB
    );
    for &profile in profiles {
        let (warm_up, secs) = match profile {
            Profile::Fast => (5.0, if quick { 25.0 } else { 40.0 }),
            Profile::Realistic => (5.0, egress_window_secs()),
        };
        let warm_up = env_or("BENCH_EGRESS_WARMUP", warm_up);
        let secs = env_or("BENCH_EGRESS_SECS", secs);
        println!(
            "  {} profile{}: {secs:.0} s measured after {warm_up:.0} s; {}",
            profile.name(),
            match profile {
                Profile::Fast => " (egress bucket: E/s, 2E at once)".to_owned(),
                Profile::Realistic =>
                    format!(" (egress window {:.0} s of E)", egress_window_secs()),
            },
            match profile {
                Profile::Fast => "rate per account between its first and last admissions",
                Profile::Realistic => "bytes admitted in one window ÷ its length",
            }
        );
        println!(
            "  {:>3} {:>9} {:>9} {:>9} {:>7} {:>9} {:>8}",
            "N", "admitted", "streamed", "limit", "ratio", "429s/req", "measured"
        );
        for n in counts() {
            let w = egress_window(n, Some(profile), warm_up, secs).await;
            let limit = (n as f64 * e).min(c);
            println!(
                "  {n:>3} {:>9.1} {:>9.1} {:>9.1} {:>7.3} {:>9.3} {:>5}/{:<2}",
                w.admitted_per_sec / MIB,
                w.streamed_per_sec / MIB,
                limit / MIB,
                w.admitted_per_sec / limit,
                w.throttled / w.requests.max(1.0),
                w.measured.0,
                w.measured.1,
            );
        }
    }
}

/// What one memory phase measured.
struct MemoryPhase {
    /// This process's peak RSS (the server), MiB.
    peak: f64,
    /// The simulator's (child process) peak RSS, MiB.
    sim_peak: f64,
    /// MiB/s.
    rate: f64,
    tenant: String,
    /// Most repository pack buffers alive at once.
    pack_buffers: usize,
}

/// A full unthrottled backup with files of `size`, the simulator in a child process; the
/// server's peak RSS (reset first).
async fn memory_phase(size: u64, files_per_drive: usize) -> MemoryPhase {
    let tenant = TenantSpec {
        seed: SEED + 2,
        users: 20,
        sites: 2,
        m365_groups: 0,
        backup_accounts: 4,
        folders_per_drive: 1,
        files_per_drive,
        min_file_size: size,
        max_file_size: size,
        max_versions: 1,
        ..TenantSpec::default()
    };
    let rig = Rig::start_child(tenant, false, 4).await;
    let described = describe_tenant(rig.sim.tenant());
    // The server is up and idle: the peak from here on is the backup's. Free pages of an
    // earlier phase go back first, as the server's housekeeping does once a minute.
    m365backup_repo::memory::release_free_memory();
    reset_peak_rss();
    let run = rig.run().await;
    let peak = peak_rss_mib();
    check(&run, "memory backup");
    let phase = MemoryPhase {
        peak,
        sim_peak: rig.sim.peak_rss_mib(),
        rate: run.bytes() as f64 / MIB / run.secs,
        tenant: described,
        pack_buffers: rig.repository().await.pack_buffers_peak(),
    };
    rig.shutdown().await;
    phase
}

async fn memory() {
    let default = if quick() { 2.0 } else { 8.0 };
    let size = (env_or("BENCH_MEMORY_MIB", default) * MIB) as u64;
    println!("backup_scaling, memory (unthrottled, 4 backup accounts; peak RSS of the server's process, reset per phase; the simulator is a child process):");
    let line = |p: &MemoryPhase| {
        format!(
            "  {}: peak {:.1} MiB ({:.0} MiB/s; pack buffers at once {}; simulator {:.0} MiB)",
            p.tenant, p.peak, p.rate, p.pack_buffers, p.sim_peak
        )
    };
    let base = memory_phase(size, 4).await;
    println!("{}", line(&base));
    let large = memory_phase(size * 10, 4).await;
    println!("{}", line(&large));
    println!(
        "  10x the bytes (10x larger files) adds {:.1} MiB (target < 50)",
        large.peak - base.peak
    );
}

#[tokio::main]
async fn main() {
    // A child serving the memory part's simulator (see `rig::ChildSim`).
    if let Ok(tenant_file) = std::env::var(rig::SIM_CHILD_TENANT) {
        rig::serve_sim_child(&tenant_file).await;
        return;
    }
    // As the server's `main` does: the figures are those of the server as it runs.
    m365backup_repo::memory::tune_allocator();
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let part = |name: &str| only.is_empty() || only.split(',').any(|p| p.trim() == name);
    let profiles: Vec<Profile> = match std::env::var("BENCH_PROFILE").as_deref() {
        Ok("fast") => vec![Profile::Fast],
        Ok("realistic") => vec![Profile::Realistic],
        _ => vec![Profile::Fast, Profile::Realistic],
    };
    for &profile in &profiles {
        if part("scaling") {
            scaling(profile).await;
        }
        if part("baselines") {
            if !part("scaling") {
                println!("backup_scaling, {} profile: baselines", profile.name());
            }
            baselines(profile).await;
        }
    }
    if part("egress") {
        egress(&profiles, quick()).await;
    }
    if part("memory") {
        memory().await;
    }
}
