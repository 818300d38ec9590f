//! Restores to Microsoft 365 end to end: the real server over HTTPS, backups of an in-process
//! simulated tenant, then `restoretoOriginallocation`, `restoreTo` and `copyTo` — the tenant's
//! files compared byte for byte (and time for time) with what it held, under throttling and
//! faults, with their sharing and version history, hostile requests and hostile names in a
//! backup refused with nothing written, and events a stopped server left running ended.

use crate::common;

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, TimeZone, Utc};
use common::jobs::{add_job, add_organization, post, run_job};
use common::{json, start_sim, Backend, TestServer};
use m365sim::{Access, DriveHandle, RunningSim};
use serde_json::{json, Value};

on_both_stores! {
    idle_sessions_stop_but_not_while_their_work_runs;
    events_left_running_end_as_interrupted_at_start_up;
    item_events_written_at_once_keep_their_order;
}

fn tenant(seed: u64) -> m365sim::TenantSpec {
    m365sim::TenantSpec {
        seed,
        users: 3,
        sites: 1,
        libraries_per_site: 1,
        m365_groups: 0,
        files_per_drive: 0,
        folders_per_drive: 0,
        max_file_size: 64 * 1024,
        max_versions: 1,
        ..Default::default()
    }
}

struct Setup {
    sim: RunningSim,
    s: TestServer,
    token: String,
    org: String,
    job: String,
}

async fn setup(seed: u64, version_policy: &str) -> Setup {
    setup_with(seed, version_policy, |_| {}).await
}

async fn setup_with(
    seed: u64,
    version_policy: &str,
    adjust: impl FnOnce(&mut m365backup::config::Settings),
) -> Setup {
    setup_on(Backend::Sqlite, seed, version_policy, adjust).await
}

async fn setup_on(
    backend: Backend,
    seed: u64,
    version_policy: &str,
    adjust: impl FnOnce(&mut m365backup::config::Settings),
) -> Setup {
    let sim = start_sim(tenant(seed)).await;
    let s = TestServer::start_with(backend, adjust).await;
    let token = s.admin_token().await;
    let org = add_organization(&s, &token, &sim).await;
    let job = add_job(
        &s,
        &token,
        &org,
        json!({"name": "Everything", "versionPolicy": version_policy}),
    )
    .await;
    Setup {
        sim,
        s,
        token,
        org,
        job,
    }
}

impl Setup {
    fn upn(&self, i: usize) -> String {
        self.sim.tenant().users[i].user_principal_name.clone()
    }

    fn drive(&self, i: usize) -> DriveHandle {
        self.sim.onedrive(&self.upn(i)).unwrap()
    }

    async fn backup(&self) {
        let session = run_job(&self.s, &self.token, &self.job).await;
        assert_eq!(session["status"], "Success", "{session}");
    }

    /// A session at the latest restore point; its id.
    async fn explore(&self, kind: &str) -> String {
        let r = post(
            &self.s,
            &format!("/v5/Organizations/{}/Action", self.org),
            &self.token,
            &json!({"explore": {"type": kind}}),
        )
        .await;
        assert_eq!(r.status(), 201);
        json(r).await["id"].as_str().unwrap().to_owned()
    }

    /// The id a SharePoint session gives the site at `url`.
    async fn site_id(&self, session: &str, url: &str) -> String {
        let sites = json(
            self.s
                .get(
                    &format!("/v5/RestoreSessions/{session}/Organization/Sites"),
                    &self.token,
                )
                .await,
        )
        .await;
        sites["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["url"] == url)
            .unwrap_or_else(|| panic!("{sites}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// `POST …/Action` under a session's organization: status and JSON (or text) answer.
    async fn act(&self, session: &str, rest: &str, body: &Value) -> (u16, Value) {
        let r = post(
            &self.s,
            &format!("/v5/RestoreSessions/{session}/Organization/{rest}/Action"),
            &self.token,
            body,
        )
        .await;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Every event of the session.
    async fn all_events(&self, session: &str) -> Vec<Value> {
        let page = json(
            self.s
                .get(
                    &format!("/v5/RestoreSessions/{session}/Events?limit=10000"),
                    &self.token,
                )
                .await,
        )
        .await;
        page["results"].as_array().unwrap().clone()
    }

    /// The session's events of whole restores (their messages count the items); each item
    /// restored has an event of its own besides.
    async fn events(&self, session: &str) -> Vec<Value> {
        self.all_events(session)
            .await
            .into_iter()
            .filter(|e| e["message"].as_str().unwrap_or("").contains(" items: "))
            .collect()
    }

    /// The events of single items, `itemName → [status, …]` in order.
    async fn item_events(&self, session: &str) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for e in self.all_events(session).await {
            if !e["message"].as_str().unwrap_or("").contains(" items: ") {
                out.entry(e["itemName"].as_str().unwrap().to_owned())
                    .or_default()
                    .push(e["status"].as_str().unwrap().to_owned());
            }
        }
        out
    }

    async fn session(&self, session: &str) -> Value {
        json(
            self.s
                .get(&format!("/v5/RestoreSessions/{session}"), &self.token)
                .await,
        )
        .await
    }
}

/// Path → (SHA-256, modified) of every file of a drive, and every folder path.
fn snapshot(d: &DriveHandle) -> BTreeMap<String, (Option<String>, DateTime<Utc>)> {
    d.tree()
        .into_iter()
        .map(|e| (e.path.clone(), (e.sha256(), e.modified)))
        .collect()
}

fn old(days: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2021, 3, 4, 5, 6, 7).unwrap() + chrono::Duration::days(days)
}

fn count(stats: &Value, name: &str) -> u64 {
    stats[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no {name} in {stats}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_tree_comes_back_kept_and_overwritten_copies_unchanged_skipped() {
    let t = setup(301, "Latest").await;
    let d = t.drive(0);
    let projects = d.add_folder(None, "Projects").unwrap();
    let deep = d.add_folder(Some(&projects), "Deep").unwrap();
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    let files = [
        d.add_file_bytes(Some(&projects), "plan #1.txt", b"the plan")
            .unwrap(),
        d.add_file_bytes(Some(&deep), "Übersicht 100%.txt", b"deep inside")
            .unwrap(),
        d.add_file_bytes(Some(&deep), "large.bin", &big).unwrap(),
        d.add_file_bytes(Some(&deep), "empty.txt", b"").unwrap(),
    ];
    for (i, f) in files.iter().enumerate() {
        d.set_times(f, Some(old(i as i64)), Some(old(i as i64 + 10)))
            .unwrap();
    }
    d.set_times(&deep, Some(old(1)), Some(old(2))).unwrap();
    d.add_file_bytes(None, "notes.txt", b"unchanged").unwrap();
    let changed = d
        .add_file_bytes(None, "changed.txt", b"as backed up")
        .unwrap();
    t.backup().await;
    let before = snapshot(&d);

    d.delete(&projects).unwrap();
    d.modify_file_bytes(&changed, b"changed since").unwrap();
    let session = t.explore("veod").await;
    let drive = d.id().to_owned();

    // The whole OneDrive, keeping changed documents: the tree is back, the changed file keeps
    // its content and gets a dated copy beside it, the unchanged one is skipped.
    let (status, stats) = t
        .act(
            &session,
            &format!("OneDrives/{drive}"),
            &json!({"restoretoOriginallocation": {"documentAction": "keep"}}),
        )
        .await;
    assert_eq!(status, 200, "{stats}");
    let after = snapshot(&d);
    for path in [
        "/Projects",
        "/Projects/Deep",
        "/Projects/plan #1.txt",
        "/Projects/Deep/Übersicht 100%.txt",
        "/Projects/Deep/large.bin",
        "/Projects/Deep/empty.txt",
    ] {
        let (hash, modified) = &after[path];
        assert_eq!(hash, &before[path].0, "{path}");
        if path.contains('.') {
            assert_eq!(modified, &before[path].1, "times of {path}");
        }
    }
    assert_eq!(after["/notes.txt"], before["/notes.txt"]);
    assert_eq!(
        d.content(&changed, None).unwrap().read_all().unwrap(),
        b"changed since"
    );
    let kept = format!(
        "/changed (restored {}).txt",
        Utc::now().date_naive().format("%Y-%m-%d")
    );
    assert_eq!(after[&kept].0, before["/changed.txt"].0, "{after:?}");
    // Two folders and four documents restored, the copy too; notes.txt unchanged.
    assert_eq!(count(&stats, "restoredItemsCount"), 7, "{stats}");
    assert_eq!(count(&stats, "skippedItemsByNoChangesCount"), 1, "{stats}");
    assert_eq!(count(&stats, "failedItemsCount"), 0, "{stats}");
    assert_eq!(count(&stats, "totalItemsCount"), 8, "{stats}");
    assert_eq!(stats["restoreIssues"], json!([]));
    assert!(d.find("/Projects 1").is_none(), "no duplicate folder");

    // The changed document alone, overwritten: its content is the backup's again.
    let (status, stats) = t
        .act(
            &session,
            &format!("OneDrives/{drive}/Documents/{changed}"),
            &json!({"restoretoOriginallocation": {"documentAction": "Overwrite", "documentVersion": "last"}}),
        )
        .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(count(&stats, "restoredItemsCount"), 1, "{stats}");
    assert_eq!(
        d.content(&changed, None).unwrap().read_all().unwrap(),
        b"as backed up"
    );

    // Again: everything is as backed up, nothing is written.
    let large = d.find("/Projects/Deep/large.bin").unwrap().id;
    let versions_before = d.versions(&large).unwrap().len();
    let (status, stats) = t
        .act(
            &session,
            &format!("OneDrives/{drive}"),
            &json!({"restoretoOriginallocation": null}),
        )
        .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(count(&stats, "restoredItemsCount"), 0, "{stats}");
    assert_eq!(count(&stats, "skippedItemsByNoChangesCount"), 8, "{stats}");
    assert_eq!(d.versions(&large).unwrap().len(), versions_before);

    // Events: one per restore, the session counts them; one per item besides.
    let events = t.events(&session).await;
    assert_eq!(events.len(), 3, "{events:?}");
    let items = t.item_events(&session).await;
    assert_eq!(
        items.get("Projects/Deep/large.bin").map(Vec::len),
        Some(2),
        "restored, then left alone: {items:?}"
    );
    assert!(
        items.values().flatten().all(|s| s == "Success"),
        "{items:?}"
    );
    assert!(events
        .iter()
        .all(|e| e["type"] == "Restore" && e["status"] == "Success"));
    let view = t.session(&session).await;
    assert_eq!(
        view["details"], "17 items processed (17 success, 0 failed)",
        "{view}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_go_to_another_onedrive_and_a_site_library_with_their_history() {
    let t = setup(302, "All").await;
    let d = t.drive(0);
    let folder = d.add_folder(None, "Reports").unwrap();
    let history = d
        .add_file_bytes(Some(&folder), "history.txt", b"version one")
        .unwrap();
    d.modify_file_bytes(&history, b"version two, longer")
        .unwrap();
    d.modify_file_bytes(&history, b"three").unwrap();
    d.add_file_bytes(Some(&folder), "other.txt", b"other")
        .unwrap();
    t.backup().await;
    let session = t.explore("veod").await;
    let drive = d.id().to_owned();

    // Into another user's OneDrive, under a folder, with every version in order.
    let (status, stats) = t
        .act(
            &session,
            &format!("OneDrives/{drive}/Folders/{folder}"),
            &json!({"copyTo": {"oneDrive": {"id": t.upn(1)}, "folder": "From Adele/2024", "documentVersion": "all"}}),
        )
        .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(count(&stats, "restoredItemsCount"), 3, "{stats}");
    let other = t.drive(1);
    let copy = other
        .find("/From Adele/2024/Reports/history.txt")
        .expect("copied");
    let contents: Vec<Vec<u8>> = other
        .versions(&copy.id)
        .unwrap()
        .into_iter()
        .rev()
        .map(|v| v.content.read_all().unwrap())
        .collect();
    assert_eq!(
        contents,
        [
            b"version one".to_vec(),
            b"version two, longer".to_vec(),
            b"three".to_vec()
        ]
    );
    assert!(other.find("/From Adele/2024/Reports/other.txt").is_some());

    // Into a site's library (the site named by our id), a document alone.
    let site = &t.sim.tenant().sites[0];
    let mut parts = site.id.split(',');
    let our_id = format!("{}{}", parts.nth(1).unwrap(), parts.next().unwrap());
    let library = t
        .sim
        .drive(&t.sim.tenant().drives[site.drives[0]].id)
        .unwrap();
    let (status, stats) = t
        .act(
            &session,
            &format!("OneDrives/{drive}/Documents/{history}"),
            &json!({"copyTo": {"site": {"id": our_id}, "folder": "Copies"}}),
        )
        .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(count(&stats, "restoredItemsCount"), 1, "{stats}");
    let copied = library.find("/Copies/history.txt").expect("in the library");
    assert_eq!(
        library
            .content(&copied.id, None)
            .unwrap()
            .read_all()
            .unwrap(),
        b"three"
    );
    assert_eq!(library.versions(&copied.id).unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_files_under_throttling_all_arrive_once() {
    // Scaled down from 2,000 so the run stays short; the budget is scaled down with it.
    const FILES: usize = 150;
    // The pool starts faster than the tenant allows, so it meets the app's budget and learns.
    let t = setup_with(303, "Latest", |s| {
        s.engine.pool.initial_rate = 150.0;
        s.engine.pool.max_in_flight = 16;
    })
    .await;
    let d = t.drive(0);
    let folder = d.add_folder(None, "Many").unwrap();
    for i in 0..FILES {
        d.add_file_bytes(
            Some(&folder),
            &format!("f{i:04}.txt"),
            format!("file {i}").as_bytes(),
        )
        .unwrap();
    }
    t.backup().await;
    let session = t.explore("veod").await;
    d.delete(&folder).unwrap();
    t.sim.control().set_throttling(|c| {
        c.enabled = true;
        // Below the pace the pool starts at: the app's budget pushes back.
        c.app_rate = 15.0;
        c.app_burst = 15.0;
    });
    let before = t.sim.sim().app_stats();
    let started = Instant::now();
    let (status, stats) = t
        .act(
            &session,
            &format!("OneDrives/{}/Folders/{folder}", d.id()),
            &json!({"restoretoOriginallocation": {}}),
        )
        .await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{stats}");
    assert_eq!(
        count(&stats, "restoredItemsCount"),
        FILES as u64 + 1,
        "{stats}"
    );
    assert_eq!(count(&stats, "failedItemsCount"), 0, "{stats}");
    let after = t.sim.sim().app_stats();
    let throttled = after.throttled429 - before.throttled429;
    let requests = after.requests - before.requests;
    let tree = d.tree();
    let restored: Vec<_> = tree
        .iter()
        .filter(|e| e.path.starts_with("/Many/"))
        .collect();
    assert_eq!(restored.len(), FILES, "none lost, none duplicated");
    for e in &restored {
        let i: usize = e.name[1..5].parse().unwrap();
        assert_eq!(
            e.content.as_ref().unwrap().read_all().unwrap(),
            format!("file {i}").as_bytes()
        );
    }
    println!(
        "{FILES} files restored in {took:?}: {requests} Graph requests, {throttled} answered 429 ({:.1} %)",
        throttled as f64 * 100.0 / requests.max(1) as f64
    );
    // The app's budget binds (its `RateLimit-*` headers let the pool hold it, 429s or not):
    // what was spent stays within what the tenant allowed over the run.
    let units = (after.units - before.units) / took.as_secs_f64();
    assert!(
        units <= 15.0 * 1.15 + 15.0 / took.as_secs_f64(),
        "{units} units/s"
    );
    assert!(
        units >= 15.0 * 0.5,
        "the restore used the budget: {units} units/s"
    );
}

/// Issue 14: 2,000 small files written back by one account whose own budget is tight. Users
/// get no `RateLimit-*` hints, so the pool can only learn the budget from 429s (and 503s): it
/// meets them, every file arrives exactly once with its content, and the account never sent a
/// request while a `Retry-After` it had been told was still pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_files_under_user_throttling_honour_retry_after() {
    const FOLDERS: usize = 10;
    const PER_FOLDER: usize = 200;
    // The user's budget, units/s (a file costs 5: a lookup 1, the upload 2, its times 2): well
    // below what the restore can send even on a loaded machine, so throttles are certain.
    const USER_RATE: f64 = 300.0;
    // At most this many requests in flight per account: a request the simulator sees during
    // a pending Retry-After was either already in flight when the throttled answer reached the
    // pool (at most IN_FLIGHT − 1 per throttle), or sent too early (none allowed).
    const IN_FLIGHT: u64 = 2;
    let t = setup_with(306, "Latest", |s| {
        s.engine.pool.initial_rate = 2.0 * USER_RATE;
        s.engine.pool.max_in_flight = IN_FLIGHT as usize;
    })
    .await;
    let setup = Instant::now();
    let d = t.drive(0);
    let top = d.add_folder(None, "Many").unwrap();
    for f in 0..FOLDERS {
        let folder = d.add_folder(Some(&top), &format!("d{f:02}")).unwrap();
        for i in 0..PER_FOLDER {
            d.add_file_bytes(
                Some(&folder),
                &format!("f{i:04}.txt"),
                format!("folder {f} file {i} {}", "x".repeat(i % 97)).as_bytes(),
            )
            .unwrap();
        }
    }
    t.backup().await;
    let before: BTreeMap<_, _> = snapshot(&d)
        .into_iter()
        .filter(|(path, _)| path.starts_with("/Many"))
        .map(|(path, (hash, _))| (path, hash))
        .collect();
    assert_eq!(before.len(), 1 + FOLDERS + FOLDERS * PER_FOLDER);
    let session = t.explore("veod").await;
    d.delete(&top).unwrap();
    println!("backed up in {:?}", setup.elapsed());

    let upn = t.upn(0);
    let password = t.sim.tenant().users[0].password.clone();
    t.sim.control().set_throttling(|c| {
        c.enabled = true;
        c.profile = m365sim::throttle::Profile::Fast;
        c.user_rate = USER_RATE;
        // A small bucket: bursts above the rate are refused.
        c.user_burst = USER_RATE / 4.0;
        // The app's budget never binds: the throttles are the user's, without hints.
        c.app_rate = 100_000.0;
        c.app_burst = 100_000.0;
        c.fraction_503 = 0.2;
    });
    let user_before = t.sim.sim().user_stats(&upn);
    let started = Instant::now();
    let (status, stats) = t
        .act(
            &session,
            &format!("OneDrives/{}/Folders/{top}", d.id()),
            &json!({"restoretoOriginallocation": {"userName": upn, "userPassword": password}}),
        )
        .await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{stats}");
    let files = (FOLDERS * PER_FOLDER) as u64;
    assert_eq!(count(&stats, "failedItemsCount"), 0, "{stats}");
    assert_eq!(
        count(&stats, "restoredItemsCount"),
        1 + FOLDERS as u64 + files,
        "{stats}"
    );

    // Every file and folder exactly once, with the content the tenant held.
    let after: BTreeMap<_, _> = snapshot(&d)
        .into_iter()
        .filter(|(path, _)| path.starts_with("/Many"))
        .map(|(path, (hash, _))| (path, hash))
        .collect();
    let lost: Vec<_> = before.keys().filter(|p| !after.contains_key(*p)).collect();
    let extra: Vec<_> = after.keys().filter(|p| !before.contains_key(*p)).collect();
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert!(extra.is_empty(), "duplicated or unexpected: {extra:?}");
    for (path, hash) in &before {
        assert_eq!(&after[path], hash, "content of {path}");
    }

    let user = t.sim.sim().user_stats(&upn);
    let requests = user.requests - user_before.requests;
    let throttled = (user.throttled429 - user_before.throttled429)
        + (user.throttled503 - user_before.throttled503);
    let early = user.early - user_before.early;
    println!(
        "{files} files restored in {took:?}: {requests} requests by {upn}, {throttled} throttled \
         ({} × 429, {} × 503; {:.1} %), {early} sent while a Retry-After was pending",
        user.throttled429 - user_before.throttled429,
        user.throttled503 - user_before.throttled503,
        throttled as f64 * 100.0 / requests.max(1) as f64
    );
    assert!(
        user.throttled429 > user_before.throttled429,
        "the restore met the user's budget"
    );
    // Each throttle that was not itself an early request opened a wait.
    let waits = throttled - early;
    assert!(
        early <= (IN_FLIGHT - 1) * waits,
        "{early} requests arrived during {waits} waits: some were sent while told to wait"
    );
    // And the budget was used, not avoided: at least half of it over the run.
    let units = (user.units - user_before.units) / took.as_secs_f64();
    assert!(units >= 0.5 * USER_RATE, "{units} units/s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_counted_and_named_and_the_rest_restored() {
    let t = setup(304, "Latest").await;
    let d = t.drive(0);
    let work = d.add_folder(None, "Work").unwrap();
    let long_name = format!("{}.txt", "n".repeat(290));
    d.add_file_bytes(Some(&work), &long_name, b"long").unwrap();
    d.add_file_bytes(Some(&work), "a.txt", b"a").unwrap();
    let big: Vec<u8> = (0..7_000_000u32).map(|i| (i % 253) as u8).collect();
    d.add_file_bytes(Some(&work), "big.bin", &big).unwrap();
    t.backup().await;
    let session = t.explore("veod").await;
    let drive = d.id().to_owned();

    // A copy under a long folder: one document's path would pass 400 characters, and the big
    // file's first upload session expires midway (a new one finishes it).
    let other = t.drive(1);
    other.expire_uploads_of("big.bin", 3 * 327_680, Some(1));
    let deep = "x".repeat(120);
    let (status, stats) = t
        .act(
            &session,
            &format!("OneDrives/{drive}/Folders/{work}"),
            &json!({"copyTo": {"oneDrive": {"id": t.upn(1)}, "folder": deep}}),
        )
        .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(count(&stats, "failedItemsCount"), 1, "{stats}");
    assert_eq!(count(&stats, "restoredItemsCount"), 3, "{stats}");
    assert_eq!(
        stats["restoreIssues"][0]["itemName"],
        format!("Work/{long_name}")
    );
    let copied = other
        .find(&format!("/{deep}/Work/big.bin"))
        .expect("big.bin");
    assert_eq!(copied.content.unwrap().read_all().unwrap(), big);
    assert!(other.find(&format!("/{deep}/Work/a.txt")).is_some());

    // An account that may read but not write the OneDrive: every item fails, named.
    d.delete(&work).unwrap();
    let reader = t.upn(2);
    t.sim
        .control()
        .set_drive_access(&drive, &reader, Some(Access::Read))
        .unwrap();
    let password = t.sim.tenant().users[2].password.clone();
    let before = snapshot(&d);
    let (status, stats) = t
        .act(
            &session,
            &format!("OneDrives/{drive}/Folders/{work}"),
            &json!({"restoretoOriginallocation": {"userName": reader, "userPassword": password}}),
        )
        .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(count(&stats, "restoredItemsCount"), 0, "{stats}");
    assert!(count(&stats, "failedItemsCount") >= 1, "{stats}");
    assert!(
        stats["restoreIssues"][0]["message"]
            .as_str()
            .unwrap()
            .contains("access denied"),
        "{stats}"
    );
    assert_eq!(snapshot(&d), before, "nothing written");

    // The OneDrive's user is gone: every item fails, counted and named.
    t.sim.control().remove_user(&t.upn(0)).unwrap();
    let (status, stats) = t
        .act(
            &session,
            &format!("OneDrives/{drive}/Folders/{work}"),
            &json!({"restoretoOriginallocation": null}),
        )
        .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(count(&stats, "failedItemsCount"), 4, "{stats}");
    assert_eq!(count(&stats, "restoredItemsCount"), 0, "{stats}");
    let names: Vec<&str> = stats["restoreIssues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["itemName"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Work/a.txt"), "{names:?}");

    let events = t.events(&session).await;
    let statuses: Vec<&str> = events
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.len(), 3, "{events:?}");
    assert!(
        statuses.contains(&"Warning") && statuses.contains(&"Failed"),
        "{statuses:?}"
    );
    let warning = events.iter().find(|e| e["status"] == "Warning").unwrap();
    assert!(
        warning["message"].as_str().unwrap().contains(&long_name),
        "{warning}"
    );
    // The item that failed has an event of its own saying why.
    let items = t.item_events(&session).await;
    let long = items
        .iter()
        .find(|(name, _)| name.contains(&long_name))
        .map(|(_, statuses)| statuses.clone());
    assert_eq!(
        long.as_ref().and_then(|s| s.first()).map(String::as_str),
        Some("Failed"),
        "{items:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_refused_and_write_nothing() {
    let t = setup(305, "Latest").await;
    let d = t.drive(0);
    let folder = d.add_folder(None, "Docs").unwrap();
    let doc = d.add_file_bytes(Some(&folder), "doc.txt", b"doc").unwrap();
    let theirs = t
        .drive(1)
        .add_file_bytes(None, "theirs.txt", b"not yours")
        .unwrap();
    t.backup().await;
    d.delete(&folder).unwrap();
    let session = t.explore("veod").await;
    let drive = d.id().to_owned();
    let rest = format!("OneDrives/{drive}/Folders/{folder}");
    let trees = || (snapshot(&t.drive(0)), snapshot(&t.drive(1)));
    let before = trees();

    let refused = [
        json!({"restoretoOriginallocation": {"documentVersion": "newest"}}),
        json!({"restoretoOriginallocation": {"documentAction": "merge"}}),
        json!({"restoretoOriginallocation": {"userName": t.upn(1)}}),
        json!({"restoretoOriginallocation": {"folder": "x"}}),
        json!({"restoretoOriginallocation": "yes"}),
        json!({"copyTo": {"oneDrive": {"id": t.upn(1)}, "folder": "a/../../b"}}),
        json!({"copyTo": {"oneDrive": {"id": "nobody@nowhere.example"}}}),
        json!({"copyTo": {"site": {"id": "00000000-0000-0000-0000-000000000000"}}}),
        json!({"copyTo": {"folder": "x"}}),
        json!({"restoreEverywhere": {}}),
        json!({"copyTo": {"oneDrive": {"id": t.upn(1)}}, "save": null}),
    ];
    for body in &refused {
        let (status, answer) = t.act(&session, &rest, body).await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert!(answer["message"].as_str().is_some(), "{answer}");
    }
    // A document of another OneDrive named under this one: 404.
    let (status, _) = t
        .act(
            &session,
            &format!("OneDrives/{drive}/Documents/{theirs}"),
            &json!({"restoretoOriginallocation": null}),
        )
        .await;
    assert_eq!(status, 404);
    // A wrong password for the account named: 400, nothing written.
    let (status, answer) = t
        .act(
            &session,
            &rest,
            &json!({"restoretoOriginallocation": {"userName": t.upn(1), "userPassword": "wrong"}}),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    // A session that does not exist, and ids of another session's objects (a SharePoint
    // session's library and its document) named in this one: 404.
    let (status, answer) = t
        .act(
            "5c0ffee0-0000-4000-8000-000000000002",
            &rest,
            &json!({"restoretoOriginallocation": null}),
        )
        .await;
    assert_eq!(status, 404, "{answer}");
    let tenant = t.sim.tenant();
    let lib_id = tenant.drives[tenant.sites[0].drives[0]].id.clone();
    let lib_doc = t
        .sim
        .drive(&lib_id)
        .unwrap()
        .add_file_bytes(None, "library.txt", b"a library's")
        .unwrap();
    let sp_session = {
        t.backup().await;
        t.explore("vesp").await
    };
    let latest = t.explore("veod").await;
    for (session, rest, body) in [
        (
            &latest,
            format!("OneDrives/{lib_id}/Documents/{lib_doc}"),
            json!({"restoretoOriginallocation": null}),
        ),
        (
            &latest,
            format!("OneDrives/{drive}/Documents/{lib_doc}"),
            json!({"copyTo": {"oneDrive": {"id": t.upn(1)}}}),
        ),
        (
            &sp_session,
            format!("OneDrives/{drive}/Folders/{folder}"),
            json!({"restoretoOriginallocation": null}),
        ),
    ] {
        let (status, answer) = t.act(session, &rest, &body).await;
        assert_eq!(status, 404, "{rest} {body} → {answer}");
    }
    for session in [&latest, &sp_session] {
        assert!(t.events(session).await.is_empty());
    }
    assert_eq!(trees(), before, "nothing was written");
    assert!(t.events(&session).await.is_empty());

    // The public portal's string-built body: any-case keys, "true" strings, a trailing comma.
    let raw = r#"{"RestoreToOriginalLocation": {"DocumentVersion": "Last", "DocumentAction": "Overwrite", "ChangedItems": "true", "DeletedItems": "True", "RestorePermissions": "false",}}"#;
    let r =
        t.s.http
            .post(t.s.url(&format!(
            "/v5/RestoreSessions/{session}/Organization/OneDrives/{drive}/Documents/{doc}/Action"
        )))
            .bearer_auth(&t.token)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    let stats = json(r).await;
    assert_eq!(count(&stats, "restoredItemsCount"), 1, "{stats}");
    assert!(d.find("/Docs/doc.txt").is_some());

    // A stopped session: 404, nothing written.
    let r = post(
        &t.s,
        &format!("/v5/RestoreSessions/{session}/Action"),
        &t.token,
        &json!({"stop": null}),
    )
    .await;
    assert_eq!(r.status(), 200);
    d.delete(&d.find("/Docs").unwrap().id).unwrap();
    let (status, answer) = t
        .act(&session, &rest, &json!({"restoretoOriginallocation": null}))
        .await;
    assert_eq!(status, 404, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("stopped"));
    assert!(d.find("/Docs").is_none());
}

/// Issue 14: a session nobody uses stops by itself (here after 1 s instead of 30 minutes):
/// `Stopped`, its end time set, browsing it answers 404 saying so. Work running in a session —
/// a restore slowed down by throttling, longer than the idle limit — keeps it working, and its
/// events stay readable; once the work is done and the session left alone, it stops too.
async fn idle_sessions_stop_but_not_while_their_work_runs(backend: Backend) {
    const IDLE: std::time::Duration = std::time::Duration::from_secs(1);
    const FILES: usize = 15;
    let t = setup_on(backend, 306, "Latest", |s| s.restore_idle_stop = IDLE).await;
    let d = t.drive(0);
    let folder = d.add_folder(None, "Slow").unwrap();
    for i in 0..FILES {
        d.add_file_bytes(Some(&folder), &format!("s{i:02}.txt"), b"slow")
            .unwrap();
    }
    t.backup().await;
    let busy = t.explore("veod").await;
    let untouched = t.explore("veod").await;
    d.delete(&folder).unwrap();
    // About 5 units a file at 15 units/s: the restore lasts several idle limits.
    t.sim.control().set_throttling(|c| {
        c.enabled = true;
        c.app_rate = 15.0;
        c.app_burst = 5.0;
    });

    let started = Instant::now();
    let (path, body) = (
        format!("OneDrives/{}/Folders/{folder}", d.id()),
        json!({"restoretoOriginallocation": {}}),
    );
    let restore = t.act(&busy, &path, &body);
    // Only reads that are not activity (the session itself) while the restore runs.
    let watch = async {
        tokio::time::sleep(IDLE * 5 / 2).await;
        let working = t.session(&busy).await;
        let stopped = t.session(&untouched).await;
        (working, stopped, started.elapsed())
    };
    let ((status, stats), (working, stopped, watched_at)) = tokio::join!(restore, watch);
    let took = started.elapsed();
    assert_eq!(status, 200, "{stats}");
    assert_eq!(
        count(&stats, "restoredItemsCount"),
        FILES as u64 + 1,
        "{stats}"
    );
    assert!(
        took > watched_at,
        "the restore ({took:?}) ran past the look at {watched_at:?}"
    );
    assert_eq!(working["state"], "Working", "{working}");
    assert!(working.get("endTime").is_none(), "{working}");
    assert_eq!(stopped["state"], "Stopped", "{stopped}");
    assert!(stopped["endTime"].is_string(), "{stopped}");
    let r =
        t.s.get(
            &format!("/v5/RestoreSessions/{untouched}/Organization/OneDrives"),
            &t.token,
        )
        .await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("stopped"));

    // The restore's events are there, ended.
    let events = t.events(&busy).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["status"], "Success", "{events:?}");

    // Left alone, the session stops in its turn.
    tokio::time::sleep(IDLE * 2).await;
    let view = t.session(&busy).await;
    assert_eq!(view["state"], "Stopped", "{view}");
    assert!(view["endTime"].is_string(), "{view}");
    for rest in ["Organization/OneDrives", "Events"] {
        let r =
            t.s.get(&format!("/v5/RestoreSessions/{busy}/{rest}"), &t.token)
                .await;
        assert_eq!(r.status(), 404, "{rest}");
    }
}

/// Issue 14: `changedItems: false` leaves changed documents as they are and `deletedItems:
/// false` leaves deleted ones (and deleted folders with what they held) out; both are counted in
/// `skippedItemsByOptionsCount`, and the rest is restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_or_deleted_items_are_left_out_when_the_options_say_so() {
    let t = setup(307, "Latest").await;
    let d = t.drive(0);
    let mixed = d.add_folder(None, "Mixed").unwrap();
    d.add_file_bytes(Some(&mixed), "same.txt", b"same").unwrap();
    let changed = d
        .add_file_bytes(Some(&mixed), "changed.txt", b"as backed up")
        .unwrap();
    let deleted = d
        .add_file_bytes(Some(&mixed), "deleted.txt", b"deleted later")
        .unwrap();
    let gone = d.add_folder(Some(&mixed), "Gone").unwrap();
    d.add_file_bytes(Some(&gone), "inner.txt", b"inner")
        .unwrap();
    t.backup().await;
    let before = snapshot(&d);
    d.modify_file_bytes(&changed, b"changed since").unwrap();
    d.delete(&deleted).unwrap();
    d.delete(&gone).unwrap();
    let session = t.explore("veod").await;
    let folder = format!("OneDrives/{}/Folders/{mixed}", d.id());
    let content = |path: &str| d.find(path).map(|e| e.content.unwrap().read_all().unwrap());

    // Changed items left out: the deleted ones come back, the changed one keeps its content.
    let (status, stats) = t
        .act(
            &session,
            &folder,
            &json!({"restoretoOriginallocation": {"changedItems": false}}),
        )
        .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(content("/Mixed/changed.txt").unwrap(), b"changed since");
    for path in ["/Mixed/deleted.txt", "/Mixed/Gone", "/Mixed/Gone/inner.txt"] {
        assert_eq!(
            snapshot(&d).get(path).map(|e| &e.0),
            Some(&before[path].0),
            "{path}"
        );
    }
    // Restored: deleted.txt, Gone, inner.txt; unchanged: Mixed, same.txt; left out: changed.txt.
    assert_eq!(count(&stats, "restoredItemsCount"), 3, "{stats}");
    assert_eq!(count(&stats, "skippedItemsByOptionsCount"), 1, "{stats}");
    assert_eq!(count(&stats, "skippedItemsByNoChangesCount"), 2, "{stats}");
    assert_eq!(count(&stats, "totalItemsCount"), 6, "{stats}");
    assert_eq!(count(&stats, "failedItemsCount"), 0, "{stats}");

    // Deleted items left out: the changed one is overwritten, the deleted ones stay deleted.
    d.delete(&d.find("/Mixed/deleted.txt").unwrap().id).unwrap();
    d.delete(&d.find("/Mixed/Gone").unwrap().id).unwrap();
    let (status, stats) = t
        .act(
            &session,
            &folder,
            &json!({"restoretoOriginallocation": {"deletedItems": "false"}}),
        )
        .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(content("/Mixed/changed.txt").unwrap(), b"as backed up");
    assert!(d.find("/Mixed/deleted.txt").is_none());
    assert!(d.find("/Mixed/Gone").is_none());
    // Restored: changed.txt; unchanged: Mixed, same.txt; left out: deleted.txt, Gone, inner.txt.
    assert_eq!(count(&stats, "restoredItemsCount"), 1, "{stats}");
    assert_eq!(count(&stats, "skippedItemsByOptionsCount"), 3, "{stats}");
    assert_eq!(count(&stats, "skippedItemsByNoChangesCount"), 2, "{stats}");
    assert_eq!(count(&stats, "totalItemsCount"), 6, "{stats}");
    let items = t.item_events(&session).await;
    assert_eq!(
        items.get("Mixed/Gone/inner.txt"),
        Some(&vec!["Success".to_owned(), "Success".to_owned()]),
        "{items:?}"
    );
}

/// Issue 14: `restoreTo` puts a SharePoint library's deleted folder back where it was — from a
/// folder, from its library and from the whole site — with the same bytes and times; site and
/// library restores add `restoredListsCount` and `failedListsCount` to the statistics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_library_folder_comes_back_by_restore_to() {
    let t = setup(308, "Latest").await;
    let tenant = t.sim.tenant();
    let site_url = tenant.sites[0].web_url.clone();
    let lib_id = tenant.drives[tenant.sites[0].drives[0]].id.clone();
    let lib = t.sim.drive(&lib_id).unwrap();
    let plans = lib.add_folder(None, "Plans").unwrap();
    let q1 = lib.add_folder(Some(&plans), "Q1 – Überblick").unwrap();
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 249) as u8).collect();
    let files = [
        lib.add_file_bytes(Some(&plans), "budget.xlsx", b"budget figures")
            .unwrap(),
        lib.add_file_bytes(Some(&q1), "large.bin", &big).unwrap(),
    ];
    for (i, f) in files.iter().enumerate() {
        lib.set_times(f, Some(old(i as i64)), Some(old(i as i64 + 20)))
            .unwrap();
    }
    let root_doc = lib.add_file_bytes(None, "root.txt", b"at the top").unwrap();
    t.backup().await;
    let before = snapshot(&lib);
    let session = t.explore("vesp").await;
    let site_id = t.site_id(&session, &site_url).await;
    let back_as_before = |what: &str| {
        let after = snapshot(&lib);
        for path in [
            "/Plans",
            "/Plans/Q1 – Überblick",
            "/Plans/budget.xlsx",
            "/Plans/Q1 – Überblick/large.bin",
        ] {
            let (hash, modified) = after
                .get(path)
                .unwrap_or_else(|| panic!("{what}: {path} missing in {after:?}"));
            assert_eq!(hash, &before[path].0, "{what}: {path}");
            if path.contains('.') {
                assert_eq!(modified, &before[path].1, "{what}: times of {path}");
            }
        }
        assert!(
            lib.find("/Plans 1").is_none(),
            "{what}: no duplicate folder"
        );
    };

    for (what, rest, lists) in [
        ("folder", format!("Sites/{site_id}/Folders/{plans}"), false),
        (
            "library",
            format!("Sites/{site_id}/Libraries/{lib_id}"),
            true,
        ),
        ("site", format!("Sites/{site_id}"), true),
    ] {
        lib.delete(&lib.find("/Plans").unwrap().id).unwrap();
        let (status, stats) = t
            .act(
                &session,
                &rest,
                &json!({"restoreTo": {"documentVersion": "last", "documentLastVersionAction": "overwrite"}}),
            )
            .await;
        assert_eq!(status, 200, "{what}: {stats}");
        back_as_before(what);
        assert_eq!(count(&stats, "restoredItemsCount"), 4, "{what}: {stats}");
        assert_eq!(count(&stats, "failedItemsCount"), 0, "{what}: {stats}");
        assert_eq!(stats["restoreIssues"], json!([]), "{what}");
        if lists {
            // root.txt is as backed up.
            assert_eq!(
                count(&stats, "skippedItemsByNoChangesCount"),
                1,
                "{what}: {stats}"
            );
            assert_eq!(count(&stats, "restoredListsCount"), 0, "{what}: {stats}");
            assert_eq!(count(&stats, "failedListsCount"), 0, "{what}: {stats}");
        } else {
            assert!(stats.get("restoredListsCount").is_none(), "{what}: {stats}");
            assert!(stats.get("failedListsCount").is_none(), "{what}: {stats}");
        }
    }

    // A changed document at the library's top, merged back from the site.
    lib.modify_file_bytes(&root_doc, b"changed at the top")
        .unwrap();
    let (status, stats) = t
        .act(
            &session,
            &format!("Sites/{site_id}"),
            &json!({"restoreTo": {"documentLastVersionAction": "Merge"}}),
        )
        .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(count(&stats, "restoredItemsCount"), 1, "{stats}");
    assert_eq!(
        lib.content(&root_doc, None).unwrap().read_all().unwrap(),
        b"at the top"
    );
    let events = t.events(&session).await;
    assert_eq!(events.len(), 4, "{events:?}");
    assert!(events
        .iter()
        .all(|e| e["type"] == "Restore" && e["status"] == "Success"));
}

/// The explicit sharing of an item in the tenant, in a comparable form.
fn grants(d: &DriveHandle, path: &str) -> Vec<String> {
    let mut out: Vec<String> = d
        .find(path)
        .unwrap_or_else(|| panic!("{path} missing"))
        .permissions
        .iter()
        .map(|p| format!("{:?}", p.grant))
        .collect();
    out.sort();
    out
}

/// Every version of a document, oldest first.
fn history(d: &DriveHandle, path: &str) -> Vec<Vec<u8>> {
    let item = d.find(path).unwrap_or_else(|| panic!("{path} missing"));
    d.versions(&item.id)
        .unwrap()
        .into_iter()
        .rev()
        .map(|v| v.content.read_all().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_and_version_history_come_back_where_they_were() {
    use m365sim::tenant::{Grant, LinkScope, Role};
    let t = setup(309, "All").await;
    let versions: Vec<Vec<u8>> = vec![
        b"first draft".to_vec(),
        b"second draft, longer than the first".to_vec(),
        b"final".to_vec(),
    ];
    let d = t.drive(0);
    let folder = d.add_folder(None, "Shared work").unwrap();
    let shared = d
        .add_file_bytes(Some(&folder), "shared.txt", &versions[0])
        .unwrap();
    for v in &versions[1..] {
        d.modify_file_bytes(&shared, v).unwrap();
    }
    let linked = d
        .add_file_bytes(Some(&folder), "linked.txt", b"a link to it")
        .unwrap();
    d.add_file_bytes(Some(&folder), "private.txt", b"mine")
        .unwrap();
    d.share_with(&shared, &t.upn(1), Role::Write).unwrap();
    d.share_with(&folder, &t.upn(2), Role::Read).unwrap();
    d.share(
        &linked,
        vec![Grant::Link {
            scope: LinkScope::Organization,
            role: Role::Read,
        }],
    )
    .unwrap();
    let sharing = |d: &DriveHandle| {
        [
            "/Shared work",
            "/Shared work/shared.txt",
            "/Shared work/linked.txt",
            "/Shared work/private.txt",
        ]
        .map(|p| grants(d, p))
    };
    let shared_before = sharing(&d);
    assert!(shared_before[..3].iter().all(|g| !g.is_empty()));
    assert!(shared_before[3].is_empty());

    // A library's document with its history too.
    let tenant = t.sim.tenant();
    let site_url = tenant.sites[0].web_url.clone();
    let lib = t
        .sim
        .drive(&tenant.drives[tenant.sites[0].drives[0]].id)
        .unwrap();
    let minutes = lib.add_folder(None, "Minutes").unwrap();
    let doc = lib
        .add_file_bytes(Some(&minutes), "minutes.txt", &versions[0])
        .unwrap();
    for v in &versions[1..] {
        lib.modify_file_bytes(&doc, v).unwrap();
    }
    t.backup().await;

    // OneDrive, in place, every version, without sharing: the history in order, no sharing.
    let session = t.explore("veod").await;
    let drive = d.id().to_owned();
    let rest = format!("OneDrives/{drive}/Folders/{folder}");
    d.delete(&folder).unwrap();
    let (status, stats) = t
        .act(
            &session,
            &rest,
            &json!({"restoretoOriginallocation": {"documentVersion": "all", "restorePermissions": false}}),
        )
        .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(count(&stats, "restoredItemsCount"), 4, "{stats}");
    assert_eq!(count(&stats, "failedItemsCount"), 0, "{stats}");
    assert_eq!(history(&d, "/Shared work/shared.txt"), versions);
    assert_eq!(
        sharing(&d),
        [Vec::<String>::new(), vec![], vec![], vec![]],
        "no sharing when not asked"
    );

    // Again with sharing: the same users, roles and links as backed up.
    d.delete(&d.find("/Shared work").unwrap().id).unwrap();
    let (status, stats) = t
        .act(
            &session,
            &rest,
            &json!({"restoretoOriginallocation": {"documentVersion": "all", "restorePermissions": true}}),
        )
        .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(count(&stats, "restoredItemsCount"), 4, "{stats}");
    assert_eq!(count(&stats, "failedRestrictionsCount"), 0, "{stats}");
    assert_eq!(stats["restoreIssues"], json!([]), "{stats}");
    assert_eq!(sharing(&d), shared_before);
    assert_eq!(history(&d, "/Shared work/shared.txt"), versions);

    // SharePoint, `restoreTo` with every version: the library's history in order.
    lib.delete(&minutes).unwrap();
    let session = t.explore("vesp").await;
    let site_id = t.site_id(&session, &site_url).await;
    let (status, stats) = t
        .act(
            &session,
            &format!("Sites/{site_id}/Folders/{minutes}"),
            &json!({"restoreTo": {"documentVersion": "all", "documentLastVersionAction": "overwrite"}}),
        )
        .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(count(&stats, "restoredItemsCount"), 2, "{stats}");
    assert_eq!(history(&lib, "/Minutes/minutes.txt"), versions);
}

/// A save or restore a server left running when it stopped (as a crash leaves it in the
/// database) ends as failed when the server starts again; events that ended stay as they were.
async fn events_left_running_end_as_interrupted_at_start_up(backend: Backend) {
    use m365backup_core::restore::model::{EventStatus, EventType, RestoreEvent, RestoreEventId};
    let mut t = setup_on(backend, 310, "Latest", |_| {}).await;
    t.backup().await;
    let session = t.explore("veod").await;
    let store = t.s.server.as_ref().unwrap().store.clone();
    let event = |status: EventStatus, message: &str| RestoreEvent {
        id: RestoreEventId::new_random(),
        session_id: session.parse().unwrap(),
        order: 0,
        kind: EventType::Save,
        status,
        start_time: Utc::now(),
        end_time: (status != EventStatus::Running).then(Utc::now),
        title: "a save".into(),
        message: message.into(),
        item_name: "Projects".into(),
        item_type: "Folder".into(),
        item_size: 0,
        source: String::new(),
        target: String::new(),
    };
    let running = store
        .append_restore_event(&event(EventStatus::Running, ""))
        .await
        .unwrap();
    let done = store
        .append_restore_event(&event(EventStatus::Success, "Saved"))
        .await
        .unwrap();
    assert_eq!(
        event_view(&t, &session, running.id).await["status"],
        "Running"
    );

    t.s.restart().await;
    t.token = t.s.admin_token().await;
    let e = event_view(&t, &session, running.id).await;
    assert_eq!(e["status"], "Failed", "{e}");
    assert!(
        e["message"].as_str().unwrap().starts_with("Interrupted"),
        "{e}"
    );
    assert!(e["endTime"].is_string(), "{e}");
    let e = event_view(&t, &session, done.id).await;
    assert_eq!(e["status"], "Success", "{e}");
    assert_eq!(e["message"], "Saved", "{e}");
    t.s.stop().await;
}

/// A restore's item events, stored in one write (more than one INSERT's worth), are listed
/// in the order given, each with its own ascending `order` (the same when read alone), after
/// the restore's own event.
async fn item_events_written_at_once_keep_their_order(backend: Backend) {
    use m365backup_core::restore::model::{EventStatus, EventType, RestoreEvent, RestoreEventId};
    use m365backup_core::restore::service::EventItem;
    let t = setup_on(backend, 311, "Latest", |_| {}).await;
    t.backup().await;
    let session = t.explore("veod").await;
    let id = session.parse().unwrap();
    let server = t.s.server.as_ref().unwrap();
    let whole = server
        .store
        .append_restore_event(&RestoreEvent {
            id: RestoreEventId::new_random(),
            session_id: id,
            order: 0,
            kind: EventType::Restore,
            status: EventStatus::Running,
            start_time: Utc::now(),
            end_time: None,
            title: "a restore".into(),
            message: String::new(),
            item_name: "Projects".into(),
            item_type: "Folder".into(),
            item_size: 0,
            source: String::new(),
            target: String::new(),
        })
        .await
        .unwrap();
    let names: Vec<String> = (0..601)
        .map(|i| format!("file-{:03}.txt", 600 - i))
        .collect();
    let items = names
        .iter()
        .map(|name| {
            let item = EventItem {
                title: format!("Restore {name}"),
                name: name.clone(),
                item_type: "File".into(),
                size: 7,
                ..Default::default()
            };
            (
                item,
                EventStatus::Success,
                "Restored".to_owned(),
                Utc::now(),
            )
        })
        .collect();
    let restore = m365backup_core::restore::service::RestoreService::new(server.store.clone());
    restore
        .record_item_events(id, EventType::Restore, items)
        .await
        .unwrap();

    let listed = t.all_events(&session).await;
    assert_eq!(listed.len(), 602);
    assert_eq!(listed[0]["id"], whole.id.to_string());
    assert_eq!(listed[0]["order"], whole.order);
    let listed_names: Vec<&str> = listed[1..]
        .iter()
        .map(|e| e["itemName"].as_str().unwrap())
        .collect();
    assert_eq!(listed_names, names);
    let orders: Vec<i64> = listed
        .iter()
        .map(|e| e["order"].as_i64().unwrap())
        .collect();
    assert!(orders.windows(2).all(|w| w[0] < w[1]), "{orders:?}");
    let last = &listed[601];
    assert_eq!(
        (last["status"].as_str(), last["message"].as_str()),
        (Some("Success"), Some("Restored"))
    );
    let alone = event_view(&t, &session, last["id"].as_str().unwrap().parse().unwrap()).await;
    assert_eq!(alone["order"], last["order"], "{alone}");
    // A page further on starts where the one before ended.
    let page = json(
        t.s.get(
            &format!("/v5/RestoreSessions/{session}/Events?offset=300&limit=2"),
            &t.token,
        )
        .await,
    )
    .await;
    assert_eq!(page["results"][0]["order"], listed[300]["order"], "{page}");
    t.s.stop().await;
}

async fn event_view(
    t: &Setup,
    session: &str,
    id: m365backup_core::restore::model::RestoreEventId,
) -> Value {
    json(
        t.s.get(
            &format!("/v5/RestoreSessions/{session}/Events/{id}"),
            &t.token,
        )
        .await,
    )
    .await
}

/// A backup holding names Microsoft 365 never gives (`..`, a slash: a damaged or hostile
/// repository): restoring them fails item by item, named, and nothing lands outside the folder;
/// the rest is restored; a ZIP of them holds safe names only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_in_a_backup_are_refused_item_by_item() {
    use m365backup_repo::{Item, SnapshotFilter, SnapshotSpec};
    let t = setup(311, "Latest").await;
    let d = t.drive(0);
    t.backup().await;
    let repo = common::jobs::repository_of(&t.s, &t.token, &t.job).await;
    let point = repo
        .snapshots(&SnapshotFilter::default())
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.doc.object.id == d.id())
        .expect("the OneDrive's restore point");
    let root = d.tree().into_iter().find(|e| e.path == "/").unwrap().id;
    let w = repo
        .begin_snapshot(SnapshotSpec::new(point.doc.object.clone()))
        .await
        .unwrap();
    w.put_item(Item::folder("hostile-folder", Some(&root), "Hostile"))
        .await
        .unwrap();
    for (id, name) in [("h1", ".."), ("h2", "a/b"), ("h3", "fine.txt")] {
        let bytes = bytes::Bytes::from(format!("content of {name}"));
        w.put_file(
            Item::file(id, Some("hostile-folder"), name),
            futures_util::stream::iter([Ok(bytes)]),
        )
        .await
        .unwrap();
    }
    w.commit(None).await.unwrap();
    let before = snapshot(&d);

    let session = t.explore("veod").await;
    let drive = d.id().to_owned();
    let (status, stats) = t
        .act(
            &session,
            &format!("OneDrives/{drive}/Folders/hostile-folder"),
            &json!({"restoretoOriginallocation": {"documentAction": "overwrite"}}),
        )
        .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(count(&stats, "restoredItemsCount"), 2, "{stats}");
    assert_eq!(count(&stats, "failedItemsCount"), 2, "{stats}");
    let issues = stats["restoreIssues"].to_string();
    assert!(
        issues.contains("Hostile/..") && issues.contains("a/b"),
        "{stats}"
    );
    let mut after = snapshot(&d);
    for path in before.keys() {
        after.remove(path);
    }
    assert_eq!(
        after.keys().cloned().collect::<Vec<_>>(),
        ["/Hostile", "/Hostile/fine.txt"],
        "nothing else written"
    );

    // Saved as a ZIP: safe names only.
    let r = post(
        &t.s,
        &format!("/v5/RestoreSessions/{session}/Organization/OneDrives/{drive}/Folders/hostile-folder/Action"),
        &t.token,
        &json!({"save": null}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let zip = async_zip::base::read::mem::ZipFileReader::new(r.bytes().await.unwrap().to_vec())
        .await
        .unwrap();
    let mut names: Vec<String> = zip
        .file()
        .entries()
        .iter()
        .map(|e| e.filename().as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["Hostile/_", "Hostile/a_b", "Hostile/fine.txt"]);
}
