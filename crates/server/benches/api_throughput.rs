//! Requests/s and latency of an authenticated cheap GET (`GET /v5/Organizations` through the
//! whole stack: TLS, the listener's guards, path canonicalization, the bearer check, the store,
//! JSON) against a bare axum handler served by the same listener (same TLS certificate, same
//! connection guards), measured side by side in one run: the two targets take turns, round
//! after round, so a change in the machine's load falls on both.
//!
//! Printed: req/s, errors, p50 and p99 latency of each, and the ratio ours ÷ bare.
//!
//! `cargo bench -p m365backup --bench api_throughput` (env: BENCH_SECS per target in all,
//! BENCH_ROUNDS, BENCH_CONNECTIONS).

// Test and benchmark code panics on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use axum::routing::get;

mod support;

use support::{env_or, latency_histogram, load_measured, start_server, BenchServer, LoadReport};

#[tokio::main]
async fn main() {
    let secs = env_or("BENCH_SECS", 6);
    let rounds = env_or("BENCH_ROUNDS", 3).max(1);
    let connections = env_or("BENCH_CONNECTIONS", 32);
    // The real server, default settings (SQLite), on loopback.
    let BenchServer {
        server,
        settings,
        base,
        token,
        dir: _dir,
        ..
    } = start_server().await;

    // A bare axum handler behind the server's own listener and TLS configuration.
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
    let _bare = m365backup::listener::serve(
        listener,
        bare.into_make_service_with_connect_info::<SocketAddr>(),
        Some(tls),
        &settings.connections,
        axum_server::Handle::new(),
    );

    let per_round = (secs / rounds).max(1);
    println!(
        "api_throughput: {connections} connections, {rounds} rounds of {per_round} s per target, \
         HTTPS/1.1 on loopback"
    );
    let bare_url = format!("https://127.0.0.1:{bare_port}/v5/Organizations");
    let ours_url = format!("{base}/v5/Organizations");
    let mut bare = Vec::new();
    let mut ours = Vec::new();
    for _ in 0..rounds {
        bare.push(load_measured(&bare_url, None, connections, per_round).await);
        ours.push(load_measured(&ours_url, Some(&token), connections, per_round).await);
    }
    let (bare, ours) = (combined(bare), combined(ours));
    line("bare axum handler           ", &bare);
    line("GET /v5/Organizations (auth)", &ours);
    println!(
        "  ratio ours / bare           : {:>10.2}",
        ours.rps / bare.rps
    );
    server.shutdown().await.unwrap();
}

/// The rounds of one target as one run: mean rate, all errors, all latencies.
fn combined(rounds: Vec<LoadReport>) -> LoadReport {
    let n = rounds.len() as f64;
    let mut latency = latency_histogram();
    let (mut rps, mut errors) = (0.0, 0);
    for r in rounds {
        rps += r.rps / n;
        errors += r.errors;
        latency.add(&r.latency).unwrap();
    }
    LoadReport {
        rps,
        errors,
        latency,
    }
}

fn line(name: &str, r: &LoadReport) {
    println!(
        "  {name}: {:>10.0} req/s ({} errors), p50 {:.2} ms, p99 {:.2} ms",
        r.rps,
        r.errors,
        r.ms(50.0),
        r.ms(99.0)
    );
}
