//! The founding endpoint's speed, in one run against an in-process simulated tenant:
//! `PUT .../BackupAccounts` latency for 1, 10 and 100 accounts (every check included: directory
//! reads, and one real sign-in per password, run concurrently), and `GET .../BackupAccounts`
//! throughput beside the cheap `GET /v5/Organizations`, same server, same connections.
//!
//! `cargo bench -p m365backup --bench backup_accounts` (env: BENCH_SECS, BENCH_CONNECTIONS).

// Test and benchmark code panics on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use m365sim::tenant::generated_password;
use m365sim::{SimConfig, TenantSpec, ThrottleConfig};
use serde_json::{json, Value};

mod support;

use support::{env_or, load, start_server, BenchServer};

#[tokio::main]
async fn main() {
    let secs = env_or("BENCH_SECS", 3);
    let connections = env_or("BENCH_CONNECTIONS", 16);
    let sim_config = SimConfig {
        tenant: TenantSpec {
            seed: 9,
            users: 120,
            files_per_drive: 0,
            folders_per_drive: 0,
            ..TenantSpec::default()
        },
        throttling: ThrottleConfig {
            enabled: false,
            ..ThrottleConfig::default()
        },
        ..SimConfig::default()
    };
    let sim = m365sim::start(sim_config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let BenchServer {
        server,
        base,
        http,
        token,
        dir: _dir,
        ..
    } = start_server().await;
    let t = sim.tenant();
    let org: Value = http
        .post(format!("{base}/v5/Organizations"))
        .bearer_auth(&token)
        .json(&json!({"type": "Office365", "sharePointOnlineSettings": {
            "useApplicationOnlyAuth": true, "applicationId": t.app.client_id.to_string(), "applicationSecret": t.app.client_secret,
            "officeOrganizationName": t.domain, "authorityUrl": sim.base_url(), "graphUrl": sim.graph_url()}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let org = org["id"].as_str().unwrap().to_owned();
    let staff = t
        .groups
        .iter()
        .find(|g| g.display_name == "All Staff")
        .unwrap()
        .id;
    let body = |n: usize| -> Value {
        json!((1..=n)
            .map(|i| json!({"groupMember": {"groupId": format!("{staff}00000000-0000-0000-0000-000000000000"),
                "login": format!("user{i}@{}", t.domain), "type": "User"}, "password": generated_password(&format!("user{i}"), 9)}))
            .collect::<Vec<_>>())
    };
    let url = format!("{base}/v5/Organizations/{org}/BackupAccounts");
    println!("backup_accounts: PUT latency (median of 7, every password signed in), GET throughput ({connections} connections, {secs} s)");
    let mut medians = Vec::new();
    for n in [1usize, 10, 100] {
        let payload = body(n);
        let mut times = Vec::new();
        for _ in 0..7 {
            let t0 = Instant::now();
            let r = http
                .put(&url)
                .bearer_auth(&token)
                .json(&payload)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            times.push(t0.elapsed());
        }
        times.sort();
        let median = times[times.len() / 2];
        medians.push(median);
        println!(
            "  PUT {n:>3} accounts              : {:>8.1} ms",
            median.as_secs_f64() * 1000.0
        );
    }
    println!(
        "  ratio PUT 100 / PUT 1          : {:>8.1}  (100x the sign-ins)",
        medians[2].as_secs_f64() / medians[0].as_secs_f64()
    );
    let (get_accounts, _) = load(&url, Some(&token), connections, secs).await;
    let (get_orgs, _) = load(
        &format!("{base}/v5/Organizations"),
        Some(&token),
        connections,
        secs,
    )
    .await;
    println!("  GET BackupAccounts (100)       : {get_accounts:>8.0} req/s");
    println!("  GET Organizations              : {get_orgs:>8.0} req/s");
    println!(
        "  ratio                          : {:>8.2}",
        get_accounts / get_orgs
    );
    server.shutdown().await.unwrap();
    sim.shutdown().await;
}
