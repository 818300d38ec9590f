//! Requests/s of an authenticated cheap GET (`GET /v5/Organizations` through the whole stack:
//! TLS, path canonicalization, bearer check against the store, JSON) against a bare axum handler
//! served the same way (same TLS certificate and server), measured side by side in one run.
//!
//! `cargo bench -p m365backup --bench api_throughput` (env: BENCH_SECS, BENCH_CONNECTIONS).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use m365backup::config::Settings;
use m365backup_core::Secret;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Drives `url` with `connections` concurrent clients (one TLS connection each) for `secs`.
async fn load(url: &str, token: Option<&str>, connections: u64, secs: u64) -> (f64, u64) {
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
                match req.send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    // Warm-up second (connections and TLS handshakes), then measure.
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

#[tokio::main]
async fn main() {
    let secs = env_or("BENCH_SECS", 5);
    let connections = env_or("BENCH_CONNECTIONS", 32);
    let dir = tempfile::tempdir().unwrap();

    // The real server, default settings (SQLite), on loopback.
    let mut settings = Settings::for_data_dir(dir.path());
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.bootstrap_admin_password = Some(Secret::new("benchmark-password"));
    let server = m365backup::server::start(&settings).await.unwrap();
    let base = format!("https://127.0.0.1:{}", server.addr.port());
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let token: serde_json::Value = client
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

    // A bare axum handler, same TLS certificate, same server library.
    let tls = m365backup::tls::load(&settings.tls, &settings.data_dir)
        .await
        .unwrap();
    let bare = axum::Router::new().route(
        "/v5/Organizations",
        get(|| async { axum::Json(Vec::<u8>::new()) }),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let bare_port = listener.local_addr().unwrap().port();
    tokio::spawn(axum_server::from_tcp_rustls(listener, tls).serve(bare.into_make_service()));

    println!(
        "api_throughput: {connections} connections, {secs} s per target, HTTPS/1.1 on loopback"
    );
    let (bare_rps, bare_err) = load(
        &format!("https://127.0.0.1:{bare_port}/v5/Organizations"),
        None,
        connections,
        secs,
    )
    .await;
    let (ours_rps, ours_err) = load(
        &format!("{base}/v5/Organizations"),
        Some(&token),
        connections,
        secs,
    )
    .await;
    println!("  bare axum handler           : {bare_rps:>10.0} req/s ({bare_err} errors)");
    println!("  GET /v5/Organizations (auth): {ours_rps:>10.0} req/s ({ours_err} errors)");
    println!(
        "  ratio ours / bare           : {:>10.2}",
        ours_rps / bare_rps
    );
    server.shutdown().await.unwrap();
}
