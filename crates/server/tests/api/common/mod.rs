//! Test harness: the real server on 127.0.0.1:0 with a temporary data dir, over HTTPS, on
//! SQLite or on a fresh PostgreSQL database of its own.

#![allow(dead_code)]

pub mod jobs;

use std::net::SocketAddr;

use m365backup::config::Settings;
use m365backup::server::RunningServer;
use m365backup_core::Secret;
use serde_json::Value;

pub const ADMIN_PASSWORD: &str = "correct-horse-battery";

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs an async test body once per store backend.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident;)*) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() { super::$name($crate::common::Backend::Sqlite).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() { super::$name($crate::common::Backend::Postgres).await }
            }
        )*
    };
}

/// Base URL of the PostgreSQL server used by tests (a maintenance database on it).
fn pg_admin_url() -> String {
    std::env::var("M365BACKUP_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh PostgreSQL database for one test; dropped by [`TestServer::stop`].
async fn create_pg_database() -> (String, String) {
    use sqlx::Connection;
    let admin = pg_admin_url();
    let name = format!("m365backup_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("PostgreSQL must be running for the tests (see .ci/run)");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .unwrap_or(admin);
    (format!("{base}/{name}"), name)
}

async fn drop_pg_database(name: &str) {
    use sqlx::Connection;
    if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_admin_url()).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
}

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub addr: SocketAddr,
    pub base: String,
    pub http: reqwest::Client,
    pub settings: Settings,
    pub data_dir: tempfile::TempDir,
    pg_database: Option<String>,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts with default settings changed by `adjust`.
    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::for_data_dir(data_dir.path()).unwrap();
        settings.listen = "127.0.0.1:0".parse().unwrap();
        settings.bootstrap_admin_password = Some(Secret::new(ADMIN_PASSWORD));
        // Tests run their simulated tenants on loopback ports.
        settings.allowed_endpoints = vec!["http://127.0.0.1:*".into()];
        let mut pg_database = None;
        if let Backend::Postgres = backend {
            let (url, name) = create_pg_database().await;
            settings.database_url = Some(Secret::new(url));
            pg_database = Some(name);
        }
        adjust(&mut settings);
        let server = m365backup::server::start(&settings)
            .await
            .expect("server starts");
        let expected = match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        assert_eq!(server.store.backend(), expected);
        let addr = server.addr;
        let scheme = settings.api.scheme;
        Self {
            server: Some(server),
            addr,
            base: format!("{scheme}://127.0.0.1:{}", addr.port()),
            http: client(),
            settings,
            data_dir,
            pg_database,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Signs in with the password grant; the JSON response, asserting 200.
    pub async fn sign_in(&self, user: &str, password: &str) -> Value {
        let r = self
            .token_request(&[
                ("grant_type", "password"),
                ("username", user),
                ("password", password),
            ])
            .await;
        assert_eq!(r.status(), 200, "sign-in of {user} should succeed");
        r.json().await.unwrap()
    }

    /// An access token of the bootstrap admin.
    pub async fn admin_token(&self) -> String {
        self.sign_in("admin", ADMIN_PASSWORD).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn token_request(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url("/v5/Token"))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Restarts the server on the same data dir and database (a new port).
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.unwrap();
        }
        let server = m365backup::server::start(&self.settings)
            .await
            .expect("server restarts");
        self.addr = server.addr;
        self.base = format!(
            "{}://127.0.0.1:{}",
            self.settings.api.scheme,
            server.addr.port()
        );
        self.server = Some(server);
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.unwrap();
        }
        if let Some(name) = self.pg_database.take() {
            drop_pg_database(&name).await;
        }
    }
}

/// An HTTPS client that accepts the server's self-signed certificate, as real v5 clients do.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
}

pub async fn json(r: reqwest::Response) -> Value {
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A simulated tenant on a loopback port, for the server's Microsoft 365 client to talk to.
pub async fn start_sim(spec: m365sim::TenantSpec) -> m365sim::RunningSim {
    let config = m365sim::SimConfig {
        tenant: spec,
        throttling: m365sim::ThrottleConfig {
            enabled: false,
            ..Default::default()
        },
        control_secret: SIM_SECRET.into(),
        ..Default::default()
    };
    m365sim::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

pub const SIM_SECRET: &str = "sim-secret-for-tests";

/// A `POST /v5/Organizations` body signing in as `account` through the tenant's app.
pub fn organization_body(sim: &m365sim::RunningSim, account: &str, password: &str) -> Value {
    let t = sim.tenant();
    serde_json::json!({
        "type": "Office365",
        "region": "Worldwide",
        "isSharePointOnline": true,
        "sharePointOnlineSettings": {
            "account": account,
            "password": password,
            "applicationId": t.app.client_id.to_string(),
            "officeOrganizationName": t.domain,
            "authorityUrl": sim.base_url(),
            "graphUrl": sim.graph_url(),
        }
    })
}

/// Every log line of this test binary, at debug level, to check that no secret is ever logged.
pub fn captured_logs() -> std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    use std::sync::{Arc, Mutex, OnceLock};
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let make_writer = move || SharedWriter(writer.clone());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "debug,sqlx=warn,hyper=info,h2=info,rustls=info,reqwest=info",
            ))
            .with_writer(make_writer)
            .try_init();
        buffer
    })
    .clone()
}

struct SharedWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn assert_not_logged(secret: &str) {
    let logs = captured_logs();
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(!text.is_empty(), "logs are captured");
    assert!(!text.contains(secret), "a secret was logged");
}

/// Asserts that `secret` appears nowhere in the server's state: in any SQLite file of the data
/// dir, or in any row of any table of its PostgreSQL database (text, or bytea as hex).
pub async fn assert_plaintext_absent(s: &TestServer, secret: &str) {
    match s.settings.database_url.as_ref().map(Secret::expose) {
        None => {
            for entry in std::fs::read_dir(s.data_dir.path()).unwrap() {
                let path = entry.unwrap().path();
                if path
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("m365backup.db")
                {
                    let bytes = std::fs::read(&path).unwrap();
                    assert!(
                        !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                        "{} holds the plaintext",
                        path.display()
                    );
                }
            }
        }
        Some(url) => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            let tables: Vec<String> = sqlx::query_scalar("SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'")
                .fetch_all(&mut conn)
                .await
                .unwrap();
            let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
            for table in tables {
                let rows: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT t::text FROM \"{table}\" t"))
                        .fetch_all(&mut conn)
                        .await
                        .unwrap();
                for row in rows {
                    assert!(
                        !row.contains(secret) && !row.contains(&hex),
                        "table {table} holds the plaintext"
                    );
                }
            }
        }
    }
}

/// The real `m365backup serve` as a separate process (to measure its memory, read its log, or
/// kill it), on a data dir that outlives it so it can be started again.
pub struct ChildServer {
    child: std::process::Child,
    pub base: String,
    log: std::path::PathBuf,
    extra: Vec<String>,
    pub dir: tempfile::TempDir,
}

impl ChildServer {
    pub fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let extra: Vec<String> = extra.iter().map(|e| (*e).to_owned()).collect();
        let (child, base, log) = Self::spawn(dir.path(), &extra, 0);
        Self {
            child,
            base,
            log,
            extra,
            dir,
        }
    }

    /// The data dir (`<dir>/data`).
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    fn spawn(
        dir: &std::path::Path,
        extra: &[String],
        generation: u32,
    ) -> (std::process::Child, String, std::path::PathBuf) {
        use std::time::{Duration, Instant};
        let log = dir.join(format!("server-{generation}.log"));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_m365backup"))
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("M365BACKUP_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("RUST_LOG", "info")
            .env_remove("M365BACKUP_CONFIG")
            .stdout(std::fs::File::create(dir.join(format!("stdout-{generation}.txt"))).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.contains("API listening")) {
                let after = line.split("addr=").nth(1).unwrap();
                break after.split_whitespace().next().unwrap().to_owned();
            }
            assert!(Instant::now() < deadline, "server did not start: {text}");
            std::thread::sleep(Duration::from_millis(50));
        };
        (child, format!("https://{addr}"), log)
    }

    /// SIGKILL: the process dies at once, mid-write or not.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same data dir (a new port).
    pub fn restart(&mut self, generation: u32) {
        self.kill();
        let (child, base, log) = Self::spawn(self.dir.path(), &self.extra, generation);
        self.child = child;
        self.base = base;
        self.log = log;
    }

    /// A `/proc/<pid>/status` figure in KiB (`VmRSS`, `VmHWM`).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap()
            .parse()
            .unwrap()
    }

    /// What the server printed on its standard output since its last (re)start.
    pub fn stdout_text(&self) -> String {
        let name = self
            .log
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap()
            .replace("server-", "stdout-")
            .replace(".log", ".txt");
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// The bytes the server process has read so far (`rchar` of `/proc/<pid>/io`: files,
    /// whether from the disk or the page cache, and sockets).
    pub fn read_chars(&self) -> u64 {
        let io = std::fs::read_to_string(format!("/proc/{}/io", self.child.id())).unwrap();
        io.lines()
            .find_map(|l| l.strip_prefix("rchar:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An access token of the bootstrap admin.
    pub async fn admin_token(&self, http: &reqwest::Client) -> String {
        let r: Value = http
            .post(format!("{}/v5/Token", self.base))
            .form(&[
                ("grant_type", "password"),
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["access_token"].as_str().unwrap().to_owned()
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs the `m365backup` binary on the server's data dir and database, with extra environment
/// variables, off the async workers (the server keeps running); (success, stdout, stderr).
pub async fn cli_with_env(
    s: &TestServer,
    args: &[&str],
    env: &[(&str, &str)],
) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_m365backup"));
    cmd.arg("--data-dir").arg(s.data_dir.path());
    if let Some(url) = &s.settings.database_url {
        cmd.arg("--database-url").arg(url.expose());
    }
    // The shell commands run with the server's endpoint policy (its simulators on loopback).
    if !s.settings.allowed_endpoints.is_empty() {
        cmd.arg("--allowed-endpoints")
            .arg(s.settings.allowed_endpoints.join(","));
    }
    cmd.args(args)
        .env_remove("M365BACKUP_CONFIG")
        .env_remove("M365BACKUP_ALLOWED_ENDPOINTS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// [`cli_with_env`] without extra environment.
pub async fn cli(s: &TestServer, args: &[&str]) -> (bool, String, String) {
    cli_with_env(s, args, &[]).await
}
