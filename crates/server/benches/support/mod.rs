//! Shared by the server's benchmarks: a server to measure, and concurrent HTTPS clients on
//! loopback. Each benchmark uses part of it.

#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one [`load_measured`] run saw: successful requests per second, failures, the latency
/// of every successful request of the measured window, and the CPU time this process spent
/// per request (client and in-process server together), which a loaded machine changes less
/// than it changes rates.
pub struct LoadReport {
    pub rps: f64,
    pub errors: u64,
    pub latency: hdrhistogram::Histogram<u64>,
    pub cpu_us_per_request: f64,
}

impl LoadReport {
    /// A latency percentile in milliseconds.
    pub fn ms(&self, percentile: f64) -> f64 {
        self.latency.value_at_quantile(percentile / 100.0) as f64 / 1000.0
    }
}

/// A histogram of latencies in microseconds, 1 µs to 10 min, 3 significant digits.
pub fn latency_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 600_000_000, 3).unwrap()
}

/// CPU time (user and system) of this process so far.
fn process_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Drives `url` with `connections` concurrent clients (one HTTP/1.1 TLS connection each) for
/// `secs` after a one-second warm-up; successful requests per second and failures.
pub async fn load(url: &str, token: Option<&str>, connections: u64, secs: u64) -> (f64, u64) {
    let report = load_measured(url, token, None, connections, secs).await;
    (report.rps, report.errors)
}

/// [`load`] with each request's latency (from sending to the last body byte) and the process's
/// CPU time recorded. A request succeeds with a 2xx status, or with `expect` when given.
pub async fn load_measured(
    url: &str,
    token: Option<&str>,
    expect: Option<u16>,
    connections: u64,
    secs: u64,
) -> LoadReport {
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .http1_only()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        let (url, token, stop, measuring, ok, errors) = (
            url.to_owned(),
            token.map(str::to_owned),
            stop.clone(),
            measuring.clone(),
            ok.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latency = latency_histogram();
            while !stop.load(Ordering::Relaxed) {
                let mut req = client.get(&url);
                if let Some(t) = &token {
                    req = req.bearer_auth(t);
                }
                let sent = Instant::now();
                let succeeded = match req.send().await {
                    Ok(r) if expect.map_or(r.status().is_success(), |e| r.status() == e) => {
                        r.bytes().await.is_ok()
                    }
                    _ => false,
                };
                if succeeded && measuring.load(Ordering::Relaxed) {
                    latency.saturating_record(sent.elapsed().as_micros() as u64);
                }
                let counter = if succeeded { &ok } else { &errors };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            latency
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    measuring.store(true, Ordering::Relaxed);
    let start_ok = ok.load(Ordering::Relaxed);
    let (started, cpu_start) = (Instant::now(), process_cpu());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let done = ok.load(Ordering::Relaxed) - start_ok;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = process_cpu().saturating_sub(cpu_start);
    stop.store(true, Ordering::Relaxed);
    let mut latency = latency_histogram();
    for t in tasks {
        if let Ok(h) = t.await {
            latency.add(h).unwrap();
        }
    }
    LoadReport {
        rps: done as f64 / elapsed,
        errors: errors.load(Ordering::Relaxed),
        latency,
        cpu_us_per_request: cpu.as_secs_f64() * 1e6 / done.max(1) as f64,
    }
}

/// The real server with default settings (SQLite) on a loopback port, and an admin token.
pub struct BenchServer {
    pub server: m365backup::server::RunningServer,
    pub settings: m365backup::config::Settings,
    pub base: String,
    pub http: reqwest::Client,
    pub token: String,
    /// The data dir; the server's files live as long as this.
    pub dir: tempfile::TempDir,
}

pub async fn start_server() -> BenchServer {
    start_server_with(|_| {}).await
}

/// [`start_server`] with settings changed by `adjust` first.
pub async fn start_server_with(
    adjust: impl FnOnce(&mut m365backup::config::Settings),
) -> BenchServer {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = m365backup::config::Settings::for_data_dir(dir.path()).unwrap();
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.bootstrap_admin_password = Some(m365backup_core::Secret::new("benchmark-password"));
    // Benchmarks run their simulated tenants on loopback ports.
    settings.allowed_endpoints = vec!["http://127.0.0.1:*".into()];
    adjust(&mut settings);
    let server = m365backup::server::start(&settings).await.unwrap();
    let base = format!("https://127.0.0.1:{}", server.addr.port());
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let token: serde_json::Value = http
        .post(format!("{base}/v5/Token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", "benchmark-password"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    BenchServer {
        server,
        settings,
        base,
        http,
        token,
        dir,
    }
}
