//! The account pool and the probe against m365sim with small budgets: scaling with accounts,
//! work moving off a throttled account, Retry-After honoured exactly, the app's budget as a
//! shared ceiling (with and without `RateLimit-*` headers), quarantine of a bad account, every
//! file fetched once with the right bytes and a verified quickXorHash, drives only some
//! credentials may read, `410` resyncs, and large files read in ranges spread over the
//! accounts' egress budgets.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support;

use m365backup_core::backup_accounts::BackupAccountSession;
use m365backup_core::Secret;
use m365backup_engine::pool_builder::build_pool;
use m365backup_engine::probe::{probe, ProbeOptions, ProbeProgress};
use m365backup_m365::pool::{render_metrics, AccountPool, PoolConfig, PoolError};
use m365backup_m365::M365Error;
use m365sim::tenant::generated_password;
use m365sim::tenant::AdminGrant;
use m365sim::{RunningSim, TenantSpec, ThrottleConfig};
use support::{app_connection, connection};

const SEED: u64 = 11;

async fn sim(throttling: ThrottleConfig, files_per_drive: usize) -> RunningSim {
    let tenant = TenantSpec {
        seed: SEED,
        users: 4,
        backup_accounts: 8,
        sites: 1,
        files_per_drive,
        folders_per_drive: 2,
        max_file_size: 256 << 10,
        ..TenantSpec::default()
    };
    support::start_sim(tenant, throttling).await
}

fn backup_account(sim: &RunningSim, i: usize) -> BackupAccountSession {
    support::backup_account(sim, i, SEED)
}

fn pool(sim: &RunningSim, accounts: Vec<BackupAccountSession>) -> Arc<AccountPool> {
    build_pool("org", accounts, app_connection(sim), PoolConfig::default()).unwrap()
}

/// Every live file of the tenant: (drive, item) → expected SHA-256.
fn expected_files(sim: &RunningSim) -> Vec<(String, String, String)> {
    let mut files = Vec::new();
    for d in &sim.tenant().drives {
        for item in d.state.read().unwrap().items.iter().filter(|i| !i.deleted) {
            if let Some(f) = item.file {
                files.push((
                    d.id.clone(),
                    item.id.clone(),
                    m365sim::content::sha256_hex(&item.content_key(&d.id), f.version, f.size),
                ));
            }
        }
    }
    files
}

async fn run(pool: Arc<AccountPool>) -> m365backup_engine::probe::ProbeReport {
    probe(
        pool,
        ProbeOptions {
            workers: 16,
            keep_file_list: true,
        },
        Arc::new(ProbeProgress::default()),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_once_with_the_right_bytes_and_n_accounts_scale() {
    let throttling = ThrottleConfig {
        user_rate: 20.0,
        user_burst: 20.0,
        app_rate: 10_000.0,
        app_burst: 10_000.0,
        ..ThrottleConfig::default()
    };
    let sim = sim(throttling, 8).await;
    let expected = expected_files(&sim);

    let t0 = Instant::now();
    let one = run(pool(&sim, vec![backup_account(&sim, 1)])).await;
    let single = t0.elapsed();
    let t0 = Instant::now();
    let four = run(pool(
        &sim,
        (2..=5).map(|i| backup_account(&sim, i)).collect(),
    ))
    .await;
    let quad = t0.elapsed();

    for report in [&one, &four] {
        assert_eq!(report.files as usize, expected.len());
        assert_eq!(report.verified, report.files, "every quickXorHash checked");
        assert!(report.hash_mismatches.is_empty());
        let got: HashSet<(String, String, String)> = report
            .fetched
            .iter()
            .map(|f| (f.drive_id.clone(), f.item_id.clone(), f.sha256.clone()))
            .collect();
        assert_eq!(got.len(), report.fetched.len(), "no file fetched twice");
        assert_eq!(
            got,
            expected.iter().cloned().collect::<HashSet<_>>(),
            "every file, with the right bytes"
        );
    }
    let requests: Vec<u64> = four
        .accounts
        .iter()
        .filter(|a| !a.organization)
        .map(|a| a.requests)
        .collect();
    let total: u64 = requests.iter().sum();
    assert!(
        requests.iter().all(|&r| r * 8 >= total),
        "work spread across accounts: {requests:?}"
    );
    let throttled: u64 = four
        .accounts
        .iter()
        .map(|a| a.throttled_429 + a.throttled_503)
        .sum();
    assert!(
        throttled * 20 <= total,
        "few throttles: {throttled} of {total}"
    );
    let speedup = single.as_secs_f64() / quad.as_secs_f64();
    assert!(
        speedup >= 3.0,
        "4 accounts should be about 4x faster: {single:?} vs {quad:?} ({speedup:.2}x)"
    );

    let metrics = render_metrics(&m365backup_m365::pool::live_pools());
    assert!(metrics.contains("# TYPE m365backup_account_requests_total counter"));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_accounts_work_moves_and_retry_after_is_honoured_exactly() {
    let throttling = ThrottleConfig {
        user_rate: 20.0,
        user_burst: 20.0,
        app_rate: 10_000.0,
        app_burst: 10_000.0,
        extension_secs: 4.0,
        ..ThrottleConfig::default()
    };
    let sim = sim(throttling, 3).await;
    // Someone else exhausts backup1's budget: it is blocked for a long time (each request while
    // blocked extends the block by 4 s).
    let rude = {
        let c = m365backup_m365::GraphClient::new(
            m365backup_m365::Endpoints {
                authority: sim.base_url().into(),
                graph: sim.graph_url(),
            },
            m365backup_m365::Credentials::Password {
                tenant: sim.tenant().domain.clone(),
                client_id: sim.tenant().app.client_id.to_string(),
                client_secret: None,
                username: format!("backup1@{}", sim.tenant().domain),
                password: Secret::new(generated_password("backup1", SEED)),
            },
        )
        .unwrap();
        c
    };
    let mut blocked_for = Duration::ZERO;
    for _ in 0..30 {
        if let Err(m365backup_m365::M365Error::Throttled { retry_after, .. }) =
            rude.get_once("/organization").await
        {
            blocked_for = retry_after;
            if blocked_for >= Duration::from_secs(30) {
                break;
            }
        }
    }
    assert!(blocked_for >= Duration::from_secs(30), "{blocked_for:?}");

    let t0 = Instant::now();
    let report = run(pool(
        &sim,
        vec![backup_account(&sim, 1), backup_account(&sim, 2)],
    ))
    .await;
    let elapsed = t0.elapsed();
    assert_eq!(report.files as usize, expected_files(&sim).len());
    assert!(
        elapsed < blocked_for,
        "the other account did the work: {elapsed:?} < {blocked_for:?}"
    );
    let (a, b) = (&report.accounts[0], &report.accounts[1]);
    // Its first requests (at most its in-flight bound, sent together) met the block; nothing
    // was sent to it after the 429.
    assert!(
        a.requests <= 2 && a.throttled_429 == a.requests,
        "nothing sent while paused: {a:?}"
    );
    // Its requests met the block (and, as SharePoint does, each extended it by 4 s): the pause
    // is the last answer's Retry-After, and nothing more was sent to the account during it.
    assert!(
        a.paused >= blocked_for
            && a.paused <= blocked_for + Duration::from_secs(4 * a.requests + 1),
        "paused as told: {a:?} ({blocked_for:?})"
    );
    assert!(b.requests > 20, "the other account carried on: {b:?}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apps_budget_is_a_shared_ceiling() {
    // Eight accounts could send 8 × 50 units/s; the app may spend 30.
    const APP_RATE: f64 = 30.0;
    let throttling = ThrottleConfig {
        user_rate: 50.0,
        user_burst: 50.0,
        app_rate: APP_RATE,
        app_burst: 2.0 * APP_RATE,
        ..ThrottleConfig::default()
    };
    let sim = sim(throttling, 12).await;
    let pool = pool(&sim, (1..=8).map(|i| backup_account(&sim, i)).collect());
    // About 200 units at 30/s: without the ceiling the app's block never ends.
    let report = tokio::time::timeout(Duration::from_secs(60), run(pool.clone()))
        .await
        .expect("the run ends");
    assert_eq!(report.files as usize, expected_files(&sim).len());
    let stats = sim.sim.app_stats();
    let (requests, throttled) = (stats.requests, stats.throttled429 + stats.throttled503);
    assert!(requests > 150, "{requests}");
    // Without the ceiling, the accounts' paces add up far beyond the app's budget and every
    // request sent into the app's block extends it.
    assert!(
        throttled <= 4,
        "{throttled} throttled of {requests}: {:?}",
        report.accounts
    );
    let learned = pool.app_budget().expect("the app's budget was learned");
    assert!(
        (learned - APP_RATE).abs() < 0.25 * APP_RATE,
        "learned {learned} units/s"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_password_is_quarantined_and_the_run_completes() {
    let sim = sim(
        ThrottleConfig {
            enabled: false,
            ..ThrottleConfig::default()
        },
        3,
    )
    .await;
    let mut bad = backup_account(&sim, 3);
    bad.connection = connection(&sim, &bad.login, "wrong");
    let pool = pool(&sim, vec![bad, backup_account(&sim, 4)]);
    assert_eq!(pool.sign_in_all().await, 1);
    let report = run(pool.clone()).await;
    assert_eq!(report.files as usize, expected_files(&sim).len());
    let reason = report.accounts[0].quarantined.clone().expect("quarantined");
    assert!(reason.contains("AADSTS50126"), "{reason}");
    assert_eq!(report.accounts[0].requests, 0);
    let metrics = render_metrics(&[pool]);
    assert!(
        metrics.contains(&format!(
            "m365backup_account_quarantined{{organization=\"org\",account=\"backup3@{}\"}} 1",
            sim.tenant().domain
        )),
        "{metrics}"
    );

    // With every account quarantined, the run fails with the reasons instead of hanging.
    let mut only_bad = backup_account(&sim, 5);
    only_bad.connection = connection(&sim, &only_bad.login, "wrong");
    let err = probe(
        self::pool(&sim, vec![only_bad]),
        ProbeOptions::default(),
        Arc::new(ProbeProgress::default()),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("quarantined"), "{err}");
    sim.shutdown().await;
}

/// A tenant whose backup accounts' group administers everything but `site1` and user2's
/// OneDrive.
async fn restricted_sim(throttling: ThrottleConfig) -> RunningSim {
    let tenant = TenantSpec {
        seed: SEED,
        users: 4,
        backup_accounts: 4,
        sites: 2,
        files_per_drive: 3,
        max_file_size: 64 << 10,
        site_admins: Some(vec![AdminGrant {
            except_sites: vec!["site1".into()],
            except_onedrives: vec![format!("user2@contoso{SEED}.onmicrosoft.com")],
            ..AdminGrant::everywhere("Backup Accounts")
        }]),
        ..TenantSpec::default()
    };
    support::start_sim(tenant, throttling).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_no_backup_account_may_read_go_to_the_organizations_credentials() {
    let sim = restricted_sim(ThrottleConfig {
        enabled: false,
        ..ThrottleConfig::default()
    })
    .await;
    let pool = pool(&sim, (1..=3).map(|i| backup_account(&sim, i)).collect());
    let report = run(pool.clone()).await;
    assert_eq!(
        report.files as usize,
        expected_files(&sim).len(),
        "every file"
    );
    assert_eq!(report.verified, report.files);
    let t = sim.tenant();
    let site1 = &t.sites.iter().find(|s| s.name == "site1").unwrap().id;
    let user2 = t
        .user(&format!("user2@contoso{SEED}.onmicrosoft.com"))
        .unwrap()
        .1;
    assert_eq!(
        report.access.via_organization,
        {
            let mut v = vec![
                format!("sites/{site1}"),
                format!("sites/{}", user2.personal_site.id),
            ];
            v.sort();
            v
        },
        "{:?}",
        report.access
    );
    assert!(report.access.unreadable.is_empty());
    let backup: Vec<_> = report.accounts.iter().filter(|a| !a.organization).collect();
    assert!(
        backup
            .iter()
            .all(|a| a.quarantined.is_none() && a.throttled_429 == 0 && a.requests > 3),
        "403s are neither throttles nor broken accounts: {backup:?}"
    );
    // The organization's credentials read only what nobody else could (and listed the sites).
    let own = report.accounts.iter().find(|a| a.organization).unwrap();
    let files_there: usize = [site1.as_str(), user2.personal_site.id.as_str()]
        .iter()
        .map(|s| {
            let site = t.site(s).unwrap();
            t.site_drives(site)
                .iter()
                .map(|&d| {
                    t.drives[d]
                        .state
                        .read()
                        .unwrap()
                        .items
                        .iter()
                        .filter(|i| i.file.is_some() && !i.deleted)
                        .count()
                })
                .sum::<usize>()
        })
        .sum();
    assert!(
        own.requests as usize <= files_there + 10,
        "{} requests for {files_there} files",
        own.requests
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_no_credential_may_read_are_reported() {
    let sim = restricted_sim(ThrottleConfig {
        enabled: false,
        ..ThrottleConfig::default()
    })
    .await;
    // The organization signs in as user3 (delegated): it reads its own OneDrive and site
    // memberships, not site1 or user2's OneDrive unless it belongs there.
    let own = connection(
        &sim,
        &format!("user3@contoso{SEED}.onmicrosoft.com"),
        &generated_password("user3", SEED),
    );
    let pool = build_pool(
        "org",
        (1..=2).map(|i| backup_account(&sim, i)).collect(),
        own,
        PoolConfig::default(),
    )
    .unwrap();
    let report = run(pool).await;
    let t = sim.tenant();
    let (u3, _) = t
        .user(&format!("user3@contoso{SEED}.onmicrosoft.com"))
        .unwrap();
    let user2_drive = &t.drives[t
        .user(&format!("user2@contoso{SEED}.onmicrosoft.com"))
        .unwrap()
        .1
        .drive];
    assert!(
        report
            .access
            .unreadable
            .iter()
            .any(|s| s.contains(&user2_drive.id) || s.starts_with("users/")),
        "user2's OneDrive is reported: {:?}",
        report.access
    );
    // Without application permissions drives are found through the backup accounts' site
    // search and every user's OneDrive: what they, or user3's own OneDrive, can read.
    let (b1, _) = t
        .user(&format!("backup1@contoso{SEED}.onmicrosoft.com"))
        .unwrap();
    let readable_files = expected_files(&sim)
        .iter()
        .filter(|(d, _, _)| {
            let drive = t.drive(d).unwrap();
            t.can_read_drive(b1, drive)
                || (matches!(drive.owner, m365sim::tenant::DriveOwner::User(_))
                    && t.can_read_drive(u3, drive))
        })
        .count();
    assert_eq!(report.files as usize, readable_files, "{:?}", report.access);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_answer_says_where_to_start_again() {
    let sim = sim(
        ThrottleConfig {
            enabled: false,
            ..ThrottleConfig::default()
        },
        2,
    )
    .await;
    let pool = pool(&sim, vec![backup_account(&sim, 1)]);
    let drive = sim.tenant().drives[0].id.clone();
    #[derive(serde::Deserialize)]
    struct Last {
        #[serde(rename = "@odata.deltaLink")]
        delta_link: String,
    }
    let last: Last = pool
        .get_json(&format!("/drives/{drive}/root/delta?$top=999"))
        .await
        .unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/_sim/drives/{drive}/resync", sim.base_url()))
        .header("x-sim-secret", "sim-control")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    match pool.get_json::<serde_json::Value>(&last.delta_link).await {
        Err(PoolError::M365(M365Error::ResyncRequired { code, location })) => {
            assert_eq!(code, "resyncRequired");
            let fresh: serde_json::Value = pool.get_json(&location.unwrap()).await.unwrap();
            assert!(!fresh["value"].as_array().unwrap().is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(report_throttles(&pool), 0);
    sim.shutdown().await;
}

fn report_throttles(pool: &AccountPool) -> u64 {
    pool.report()
        .iter()
        .map(|a| a.throttled_429 + a.throttled_503)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ratelimit_headers_the_apps_budget_is_learned_from_its_throttles() {
    // Realistic profile at 1/20 of Microsoft's windows: users 10 requests/s, the app 30 units/s
    // (a 3-s window of 90), and no RateLimit-* headers for the accounts' delegated calls.
    const APP_RATE: f64 = 30.0;
    let throttling = ThrottleConfig {
        app_units_per_minute: Some(APP_RATE * 60.0),
        ..ThrottleConfig::realistic(0.05)
    };
    let sim = sim(throttling, 40).await;
    let pool = pool(&sim, (1..=8).map(|i| backup_account(&sim, i)).collect());
    let report = tokio::time::timeout(Duration::from_secs(120), run(pool.clone()))
        .await
        .expect("the run ends");
    assert_eq!(report.files as usize, expected_files(&sim).len());
    let stats = sim.sim.app_stats();
    let (requests, throttled) = (stats.requests, stats.throttled429 + stats.throttled503);
    // A run of some 20 s is mostly learning (slow start, the first app throttles); the steady
    // state's share is the benchmark's (pool_scaling, realistic profile).
    assert!(
        throttled * 100 <= requests * 8,
        "{throttled} throttled of {requests}: {:?}",
        report.accounts
    );
    let learned = pool.app_budget().expect("the app's budget was learned");
    assert!(
        (learned - APP_RATE).abs() < 0.35 * APP_RATE,
        "learned {learned} units/s"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_throttles_pause_the_account_without_lowering_its_request_pace() {
    // Requests plentiful, downloads 0.25 MiB/s per user: the download service throttles, Graph
    // does not.
    let throttling = ThrottleConfig {
        user_rate: 1_000.0,
        user_burst: 1_000.0,
        app_rate: 10_000.0,
        app_burst: 10_000.0,
        user_egress_bytes_per_hour: 0.25 * 1024.0 * 1024.0 * 3600.0,
        ..ThrottleConfig::default()
    };
    let sim = sim(throttling, 8).await;
    let pool = pool(&sim, vec![backup_account(&sim, 1)]);
    let report = tokio::time::timeout(Duration::from_secs(120), run(pool.clone()))
        .await
        .expect("the run ends");
    assert_eq!(report.files as usize, expected_files(&sim).len());
    let account = report
        .accounts
        .iter()
        .find(|a| !a.organization)
        .expect("the backup account");
    assert!(account.throttled_429 > 0, "egress bound: {account:?}");
    assert!(
        account.rate >= PoolConfig::default().initial_rate,
        "the request pace is not the egress budget: {account:?}"
    );
    sim.shutdown().await;
}

/// Items a full round of every drive lists now, page by page as Graph serves them (an
/// ancestor may come once as a parent and again for its own change); and how many of them
/// are tombstones.
fn full_round_items(sim: &RunningSim) -> (u64, u64) {
    sim.tenant()
        .drives
        .iter()
        .map(|d| support::full_round_items(sim, &d.id))
        .fold((0, 0), |(items, tombs), (i, t)| (items + i, tombs + t))
}

/// Runs the probe; once its first delta page is in, `between_pages` changes the tenant (the
/// next page is still on its way: the simulator answers 150 ms late), then requests are fast.
async fn probe_changing_midway(
    sim: &RunningSim,
    between_pages: impl FnOnce(&RunningSim),
) -> m365backup_engine::probe::ProbeReport {
    let progress = Arc::new(ProbeProgress::default());
    let running = tokio::spawn(probe(
        pool(sim, vec![backup_account(sim, 1)]),
        ProbeOptions {
            workers: 16,
            keep_file_list: true,
        },
        progress.clone(),
    ));
    while progress.items.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        assert!(!running.is_finished(), "the probe ended before listing");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    between_pages(sim);
    sim.control().set_throttling(|t| t.latency_ms = 0);
    running.await.unwrap().unwrap()
}

/// The probe read every live file of the tenant once, with its current bytes and a verified
/// quickXorHash.
fn assert_every_file_once(sim: &RunningSim, report: &m365backup_engine::probe::ProbeReport) {
    let expected = expected_files(sim);
    assert_eq!(report.files as usize, expected.len(), "every file, once");
    assert_eq!(report.verified, report.files, "every quickXorHash checked");
    assert!(
        report.hash_mismatches.is_empty(),
        "{:?}",
        report.hash_mismatches
    );
    assert_eq!(report.vanished, 0, "nothing deleted was fetched");
    let got: Vec<(String, String, String)> = report
        .fetched
        .iter()
        .map(|f| (f.drive_id.clone(), f.item_id.clone(), f.sha256.clone()))
        .collect();
    let unique: HashSet<_> = got.iter().cloned().collect();
    assert_eq!(unique.len(), got.len(), "no file fetched twice");
    assert_eq!(
        unique,
        expected.into_iter().collect::<HashSet<_>>(),
        "every live file, with its current bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstones_and_repeats_of_a_first_enumeration_are_folded() {
    let sim = support::paged_sim(SEED).await;
    // Before the first enumeration: files deleted, and a folder with its children.
    let drive_ids: Vec<String> = sim.tenant().drives.iter().map(|d| d.id.clone()).collect();
    let deleted_files: Vec<(String, String)> = drive_ids
        .iter()
        .flat_map(|d| {
            support::delete_some(&sim, d)
                .into_iter()
                .map(move |f| (d.clone(), f))
        })
        .collect();
    assert!(deleted_files.len() >= 2 * 4, "{deleted_files:?}");
    let (listed, tombstones) = full_round_items(&sim);
    assert!(
        tombstones as usize > deleted_files.len(),
        "the first enumeration lists the deleted files and folders: {tombstones}"
    );
    // Between two pages, the first file of each drive changes: it comes again later in the
    // round, with its new hash (the last one wins).
    let report = probe_changing_midway(&sim, |sim| {
        for d in &sim.tenant().drives {
            let first = support::first_file(sim, &d.id);
            sim.drive(&d.id)
                .unwrap()
                .modify_file(&first, 9_999)
                .unwrap();
        }
    })
    .await;
    assert_every_file_once(&sim, &report);
    assert!(
        report.items > listed,
        "a changed file came twice in the round: {} items listed, {listed} in a still round",
        report.items
    );
    let fetched: HashSet<(String, String)> = report
        .fetched
        .iter()
        .map(|f| (f.drive_id.clone(), f.item_id.clone()))
        .collect();
    assert!(deleted_files.iter().all(|f| !fetched.contains(f)));
    assert!(
        report.fetched.iter().any(|f| f.size == 9_999),
        "the new content"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_in_the_middle_of_a_round_still_reads_every_file_once() {
    let sim = support::paged_sim(SEED).await;
    let (listed, _) = full_round_items(&sim);
    // Between two pages, Microsoft forgets every delta token: the next page answers 410.
    let report = probe_changing_midway(&sim, |sim| {
        for d in &sim.tenant().drives {
            sim.drive(&d.id).unwrap().force_resync();
        }
    })
    .await;
    assert_every_file_once(&sim, &report);
    assert!(
        report.items > listed,
        "the round started again: {} items listed, {listed} in one round",
        report.items
    );
    assert_eq!(report_throttles_of(&report), 0, "a 410 is not a throttle");
    sim.shutdown().await;
}

fn report_throttles_of(report: &m365backup_engine::probe::ProbeReport) -> u64 {
    report
        .accounts
        .iter()
        .map(|a| a.throttled_429 + a.throttled_503)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_is_read_in_ranges_spread_over_the_accounts_egress() {
    // One 40-MiB file; each user's egress window (2 s) holds 16 MiB; requests plentiful. Asked
    // for whole, the file went through one account's empty window in one piece; in ranges, an
    // account told to wait hands the rest of the file to the other.
    const MIB: u64 = 1 << 20;
    let window_secs = 2.0;
    let throttling = ThrottleConfig {
        user_egress_bytes_per_hour: 16.0 * MIB as f64 * 3600.0 / window_secs,
        user_requests_per_5min: 1e9,
        app_units_per_minute: Some(1e9),
        app_units_per_day: Some(1e12),
        tenant_units_per_5min: Some(1e12),
        ..ThrottleConfig::realistic(window_secs / 3600.0)
    };
    let tenant = TenantSpec {
        seed: SEED,
        users: 1,
        backup_accounts: 2,
        sites: 0,
        m365_groups: 0,
        files_per_drive: 0,
        large_files_per_drive: 1,
        large_file_min_size: 40 * MIB,
        large_file_max_size: 40 * MIB,
        ..TenantSpec::default()
    };
    let sim = support::start_sim(tenant, throttling).await;
    let pool = pool(&sim, vec![backup_account(&sim, 1), backup_account(&sim, 2)]);
    let files = expected_files(&sim);
    let large: Vec<_> = files
        .iter()
        .filter(|(d, i, _)| {
            sim.tenant()
                .drive(d)
                .and_then(|d| d.state.read().unwrap().get(i).and_then(|i| i.file))
                .is_some_and(|f| f.size == 40 * MIB)
        })
        .collect();
    let (drive, item, sha) = large.first().expect("the large file");
    let url = format!("/drives/{drive}/items/{item}/content");
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    let read = tokio::time::timeout(
        Duration::from_secs(60),
        pool.download(&url, |chunk| sha2::Digest::update(&mut hasher, chunk)),
    )
    .await
    .expect("the download ends")
    .unwrap();
    assert_eq!(read, 40 * MIB);
    assert_eq!(
        &hex(&sha2::Digest::finalize(hasher)),
        sha,
        "the right bytes, in order"
    );
    let report = pool.report();
    let accounts: Vec<_> = report.iter().filter(|a| !a.organization).collect();
    assert!(
        accounts.iter().all(|a| a.bytes > 0 && a.bytes < 40 * MIB),
        "the file was spread over both accounts: {accounts:?}"
    );
    assert!(
        accounts.iter().any(|a| a.throttled_429 > 0),
        "egress bound: {accounts:?}"
    );
    sim.shutdown().await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_signs_no_one_in_again() {
    let sim = sim(
        ThrottleConfig {
            enabled: false,
            ..ThrottleConfig::default()
        },
        2,
    )
    .await;
    let accounts = || (1..=4).map(|i| backup_account(&sim, i)).collect::<Vec<_>>();
    let issued = || sim.sim().tokens.issued();
    let before = issued();
    // Each run builds its pool anew, as a job run does.
    let first = pool(&sim, accounts());
    assert_eq!(first.sign_in_all().await, 4);
    run(first).await;
    let signed_in = issued() - before;
    assert_eq!(signed_in, 5, "each backup account and the app once");
    let second = pool(&sim, accounts());
    assert_eq!(second.sign_in_all().await, 4);
    let report = run(second).await;
    assert_eq!(report.files as usize, expected_files(&sim).len());
    assert_eq!(
        issued() - before,
        signed_in,
        "the second run reuses the first run's tokens"
    );
    sim.shutdown().await;
}
