//! Backup jobs run end to end: the real server over HTTPS against an in-process simulated
//! tenant, on both stores. A full backup holds every file of the tenant with its exact bytes; an
//! incremental after adds, changes, renames, moves and deletes matches the tenant again while
//! the earlier restore point still matches the tenant as it was; sessions and log items tell
//! what happened as v5 clients read them.

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::jobs::{add_job, add_organization, post, repository_of, run_job};
use common::{json, start_sim, Backend, TestServer};
use futures_util::StreamExt;
use m365backup_repo::{ItemKind, Repository, SnapshotFilter};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

on_both_stores! {
    full_and_incremental_backups_match_the_tenant;
    an_expired_delta_token_resyncs_and_downloads_only_what_changed;
    stop_ends_a_run_within_seconds_and_keeps_what_was_committed;
    a_run_missed_while_the_server_was_down_starts_once_at_start_up;
    a_failed_object_is_retried_alone_after_the_wait;
    item_faults_give_a_warning_naming_the_items_and_heal_next_run;
}

/// What a file is: where it sits, and its bytes' SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileState {
    name: String,
    parent: Option<String>,
    size: u64,
    sha256: String,
}

type DriveFiles = BTreeMap<String, BTreeMap<String, FileState>>;

/// Every live file of every drive of the simulated tenant.
fn tenant_files(sim: &m365sim::RunningSim) -> DriveFiles {
    let mut out = DriveFiles::new();
    for drive in &sim.tenant().drives {
        let state = drive.state.read().unwrap();
        let files = out.entry(drive.id.clone()).or_default();
        for item in state.items.iter().filter(|i| !i.deleted) {
            if let Some(f) = item.file {
                files.insert(
                    item.id.clone(),
                    FileState {
                        name: item.name.clone(),
                        parent: item.parent.clone(),
                        size: f.size,
                        sha256: m365sim::content::sha256_hex(
                            &item.content_key(&drive.id),
                            f.version,
                            f.size,
                        ),
                    },
                );
            }
        }
    }
    out
}

/// Every file of the latest restore point (at or before `at`) of every object, its content read
/// back from the repository and hashed.
async fn restored_files(
    repo: &Repository,
    org: &str,
    at: Option<chrono::DateTime<chrono::Utc>>,
) -> DriveFiles {
    let mut out = DriveFiles::new();
    let filter = SnapshotFilter {
        organization_id: Some(org.to_owned()),
        at_or_before: at,
        ..Default::default()
    };
    let mut latest: BTreeMap<String, m365backup_repo::SnapshotRecord> = BTreeMap::new();
    for s in repo.snapshots(&filter).await.unwrap() {
        let key = s.object_key();
        if latest.get(&key).is_none_or(|l| l.doc.time < s.doc.time) {
            latest.insert(key, s);
        }
    }
    for snapshot in latest.values() {
        let files = out.entry(snapshot.doc.object.id.clone()).or_default();
        let mut items = Box::pin(repo.items(&snapshot.doc));
        while let Some(item) = items.next().await {
            let item = item.unwrap();
            if item.kind != ItemKind::File {
                continue;
            }
            let content = item.content.as_ref().expect("a backed-up file has content");
            let mut stream = repo.read_content(content, None).unwrap();
            let mut sha = Sha256::new();
            while let Some(chunk) = stream.next().await {
                sha.update(chunk.unwrap());
            }
            files.insert(
                item.id.clone(),
                FileState {
                    name: item.name.clone(),
                    parent: item.parent_id.clone(),
                    size: content.size,
                    sha256: sha.finalize().iter().map(|b| format!("{b:02x}")).collect(),
                },
            );
        }
    }
    out
}

async fn log_titles(s: &TestServer, token: &str, session: &Value) -> Vec<String> {
    let id = session["id"].as_str().unwrap();
    let page = json(
        s.get(&format!("/v5/JobSessions/{id}/LogItems?limit=1000"), token)
            .await,
    )
    .await;
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["title"].as_str().unwrap().to_owned())
        .collect()
}

/// The Graph requests the tenant has answered so far.
fn graph_requests(sim: &m365sim::RunningSim) -> u64 {
    sim.sim().app_stats().requests
}

fn small_tenant(seed: u64) -> m365sim::TenantSpec {
    m365sim::TenantSpec {
        seed,
        users: 4,
        sites: 2,
        files_per_drive: 10,
        max_file_size: 3 * 1024 * 1024,
        ..Default::default()
    }
}

async fn full_and_incremental_backups_match_the_tenant(backend: Backend) {
    let sim = start_sim(small_tenant(41)).await;
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let t = sim.tenant();
    let org = add_organization(&s, &token, &sim).await;
    let job = add_job(&s, &token, &org, json!({"name": "Everything"})).await;

    // Full backup.
    let session = run_job(&s, &token, &job).await;
    assert_eq!(session["status"], "Success", "{session}");
    assert!(session["endTime"].is_string());
    assert_eq!(session["progress"], 100);
    let drives = t.drives.len() as u64;
    assert_eq!(session["statistics"]["processedObjects"], drives);
    assert!(
        session["statistics"]["transferredDataBytes"]
            .as_u64()
            .unwrap()
            > 0
    );
    let titles = log_titles(&s, &token, &session).await;
    assert!(
        titles[0].starts_with("[Success] Job started at"),
        "{titles:?}"
    );
    assert!(titles
        .iter()
        .any(|t| t.starts_with("[Success] Connected to organization")));
    assert_eq!(
        titles
            .iter()
            .filter(|t| t.contains("OneDrive of") || t.contains("Library '"))
            .count() as u64,
        drives,
        "one line per object: {titles:?}"
    );
    assert!(titles
        .iter()
        .any(|t| t.contains("Organization credentials") && t.contains("requests")));
    assert!(
        titles.last().unwrap().starts_with("[Success] Job finished"),
        "{titles:?}"
    );
    let job_view = json(s.get(&format!("/v5/Jobs/{job}"), &token).await).await;
    assert_eq!(job_view["lastStatus"], "Success");
    assert!(job_view["lastRun"].is_string());
    let org_view = json(s.get(&format!("/v5/Organizations/{org}"), &token).await).await;
    assert_eq!(org_view["isBackedup"], true);
    assert!(org_view["lastBackuptime"].is_string());

    // Prometheus sees the job.
    let metrics = s.get("/metrics", &token).await.text().await.unwrap();
    assert!(
        metrics.contains(&format!("m365backup_job_status{{job=\"{job}\",name=\"Everything\",organization=\"{org}\",status=\"Success\"}} 1")),
        "{metrics}"
    );
    assert!(metrics.contains("m365backup_job_last_run_timestamp_seconds{"));
    // What the backups hold, as monitoring and restore portals read it.
    let repo_id = job_view["repositoryId"].as_str().unwrap().to_owned();
    let get = |path: String| {
        let (s, token) = (&s, token.clone());
        async move { json(s.get(&path, &token).await).await }
    };
    let orgs = get(format!("/v5/BackupRepositories/{repo_id}/OrganizationData")).await;
    assert_eq!(orgs["results"][0]["organizationId"], org.as_str());
    let users = get(format!(
        "/v5/BackupRepositories/{repo_id}/UserData?limit=1000"
    ))
    .await;
    let user_count = t.users.len();
    assert_eq!(
        users["results"].as_array().unwrap().len(),
        user_count,
        "{users}"
    );
    assert!(users["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["isOneDriveBackedUp"] == true));
    let sites = get(format!("/v5/BackupRepositories/{repo_id}/SiteData")).await;
    assert_eq!(
        sites["results"].as_array().unwrap().len(),
        t.sites.len(),
        "{sites}"
    );
    let licensing = get(format!("/v5/Organizations/{org}/LicensingInformation")).await;
    assert_eq!(licensing["licensedUsers"], user_count);
    assert_eq!(licensing["newUsers"], user_count);
    let licensed = get(format!("/v5/LicensedUsers?organizationId={org}&limit=1")).await;
    let first = licensed["results"][0].clone();
    assert_eq!(first["licenseState"], "Licensed");
    let r = s
        .http
        .delete(s.url(&format!(
            "/v5/LicensedUsers/{}",
            first["id"].as_str().unwrap()
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let licensing = get(format!("/v5/Organizations/{org}/LicensingInformation")).await;
    assert_eq!(
        licensing["licensedUsers"],
        user_count - 1,
        "removed from the count"
    );

    let repo = repository_of(&s, &token, &job).await;
    let before = tenant_files(&sim);
    assert_eq!(
        restored_files(&repo, &org, None).await,
        before,
        "every file, every byte"
    );
    let first_done = chrono::Utc::now();

    // Change the tenant: add, modify, rename, move and delete files.
    let drive = &t.drives[0];
    let (added, modified, renamed, moved, deleted) = {
        let mut state = drive.state.write().unwrap();
        let now = chrono::Utc::now();
        let root = state.root_id().to_owned();
        let files: Vec<String> = state
            .items
            .iter()
            .filter(|i| i.file.is_some() && !i.deleted)
            .map(|i| i.id.clone())
            .collect();
        let folder = state
            .items
            .iter()
            .find(|i| i.file.is_none() && i.parent.is_some() && !i.deleted)
            .map(|i| i.id.clone())
            .unwrap_or_else(|| root.clone());
        let mut rng = rand::thread_rng();
        let added = state
            .add_file(&mut rng, &root, "brand new report.docx", 200_000, now, None)
            .unwrap();
        state.modify_file(&files[0], 123_456, now, None).unwrap();
        state
            .rename_or_move(&files[1], Some("renamed – ünïcode #1.txt"), None, now)
            .unwrap();
        state
            .rename_or_move(&files[2], None, Some(&folder), now)
            .unwrap();
        state.delete_item(&files[3], now).unwrap();
        (
            added,
            files[0].clone(),
            files[1].clone(),
            files[2].clone(),
            files[3].clone(),
        )
    };
    let requests_before = graph_requests(&sim);

    // Incremental backup.
    let session = run_job(&s, &token, &job).await;
    assert_eq!(session["status"], "Success", "{session}");
    let incremental_requests = graph_requests(&sim) - requests_before;
    let after = tenant_files(&sim);
    let restored = restored_files(&repo, &org, None).await;
    assert_eq!(restored, after, "the new restore point matches the tenant");
    let d = &restored[&drive.id];
    assert!(d.contains_key(&added) && !d.contains_key(&deleted));
    assert_eq!(d[&modified].size, 123_456);
    assert_eq!(d[&renamed].name, "renamed – ünïcode #1.txt");
    assert_ne!(d[&moved].parent, before[&drive.id][&moved].parent);
    // The earlier restore point still holds the tenant as it was.
    assert_eq!(restored_files(&repo, &org, Some(first_done)).await, before);
    // An incremental asks for the changed files and a few pages per object, not everything:
    // discovery (users, sites, drives), one delta per object, and the two new contents.
    let discovery_and_delta = 4 * drives + 20;
    assert!(
        incremental_requests <= 2 + discovery_and_delta,
        "{incremental_requests} requests for an incremental of 2 changed contents over {drives} drives"
    );
    s.stop().await;
    sim.shutdown().await;
}

async fn an_expired_delta_token_resyncs_and_downloads_only_what_changed(backend: Backend) {
    let sim = start_sim(small_tenant(42)).await;
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let org = add_organization(&s, &token, &sim).await;
    let job = add_job(&s, &token, &org, json!({"name": "Resync"})).await;
    assert_eq!(run_job(&s, &token, &job).await["status"], "Success");
    let t = sim.tenant();
    // One file changes, then Microsoft forgets the delta tokens of that drive (410 next time).
    let drive = &t.drives[1];
    let changed = {
        let mut state = drive.state.write().unwrap();
        let id = state
            .items
            .iter()
            .find(|i| i.file.is_some() && !i.deleted)
            .unwrap()
            .id
            .clone();
        state
            .modify_file(&id, 4321, chrono::Utc::now(), None)
            .unwrap();
        id
    };
    let r = reqwest::Client::new()
        .post(format!(
            "{}/_sim/drives/{}/resync",
            sim.base_url(),
            drive.id
        ))
        .header("X-Sim-Secret", common::SIM_SECRET)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let downloads_before = content_requests(&sim);
    let session = run_job(&s, &token, &job).await;
    assert_eq!(session["status"], "Success", "{session}");
    // The full re-enumeration compares with the last restore point: one download.
    assert_eq!(content_requests(&sim) - downloads_before, 1);
    let repo = repository_of(&s, &token, &job).await;
    let restored = restored_files(&repo, &org, None).await;
    assert_eq!(restored, tenant_files(&sim));
    assert_eq!(restored[&drive.id][&changed].size, 4321);
    s.stop().await;
    sim.shutdown().await;
}

/// The samples of every metric family in a Prometheus text exposition, checking its grouping:
/// each family declared once, its `HELP`, `TYPE` and samples in one block.
fn metric_families(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut declared = std::collections::BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let family = rest.split(' ').next().unwrap().to_owned();
            assert!(declared.insert(family.clone()), "{family} declared twice");
        }
    }
    let family_of = |name: &str| -> String {
        for suffix in ["", "_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                if declared.contains(base) {
                    return base.to_owned();
                }
            }
        }
        name.to_owned()
    };
    let mut families: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut finished = std::collections::BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let family = if let Some(rest) = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
        {
            rest.split(' ').next().unwrap().to_owned()
        } else if line.starts_with('#') {
            continue;
        } else {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = family_of(name);
            families
                .entry(family.clone())
                .or_default()
                .push(line.to_owned());
            family
        };
        if current.as_deref() != Some(family.as_str()) {
            assert!(
                !finished.contains(&family),
                "{family} is split into two groups: {text}"
            );
            if let Some(c) = current.replace(family) {
                finished.insert(c);
            }
        }
    }
    families
}

#[test]
#[should_panic(expected = "split into two groups")]
fn interleaved_families_are_refused() {
    metric_families(
        "# HELP a A\n# TYPE a gauge\n# HELP b B\n# TYPE b gauge\na{x=\"1\"} 1\nb{x=\"1\"} 2\n",
    );
}

/// `/content` requests the tenant has answered (file and version downloads).
fn content_requests(sim: &m365sim::RunningSim) -> u64 {
    sim.sim().content_requests()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_version_is_kept_with_the_all_policy() {
    let sim = start_sim(small_tenant(43)).await;
    let s = TestServer::start(Backend::Sqlite).await;
    let token = s.admin_token().await;
    let org = add_organization(&s, &token, &sim).await;
    let t = sim.tenant();
    let drive = &t.drives[0];
    // A file with two earlier versions before the first backup.
    let (id, key) = {
        let mut state = drive.state.write().unwrap();
        let item = state
            .items
            .iter()
            .find(|i| i.file.is_some() && !i.deleted)
            .unwrap();
        let (id, key) = (item.id.clone(), item.content_key(&drive.id));
        state
            .modify_file(&id, 1000, chrono::Utc::now(), None)
            .unwrap();
        state
            .modify_file(&id, 2000, chrono::Utc::now(), None)
            .unwrap();
        (id, key)
    };
    let job = add_job(
        &s,
        &token,
        &org,
        json!({"name": "Versions", "versionPolicy": "All"}),
    )
    .await;
    assert_eq!(run_job(&s, &token, &job).await["status"], "Success");
    let repo = repository_of(&s, &token, &job).await;
    let check = |expected: Vec<(u64, u64)>| {
        let (repo, org, drive_id, id, key) = (
            repo.clone(),
            org.clone(),
            drive.id.clone(),
            id.clone(),
            key.clone(),
        );
        async move {
            let snapshot = repo
                .latest_snapshot(&format!("{org}/OneDrive/{drive_id}"), None)
                .await
                .unwrap()
                .or(repo
                    .latest_snapshot(&format!("{org}/SiteLibrary/{drive_id}"), None)
                    .await
                    .unwrap())
                .unwrap();
            let item = repo.item(&snapshot, &id).await.unwrap().unwrap();
            let got: Vec<(u64, String)> = {
                let mut out = Vec::new();
                for v in &item.versions {
                    let mut stream = repo.read_content(&v.content, None).unwrap();
                    let mut sha = Sha256::new();
                    while let Some(c) = stream.next().await {
                        sha.update(c.unwrap());
                    }
                    out.push((
                        v.size,
                        sha.finalize().iter().map(|b| format!("{b:02x}")).collect(),
                    ));
                }
                out
            };
            let want: Vec<(u64, String)> = expected
                .iter()
                .map(|(version, size)| (*size, m365sim::content::sha256_hex(&key, *version, *size)))
                .collect();
            assert_eq!(got, want, "earlier versions, oldest first, byte-exact");
        }
    };
    let original_size = {
        let state = drive.state.read().unwrap();
        state.get(&id).unwrap().history[0].size
    };
    check(vec![(1, original_size), (2, 1000)]).await;
    // One more version: the next run adds it and keeps the others without downloading them.
    drive
        .state
        .write()
        .unwrap()
        .modify_file(&id, 3000, chrono::Utc::now(), None)
        .unwrap();
    let before = content_requests(&sim);
    assert_eq!(run_job(&s, &token, &job).await["status"], "Success");
    assert_eq!(
        content_requests(&sim) - before,
        2,
        "the new current content and the now-earlier version 3"
    );
    check(vec![(1, original_size), (2, 1000), (3, 2000)]).await;
    s.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selected_and_excluded_items_decide_the_objects() {
    let sim = start_sim(small_tenant(44)).await;
    let s = TestServer::start(Backend::Sqlite).await;
    let token = s.admin_token().await;
    let org = add_organization(&s, &token, &sim).await;
    let users = json(
        s.get(&format!("/v5/Organizations/{org}/Users?limit=100"), &token)
            .await,
    )
    .await;
    let user = |i: usize| users["results"][i].clone();
    let sites = json(
        s.get(&format!("/v5/Organizations/{org}/Sites"), &token)
            .await,
    )
    .await;
    let site = sites["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["isPersonal"] == false)
        .unwrap()
        .clone();
    let job = add_job(
        &s,
        &token,
        &org,
        json!({
            "name": "Some", "backupType": "SelectedItems",
            "selectedItems": [
                {"type": "User", "user": {"id": user(0)["id"]}, "oneDrive": true},
                {"type": "User", "user": {"id": user(1)["id"]}, "oneDrive": true},
                {"type": "Site", "site": {"id": site["id"]}},
            ],
            "excludedItems": [{"type": "User", "user": {"id": user(1)["id"]}, "oneDrive": true}],
        }),
    )
    .await;
    let session = run_job(&s, &token, &job).await;
    assert_eq!(session["status"], "Success", "{session}");
    let repo = repository_of(&s, &token, &job).await;
    let snapshots = repo
        .snapshots(&SnapshotFilter {
            organization_id: Some(org.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut onedrive_owners: Vec<String> = snapshots
        .iter()
        .filter(|s| s.doc.object.kind == m365backup_repo::ObjectKind::OneDrive)
        .map(|s| s.doc.object.owner_name.clone().unwrap_or_default())
        .collect();
    onedrive_owners.sort();
    assert_eq!(
        onedrive_owners,
        vec![user(0)["name"].as_str().unwrap().to_owned()]
    );
    let site_url = site["url"].as_str().unwrap();
    let libraries: Vec<_> = snapshots
        .iter()
        .filter(|s| s.doc.object.kind == m365backup_repo::ObjectKind::SiteLibrary)
        .collect();
    assert!(!libraries.is_empty());
    assert!(
        libraries.iter().all(|l| l
            .doc
            .object
            .url
            .as_deref()
            .unwrap_or_default()
            .starts_with(site_url)),
        "only the selected site's libraries"
    );
    s.stop().await;
    sim.shutdown().await;
}

async fn stop_ends_a_run_within_seconds_and_keeps_what_was_committed(backend: Backend) {
    // A slow tenant: every Graph answer takes 150 ms.
    let config = m365sim::SimConfig {
        tenant: m365sim::TenantSpec {
            seed: 45,
            users: 20,
            sites: 2,
            files_per_drive: 25,
            ..Default::default()
        },
        throttling: m365sim::ThrottleConfig {
            enabled: false,
            latency_ms: 150,
            ..Default::default()
        },
        control_secret: common::SIM_SECRET.into(),
        ..Default::default()
    };
    let sim = m365sim::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let org = add_organization(&s, &token, &sim).await;
    let job = add_job(&s, &token, &org, json!({"name": "Slow"})).await;
    let r = post(
        &s,
        &format!("/v5/Jobs/{job}/Action"),
        &token,
        &json!({"start": null}),
    )
    .await;
    assert_eq!(r.status(), 200);
    // Let it get going, then stop it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sessions = json(s.get(&format!("/v5/Jobs/{job}/JobSessions"), &token).await).await;
        let session = &sessions["results"][0];
        if session["statistics"]["processedObjects"]
            .as_u64()
            .unwrap_or(0)
            >= 2
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the run made no progress: {session}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // While it runs, Prometheus sees the session's figures, each family in one group.
    let metrics = s.get("/metrics", &token).await.text().await.unwrap();
    let families = metric_families(&metrics);
    let sample = |family: &str| -> f64 {
        let samples = families
            .get(family)
            .unwrap_or_else(|| panic!("no {family}: {metrics}"));
        let line = samples
            .iter()
            .find(|l| l.contains(&format!("job=\"{job}\"")))
            .unwrap_or_else(|| panic!("no {family} sample for the job: {metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(sample("m365backup_job_running"), 1.0);
    assert!(sample("m365backup_session_processed_objects") >= 2.0);
    assert!(sample("m365backup_session_transferred_bytes") > 0.0);
    let progress = sample("m365backup_session_progress_percent");
    assert!((0.0..100.0).contains(&progress), "{progress}");

    let stopped_at = Instant::now();
    let r = post(
        &s,
        &format!("/v5/Jobs/{job}/Action"),
        &token,
        &json!({"stop": null}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let session = loop {
        let j = json(s.get(&format!("/v5/Jobs/{job}"), &token).await).await;
        if j["lastStatus"] != "Running" {
            let sessions = json(s.get(&format!("/v5/Jobs/{job}/JobSessions"), &token).await).await;
            break sessions["results"][0].clone();
        }
        assert!(
            stopped_at.elapsed() < Duration::from_secs(15),
            "stop took too long"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(session["status"], "Stopped", "{session}");
    assert_eq!(
        json(s.get(&format!("/v5/Jobs/{job}"), &token).await).await["lastStatus"],
        "Stopped"
    );
    let repo = repository_of(&s, &token, &job).await;
    let committed = restored_files(&repo, &org, None).await;
    let truth = tenant_files(&sim);
    assert!(
        !committed.is_empty(),
        "objects committed before the stop stay"
    );
    for (drive, files) in &committed {
        assert_eq!(files, &truth[drive], "a committed object is complete");
    }
    // Stopping an idle job is 409; the next run completes the rest.
    let r = post(
        &s,
        &format!("/v5/Jobs/{job}/Action"),
        &token,
        &json!({"stop": null}),
    )
    .await;
    assert_eq!(r.status(), 409);
    assert_eq!(run_job(&s, &token, &job).await["status"], "Success");
    assert_eq!(restored_files(&repo, &org, None).await, truth);
    s.stop().await;
    sim.shutdown().await;
}

/// The run starts as the server does (not after a stale-claim wait), once. A tenant of small
/// files, so that how long the backup itself takes in a debug build under load (60 MiB took
/// 50 s at load 10) does not decide the wait.
async fn a_run_missed_while_the_server_was_down_starts_once_at_start_up(backend: Backend) {
    let sim = start_sim(m365sim::TenantSpec {
        files_per_drive: 2,
        max_file_size: 64 * 1024,
        ..small_tenant(46)
    })
    .await;
    let mut s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let org = add_organization(&s, &token, &sim).await;
    let job = add_job(
        &s,
        &token,
        &org,
        json!({"name": "Nightly",
        "schedulePolicy": {"type": "Daily", "dailyTime": "03:00:00"}}),
    )
    .await;
    let view = json(s.get(&format!("/v5/Jobs/{job}"), &token).await).await;
    assert!(view["nextRun"].is_string());
    // The server was down when the run was due (made due while it is down, so that its
    // scheduler cannot claim the run before it stops).
    let server = s.server.take().unwrap();
    let store = server.store.clone();
    server.shutdown().await.unwrap();
    let id = job.parse().unwrap();
    let mut stored = store.get_job(id).await.unwrap().unwrap();
    stored.next_run = Some(chrono::Utc::now() - chrono::Duration::hours(30));
    store.update_job(&stored).await.unwrap();
    drop(store);
    let restarting = chrono::Utc::now();
    s.restart().await;
    let token = s.admin_token().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let view = loop {
        let view = json(s.get(&format!("/v5/Jobs/{job}"), &token).await).await;
        if view["lastStatus"] == "Success" {
            break view;
        }
        assert!(
            Instant::now() < deadline,
            "the missed run did not start: {view}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // Once, and the next run is the schedule's next one, in the future.
    let sessions = json(s.get(&format!("/v5/Jobs/{job}/JobSessions"), &token).await).await;
    assert_eq!(sessions["results"].as_array().unwrap().len(), 1);
    let started: chrono::DateTime<chrono::Utc> = sessions["results"][0]["creationTime"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        // (Stored to the millisecond.)
        started.timestamp_millis() >= restarting.timestamp_millis()
            && started < restarting + chrono::Duration::seconds(20),
        "restarted at {restarting}, the run started at {started}"
    );
    let next: chrono::DateTime<chrono::Utc> = view["nextRun"].as_str().unwrap().parse().unwrap();
    assert!(next > chrono::Utc::now());
    s.stop().await;
    sim.shutdown().await;
}

/// A file that vanishes (404), is locked (423) or whose stream is cut mid-body is a warning
/// naming it; the rest is backed up, and the next run picks the files up.
async fn item_faults_give_a_warning_naming_the_items_and_heal_next_run(backend: Backend) {
    use m365sim::{FaultKind, ItemFault};
    let sim = start_sim(small_tenant(77)).await;
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let org = add_organization(&s, &token, &sim).await;
    let job = add_job(&s, &token, &org, json!({"name": "Faults"})).await;
    let upn = sim.tenant().users[0].user_principal_name.clone();
    let drive = sim.onedrive(&upn).unwrap();
    let faults = [
        ("vanished.txt", FaultKind::NotFound),
        ("locked.docx", FaultKind::Locked),
        (
            "cut.bin",
            FaultKind::Cut {
                after_bytes: 100_000,
            },
        ),
    ];
    let mut ids = Vec::new();
    for (name, kind) in faults {
        let id = drive.add_file(None, name, 3 * 1024 * 1024).unwrap();
        drive.inject_fault(&id, ItemFault::permanent(kind));
        ids.push(id);
    }

    let session = run_job(&s, &token, &job).await;
    assert_eq!(session["status"], "Warning", "{session}");
    let titles = log_titles(&s, &token, &session).await;
    let warning = titles
        .iter()
        .find(|t| t.starts_with("[Warning]") && t.contains("3 file(s) not backed up"))
        .unwrap_or_else(|| panic!("no warning naming the files: {titles:?}"));
    for (name, _) in faults {
        assert!(warning.contains(name), "{name} not named: {warning}");
    }
    // Everything else is in the restore point.
    let repo = repository_of(&s, &token, &job).await;
    let mut expected = tenant_files(&sim);
    for id in &ids {
        expected.get_mut(drive.id()).unwrap().remove(id);
    }
    assert_eq!(restored_files(&repo, &org, None).await, expected);

    // The faults clear: the next (incremental) run backs the three files up.
    drive.clear_faults(None);
    let session = run_job(&s, &token, &job).await;
    assert_eq!(session["status"], "Success", "{session}");
    assert_same(
        &restored_files(&repo, &org, None).await,
        &tenant_files(&sim),
    );
    s.stop().await;
    sim.shutdown().await;
}

/// Fails naming only the files that differ (whole-tenant maps are too long to read).
fn assert_same(restored: &DriveFiles, tenant: &DriveFiles) {
    let mut differences = Vec::new();
    for (drive, files) in tenant {
        let empty = BTreeMap::new();
        let got = restored.get(drive).unwrap_or(&empty);
        for (id, want) in files {
            if got.get(id) != Some(want) {
                differences.push(format!(
                    "{drive}/{id}: want {want:?}, got {:?}",
                    got.get(id)
                ));
            }
        }
        for id in got.keys().filter(|id| !files.contains_key(*id)) {
            differences.push(format!("{drive}/{id}: not in the tenant"));
        }
    }
    assert!(differences.is_empty(), "{differences:#?}");
}

/// A scheduled job whose run leaves a file behind owes a retry: `retryWaitInterval` minutes
/// later the server runs the job again for the failed object only, once, then returns to the
/// schedule.
async fn a_failed_object_is_retried_alone_after_the_wait(backend: Backend) {
    use m365sim::{FaultKind, ItemFault};
    let sim = start_sim(small_tenant(78)).await;
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let org = add_organization(&s, &token, &sim).await;
    let far = (chrono::Utc::now() + chrono::Duration::hours(12)).format("%H:%M:00");
    let job = add_job(
        &s,
        &token,
        &org,
        json!({"name": "Nightly", "schedulePolicy": {
            "type": "Daily", "dailyType": "Everyday", "dailyTime": far.to_string(),
            "retryEnabled": true, "retryNumber": 1, "retryWaitInterval": 1}}),
    )
    .await;
    let upn = sim.tenant().users[2].user_principal_name.clone();
    let drive = sim.onedrive(&upn).unwrap();
    let file = drive.add_file(None, "busy.xlsx", 40_000).unwrap();
    drive.inject_fault(&file, ItemFault::permanent(FaultKind::Locked));

    let first = run_job(&s, &token, &job).await;
    assert_eq!(first["status"], "Warning", "{first}");
    let view = json(s.get(&format!("/v5/Jobs/{job}"), &token).await).await;
    let next: chrono::DateTime<chrono::Utc> = view["nextRun"].as_str().unwrap().parse().unwrap();
    let ended: chrono::DateTime<chrono::Utc> = first["endTime"].as_str().unwrap().parse().unwrap();
    let wait = (next - ended).num_seconds();
    assert!(
        (55..=65).contains(&wait),
        "the retry is due a minute after the run: {view}"
    );
    drive.clear_faults(None);

    // The retry session: one object, the failed one, and now a success.
    let deadline = Instant::now() + Duration::from_secs(120);
    let retry = loop {
        let sessions = json(s.get(&format!("/v5/Jobs/{job}/JobSessions"), &token).await).await;
        let latest = sessions["results"][0].clone();
        if latest["id"] != first["id"] && latest["status"] != "Running" {
            break latest;
        }
        assert!(Instant::now() < deadline, "no retry ran: {sessions}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(retry["status"], "Success", "{retry}");
    assert!(
        retry["details"]
            .as_str()
            .unwrap()
            .starts_with("1 of 1 object(s)"),
        "{retry}"
    );
    let view = json(s.get(&format!("/v5/Jobs/{job}"), &token).await).await;
    let next: chrono::DateTime<chrono::Utc> = view["nextRun"].as_str().unwrap().parse().unwrap();
    assert!(
        next > chrono::Utc::now() + chrono::Duration::hours(11),
        "{view}"
    );
    let repo = repository_of(&s, &token, &job).await;
    assert_same(
        &restored_files(&repo, &org, None).await,
        &tenant_files(&sim),
    );
    s.stop().await;
    sim.shutdown().await;
}

/// Every live shared file of the tenant: (drive, item) → its explicit permissions' ids.
fn shared_files(sim: &m365sim::RunningSim) -> BTreeMap<(String, String), Vec<String>> {
    let mut out = BTreeMap::new();
    for drive in &sim.tenant().drives {
        let state = drive.state.read().unwrap();
        for item in state
            .items
            .iter()
            .filter(|i| !i.deleted && i.file.is_some())
        {
            if !item.grants.is_empty() {
                let ids = item.grants.iter().map(|g| g.id.clone()).collect();
                out.insert((drive.id.clone(), item.id.clone()), ids);
            }
        }
    }
    out
}

/// The permissions every file of the latest restore points keeps: (drive, item) → the
/// permissions' ids, for the files that have them; and how many files have none.
async fn restored_permissions(
    repo: &Repository,
    org: &str,
) -> (BTreeMap<(String, String), Vec<String>>, usize) {
    let filter = SnapshotFilter {
        organization_id: Some(org.to_owned()),
        ..Default::default()
    };
    let mut latest: BTreeMap<String, m365backup_repo::SnapshotRecord> = BTreeMap::new();
    for s in repo.snapshots(&filter).await.unwrap() {
        let key = s.object_key();
        if latest.get(&key).is_none_or(|l| l.doc.time < s.doc.time) {
            latest.insert(key, s);
        }
    }
    let (mut with, mut without) = (BTreeMap::new(), 0);
    for snapshot in latest.values() {
        let mut items = Box::pin(repo.items(&snapshot.doc));
        while let Some(item) = items.next().await {
            let item = item.unwrap();
            if item.kind != ItemKind::File {
                continue;
            }
            match &item.permissions {
                Some(p) => {
                    let mut ids: Vec<String> = p
                        .as_array()
                        .unwrap()
                        .iter()
                        // The owners' permission every item inherits is not the item's own.
                        .filter(|p| p.get("inheritedFrom").is_none())
                        .filter_map(|p| p["id"].as_str().map(str::to_owned))
                        .collect();
                    ids.sort();
                    with.insert((snapshot.doc.object.id.clone(), item.id.clone()), ids);
                }
                None => without += 1,
            }
        }
    }
    (with, without)
}

/// Sharing costs 5 resource units a read: it is read for the files whose `shared` facet says
/// they are shared, and only for those, and kept with them in the restore point; a file shared
/// later is read again by the next run, the others are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_are_read_for_shared_files_only_and_kept_with_them() {
    let sim = start_sim(m365sim::TenantSpec {
        shared_fraction: 0.3,
        ..small_tenant(47)
    })
    .await;
    let s = TestServer::start(Backend::Sqlite).await;
    let token = s.admin_token().await;
    let org = add_organization(&s, &token, &sim).await;
    let job = add_job(&s, &token, &org, json!({"name": "Sharing"})).await;
    let shared = shared_files(&sim);
    let files: usize = tenant_files(&sim).values().map(BTreeMap::len).sum();
    assert!(
        shared.len() >= 5 && shared.len() < files,
        "{} of {files} files shared",
        shared.len()
    );

    assert_eq!(run_job(&s, &token, &job).await["status"], "Success");
    assert_eq!(
        sim.sim().permission_requests(),
        shared.len() as u64,
        "one read per shared file"
    );
    let repo = repository_of(&s, &token, &job).await;
    let expected = |shared: &BTreeMap<(String, String), Vec<String>>| {
        shared
            .iter()
            .map(|(k, ids)| {
                let mut ids = ids.clone();
                ids.sort();
                (k.clone(), ids)
            })
            .collect::<BTreeMap<_, _>>()
    };
    let (kept, unshared) = restored_permissions(&repo, &org).await;
    assert_eq!(
        kept,
        expected(&shared),
        "every shared file keeps its sharing"
    );
    assert_eq!(unshared, files - shared.len());

    // One more file is shared: the next run reads that one's permissions alone.
    let (drive, item) = {
        let t = sim.tenant();
        let drive = &t.drives[0];
        let state = drive.state.read().unwrap();
        let item = state
            .items
            .iter()
            .find(|i| !i.deleted && i.file.is_some() && i.grants.is_empty())
            .unwrap();
        (drive.id.clone(), item.id.clone())
    };
    let upn = sim.tenant().users[1].user_principal_name.clone();
    sim.drive(&drive)
        .unwrap()
        .share_with(&item, &upn, m365sim::tenant::Role::Write)
        .unwrap();
    let before = sim.sim().permission_requests();
    assert_eq!(run_job(&s, &token, &job).await["status"], "Success");
    assert_eq!(sim.sim().permission_requests() - before, 1);
    let shared = shared_files(&sim);
    let (kept, unshared) = restored_permissions(&repo, &org).await;
    assert!(kept.contains_key(&(drive, item)));
    assert_eq!(kept, expected(&shared));
    assert_eq!(unshared, files - shared.len());
    s.stop().await;
    sim.shutdown().await;
}

/// The figures of an account's log line: requests, 429s, 503s and seconds paused.
fn account_figures(line: &str) -> (u64, u64, u64, f64) {
    let figures = line.split_once(": ").unwrap().1;
    let mut parts = figures.split(", ");
    let mut leading = |suffix: &str| -> String {
        let part = parts.next().unwrap();
        assert!(part.contains(suffix), "{part} in {line}");
        part.split(' ')
            .find(|w| w.parse::<f64>().is_ok())
            .unwrap()
            .to_owned()
    };
    let requests = leading("requests").parse().unwrap();
    let throttled = leading("(429)").parse().unwrap();
    let unavailable = leading("(503)").parse().unwrap();
    let paused = leading("paused").parse().unwrap();
    (requests, throttled, unavailable, paused)
}

/// A run through a backup account whose budget is far below the pool's first pace (Microsoft
/// sends no hints before a user's throttle): the account's log line counts what the tenant
/// answered (429s, 503s) and the seconds it paused, the session names Microsoft 365 as the
/// bottleneck, and the organization keeps the time of its first backup while the last moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_run_reports_its_waits_and_the_source_as_bottleneck() {
    let sim = start_sim(small_tenant(48)).await;
    let t = sim.tenant();
    let account = &t.users[t.backup_accounts_group().unwrap().members[0]];
    let upn = account.user_principal_name.clone();
    sim.control().set_throttling(|c| {
        c.enabled = true;
        c.user_rate = 20.0;
        c.user_burst = 5.0;
        // The app's budget never binds: the throttles are the user's.
        c.app_rate = 100_000.0;
        c.app_burst = 100_000.0;
        c.fraction_503 = 0.5;
    });
    let s = TestServer::start_with(Backend::Sqlite, |c| {
        c.engine.pool.initial_rate = 150.0;
        c.engine.pool.max_in_flight = 8;
    })
    .await;
    let token = s.admin_token().await;
    let r = post(
        &s,
        "/v5/Organizations",
        &token,
        &common::organization_body(&sim, &upn, &account.password),
    )
    .await;
    assert_eq!(r.status(), 201);
    let org = json(r).await["id"].as_str().unwrap().to_owned();
    let job = add_job(&s, &token, &org, json!({"name": "Throttled"})).await;
    let before = sim.sim().user_stats(&upn);
    let all_before = sim.sim().app_stats().requests;
    let session = run_job(&s, &token, &job).await;
    assert_eq!(session["status"], "Success", "{session}");
    let stats = sim.sim().user_stats(&upn);
    let all = sim.sim().app_stats().requests - all_before;
    let titles = log_titles(&s, &token, &session).await;
    let line = titles
        .iter()
        .find(|t| t.contains("(429)") && t.contains(&upn))
        .unwrap_or_else(|| panic!("no account line: {titles:?}"));
    let (requests, throttled, unavailable, paused) = account_figures(line);
    assert_eq!(
        (throttled, unavailable),
        (
            stats.throttled429 - before.throttled429,
            stats.throttled503 - before.throttled503
        ),
        "{line}"
    );
    assert!(throttled + unavailable > 0, "the run was throttled: {line}");
    assert!(throttled > 0 && unavailable > 0, "both kinds: {line}");
    assert!(paused > 0.0, "{line}");
    assert!(
        requests >= throttled + unavailable && requests <= all,
        "{line}: the tenant answered {all} requests"
    );
    assert_eq!(session["statistics"]["bottleneck"], "Source", "{session}");

    // The organization's first backup time stays; the last moves with the next run.
    let view = json(s.get(&format!("/v5/Organizations/{org}"), &token).await).await;
    let first = view["firstBackuptime"].as_str().unwrap().to_owned();
    assert_eq!(view["lastBackuptime"].as_str().unwrap(), first, "{view}");
    let started: chrono::DateTime<chrono::Utc> =
        session["creationTime"].as_str().unwrap().parse().unwrap();
    let first_at: chrono::DateTime<chrono::Utc> = first.parse().unwrap();
    assert!(first_at >= started - chrono::Duration::seconds(1), "{view}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(run_job(&s, &token, &job).await["status"], "Success");
    let view = json(s.get(&format!("/v5/Organizations/{org}"), &token).await).await;
    assert_eq!(view["firstBackuptime"], first.as_str(), "{view}");
    assert!(
        view["lastBackuptime"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
            > first_at,
        "{view}"
    );
    s.stop().await;
    sim.shutdown().await;
}

/// The drives a job's restore points hold.
async fn drives_of_job(
    repo: &Repository,
    org: &str,
    job: &str,
) -> std::collections::BTreeSet<String> {
    repo.snapshots(&SnapshotFilter {
        organization_id: Some(org.to_owned()),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_iter()
    .filter(|s| s.doc.job_id.as_deref() == Some(job))
    .map(|s| s.doc.object.id.clone())
    .collect()
}

/// A site's drives and its sub-sites', all the way down.
fn site_tree_drives(t: &m365sim::Tenant, site: usize) -> std::collections::BTreeSet<String> {
    let s = &t.sites[site];
    let mut out: std::collections::BTreeSet<String> =
        s.drives.iter().map(|d| t.drives[*d].id.clone()).collect();
    for sub in &s.subsites {
        out.extend(site_tree_drives(t, *sub));
    }
    out
}

/// Our id of a site: its collection and web GUIDs (Graph's id without the host).
fn our_site_id(graph_id: &str) -> String {
    graph_id.split(',').skip(1).collect::<Vec<_>>().concat()
}

/// Waits for a job's first run (started by someone else) to end; its session.
async fn first_run_ends(s: &TestServer, token: &str, job: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let sessions = json(s.get(&format!("/v5/Jobs/{job}/JobSessions"), token).await).await;
        let first = &sessions["results"][0];
        if first.is_object() && first["status"] != "Running" {
            return first.clone();
        }
        assert!(Instant::now() < deadline, "no run ended: {sessions}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Each kind of job item backs up what it names, sub-sites included: a `Site` given by url
/// (started by `runNow`) or as the object `GET …/Sites/{id}` answers, a `Group` (its site and
/// its members' OneDrives), `PersonalSites`, and a `PartialOrganization`; the organization's
/// sites list top-level sites, a site's sub-sites by `parentId`, and one site by id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_item_backs_up_what_it_names_sub_sites_included() {
    let sim = start_sim(m365sim::TenantSpec {
        subsites_per_site: 2,
        m365_groups: 1,
        backup_accounts: 0,
        files_per_drive: 3,
        max_file_size: 64 * 1024,
        ..small_tenant(49)
    })
    .await;
    let t = sim.tenant();
    let s = TestServer::start(Backend::Sqlite).await;
    let token = s.admin_token().await;
    let org = add_organization(&s, &token, &sim).await;
    let repository = |job: &str| {
        let (s, token, job) = (&s, token.clone(), job.to_owned());
        async move { repository_of(s, &token, &job).await }
    };

    // The sites: a top-level one with sub-sites (the first of which has one of its own).
    let top = t
        .sites
        .iter()
        .position(|x| x.parent.is_none() && x.group.is_none() && x.subsites.len() == 2)
        .expect("a site with sub-sites");
    let top_id = our_site_id(&t.sites[top].id);
    let listed = json(
        s.get(&format!("/v5/Organizations/{org}/Sites?limit=100"), &token)
            .await,
    )
    .await;
    let listed_ids: Vec<&str> = listed["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert!(listed_ids.contains(&top_id.as_str()), "{listed}");
    for sub in &t.sites[top].subsites {
        assert!(
            !listed_ids.contains(&our_site_id(&t.sites[*sub].id).as_str()),
            "sub-sites are listed under their parent: {listed}"
        );
    }
    let children = json(
        s.get(
            &format!("/v5/Organizations/{org}/Sites?parentId={top_id}"),
            &token,
        )
        .await,
    )
    .await;
    let mut child_ids: Vec<String> = children["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_owned())
        .collect();
    child_ids.sort();
    let mut want: Vec<String> = t.sites[top]
        .subsites
        .iter()
        .map(|i| our_site_id(&t.sites[*i].id))
        .collect();
    want.sort();
    assert_eq!(child_ids, want, "{children}");
    let sub = t.sites[top].subsites[0];
    let one = s
        .get(
            &format!(
                "/v5/Organizations/{org}/Sites/{}",
                our_site_id(&t.sites[sub].id)
            ),
            &token,
        )
        .await;
    assert_eq!(one.status(), 200);
    let one = json(one).await;
    assert_eq!(one["url"], t.sites[sub].web_url.as_str(), "{one}");
    assert_eq!(one["isPersonal"], false);
    let missing = s
        .get(
            &format!("/v5/Organizations/{org}/Sites/{}", "0".repeat(72)),
            &token,
        )
        .await;
    assert_eq!(missing.status(), 404);

    // A site by url alone, run at creation: its libraries and its sub-sites' (two levels).
    let r = post(
        &s,
        &format!("/v5/Organizations/{org}/Jobs"),
        &token,
        &json!({"name": "By url", "backupType": "SelectedItems", "runNow": true,
            "schedulePolicy": {"type": "ManualOnly"},
            "selectedItems": [{"type": "Site", "site": {"url": t.sites[top].web_url}}]}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let by_url = json(r).await["id"].as_str().unwrap().to_owned();
    let session = first_run_ends(&s, &token, &by_url).await;
    assert_eq!(session["status"], "Success", "{session}");
    let repo = repository(&by_url).await;
    let tree = site_tree_drives(t, top);
    assert!(
        tree.len() >= 4,
        "the site and its three sub-sites: {tree:?}"
    );
    assert_eq!(drives_of_job(&repo, &org, &by_url).await, tree);

    // The sub-site as GET answered it: that sub-site and its own sub-site.
    let job = add_job(
        &s,
        &token,
        &org,
        json!({"name": "Object", "backupType": "SelectedItems",
            "selectedItems": [{"type": "Site", "site": one}]}),
    )
    .await;
    assert_eq!(run_job(&s, &token, &job).await["status"], "Success");
    assert_eq!(
        drives_of_job(&repo, &org, &job).await,
        site_tree_drives(t, sub)
    );

    // A Microsoft 365 group: its team site and its members' OneDrives.
    let g = t
        .groups
        .iter()
        .find(|g| g.site.is_some() && !g.members.is_empty())
        .expect("a group with a site");
    let job = add_job(
        &s,
        &token,
        &org,
        json!({"name": "Group", "backupType": "SelectedItems",
            "selectedItems": [{"type": "Group", "group": {"id": g.id.to_string(), "displayName": g.display_name},
                "members": true, "memberOnedrive": true, "site": true}]}),
    )
    .await;
    assert_eq!(run_job(&s, &token, &job).await["status"], "Success");
    let onedrive_of = |user: usize| {
        t.drives
            .iter()
            .find(|d| matches!(d.owner, m365sim::tenant::DriveOwner::User(u) if u == user))
            .map(|d| d.id.clone())
            .unwrap()
    };
    let mut want = site_tree_drives(t, g.site.unwrap());
    want.extend(g.members.iter().map(|m| onedrive_of(*m)));
    assert_eq!(drives_of_job(&repo, &org, &job).await, want);

    // Every personal site: every user's OneDrive.
    let job = add_job(
        &s,
        &token,
        &org,
        json!({"name": "Personal", "backupType": "SelectedItems",
            "selectedItems": [{"type": "PersonalSites"}]}),
    )
    .await;
    assert_eq!(run_job(&s, &token, &job).await["status"], "Success");
    let onedrives: std::collections::BTreeSet<String> = t
        .drives
        .iter()
        .filter(|d| matches!(d.owner, m365sim::tenant::DriveOwner::User(_)))
        .map(|d| d.id.clone())
        .collect();
    assert_eq!(onedrives.len(), t.users.len());
    assert_eq!(drives_of_job(&repo, &org, &job).await, onedrives);

    // The whole organization as one item: every drive, sub-sites' and group sites' included.
    let job = add_job(
        &s,
        &token,
        &org,
        json!({"name": "Partial", "backupType": "SelectedItems",
            "selectedItems": [{"type": "PartialOrganization", "oneDrive": true, "site": true}]}),
    )
    .await;
    assert_eq!(run_job(&s, &token, &job).await["status"], "Success");
    let all: std::collections::BTreeSet<String> = t.drives.iter().map(|d| d.id.clone()).collect();
    assert_eq!(drives_of_job(&repo, &org, &job).await, all);
    s.stop().await;
    sim.shutdown().await;
}

/// When no object can be saved (the repository's data folder is not a folder) the session is
/// `Failed`, every object's line and the closing line say `[Failed]`, and nothing is counted as
/// backed up; once the repository is writable again the next run succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_where_every_object_fails_is_failed() {
    let sim = start_sim(m365sim::TenantSpec {
        users: 2,
        sites: 1,
        files_per_drive: 3,
        max_file_size: 64 * 1024,
        ..small_tenant(50)
    })
    .await;
    let s = TestServer::start(Backend::Sqlite).await;
    let token = s.admin_token().await;
    let org = add_organization(&s, &token, &sim).await;
    let job = add_job(&s, &token, &org, json!({"name": "Nowhere"})).await;
    let view = json(s.get(&format!("/v5/Jobs/{job}"), &token).await).await;
    let repo = json(
        s.get(
            &format!(
                "/v5/BackupRepositories/{}",
                view["repositoryId"].as_str().unwrap()
            ),
            &token,
        )
        .await,
    )
    .await;
    let data = std::path::Path::new(repo["path"].as_str().unwrap()).join("data");
    // Even as root, nothing can be created under a file.
    let _ = std::fs::remove_dir_all(&data);
    std::fs::write(&data, b"not a folder").unwrap();

    let session = run_job(&s, &token, &job).await;
    assert_eq!(session["status"], "Failed", "{session}");
    assert_eq!(session["statistics"]["processedObjects"], 0, "{session}");
    let titles = log_titles(&s, &token, &session).await;
    let objects: Vec<&String> = titles
        .iter()
        .filter(|t| t.contains("OneDrive of") || t.contains("Library '"))
        .collect();
    assert_eq!(objects.len(), sim.tenant().drives.len(), "{titles:?}");
    assert!(
        objects.iter().all(|t| t.starts_with("[Failed]")),
        "{titles:?}"
    );
    assert!(
        titles.last().unwrap().starts_with("[Failed] Job failed at"),
        "{titles:?}"
    );
    let view = json(s.get(&format!("/v5/Jobs/{job}"), &token).await).await;
    assert_eq!(view["lastStatus"], "Failed");
    let org_view = json(s.get(&format!("/v5/Organizations/{org}"), &token).await).await;
    assert!(org_view["firstBackuptime"].is_null(), "{org_view}");

    std::fs::remove_file(&data).unwrap();
    assert_eq!(run_job(&s, &token, &job).await["status"], "Success");
    s.stop().await;
    sim.shutdown().await;
}
