//! A server killed with SIGKILL in the middle of a backup: it restarts with that session
//! `Failed` ("interrupted"), the repository checks clean, and the next run resumes from the
//! last committed restore point of every object, losing no file: objects committed before the
//! kill are not downloaded again and no file is stored twice.

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::ChildServer;
use futures_util::StreamExt;
use m365backup::config::Settings;
use m365backup_repo::{ItemKind, SnapshotFilter};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const ORG: &str = "6f9b3da3-204d-4a4b-b466-55586e0233fc";

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut r = http.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.unwrap()
}

async fn get_json(http: &reqwest::Client, url: String, token: &str) -> Value {
    call(http, reqwest::Method::GET, url, token, None)
        .await
        .json()
        .await
        .unwrap()
}

/// The bytes of every drive's live files in the demo tenant: drive → bytes.
fn demo_drive_bytes() -> BTreeMap<String, u64> {
    let tenant = m365sim::Tenant::generate(&m365backup::demo::tenant_spec()).unwrap();
    tenant
        .drives
        .iter()
        .map(|drive| {
            let state = drive.state.read().unwrap();
            let bytes = state
                .items
                .iter()
                .filter(|i| !i.deleted)
                .filter_map(|i| i.file.map(|f| f.size))
                .sum();
            (drive.id.clone(), bytes)
        })
        .collect()
}

/// The repository as the (stopped) server left it in `data_dir`.
async fn open_repository(data_dir: &std::path::Path, repo_id: &str) -> m365backup_repo::Repository {
    let settings = Settings::for_data_dir(data_dir).unwrap();
    let parts = m365backup::server::open_store_parts(&settings)
        .await
        .unwrap();
    let repositories = m365backup::repositories::service(&settings, &parts).unwrap();
    repositories.open(repo_id.parse().unwrap()).await.unwrap()
}

/// Every file of the demo tenant as generated (the demo is deterministic): drive → item → SHA-256.
fn demo_files() -> BTreeMap<String, BTreeMap<String, String>> {
    let tenant = m365sim::Tenant::generate(&m365backup::demo::tenant_spec()).unwrap();
    let mut out = BTreeMap::new();
    for drive in &tenant.drives {
        let state = drive.state.read().unwrap();
        let files: &mut BTreeMap<String, String> = out.entry(drive.id.clone()).or_default();
        for item in state.items.iter().filter(|i| !i.deleted) {
            if let Some(f) = item.file {
                files.insert(
                    item.id.clone(),
                    m365sim::content::sha256_hex(&item.content_key(&drive.id), f.version, f.size),
                );
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_resumes_without_losing_files() {
    let mut server = ChildServer::start(&["--demo"]);
    let http = common::client();
    let token = server.admin_token(&http).await;
    let r = call(
        &http,
        reqwest::Method::POST,
        format!("{}/v5/Organizations/{ORG}/Jobs", server.base),
        &token,
        Some(json!({"name": "Nightly", "schedulePolicy": {"type": "ManualOnly"}})),
    )
    .await;
    assert_eq!(r.status(), 201);
    let job = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let start = |base: String, token: String| {
        let (http, job) = (http.clone(), job.clone());
        async move {
            let r = call(
                &http,
                reqwest::Method::POST,
                format!("{base}/v5/Jobs/{job}/Action"),
                &token,
                Some(json!({"start": null})),
            )
            .await;
            assert_eq!(r.status(), 200);
        }
    };
    let repo_id = get_json(&http, format!("{}/v5/Jobs/{job}", server.base), &token).await
        ["repositoryId"]
        .as_str()
        .unwrap()
        .to_owned();
    start(server.base.clone(), token.clone()).await;

    // Kill it once a few objects are committed and the run is still going.
    let deadline = Instant::now() + Duration::from_secs(120);
    let interrupted = loop {
        let sessions = get_json(
            &http,
            format!("{}/v5/Jobs/{job}/JobSessions", server.base),
            &token,
        )
        .await;
        let s = sessions["results"][0].clone();
        let done = s["statistics"]["processedObjects"].as_u64().unwrap_or(0);
        if s["status"] == "Running" && done >= 3 {
            break s;
        }
        assert_ne!(
            s["status"], "Success",
            "the run ended before it could be killed"
        );
        assert!(Instant::now() < deadline, "no progress: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    server.kill();

    // What the killed run committed: those objects' restore points, and the packs' bytes.
    let (committed, stored_at_kill) = {
        let repo = open_repository(&server.data_dir(), &repo_id).await;
        let committed: std::collections::BTreeSet<String> = repo
            .snapshots(&SnapshotFilter {
                organization_id: Some(ORG.into()),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.doc.object.id.clone())
            .collect();
        (committed, repo.stored_bytes().await.unwrap())
    };
    let drive_bytes = demo_drive_bytes();
    assert!(!committed.is_empty(), "the kill came after commits");
    assert!(
        committed.len() < drive_bytes.len(),
        "the kill came before the end"
    );
    let left: u64 = drive_bytes
        .iter()
        .filter(|(d, _)| !committed.contains(*d))
        .map(|(_, b)| b)
        .sum();

    // Restarted: the session is failed as interrupted, and the job is idle.
    server.restart(1);
    let token = server.admin_token(&http).await;
    let id = interrupted["id"].as_str().unwrap();
    let s = get_json(
        &http,
        format!("{}/v5/JobSessions/{id}", server.base),
        &token,
    )
    .await;
    assert_eq!(s["status"], "Failed", "{s}");
    assert!(
        s["details"].as_str().unwrap().contains("interrupted"),
        "{s}"
    );
    assert!(s["endTime"].is_string());
    let j = get_json(&http, format!("{}/v5/Jobs/{job}", server.base), &token).await;
    assert_eq!(j["lastStatus"], "Failed");
    // The repository is consistent: only unreferenced data can be left behind.
    let check = call(
        &http,
        reqwest::Method::POST,
        format!("{}/v5/BackupRepositories/{repo_id}/Action", server.base),
        &token,
        Some(json!({"check": null})),
    )
    .await;
    assert_eq!(check.status(), 200);
    let check: Value = check.json().await.unwrap();
    assert_eq!(check["ok"], true, "{check}");

    // The next run completes.
    start(server.base.clone(), token.clone()).await;
    let deadline = Instant::now() + Duration::from_secs(240);
    let resumed = loop {
        let j = get_json(&http, format!("{}/v5/Jobs/{job}", server.base), &token).await;
        let status = j["lastStatus"].as_str().unwrap().to_owned();
        if status != "Running" && status != "Queued" && j["lastRun"] != s["creationTime"] {
            let sessions = get_json(
                &http,
                format!("{}/v5/Jobs/{job}/JobSessions", server.base),
                &token,
            )
            .await;
            let last = &sessions["results"][0];
            let log = get_json(
                &http,
                format!(
                    "{}/v5/JobSessions/{}/LogItems?limit=1000",
                    server.base,
                    last["id"].as_str().unwrap()
                ),
                &token,
            )
            .await;
            assert_eq!(status, "Success", "{last}\n{log:#}");
            break last.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the resumed run did not finish: {j}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    server.kill();

    // The resumed run downloaded exactly the files of the objects the killed run had not
    // committed: what was committed is not read again.
    assert_eq!(
        resumed["statistics"]["transferredDataBytes"]
            .as_u64()
            .unwrap(),
        left,
        "{} of {} objects were committed before the kill: {resumed}",
        committed.len(),
        drive_bytes.len()
    );

    // Every file of the tenant, byte-exact, in the latest restore points; no object has more
    // restore points than the runs that committed it.
    let repo = open_repository(&server.data_dir(), &repo_id).await;
    // No file stored twice: the resumed run added about the bytes it downloaded (the content
    // neither compresses nor deduplicates), not the committed objects' again.
    let added = repo.stored_bytes().await.unwrap() - stored_at_kill;
    assert!(
        added <= left + left / 50 + (1 << 20),
        "the resumed run stored {added} bytes for {left} bytes of new files"
    );
    let snapshots = repo
        .snapshots(&SnapshotFilter {
            organization_id: Some(ORG.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut latest: BTreeMap<String, m365backup_repo::SnapshotRecord> = BTreeMap::new();
    let mut per_object: BTreeMap<String, usize> = BTreeMap::new();
    for s in snapshots {
        *per_object.entry(s.doc.object.id.clone()).or_default() += 1;
        let key = s.doc.object.id.clone();
        if latest.get(&key).is_none_or(|l| l.doc.time < s.doc.time) {
            latest.insert(key, s);
        }
    }
    assert!(per_object.values().all(|&n| n <= 2), "{per_object:?}");
    let mut restored: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (drive, snapshot) in &latest {
        let files = restored.entry(drive.clone()).or_default();
        let mut items = Box::pin(repo.items(&snapshot.doc));
        while let Some(item) = items.next().await {
            let item = item.unwrap();
            if item.kind != ItemKind::File {
                continue;
            }
            let mut stream = repo
                .read_content(item.content.as_ref().unwrap(), None)
                .unwrap();
            let mut sha = Sha256::new();
            while let Some(chunk) = stream.next().await {
                sha.update(chunk.unwrap());
            }
            files.insert(
                item.id.clone(),
                sha.finalize().iter().map(|b| format!("{b:02x}")).collect(),
            );
        }
    }
    assert_eq!(restored, demo_files(), "no file lost, every byte right");
}
