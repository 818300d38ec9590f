//! Requests/s of an authenticated cheap GET (`GET /v5/Organizations` through the whole stack:
//! TLS, path canonicalization, bearer check against the store, JSON) against a bare axum handler
//! served the same way (same TLS certificate and server), measured side by side in one run.
//!
//! `cargo bench -p m365backup --bench api_throughput` (env: BENCH_SECS, BENCH_CONNECTIONS).

// Test and benchmark code panics on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::routing::get;

mod support;

use support::{env_or, load, start_server, BenchServer};

#[tokio::main]
async fn main() {
    let secs = env_or("BENCH_SECS", 5);
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
