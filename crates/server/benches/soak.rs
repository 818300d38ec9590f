//! Soak: the real server (`m365backup serve`, a process of its own so that its memory is its
//! own) driven on loopback for a long time (10 minutes by default) with a mix of work at once,
//! against an in-process m365sim tenant:
//! - API reads: `SOAK_CONNECTIONS` HTTPS connections sharing `SOAK_READ_RPS` requests/s, in
//!   turn over cheap lists and single resources (organizations, jobs, job sessions,
//!   repositories, restore sessions);
//! - sign-ins: every `SOAK_SIGNIN_MS`, a password sign-in, a read with the new token, a refresh,
//!   a read with the renewed token, a logout, and the check that the token is then refused;
//! - a backup: the job runs again and again, a few files of the tenant added or changed before
//!   each run so every run has new data to back up;
//! - an export: a restore session on the latest restore point, a whole OneDrive saved as a ZIP
//!   (`{"save": null}`), the session stopped; again every `SOAK_EXPORT_MS`.
//!
//! Reported: the operations of each kind, the errors (anything else than the expected answer:
//! must be 0; the first few are printed), p50/p99/max latency of each kind, and the server's
//! resident memory (VmRSS) idle after start-up, after the warm-up (the first backup, the first
//! export and `SOAK_WARMUP_SECS`), at the end, and its growth from the warm-up to the end,
//! overall and as the slope of a line fitted to the samples after the warm-up; then minute by
//! minute the lowest and highest sample, and the slope of the lowest ones (the floor the
//! backups' and exports' buffers come and go above) over the run's last half. The server is
//! then stopped with SIGTERM and must exit cleanly. Exits non-zero if there was any error.
//!
//! `cargo bench -p m365backup --bench soak` (env: SOAK_SECONDS (600), SOAK_WARMUP_SECS (60),
//! SOAK_READ_RPS (200), SOAK_CONNECTIONS (8), SOAK_SIGNIN_MS (1000), SOAK_EXPORT_MS (2000),
//! SOAK_BACKUPS (1), SOAK_SAMPLE_SECS (5); 0 turns one kind of work off, to see what a figure
//! owes to which: backups then run once, for the exports' restore point).

// Test and benchmark code panics on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use m365sim::{RunningSim, SimConfig, TenantSpec, ThrottleConfig};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

mod support;

use support::{env_or, latency_histogram};

const SEED: u64 = 57;
const PASSWORD: &str = "soak-benchmark-password";

#[tokio::main]
async fn main() {
    let secs = env_or("SOAK_SECONDS", 600);
    let warmup_secs = env_or("SOAK_WARMUP_SECS", 60.min(secs / 5));
    // 0 turns a kind of work off (to see what a figure owes to which); backups then run once,
    // for the exports' restore point.
    let read_rps = env_or("SOAK_READ_RPS", 200);
    let connections = env_or("SOAK_CONNECTIONS", 8).max(1);
    let signin_ms = env_or("SOAK_SIGNIN_MS", 1000);
    let export_ms = env_or("SOAK_EXPORT_MS", 2000);
    let backups_again = env_or("SOAK_BACKUPS", 1) > 0;
    let signin_every = Duration::from_millis(signin_ms.max(1));
    let export_every = Duration::from_millis(export_ms.max(1));
    let sample_every = Duration::from_secs(env_or("SOAK_SAMPLE_SECS", 5).max(1));

    let sim = start_sim().await;
    let server = ServerProcess::start();
    let api = Api::new(&server.base);
    let admin = api.sign_in().await.expect("sign-in");
    let org = api
        .created(&admin, "/v5/Organizations", &organization_body(&sim))
        .await;
    let job = api
        .created(
            &admin,
            &format!("/v5/Organizations/{org}/Jobs"),
            &json!({"name": "Soak", "schedulePolicy": {"type": "ManualOnly"}}),
        )
        .await;
    let idle_rss = server.rss_mib();
    println!(
        "soak: {secs} s on loopback: {read_rps} reads/s over {connections} connections, a \
         sign-in cycle every {} ms, a backup running again and again, an export every {} ms",
        signin_every.as_millis(),
        export_every.as_millis()
    );

    let run = Arc::new(Run::default());
    let started = Instant::now();
    let mut tasks = Vec::new();
    let reader_token = Arc::new(Mutex::new(admin.clone()));
    for c in (0..connections).filter(|_| read_rps > 0) {
        let (run, api, token) = (run.clone(), api.fresh(), reader_token.clone());
        let (org, job) = (org.clone(), job.clone());
        let interval = Duration::from_secs_f64(connections as f64 / read_rps as f64);
        tasks.push(tokio::spawn(async move {
            reads(&run, &api, &token, &org, &job, c as usize, interval).await
        }));
    }
    if signin_ms > 0 {
        let (run, api) = (run.clone(), api.fresh());
        tasks.push(tokio::spawn(async move {
            sign_ins(&run, &api, &reader_token, signin_every).await
        }));
    }
    let first_backup = Arc::new(tokio::sync::Notify::new());
    {
        let (run, api, admin, job) = (run.clone(), api.fresh(), admin.clone(), job.clone());
        let sim = sim.sim().clone();
        let first = first_backup.clone();
        tasks.push(tokio::spawn(async move {
            backups(&run, &api, &admin, &job, &sim, backups_again, &first).await
        }));
    }
    let first_export = Arc::new(tokio::sync::Notify::new());
    if export_ms == 0 {
        first_export.notify_one();
    } else {
        let (run, api, admin, org) = (run.clone(), api.fresh(), admin.clone(), org.clone());
        let (first_backup, first) = (first_backup.clone(), first_export.clone());
        tasks.push(tokio::spawn(async move {
            first_backup.notified().await;
            exports(&run, &api, &admin, &org, export_every, &first).await
        }));
    }

    // Warm-up: the first backup and export done, and the warm-up time past.
    let deadline = started + Duration::from_secs(secs);
    let warm = tokio::time::timeout_at(deadline.into(), async {
        first_export.notified().await;
        tokio::time::sleep_until((started + Duration::from_secs(warmup_secs)).into()).await;
    })
    .await
    .is_ok();
    let warm_at = started.elapsed();
    let warm_rss = server.rss_mib();
    let mut samples = vec![(warm_at.as_secs_f64(), warm_rss)];
    while Instant::now() + sample_every < deadline {
        tokio::time::sleep(sample_every).await;
        samples.push((started.elapsed().as_secs_f64(), server.rss_mib()));
    }
    tokio::time::sleep_until(deadline.into()).await;
    let end_rss = server.rss_mib();
    samples.push((started.elapsed().as_secs_f64(), end_rss));
    run.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();

    println!(
        "  {:<30} {:>8} {:>9} {:>9} {:>9}",
        "", "count", "p50 ms", "p99 ms", "max ms"
    );
    for (name, kind) in run.kinds() {
        let h = kind.latency.lock().unwrap();
        println!(
            "  {name:<30} {:>8} {:>9.2} {:>9.2} {:>9.1}",
            h.len(),
            ms(&h, 0.50),
            ms(&h, 0.99),
            h.max() as f64 / 1000.0
        );
    }
    let reads = run.reads.latency.lock().unwrap().len();
    println!(
        "  reads/s: {:.0}; backup runs: {}; exports: {} ({:.0} MiB saved)",
        reads as f64 / elapsed,
        run.backup_runs.latency.lock().unwrap().len(),
        run.exports.latency.lock().unwrap().len(),
        run.exported_bytes.load(Ordering::Relaxed) as f64 / (1 << 20) as f64
    );
    let errors = run.errors.load(Ordering::Relaxed);
    println!("  errors: {errors}");
    for e in run.first_errors.lock().unwrap().iter() {
        println!("    {e}");
    }
    if !warm {
        println!("  (the run ended before the warm-up did: no memory figures after it)");
    }
    let after_warmup: Vec<(f64, f64)> = samples.clone();
    println!(
        "  RSS: idle {idle_rss:.1} MiB, after warm-up ({:.0} s) {warm_rss:.1} MiB, end {end_rss:.1} \
         MiB, max {:.1} MiB",
        warm_at.as_secs_f64(),
        samples.iter().map(|s| s.1).fold(0.0, f64::max),
    );
    println!(
        "  RSS growth after warm-up: {:+.1} MiB ({:+.1} %), fitted slope {:+.2} MiB/min over {} samples",
        end_rss - warm_rss,
        100.0 * (end_rss - warm_rss) / warm_rss,
        slope(&after_warmup) * 60.0,
        after_warmup.len()
    );
    // The trend, minute by minute: the lowest sample of a minute is the floor the backups'
    // and exports' buffers come and go above; a leak raises it, a transient only the highest.
    let minutes = per_minute(&samples);
    let trend: Vec<String> = minutes
        .iter()
        .map(|(m, low, high)| format!("{m}: {low:.1}-{high:.1}"))
        .collect();
    println!(
        "  RSS per minute, lowest-highest (MiB): {}",
        trend.join(", ")
    );
    let floors: Vec<(f64, f64)> = minutes
        .iter()
        .map(|(m, low, _)| (*m as f64 * 60.0, *low))
        .collect();
    let last_half = &floors[floors.len() / 2..];
    println!(
        "  RSS floor over the last half ({} minutes): {:.1} to {:.1} MiB, fitted slope {:+.2} MiB/min",
        last_half.len(),
        last_half.first().map_or(0.0, |f| f.1),
        last_half.last().map_or(0.0, |f| f.1),
        slope(last_half) * 60.0
    );
    if errors > 0 {
        println!("  the server's warnings and errors (first 20):");
        for line in server.warnings().iter().take(20) {
            println!("    {line}");
        }
    }
    let exit = server.stop();
    println!("  server stopped with SIGTERM: {exit}");
    sim.shutdown().await;
    if errors > 0 || !exit.success() {
        std::process::exit(1);
    }
}

/// The counters and latencies of the whole run.
#[derive(Default)]
struct Run {
    stop: AtomicBool,
    errors: AtomicU64,
    first_errors: Mutex<Vec<String>>,
    reads: Kind,
    sign_ins: Kind,
    refreshes: Kind,
    logouts: Kind,
    backup_runs: Kind,
    exports: Kind,
    exported_bytes: AtomicU64,
}

struct Kind {
    latency: Mutex<Histogram<u64>>,
}

impl Default for Kind {
    fn default() -> Self {
        Self {
            latency: Mutex::new(latency_histogram()),
        }
    }
}

impl Kind {
    fn record(&self, since: Instant) {
        self.latency
            .lock()
            .unwrap()
            .saturating_record(since.elapsed().as_micros() as u64);
    }
}

impl Run {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_errors.lock().unwrap();
        if first.len() < 10 {
            first.push(what);
        }
    }

    fn kinds(&self) -> [(&'static str, &Kind); 6] {
        [
            ("API reads", &self.reads),
            ("sign-ins (password grant)", &self.sign_ins),
            ("refreshes", &self.refreshes),
            ("logouts", &self.logouts),
            ("backup runs", &self.backup_runs),
            ("exports (OneDrive as ZIP)", &self.exports),
        ]
    }
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// Least-squares slope of (seconds, MiB): MiB per second.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (mx, my) = (
        points.iter().map(|p| p.0).sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let cov: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let var: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if var == 0.0 {
        0.0
    } else {
        cov / var
    }
}

/// (minute, lowest, highest) of the (seconds, MiB) samples taken in each minute of the run.
fn per_minute(samples: &[(f64, f64)]) -> Vec<(u64, f64, f64)> {
    let mut out: Vec<(u64, f64, f64)> = Vec::new();
    for &(t, mib) in samples {
        let minute = (t / 60.0) as u64;
        match out.last_mut() {
            Some(last) if last.0 == minute => {
                last.1 = last.1.min(mib);
                last.2 = last.2.max(mib);
            }
            _ => out.push((minute, mib, mib)),
        }
    }
    out
}

/// `m365backup serve` on a temporary data dir, its log in a file there.
struct ServerProcess {
    child: Child,
    base: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl ServerProcess {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_m365backup"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(["--allowed-endpoints", "http://127.0.0.1:*"])
            .env("M365BACKUP_ADMIN_PASSWORD", PASSWORD)
            .env("RUST_LOG", "warn,m365backup=info")
            .env_remove("M365BACKUP_CONFIG")
            .env_remove("M365BACKUP_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read the address from the log, then keep copying the log to its file.
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = String::new();
        let addr = loop {
            let Some(Ok(line)) = lines.next() else {
                panic!("the server did not start: {seen}");
            };
            seen.push_str(&line);
            seen.push('\n');
            if let Some(after) = line
                .split("addr=")
                .nth(1)
                .filter(|_| line.contains("listening"))
            {
                break after.split_whitespace().next().unwrap().to_owned();
            }
        };
        let log_path = log.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut file = std::fs::File::create(log).unwrap();
            let _ = file.write_all(seen.as_bytes());
            for line in lines.map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
            }
        });
        Self {
            child,
            base: format!("https://{addr}"),
            log: log_path,
            _dir: dir,
        }
    }

    /// The log's WARN and ERROR lines.
    fn warnings(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .map(str::to_owned)
            .collect()
    }

    /// Resident memory, MiB.
    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    }

    /// SIGTERM (a graceful shutdown) and its exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().unwrap()
    }
}

/// A client of the API: one HTTPS connection pool of its own.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
}

/// A status or transport failure, described for the report.
type Failure = String;

impl Api {
    fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .danger_accept_invalid_certs(true)
                .http1_only()
                .build()
                .unwrap(),
            base: base.to_owned(),
        }
    }

    /// The same server through new connections.
    fn fresh(&self) -> Self {
        Self::new(&self.base)
    }

    /// A request; its body if the status is `expect`.
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        expect: StatusCode,
    ) -> Result<bytes::Bytes, Failure> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(body);
        }
        let r = req
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = r.status();
        let bytes = r
            .bytes()
            .await
            .map_err(|e| format!("{method} {path}: body: {e}"))?;
        if status == expect {
            Ok(bytes)
        } else {
            Err(format!(
                "{method} {path}: {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            ))
        }
    }

    /// [`Api::call`], the body as JSON.
    async fn json(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        expect: StatusCode,
    ) -> Result<Value, Failure> {
        let bytes = self.call(method, path, token, body, expect).await?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{path}: not JSON: {e}"))
    }

    async fn get_json(&self, path: &str, token: &str) -> Result<Value, Failure> {
        self.json(Method::GET, path, token, None, StatusCode::OK)
            .await
    }

    async fn created(&self, token: &str, path: &str, body: &Value) -> String {
        let v = self
            .call(Method::POST, path, token, Some(body), StatusCode::CREATED)
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&v).unwrap();
        v["id"].as_str().unwrap().to_owned()
    }

    async fn token(&self, form: &[(&str, &str)]) -> Result<Value, Failure> {
        let r = self
            .http
            .post(format!("{}/v5/Token", self.base))
            .form(form)
            .send()
            .await
            .map_err(|e| format!("POST /v5/Token: {e}"))?;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        if status != StatusCode::OK {
            return Err(format!("POST /v5/Token ({}): {status}: {text}", form[0].1));
        }
        serde_json::from_str(&text).map_err(|e| format!("POST /v5/Token: not JSON: {e}"))
    }

    async fn sign_in(&self) -> Result<String, Failure> {
        let v = self
            .token(&[
                ("grant_type", "password"),
                ("username", "admin"),
                ("password", PASSWORD),
            ])
            .await?;
        Ok(v["access_token"].as_str().unwrap_or_default().to_owned())
    }
}

/// One reader connection: `interval` between request starts, routes in turn.
async fn reads(
    run: &Run,
    api: &Api,
    token: &Mutex<String>,
    org: &str,
    job: &str,
    offset: usize,
    interval: Duration,
) {
    let paths = [
        "/v5/Organizations".to_owned(),
        format!("/v5/Organizations/{org}"),
        "/v5/Jobs".to_owned(),
        format!("/v5/Jobs/{job}"),
        format!("/v5/Jobs/{job}/JobSessions?limit=5"),
        "/v5/BackupRepositories".to_owned(),
        "/v5/RestoreSessions?limit=5".to_owned(),
        format!("/v5/Organizations/{org}/Jobs"),
    ];
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut i = offset;
    while !run.stopping() {
        tick.tick().await;
        let token = token.lock().unwrap().clone();
        let path = &paths[i % paths.len()];
        i += 1;
        let t0 = Instant::now();
        match api
            .call(Method::GET, path, &token, None, StatusCode::OK)
            .await
        {
            Ok(_) => run.reads.record(t0),
            Err(e) => run.error(e),
        }
    }
}

/// Sign-in cycles; every 20 minutes the readers get a new session (theirs expire in an hour).
async fn sign_ins(run: &Run, api: &Api, reader_token: &Mutex<String>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut renewed = Instant::now();
    while !run.stopping() {
        tick.tick().await;
        if let Err(e) = sign_in_cycle(run, api).await {
            run.error(e);
        }
        if renewed.elapsed() > Duration::from_secs(20 * 60) {
            match api.sign_in().await {
                Ok(t) => *reader_token.lock().unwrap() = t,
                Err(e) => run.error(e),
            }
            renewed = Instant::now();
        }
    }
}

async fn sign_in_cycle(run: &Run, api: &Api) -> Result<(), Failure> {
    let t0 = Instant::now();
    let first = api
        .token(&[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", PASSWORD),
        ])
        .await?;
    run.sign_ins.record(t0);
    let access = first["access_token"].as_str().unwrap_or_default();
    api.call(
        Method::GET,
        "/v5/Organizations",
        access,
        None,
        StatusCode::OK,
    )
    .await?;
    let t0 = Instant::now();
    let renewed = api
        .token(&[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                first["refresh_token"].as_str().unwrap_or_default(),
            ),
        ])
        .await?;
    run.refreshes.record(t0);
    let access = renewed["access_token"].as_str().unwrap_or_default();
    api.call(Method::GET, "/v5/Jobs", access, None, StatusCode::OK)
        .await?;
    let t0 = Instant::now();
    api.call(
        Method::DELETE,
        "/v5/Token",
        access,
        None,
        StatusCode::NO_CONTENT,
    )
    .await?;
    run.logouts.record(t0);
    // Revoked at once.
    api.call(
        Method::GET,
        "/v5/Organizations",
        access,
        None,
        StatusCode::UNAUTHORIZED,
    )
    .await?;
    Ok(())
}

/// The job again and again; before each run after the first, files added and changed.
async fn backups(
    run: &Run,
    api: &Api,
    token: &str,
    job: &str,
    sim: &m365sim::SharedSim,
    again: bool,
    first: &tokio::sync::Notify,
) {
    let mut round = 0usize;
    while !run.stopping() && (again || round == 0) {
        if round > 0 {
            change_tenant(sim, round);
        }
        let t0 = Instant::now();
        match backup_once(api, token, job).await {
            Ok(()) => run.backup_runs.record(t0),
            Err(e) => run.error(e),
        }
        if round == 0 {
            first.notify_one();
        }
        round += 1;
    }
}

async fn backup_once(api: &Api, token: &str, job: &str) -> Result<(), Failure> {
    let sessions = format!("/v5/Jobs/{job}/JobSessions?limit=1");
    let latest = |page: &Value| page["results"].get(0).cloned();
    let before = latest(&api.get_json(&sessions, token).await?)
        .and_then(|s| s["id"].as_str().map(str::to_owned));
    api.call(
        Method::POST,
        &format!("/v5/Jobs/{job}/Action"),
        token,
        Some(&json!({"start": null})),
        StatusCode::OK,
    )
    .await?;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Some(s) = latest(&api.get_json(&sessions, token).await?) else {
            continue;
        };
        let status = s["status"].as_str().unwrap_or("");
        if s["id"].as_str() == before.as_deref() || status == "Running" || status == "Queued" {
            continue;
        }
        if status == "Success" {
            return Ok(());
        }
        // What went wrong, from the session's log.
        let id = s["id"].as_str().unwrap_or_default();
        let log = api
            .get_json(&format!("/v5/JobSessions/{id}/LogItems?limit=1000"), token)
            .await?;
        let failed: Vec<&str> = log["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| l["status"] != "Success")
            .filter_map(|l| l["title"].as_str())
            .take(3)
            .collect();
        return Err(format!(
            "backup run ended {status}: {}; {failed:?}",
            s["details"]
        ));
    }
}

/// Adds two files and changes one in a OneDrive (a different one each round).
fn change_tenant(sim: &m365sim::SharedSim, round: usize) {
    let users = &sim.tenant.users;
    let user = &users[round % users.len()].user_principal_name;
    let Ok(drive) = m365sim::handle::onedrive(sim, user) else {
        return;
    };
    for k in 0..2 {
        let _ = drive.add_file(None, &format!("soak {round} {k}.bin"), 96 * 1024);
    }
    if let Some(file) = drive.tree().iter().find(|e| !e.is_folder) {
        let _ = drive.modify_file(&file.id, 64 * 1024 + round as u64);
    }
}

/// An export every `every`: a restore session, one OneDrive as a ZIP, the session stopped.
async fn exports(
    run: &Run,
    api: &Api,
    token: &str,
    org: &str,
    every: Duration,
    first: &tokio::sync::Notify,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut round = 0usize;
    while !run.stopping() {
        tick.tick().await;
        if run.stopping() {
            break;
        }
        let t0 = Instant::now();
        match export_once(api, token, org, round).await {
            Ok(bytes) => {
                run.exports.record(t0);
                run.exported_bytes.fetch_add(bytes, Ordering::Relaxed);
            }
            Err(e) => run.error(e),
        }
        if round == 0 {
            first.notify_one();
        }
        round += 1;
    }
}

async fn export_once(api: &Api, token: &str, org: &str, round: usize) -> Result<u64, Failure> {
    let session = api
        .json(
            Method::POST,
            &format!("/v5/Organizations/{org}/Action"),
            token,
            Some(&json!({"explore": {"type": "veod"}})),
            StatusCode::CREATED,
        )
        .await?;
    let id = session["id"].as_str().unwrap_or_default().to_owned();
    let drives = api
        .get_json(
            &format!("/v5/RestoreSessions/{id}/Organization/OneDrives"),
            token,
        )
        .await?;
    let drives = drives["results"].as_array().cloned().unwrap_or_default();
    let saved = match drives.get(round % drives.len().max(1)) {
        Some(d) => {
            let d = d["id"].as_str().unwrap_or_default();
            let zip = api
                .call(
                    Method::POST,
                    &format!("/v5/RestoreSessions/{id}/Organization/OneDrives/{d}/Action"),
                    token,
                    Some(&json!({"save": null})),
                    StatusCode::OK,
                )
                .await?;
            if !zip.starts_with(b"PK") {
                return Err(format!("the saved OneDrive {d} is not a ZIP"));
            }
            zip.len() as u64
        }
        None => return Err("the restore session shows no OneDrive".into()),
    };
    api.call(
        Method::POST,
        &format!("/v5/RestoreSessions/{id}/Action"),
        token,
        Some(&json!({"stop": null})),
        StatusCode::OK,
    )
    .await?;
    Ok(saved)
}

async fn start_sim() -> RunningSim {
    let config = SimConfig {
        tenant: TenantSpec {
            seed: SEED,
            users: 6,
            sites: 2,
            m365_groups: 0,
            folders_per_drive: 3,
            files_per_drive: 24,
            min_file_size: 4 * 1024,
            max_file_size: 512 * 1024,
            ..TenantSpec::default()
        },
        throttling: ThrottleConfig {
            enabled: false,
            ..ThrottleConfig::default()
        },
        ..SimConfig::default()
    };
    m365sim::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// The tenant registered with its app-only credentials.
fn organization_body(sim: &RunningSim) -> Value {
    let t = sim.tenant();
    json!({"type": "Office365", "region": "Worldwide", "isSharePointOnline": true,
        "sharePointOnlineSettings": {"useApplicationOnlyAuth": true,
            "applicationId": t.app.client_id.to_string(), "applicationSecret": t.app.client_secret,
            "officeOrganizationName": t.domain, "authorityUrl": sim.base_url(), "graphUrl": sim.graph_url()}})
}
