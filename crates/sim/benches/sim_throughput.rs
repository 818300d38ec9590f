//! m365sim must never be the bottleneck. Measures, in one run on loopback:
//! - Graph requests/s (single-item reads, throttling off) against the highest rate the default
//!   throttling model lets a tenant reach (`min(16 × user_rate, app_rate)`), as a ratio;
//! - content streaming GB/s (one and four concurrent downloads of a 1 GiB file);
//! - uploads GB/s (a 1 GiB upload session in 10 MiB fragments; a 200 MiB simple upload), which
//!   the simulator hashes and writes to disk as it receives them;
//! - resident memory before and after, and for a tenant 10× larger (content is generated).
//!
//! `cargo bench -p m365sim --bench sim_throughput` (env: BENCH_SECS, BENCH_CONNECTIONS).

// Test and benchmark code panics on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use m365sim::{SimConfig, TenantSpec, ThrottleConfig};
use serde_json::Value;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

async fn token(base: &str, sim: &m365sim::RunningSim) -> String {
    let t = sim.tenant();
    let body: Value = reqwest::Client::new()
        .post(format!("{base}/{}/oauth2/v2.0/token", t.id))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &t.app.client_id.to_string()),
            ("client_secret", &t.app.client_secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn request_rate(url: String, token: String, connections: u64, secs: u64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let client = reqwest::Client::builder().http1_only().build().unwrap();
        let (url, token, stop, ok) = (url.clone(), token.clone(), stop.clone(), ok.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(r) = client.get(&url).bearer_auth(&token).send().await {
                    if r.status().is_success() && r.bytes().await.is_ok() {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let start = ok.load(Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let rate = (ok.load(Ordering::Relaxed) - start) as f64 / t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    rate
}

async fn download_rate(url: &str, parallel: usize) -> f64 {
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..parallel {
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut stream = reqwest::get(&url).await.unwrap().bytes_stream();
            let mut n = 0u64;
            while let Some(chunk) = stream.next().await {
                n += chunk.unwrap().len() as u64;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / t0.elapsed().as_secs_f64() / 1e9
}

/// A 1 GiB upload session in 10 MiB fragments, then a 200 MiB simple upload: GB/s of each.
async fn upload_rates(graph: &str, drive: &str, token: &str) -> (f64, f64) {
    let client = reqwest::Client::new();
    let fragment = bytes::Bytes::from(vec![0x5au8; 32 * (320 << 10)]);
    let total = 1u64 << 30;
    let session: Value = client
        .post(format!(
            "{graph}/drives/{drive}/root:/upload.bin:/createUploadSession"
        ))
        .bearer_auth(token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = session["uploadUrl"].as_str().unwrap();
    let t0 = Instant::now();
    let mut at = 0u64;
    while at < total {
        let len = (fragment.len() as u64).min(total - at);
        let r = client
            .put(url)
            .header(
                "content-range",
                format!("bytes {at}-{}/{total}", at + len - 1),
            )
            .body(fragment.slice(..len as usize))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        at += len;
    }
    let session_rate = total as f64 / t0.elapsed().as_secs_f64() / 1e9;
    let simple = vec![0xa5u8; 200 << 20];
    let t0 = Instant::now();
    let r = client
        .put(format!("{graph}/drives/{drive}/root:/simple.bin:/content"))
        .bearer_auth(token)
        .body(simple)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let simple_rate = (200u64 << 20) as f64 / t0.elapsed().as_secs_f64() / 1e9;
    (session_rate, simple_rate)
}

#[tokio::main]
async fn main() {
    let secs = env_or("BENCH_SECS", 5);
    let connections = env_or("BENCH_CONNECTIONS", 32);
    let rss_start = rss_mib();
    let spec = TenantSpec {
        users: 200,
        files_per_drive: 20,
        ..TenantSpec::default()
    };
    let config = SimConfig {
        tenant: spec.clone(),
        throttling: ThrottleConfig {
            enabled: false,
            ..ThrottleConfig::default()
        },
        ..SimConfig::default()
    };
    let sim = m365sim::start(config.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let rss_tenant = rss_mib();
    let base = sim.base_url().to_owned();
    let token = token(&base, &sim).await;

    let drive = &sim.tenant().drives[0];
    let file_id = drive
        .state
        .read()
        .unwrap()
        .items
        .iter()
        .find(|i| i.file.is_some())
        .unwrap()
        .id
        .clone();
    let url = format!("{}/drives/{}/items/{file_id}", sim.graph_url(), drive.id);
    let rps = request_rate(url, token.clone(), connections, secs).await;
    let defaults = ThrottleConfig::default();
    let ceiling = (16.0 * defaults.user_rate).min(defaults.app_rate);

    // A 1 GiB file, streamed whole.
    let created: Value = reqwest::Client::new()
        .post(format!("{base}/_sim/drives/{}/files", drive.id))
        .header("x-sim-secret", &config.control_secret)
        .json(&serde_json::json!({"name": "big.bin", "size": 1u64 << 30}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let big = created["id"].as_str().unwrap();
    let item: Value = reqwest::Client::new()
        .get(format!(
            "{}/drives/{}/items/{big}",
            sim.graph_url(),
            drive.id
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let download = item["@microsoft.graph.downloadUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let one = download_rate(&download, 1).await;
    let four = download_rate(&download, 4).await;
    let (session_up, simple_up) = upload_rates(&sim.graph_url(), &drive.id, &token).await;
    let rss_after = rss_mib();
    sim.shutdown().await;

    // A tenant ten times larger: memory grows with item metadata only, never with content.
    let big_config = SimConfig {
        tenant: TenantSpec {
            users: 2000,
            ..spec
        },
        ..config
    };
    let before_big = rss_mib();
    let big_sim = m365sim::start(big_config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let rss_big = rss_mib() - before_big;
    let content_gib: f64 = big_sim
        .tenant()
        .drives
        .iter()
        .map(|d| {
            d.state
                .read()
                .unwrap()
                .items
                .iter()
                .filter_map(|i| i.file.map(|f| f.size))
                .sum::<u64>() as f64
        })
        .sum::<f64>()
        / (1u64 << 30) as f64;
    big_sim.shutdown().await;

    println!("sim_throughput: {connections} connections, {secs} s, plain HTTP/1.1 on loopback");
    println!("  Graph single-item GET           : {rps:>10.0} req/s");
    println!("  ceiling the default model allows: {ceiling:>10.0} req/s  (min(16 x user_rate, app_rate))");
    println!(
        "  ratio capacity / ceiling        : {:>10.1}x (target >= 5x)",
        rps / ceiling
    );
    println!("  content, 1 stream of 1 GiB      : {one:>10.2} GB/s (target >= 1)");
    println!("  content, 4 streams of 1 GiB     : {four:>10.2} GB/s");
    println!("  upload session of 1 GiB         : {session_up:>10.2} GB/s (target >= 0.25: 16 users' ingress is 0.22)");
    println!("  simple upload of 200 MiB        : {simple_up:>10.2} GB/s");
    println!("  RSS: start {rss_start:.0} MiB, 200-user tenant {rss_tenant:.0} MiB, after 5 GiB streamed and 1.2 GiB uploaded {rss_after:.0} MiB");
    println!("  2000-user tenant: +{rss_big:.0} MiB resident for {content_gib:.1} GiB of content");
}
