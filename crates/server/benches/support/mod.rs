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

/// Drives `url` with `connections` concurrent clients (one HTTP/1.1 TLS connection each) for
/// `secs` after a one-second warm-up; successful requests per second and failures.
pub async fn load(url: &str, token: Option<&str>, connections: u64, secs: u64) -> (f64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
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
        let (url, token, stop, ok, errors) = (
            url.to_owned(),
            token.map(str::to_owned),
            stop.clone(),
            ok.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let mut req = client.get(&url);
                if let Some(t) = &token {
                    req = req.bearer_auth(t);
                }
                let succeeded = match req.send().await {
                    Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                    _ => false,
                };
                let counter = if succeeded { &ok } else { &errors };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let start_ok = ok.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let done = ok.load(Ordering::Relaxed) - start_ok;
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    (done as f64 / elapsed, errors.load(Ordering::Relaxed))
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
