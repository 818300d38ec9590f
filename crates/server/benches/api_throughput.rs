//! Requests/s and latency of an authenticated cheap GET (`GET /v5/Organizations` through the
//! whole stack: TLS, the listener's guards, path canonicalization, the bearer check, the store,
//! JSON) against a bare axum handler served by the same listener (same TLS certificate, same
//! connection guards), measured side by side in one run: the targets take turns, round after
//! round, so a change in the machine's load falls on each.
//!
//! A third target isolates the bearer check: an authenticated `GET /v5/Organizations/x`, which
//! the whole stack answers 404 after the bearer check and before any store query.
//!
//! Printed per target: req/s, errors, p50 and p99 latency, and this process's CPU time per
//! request (the load's clients and the server together: steadier than rates on a busy
//! machine); then the ratios to the bare handler, by rate and by CPU time.
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
    let secs = env_or("BENCH_SECS", 12);
    let rounds = env_or("BENCH_ROUNDS", 4).max(1);
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
    let targets = [
        ("bare axum handler", bare_url, None, None),
        (
            "GET /v5/Organizations (auth)",
            format!("{base}/v5/Organizations"),
            Some(token.as_str()),
            None,
        ),
        (
            "bearer check only (auth, 404)",
            format!("{base}/v5/Organizations/x"),
            Some(token.as_str()),
            Some(404),
        ),
    ];
    let mut runs: Vec<Vec<LoadReport>> = targets.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for (t, (_, url, token, expect)) in targets.iter().enumerate() {
            runs[t].push(load_measured(url, *token, *expect, connections, per_round).await);
        }
    }
    let reports: Vec<LoadReport> = runs.into_iter().map(combined).collect();
    for ((name, ..), r) in targets.iter().zip(&reports) {
        println!(
            "  {name:<30}: {:>8.0} req/s ({} errors), p50 {:>5.2} ms, p99 {:>6.2} ms, {:>5.1} µs CPU/req",
            r.rps,
            r.errors,
            r.ms(50.0),
            r.ms(99.0),
            r.cpu_us_per_request
        );
    }
    let bare = &reports[0];
    for ((name, ..), r) in targets.iter().zip(&reports).skip(1) {
        println!(
            "  ratio {name:<24}/ bare: {:>5.2} by rate, {:>5.2} by CPU time",
            r.rps / bare.rps,
            bare.cpu_us_per_request / r.cpu_us_per_request
        );
    }
    server.shutdown().await.unwrap();
}

/// The rounds of one target as one run: mean rate and CPU time, all errors, all latencies.
fn combined(rounds: Vec<LoadReport>) -> LoadReport {
    let n = rounds.len() as f64;
    let mut latency = latency_histogram();
    let (mut rps, mut cpu, mut errors) = (0.0, 0.0, 0);
    for r in rounds {
        rps += r.rps / n;
        cpu += r.cpu_us_per_request / n;
        errors += r.errors;
        latency.add(&r.latency).unwrap();
    }
    LoadReport {
        rps,
        errors,
        latency,
        cpu_us_per_request: cpu,
    }
}
