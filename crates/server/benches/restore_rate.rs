//! How close a restore to Microsoft 365 gets to what throttling allows, in one run: the real
//! server in-process (SQLite, the default repository in a temporary data dir) beside an
//! in-process m365sim tenant. A OneDrive folder of 2,048 documents (1 GiB, 64 KiB to 960 KiB
//! each, in 16 folders; every one a simple upload and its times) is backed up unthrottled, then
//! for N = 1, 4 and 16 backup accounts (`PUT .../BackupAccounts`) it is deleted and restored
//! to its original location (`POST .../Folders/{id}/Action {"restoretoOriginallocation"}`),
//! timed from the request to the answer, against the simulator's `fast` profile with budgets
//! ten times Microsoft's: per user R = 100 units/s, per app A = 1,000 units/s (no tenant
//! budget: T = ∞), the users' upload budgets out of the way, and the pool starting at R (as it
//! starts at Microsoft's 10/s by default). Writes cost 2 units, lookups 1.
//!
//! Printed per N: the write requests/s, the resource units/s the simulator admitted, the limit
//! min(N·R, A, T) as `pool_scaling` computes it, the ratio (target ≥ 0.9), the ratio against
//! what the budgets could admit over this very run (the limit plus the full buckets at the
//! start: users 2R each, the app 2A), the share of answers throttled (429 or 503), and MiB/s
//! written.
//!
//! `cargo bench -p m365backup --bench restore_rate` (env: BENCH_FILES, BENCH_MIB for the
//! folder's size, e.g. 400 and 100 for a quick run; BENCH_N for one N).

// Test and benchmark code panics on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use m365sim::tenant::generated_password;
use m365sim::throttle::Principal;
use m365sim::{RunningSim, SimConfig, TenantSpec, ThrottleConfig};
use serde_json::{json, Value};

mod support;

use support::{env_or, start_server_with, BenchServer};

const SEED: u64 = 41;
/// Per-user and per-app budgets, units/s (Microsoft's × 10).
const R: f64 = 100.0;
const A: f64 = 1_000.0;
const FOLDERS: usize = 16;

fn throttling() -> ThrottleConfig {
    ThrottleConfig {
        enabled: true,
        user_rate: R,
        user_burst: 2.0 * R,
        app_rate: A,
        app_burst: 2.0 * A,
        user_ingress_bytes_per_hour: 1e13,
        ..ThrottleConfig::default()
    }
}

/// The simulator's figures summed by kind of principal.
#[derive(Clone, Copy, Default)]
struct Counters {
    units: f64,
    requests: f64,
    throttled: f64,
    uploaded: f64,
}

fn counters(sim: &RunningSim) -> Counters {
    let mut c = Counters::default();
    for (p, s) in sim.sim().throttler.stats() {
        match p {
            // Every Graph request is charged to the app.
            Principal::App(_) => {
                c.units += s.units;
                c.requests += s.requests as f64;
                c.throttled += (s.throttled429 + s.throttled503) as f64;
            }
            Principal::User(_) => c.uploaded += s.ingress_bytes as f64,
            Principal::Tenant => {}
        }
    }
    c
}

async fn call(
    server: &BenchServer,
    method: reqwest::Method,
    path: &str,
    body: &Value,
) -> (u16, Value) {
    let r = server
        .http
        .request(method, format!("{}{path}", server.base))
        .bearer_auth(&server.token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn created(server: &BenchServer, path: &str, body: &Value) -> String {
    let (status, v) = call(server, reqwest::Method::POST, path, body).await;
    assert_eq!(status, 201, "{path}: {v}");
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::main]
async fn main() {
    let files = env_or("BENCH_FILES", 2048) as usize;
    let total = env_or("BENCH_MIB", 1024) << 20;
    let counts: Vec<usize> = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or_else(|| vec![1, 4, 16], |n| vec![n]);
    let most = counts.iter().copied().max().unwrap_or(1);

    let sim = m365sim::start(
        SimConfig {
            tenant: TenantSpec {
                seed: SEED,
                users: 4,
                backup_accounts: most,
                sites: 0,
                m365_groups: 0,
                files_per_drive: 0,
                folders_per_drive: 0,
                ..TenantSpec::default()
            },
            throttling: ThrottleConfig {
                enabled: false,
                ..throttling()
            },
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let server = start_server_with(|s| s.engine.pool.initial_rate = R).await;
    let t = sim.tenant();

    // The folder: sizes spread evenly over [mean/8, 15·mean/8].
    let upn = t.users[0].user_principal_name.clone();
    let drive = sim.onedrive(&upn).unwrap();
    let top = drive.add_folder(None, "Restore").unwrap();
    let mean = total / files as u64;
    let mut written = 0u64;
    let folders: Vec<String> = (0..FOLDERS)
        .map(|f| {
            drive
                .add_folder(Some(&top), &format!("Part {f:02}"))
                .unwrap()
        })
        .collect();
    for i in 0..files {
        let k = ((i * 37) % 29) as u64;
        let size = mean / 8 + mean * 7 / 4 * k / 28;
        written += size;
        drive
            .add_file(
                Some(&folders[i % FOLDERS]),
                &format!("doc {i:05}.bin"),
                size,
            )
            .unwrap();
    }
    let items = 1 + FOLDERS + files;

    let org = created(
        &server,
        "/v5/Organizations",
        &json!({"type": "Office365", "region": "Worldwide", "isSharePointOnline": true,
            "sharePointOnlineSettings": {"useApplicationOnlyAuth": true,
                "applicationId": t.app.client_id.to_string(), "applicationSecret": t.app.client_secret,
                "officeOrganizationName": t.domain, "authorityUrl": sim.base_url(), "graphUrl": sim.graph_url()}}),
    )
    .await;
    let job = created(
        &server,
        &format!("/v5/Organizations/{org}/Jobs"),
        &json!({"name": "Everything", "schedulePolicy": {"type": "ManualOnly"}}),
    )
    .await;
    let started = Instant::now();
    let (status, _) = call(
        &server,
        reqwest::Method::POST,
        &format!("/v5/Jobs/{job}/Action"),
        &json!({"start": null}),
    )
    .await;
    assert_eq!(status, 200);
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let (_, page) = call(
            &server,
            reqwest::Method::GET,
            &format!("/v5/Jobs/{job}/JobSessions?limit=1"),
            &Value::Null,
        )
        .await;
        let s = &page["results"][0];
        match s["status"].as_str() {
            Some("Running" | "Queued") | None => continue,
            Some("Success") => break,
            _ => panic!("the backup ended badly: {s}"),
        }
    }
    let backed_up = started.elapsed();
    let session = created(
        &server,
        &format!("/v5/Organizations/{org}/Action"),
        &json!({"explore": {"type": "veod"}}),
    )
    .await;

    println!(
        "restore_rate: {files} documents, {:.0} MiB in {FOLDERS} folders (backed up in {:.1} s); fast profile R = {R} units/s per user, A = {A} units/s per app, T = ∞",
        written as f64 / (1u64 << 20) as f64,
        backed_up.as_secs_f64()
    );
    println!(
        "  {:>8} {:>8} {:>9} {:>9} {:>9} {:>7} {:>12} {:>9} {:>8}",
        "accounts",
        "secs",
        "writes/s",
        "units/s",
        "limit",
        "ratio",
        "ratio (run)",
        "throttled",
        "MiB/s"
    );
    let group = t
        .backup_accounts_group()
        .expect("a Backup Accounts group")
        .id;
    let accounts_url = format!("/v5/Organizations/{org}/BackupAccounts");
    for n in counts {
        let body: Vec<Value> = (1..=n)
            .map(|i| {
                json!({"groupMember": {"groupId": format!("{group}00000000-0000-0000-0000-000000000000"),
                    "login": format!("backup{i}@{}", t.domain), "type": "User"},
                    "password": generated_password(&format!("backup{i}"), SEED)})
            })
            .collect();
        let (status, answer) =
            call(&server, reqwest::Method::PUT, &accounts_url, &json!(body)).await;
        assert_eq!(status, 201, "{answer}");

        // Gone from the tenant (the folder restored by the previous N has an id of its own).
        let current = drive.find("/Restore").expect("the folder").id;
        drive.delete(&current).unwrap();
        // Budgets full and figures at zero.
        sim.sim().throttler.reset();
        sim.control().set_throttling(|c| *c = throttling());
        let before = counters(&sim);
        let started = Instant::now();
        let (status, stats) = call(
            &server,
            reqwest::Method::POST,
            &format!(
                "/v5/RestoreSessions/{session}/Organization/OneDrives/{}/Folders/{top}/Action",
                drive.id()
            ),
            &json!({"restoretoOriginallocation": {}}),
        )
        .await;
        let secs = started.elapsed().as_secs_f64();
        let after = counters(&sim);
        sim.control().set_throttling(|c| c.enabled = false);
        assert_eq!(status, 200, "{stats}");
        assert_eq!(
            stats["restoredItemsCount"].as_u64(),
            Some(items as u64),
            "{stats}"
        );
        assert_eq!(stats["failedItemsCount"].as_u64(), Some(0), "{stats}");

        let units = after.units - before.units;
        let requests = after.requests - before.requests;
        // Every document is an upload and its times; every folder a creation.
        let writes = (2 * files + 1 + FOLDERS) as f64;
        let limit = (n as f64 * R).min(A);
        let allowance = (n as f64 * (R * secs + 2.0 * R)).min(A * secs + 2.0 * A);
        println!(
            "  {n:>8} {secs:>8.1} {:>9.1} {:>9.1} {limit:>9.1} {:>7.3} {:>12.3} {:>8.2}% {:>8.1}",
            writes / secs,
            units / secs,
            units / secs / limit,
            units / allowance,
            100.0 * (after.throttled - before.throttled) / requests.max(1.0),
            (after.uploaded - before.uploaded) / secs / (1u64 << 20) as f64
        );
    }
    server.server.shutdown().await.unwrap();
    sim.shutdown().await;
}
