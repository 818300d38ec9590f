//! What the backup benchmark measures: the real server in-process (SQLite state, the default
//! repository in a temporary data dir) beside an in-process m365sim tenant, the organization
//! registered with the tenant's app-only credentials, N backup accounts set with
//! `PUT .../BackupAccounts`, one manual job over the whole organization. A run is timed from
//! `POST /v5/Jobs/{id}/Action {"start":null}` to the moment the API shows its session ended, with
//! the simulator's own counters read at both ends. Where this process's memory is measured, the
//! simulator runs in a child process instead ([`ChildSim`]: this benchmark's binary started
//! again in simulator mode, serving m365sim as the `m365sim` binary does), so that the figure is
//! the backup server's alone.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use m365backup_engine::backup::EngineConfig;
use m365backup_repo::Repository;
use m365sim::tenant::generated_password;
use m365sim::throttle::Principal;
use m365sim::{RunningSim, SimConfig, Tenant, TenantSpec, ThrottleConfig};
use serde_json::{json, Value};

use crate::support::BenchServer;

/// The real server with default settings (SQLite, the default repository in a temporary data
/// dir) and `engine` as the backup engine's configuration; an admin token.
pub async fn start_server(engine: EngineConfig) -> BenchServer {
    crate::support::start_server_with(|settings| settings.engine = engine).await
}

/// The engine's configuration: the defaults, or `BENCH_OBJECTS_AT_ONCE` objects at once and
/// `BENCH_DOWNLOADS_PER_OBJECT` downloads per object (to see what they change).
pub fn engine_config() -> EngineConfig {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
    let default = EngineConfig::default();
    EngineConfig {
        objects_at_once: env("BENCH_OBJECTS_AT_ONCE").unwrap_or(default.objects_at_once),
        downloads_per_object: env("BENCH_DOWNLOADS_PER_OBJECT")
            .unwrap_or(default.downloads_per_object),
        ..default
    }
}

/// A server, a tenant and a job, ready to run.
pub struct Rig<S = RunningSim> {
    pub sim: S,
    pub server: BenchServer,
    pub org: String,
    pub job: String,
}

/// The simulator's counters. Every Graph request is charged to the app (so the app's figures
/// count all of them); the backup accounts' delegated requests to their users as well.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimCounters {
    pub app_units: f64,
    pub app_admitted: f64,
    pub app_requests: f64,
    pub app_throttled: f64,
    pub user_units: f64,
    pub user_admitted: f64,
    /// Refusals of the users' budgets, downloads (egress) included.
    pub user_throttled: f64,
    /// Bytes the download service admitted, charged to users.
    pub user_bytes: f64,
}

impl SimCounters {
    pub fn read(sim: &impl SimSide) -> Self {
        sim.counters()
    }

    fn of(sim: &RunningSim) -> Self {
        let mut c = Self::default();
        for (principal, s) in sim.sim().throttler.stats() {
            let throttled = (s.throttled429 + s.throttled503) as f64;
            match principal {
                Principal::App(_) => {
                    c.app_units += s.units;
                    c.app_admitted += s.admitted as f64;
                    c.app_requests += s.requests as f64;
                    c.app_throttled += throttled;
                }
                Principal::User(_) => {
                    c.user_units += s.units;
                    c.user_admitted += s.admitted as f64;
                    c.user_throttled += throttled;
                    c.user_bytes += s.bytes as f64;
                }
                Principal::Tenant => {}
            }
        }
        c
    }

    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            app_units: self.app_units - earlier.app_units,
            app_admitted: self.app_admitted - earlier.app_admitted,
            app_requests: self.app_requests - earlier.app_requests,
            app_throttled: self.app_throttled - earlier.app_throttled,
            user_units: self.user_units - earlier.user_units,
            user_admitted: self.user_admitted - earlier.user_admitted,
            user_throttled: self.user_throttled - earlier.user_throttled,
            user_bytes: self.user_bytes - earlier.user_bytes,
        }
    }
}

/// One run of the job as the API and the simulator saw it.
pub struct Run {
    pub secs: f64,
    pub counters: SimCounters,
    pub session: Value,
    /// Titles of the session's log items.
    pub log: Vec<String>,
}

impl Run {
    pub fn status(&self) -> &str {
        self.session["status"].as_str().unwrap_or("?")
    }

    pub fn bytes(&self) -> u64 {
        self.session["statistics"]["transferredDataBytes"]
            .as_u64()
            .unwrap_or(0)
    }

    /// The backup accounts' log lines, summed: (requests, 429s, 503s, seconds paused).
    pub fn accounts(&self) -> AccountTotals {
        let mut t = AccountTotals::default();
        for line in self.log.iter().filter(|l| l.contains("Backup account ")) {
            let numbers = numbers_after(line, ": ");
            if let [requests, throttled, unavailable, paused, ..] = numbers[..] {
                t.requests += requests;
                t.throttled_429 += throttled;
                t.throttled_503 += unavailable;
                t.paused_secs += paused;
                t.max_paused_secs = t.max_paused_secs.max(paused);
                t.accounts += 1;
            }
        }
        t
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct AccountTotals {
    pub accounts: usize,
    pub requests: f64,
    pub throttled_429: f64,
    pub throttled_503: f64,
    pub paused_secs: f64,
    pub max_paused_secs: f64,
}

/// The numbers of `line` after `marker` (`12 requests, 3 throttled (429), … paused 1.5 s`),
/// status codes in parentheses left out.
fn numbers_after(line: &str, marker: &str) -> Vec<f64> {
    let tail = line.split_once(marker).map_or(line, |(_, t)| t);
    tail.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.starts_with('('))
        .filter_map(|w| w.parse::<f64>().ok())
        .collect()
}

/// A simulated tenant on a loopback port.
pub async fn start_sim(tenant: TenantSpec, throttling: ThrottleConfig) -> RunningSim {
    let config = SimConfig {
        tenant,
        throttling,
        ..SimConfig::default()
    };
    m365sim::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// What a rig needs of its simulator.
pub trait SimSide {
    fn tenant(&self) -> &Tenant;
    fn base_url(&self) -> &str;
    fn graph_url(&self) -> String;
    /// The throttling counters (zero where they cannot be read).
    fn counters(&self) -> SimCounters;
    fn shutdown(self) -> impl std::future::Future<Output = ()> + Send;
}

impl SimSide for RunningSim {
    fn tenant(&self) -> &Tenant {
        RunningSim::tenant(self)
    }
    fn base_url(&self) -> &str {
        RunningSim::base_url(self)
    }
    fn graph_url(&self) -> String {
        RunningSim::graph_url(self)
    }
    fn counters(&self) -> SimCounters {
        SimCounters::of(self)
    }
    async fn shutdown(self) {
        RunningSim::shutdown(self).await
    }
}

/// The simulator in a process of its own (killed when dropped). The tenant is generated here
/// too, from the same spec (generation is deterministic; the child's app id, which it prints,
/// is checked against it), for the organization's credentials.
pub struct ChildSim {
    child: Child,
    tenant: Tenant,
    base_url: String,
    _spec_dir: tempfile::TempDir,
}

/// Set in a child started by [`ChildSim::start`]: the tenant file it serves.
pub const SIM_CHILD_TENANT: &str = "BACKUP_SCALING_SIM_TENANT";
/// Set in such a child: `1` to throttle as m365sim does by default, else unthrottled.
const SIM_CHILD_THROTTLING: &str = "BACKUP_SCALING_SIM_THROTTLING";

/// Simulator mode (the child's `main`): serves the tenant of the file on a free loopback port,
/// prints its address and app id, and runs until killed. Builds the binary only the benchmark
/// needs: the `m365sim` binary's dependencies have other features, a second long build.
pub async fn serve_sim_child(tenant_file: &str) {
    let tenant = TenantSpec::from_file(std::path::Path::new(tenant_file)).unwrap();
    let throttling = if std::env::var(SIM_CHILD_THROTTLING).as_deref() == Ok("1") {
        ThrottleConfig::default()
    } else {
        ThrottleConfig {
            enabled: false,
            ..ThrottleConfig::default()
        }
    };
    let sim = start_sim(tenant, throttling).await;
    println!("client id {}", sim.tenant().app.client_id);
    println!("serving at {}", sim.base_url());
    std::future::pending::<()>().await;
}

impl ChildSim {
    /// Starts the simulator with `tenant`, throttling on (m365sim's defaults) or off.
    pub fn start(tenant: TenantSpec, throttling: bool) -> Self {
        let generated = Tenant::generate(&tenant).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("tenant.json");
        std::fs::write(&spec, serde_json::to_vec(&tenant).unwrap()).unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(SIM_CHILD_TENANT, &spec)
            .env(SIM_CHILD_THROTTLING, if throttling { "1" } else { "0" })
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the simulator's process");
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(stdout).lines();
        let (mut base_url, mut client_id) = (None, None);
        while base_url.is_none() || client_id.is_none() {
            let line = lines
                .next()
                .expect("the simulator printed its address and app")
                .unwrap();
            if let Some(url) = line.strip_prefix("serving at ") {
                base_url = Some(url.trim().to_owned());
            } else if let Some(id) = line.strip_prefix("client id ") {
                client_id = Some(id.trim().to_owned());
            }
        }
        assert_eq!(
            client_id,
            Some(generated.app.client_id.to_string()),
            "the child's tenant is the one generated here"
        );
        // Keep reading what it prints, so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            child,
            tenant: generated,
            base_url: base_url.unwrap(),
            _spec_dir: dir,
        }
    }

    /// The child's peak resident memory, MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        vm_hwm_mib(&format!("/proc/{}/status", self.child.id()))
    }
}

impl Drop for ChildSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SimSide for ChildSim {
    fn tenant(&self) -> &Tenant {
        &self.tenant
    }
    fn base_url(&self) -> &str {
        &self.base_url
    }
    fn graph_url(&self) -> String {
        format!("{}/v1.0", self.base_url)
    }
    fn counters(&self) -> SimCounters {
        SimCounters::default()
    }
    async fn shutdown(self) {
        drop(self);
    }
}

impl Rig {
    /// The server, the tenant (in this process), the organization with `accounts` backup
    /// accounts (`backup1` … of the tenant's "Backup Accounts" group) and a manual job over
    /// everything.
    pub async fn start(tenant: TenantSpec, throttling: ThrottleConfig, accounts: usize) -> Self {
        let seed = tenant.seed;
        let sim = start_sim(tenant, throttling).await;
        Rig::with_sim(sim, seed, accounts).await
    }
}

impl Rig<ChildSim> {
    /// As [`Rig::start`], with the simulator in a child process (unthrottled, or throttled
    /// as `m365sim` is by default).
    pub async fn start_child(tenant: TenantSpec, throttling: bool, accounts: usize) -> Self {
        let seed = tenant.seed;
        let sim = ChildSim::start(tenant, throttling);
        Rig::with_sim(sim, seed, accounts).await
    }
}

impl<S: SimSide> Rig<S> {
    async fn with_sim(sim: S, seed: u64, accounts: usize) -> Self {
        let server = start_server(engine_config()).await;
        let t = sim.tenant();
        let org_body = json!({"type": "Office365", "region": "Worldwide", "isSharePointOnline": true,
            "sharePointOnlineSettings": {"useApplicationOnlyAuth": true,
                "applicationId": t.app.client_id.to_string(), "applicationSecret": t.app.client_secret,
                "officeOrganizationName": t.domain, "authorityUrl": sim.base_url(), "graphUrl": sim.graph_url()}});
        let org = created(&server, "/v5/Organizations", &org_body).await;
        if accounts > 0 {
            let group = t
                .backup_accounts_group()
                .expect("the tenant has a Backup Accounts group")
                .id;
            let body: Vec<Value> = (1..=accounts)
                .map(|i| {
                    json!({"groupMember": {"groupId": format!("{group}00000000-0000-0000-0000-000000000000"),
                        "login": format!("backup{i}@{}", t.domain), "type": "User"},
                        "password": generated_password(&format!("backup{i}"), seed)})
                })
                .collect();
            let r = server
                .http
                .put(format!(
                    "{}/v5/Organizations/{org}/BackupAccounts",
                    server.base
                ))
                .bearer_auth(&server.token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
        }
        let job = created(
            &server,
            &format!("/v5/Organizations/{org}/Jobs"),
            &json!({"name": "Everything", "schedulePolicy": {"type": "ManualOnly"}}),
        )
        .await;
        Self {
            sim,
            server,
            org,
            job,
        }
    }

    async fn get(&self, path: &str) -> Value {
        self.server
            .http
            .get(format!("{}{path}", self.server.base))
            .bearer_auth(&self.server.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn action(&self, action: &str) {
        let r = self
            .server
            .http
            .post(format!("{}/v5/Jobs/{}/Action", self.server.base, self.job))
            .bearer_auth(&self.server.token)
            .json(&json!({ action: null }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{action}: {}", r.text().await.unwrap());
    }

    /// The job's newest session, if any.
    async fn latest_session(&self) -> Option<Value> {
        let page = self
            .get(&format!("/v5/Jobs/{}/JobSessions?limit=1", self.job))
            .await;
        page["results"].get(0).cloned()
    }

    /// Starts the job; the id of the session it had before.
    pub async fn start_job(&self) -> Option<String> {
        let before = self
            .latest_session()
            .await
            .and_then(|s| s["id"].as_str().map(str::to_owned));
        self.action("start").await;
        before
    }

    pub async fn stop_job(&self) {
        self.action("stop").await;
    }

    /// Waits for the session after `before` to end; it and its log titles.
    pub async fn wait_for_end(&self, before: Option<&str>) -> (Value, Vec<String>) {
        loop {
            if let Some(s) = self.latest_session().await {
                let new = s["id"].as_str() != before;
                let status = s["status"].as_str().unwrap_or("");
                if new && status != "Running" && status != "Queued" {
                    let id = s["id"].as_str().unwrap().to_owned();
                    let page = self
                        .get(&format!("/v5/JobSessions/{id}/LogItems?limit=1000"))
                        .await;
                    let log = page["results"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|l| l["title"].as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default();
                    return (s, log);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs the job to its end.
    pub async fn run(&self) -> Run {
        let c0 = SimCounters::read(&self.sim);
        let t0 = Instant::now();
        let before = self.start_job().await;
        let (session, log) = self.wait_for_end(before.as_deref()).await;
        let secs = t0.elapsed().as_secs_f64();
        Run {
            secs,
            counters: SimCounters::read(&self.sim).since(&c0),
            session,
            log,
        }
    }

    /// The server's default repository, opened in this process.
    pub async fn repository(&self) -> Repository {
        let repos = self.get("/v5/BackupRepositories").await;
        let id = repos
            .as_array()
            .and_then(|a| a.iter().find(|r| r["name"] == "Default Backup Repository"))
            .and_then(|r| r["id"].as_str())
            .expect("a default repository")
            .parse()
            .unwrap();
        self.server.server.repositories.open(id).await.unwrap()
    }

    pub async fn shutdown(self) {
        self.server.server.shutdown().await.unwrap();
        self.sim.shutdown().await;
        drop(self.server.dir);
    }
}

/// POSTs `body` to `path`, expecting 201; the new resource's id.
async fn created(server: &BenchServer, path: &str, body: &Value) -> String {
    let r = server
        .http
        .post(format!("{}{path}", server.base))
        .bearer_auth(&server.token)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{path}: {}", r.text().await.unwrap());
    let v: Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_owned()
}

/// Bytes the backup accounts' pools of this process have read so far (live, as streamed).
pub fn pool_bytes() -> u64 {
    m365backup_m365::pool::live_pools()
        .iter()
        .flat_map(|p| p.report())
        .map(|a| a.bytes)
        .sum()
}

/// Peak resident memory of this process since the last reset, MiB.
pub fn peak_rss_mib() -> f64 {
    vm_hwm_mib("/proc/self/status")
}

/// `VmHWM` of a `/proc/…/status` file, MiB.
fn vm_hwm_mib(path: &str) -> f64 {
    let status = std::fs::read_to_string(path).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// Resets the peak (Linux: writing 5 to clear_refs sets VmHWM to the current RSS).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
