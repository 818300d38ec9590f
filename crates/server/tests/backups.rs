//! Backup jobs run end to end: the real server over HTTPS against an in-process simulated
//! tenant, on both stores. A full backup holds every file of the tenant with its exact bytes; an
//! incremental after adds, changes, renames, moves and deletes matches the tenant again while
//! the earlier restore point still matches the tenant as it was; sessions and log items tell
//! what happened as v5 clients read them.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{json, start_sim, Backend, TestServer};
use futures_util::StreamExt;
use m365backup_repo::{ItemKind, Repository, SnapshotFilter};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

on_both_stores! {
    full_and_incremental_backups_match_the_tenant;
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

async fn post(s: &TestServer, path: &str, token: &str, body: &Value) -> reqwest::Response {
    s.http
        .post(s.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Starts a job and waits for its run to end; the session as the API shows it.
async fn run_job(s: &TestServer, token: &str, job: &str) -> Value {
    let r = post(
        s,
        &format!("/v5/Jobs/{job}/Action"),
        token,
        &json!({"start": null}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let j = json(s.get(&format!("/v5/Jobs/{job}"), token).await).await;
        let status = j["lastStatus"].as_str().unwrap().to_owned();
        if status != "Running" && status != "Queued" {
            let sessions = json(s.get(&format!("/v5/Jobs/{job}/JobSessions"), token).await).await;
            return sessions["results"][0].clone();
        }
        assert!(Instant::now() < deadline, "the job did not finish: {j}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
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

async fn full_and_incremental_backups_match_the_tenant(backend: Backend) {
    let sim = start_sim(m365sim::TenantSpec {
        seed: 41,
        users: 4,
        sites: 2,
        files_per_drive: 10,
        max_file_size: 3 * 1024 * 1024,
        ..Default::default()
    })
    .await;
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let t = sim.tenant();
    let org_body = json!({"type": "Office365", "region": "Worldwide", "isSharePointOnline": true,
        "sharePointOnlineSettings": {"useApplicationOnlyAuth": true,
            "applicationId": t.app.client_id.to_string(), "applicationSecret": t.app.client_secret,
            "officeOrganizationName": t.domain, "authorityUrl": sim.base_url(), "graphUrl": sim.graph_url()}});
    let r = post(&s, "/v5/Organizations", &token, &org_body).await;
    assert_eq!(r.status(), 201);
    let org = json(r).await["id"].as_str().unwrap().to_owned();
    let r = post(
        &s,
        &format!("/v5/Organizations/{org}/Jobs"),
        &token,
        &json!({"name": "Everything", "schedulePolicy": {"type": "ManualOnly"}}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let job = json(r).await["id"].as_str().unwrap().to_owned();

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

    let server = s.server.as_ref().unwrap();
    let repo_id = job_view["repositoryId"].as_str().unwrap().parse().unwrap();
    let repo = server.repositories.open(repo_id).await.unwrap();
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
