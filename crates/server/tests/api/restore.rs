//! Restore sessions end to end: the real server over HTTPS, backups of an in-process simulated
//! tenant, then sessions at points in time, browsing them as v5 clients do, and saving documents
//! and ZIP archives whose bytes are compared with what the tenant held.

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::jobs::{add_job, add_organization, post, run_job};
use common::{json, start_sim, Backend, TestServer};
use futures_util::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

on_both_stores! {
    each_point_in_time_gives_back_what_the_tenant_held;
}

const TIME_ZONE: chrono_tz::Tz = chrono_tz::Europe::Berlin;

fn tenant(seed: u64) -> m365sim::TenantSpec {
    m365sim::TenantSpec {
        seed,
        users: 2,
        sites: 1,
        libraries_per_site: 2,
        m365_groups: 0,
        files_per_drive: 6,
        folders_per_drive: 2,
        max_file_size: 200 * 1024,
        max_versions: 1,
        ..Default::default()
    }
}

async fn server(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |s| s.time_zone = TIME_ZONE).await
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Opens a session (`body` is the `explore` options); its JSON.
async fn explore(s: &TestServer, token: &str, org: &str, body: Value) -> Value {
    let r = post(
        s,
        &format!("/v5/Organizations/{org}/Action"),
        token,
        &json!({ "explore": body }),
    )
    .await;
    assert_eq!(r.status(), 201);
    json(r).await
}

/// `GET` under a session's organization; the JSON of a 200.
async fn browse(s: &TestServer, token: &str, session: &str, rest: &str) -> Value {
    let r = s
        .get(
            &format!("/v5/RestoreSessions/{session}/Organization/{rest}"),
            token,
        )
        .await;
    assert_eq!(r.status(), 200, "{rest}");
    json(r).await
}

fn results(page: &Value) -> Vec<Value> {
    page["results"].as_array().expect("a page").clone()
}

/// The id of the entry named `name` in a page.
fn id_named(page: &Value, name: &str) -> String {
    results(page)
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no '{name}' in {page}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `POST …/Action` under a session's organization.
async fn action(
    s: &TestServer,
    token: &str,
    session: &str,
    rest: &str,
    body: &Value,
) -> reqwest::Response {
    post(
        s,
        &format!("/v5/RestoreSessions/{session}/Organization/{rest}/Action"),
        token,
        body,
    )
    .await
}

/// The restore sessions the command line opened (`initiatedBy: cli`), newest first.
async fn cli_sessions(s: &TestServer, token: &str) -> Vec<Value> {
    let sessions = json(s.get("/v5/RestoreSessions?limit=100", token).await).await;
    results(&sessions)
        .into_iter()
        .filter(|r| r["initiatedBy"] == "cli")
        .collect()
}

/// Follows every link of a view: each answers 200.
async fn follow_links(s: &TestServer, token: &str, view: &Value) {
    let links = view["_links"].as_object().expect("links");
    assert!(!links.is_empty(), "{view}");
    for (rel, link) in links {
        let href = link["href"].as_str().unwrap();
        let r = s.http.get(href).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status(), 200, "{rel}: {href}");
    }
}

/// Waits until every event of the session has ended; the events.
async fn settled_events(s: &TestServer, token: &str, session: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = json(
            s.get(&format!("/v5/RestoreSessions/{session}/Events"), token)
                .await,
        )
        .await;
        let events = results(&page);
        if events.iter().all(|e| e["status"] != "Running") {
            return events;
        }
        assert!(Instant::now() < deadline, "events still running: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn each_point_in_time_gives_back_what_the_tenant_held(backend: Backend) {
    let sim = start_sim(tenant(71)).await;
    let s = server(backend).await;
    let token = s.admin_token().await;
    let org = add_organization(&s, &token, &sim).await;
    let org_name = json(s.get(&format!("/v5/Organizations/{org}"), &token).await).await["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let job = add_job(
        &s,
        &token,
        &org,
        json!({"name": "Everything", "versionPolicy": "All"}),
    )
    .await;
    let upn = sim.tenant().users[0].user_principal_name.clone();
    let drive = sim.onedrive(&upn).unwrap();
    let folder = drive.add_folder(None, "Projects").unwrap();
    let plan = drive
        .add_file_bytes(Some(&folder), "plan.txt", b"first plan")
        .unwrap();

    // An empty session before the first backup.
    let early = explore(
        &s,
        &token,
        &org,
        json!({"type": "veod", "datetime": "2001-01-01T00:00:00Z"}),
    )
    .await;
    let none = browse(&s, &token, early["id"].as_str().unwrap(), "OneDrives").await;
    assert_eq!(none["results"], json!([]), "{none}");

    // Three backups, the plan changed between them.
    let contents: [&[u8]; 3] = [b"first plan", b"second plan, longer", b"third"];
    let mut times: Vec<DateTime<Utc>> = Vec::new();
    for (i, content) in contents.iter().enumerate() {
        if i > 0 {
            drive.modify_file_bytes(&plan, content).unwrap();
        }
        let session = run_job(&s, &token, &job).await;
        assert_eq!(session["status"], "Success", "{session}");
        // Past the run, on a new second (one of the forms below has no milliseconds).
        tokio::time::sleep(Duration::from_millis(1100)).await;
        times.push(Utc::now());
    }

    // Each date form of the spec, in the server's time zone unless it says otherwise.
    let local = |t: DateTime<Utc>| t.with_timezone(&TIME_ZONE);
    let forms = [
        times[0].to_rfc3339(),
        local(times[1]).format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        local(times[2]).format("%Y.%m.%d %H:%M:%S").to_string(),
        // After the last backup: the latest point.
        "2099.01.01 00:00".to_owned(),
    ];
    let expected = [contents[0], contents[1], contents[2], contents[2]];
    let mut sessions = Vec::new();
    for (form, want) in forms.iter().zip(expected) {
        let session = explore(
            &s,
            &token,
            &org,
            json!({"type": "Veod", "datetime": form, "showDeleted": "false"}),
        )
        .await;
        let id = session["id"].as_str().unwrap().to_owned();
        assert_eq!(session["type"], "Veod");
        assert_eq!(session["state"], "Working");
        assert_eq!(session["result"], "Success");
        assert_eq!(session["initiatedBy"], "admin");
        assert_eq!(
            session["details"],
            "0 items processed (0 success, 0 failed)"
        );
        assert!(session.get("endTime").is_none(), "{session}");
        let name = session["name"].as_str().unwrap();
        assert!(
            name.starts_with(&format!("OneDrive restore: {org_name} - ")),
            "{name}"
        );

        let onedrives = browse(&s, &token, &id, "OneDrives").await;
        let drive_id = drive.id().to_owned();
        assert!(
            results(&onedrives).iter().any(|d| d["id"] == drive_id),
            "{onedrives}"
        );
        assert_eq!(
            onedrives["results"].as_array().unwrap().len(),
            sim.tenant().users.len()
        );
        let top = browse(
            &s,
            &token,
            &id,
            &format!("OneDrives/{drive_id}/Folders?parentId=null"),
        )
        .await;
        let projects = id_named(&top, "Projects");
        let docs = browse(
            &s,
            &token,
            &id,
            &format!("OneDrives/{drive_id}/Documents?parentID={projects}"),
        )
        .await;
        let doc = results(&docs)[0].clone();
        assert_eq!(doc["name"], "plan.txt");
        assert_eq!(doc["sizeBytes"], want.len() as u64);
        assert_eq!(
            doc["_links"]["parent"]["href"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next(),
            Some(projects.as_str())
        );
        follow_links(&s, &token, &doc).await;
        let doc_id = doc["id"].as_str().unwrap();
        let r = action(
            &s,
            &token,
            &id,
            &format!("OneDrives/{drive_id}/Documents/{doc_id}"),
            &json!({"save": {"asZip": "false"}}),
        )
        .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/octet-stream");
        assert_eq!(
            r.headers()["content-disposition"],
            "attachment; filename=\"plan.txt\"; filename*=UTF-8''plan.txt"
        );
        assert_eq!(r.bytes().await.unwrap().as_ref(), want, "at {form}");
        sessions.push((id, drive_id, doc_id.to_owned()));
    }

    // The save is an event, and counted in the session.
    let (id, drive_id, doc_id) = sessions.last().unwrap().clone();
    let events = settled_events(&s, &token, &id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "Save");
    assert_eq!(events[0]["status"], "Success", "{events:?}");
    assert_eq!(events[0]["itemName"], "plan.txt");
    let session = json(s.get(&format!("/v5/RestoreSessions/{id}"), &token).await).await;
    assert_eq!(
        session["details"],
        "1 items processed (1 success, 0 failed)"
    );

    // Every version the backups kept, newest first.
    let versions = browse(
        &s,
        &token,
        &id,
        &format!("OneDrives/{drive_id}/Documents/{doc_id}/Versions"),
    )
    .await;
    let sizes: Vec<u64> = results(&versions)
        .iter()
        .map(|v| v["sizeBytes"].as_u64().unwrap())
        .collect();
    assert_eq!(
        sizes,
        contents
            .iter()
            .rev()
            .map(|c| c.len() as u64)
            .collect::<Vec<_>>()
    );

    // Sessions list newest first.
    let list = json(s.get("/v5/RestoreSessions?limit=2", &token).await).await;
    assert_eq!(list["results"][0]["id"], id.as_str());

    // A job's session; then stopping one.
    let r = post(
        &s,
        &format!("/v5/Jobs/{job}/Action"),
        &token,
        &json!({"Explore": {"type": "VEOD"}}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let by_job = json(r).await;
    assert!(by_job["name"]
        .as_str()
        .unwrap()
        .starts_with("OneDrive restore: Everything - "));
    let r = post(
        &s,
        &format!("/v5/RestoreSessions/{id}/Action"),
        &token,
        &json!({"stop": null}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = s
        .get(
            &format!("/v5/RestoreSessions/{id}/Organization/OneDrives"),
            &token,
        )
        .await;
    assert_eq!(r.status(), 404);
    assert!(json(r).await["message"]
        .as_str()
        .unwrap()
        .contains("has stopped"));
    let stopped = json(s.get(&format!("/v5/RestoreSessions/{id}"), &token).await).await;
    assert_eq!(stopped["state"], "Stopped");
    assert!(stopped["endTime"].is_string());

    every_version_is_a_row_and_listings_page(&s, &token, &org, &drive, &folder, &contents).await;
    deleted_items_show_with_show_deleted(&s, &token, &org, &job, &drive, &folder).await;
}

/// With `showAllVersions`, each backed-up version of a document is a row of its folder's
/// listing, newest first, one id; listings page by `offset` and `limit`, their `next` links
/// keeping the `parentId` they list.
async fn every_version_is_a_row_and_listings_page(
    s: &TestServer,
    token: &str,
    org: &str,
    drive: &m365sim::DriveHandle,
    folder: &str,
    contents: &[&[u8]],
) {
    let drive_id = drive.id();
    let docs_of = |show_all: bool| async move {
        let session = explore(
            s,
            token,
            org,
            json!({"type": "veod", "showAllVersions": show_all}),
        )
        .await;
        let id = session["id"].as_str().unwrap().to_owned();
        let page = browse(
            s,
            token,
            &id,
            &format!("OneDrives/{drive_id}/Documents?parentId={folder}"),
        )
        .await;
        (id, results(&page))
    };
    let (_, current) = docs_of(false).await;
    assert_eq!(current.len(), 1, "{current:?}");
    let (all_id, rows) = docs_of(true).await;
    let sizes: Vec<u64> = rows
        .iter()
        .map(|r| r["sizeBytes"].as_u64().unwrap())
        .collect();
    let newest_first: Vec<u64> = contents.iter().rev().map(|c| c.len() as u64).collect();
    assert_eq!(sizes, newest_first, "{rows:?}");
    assert!(rows
        .iter()
        .all(|r| r["id"] == current[0]["id"] && r["name"] == "plan.txt"));
    assert_eq!(rows[0]["versionId"], current[0]["versionId"]);
    let mut version_ids: Vec<&str> = rows
        .iter()
        .map(|r| r["versionId"].as_str().unwrap())
        .collect();
    version_ids.dedup();
    assert_eq!(version_ids.len(), rows.len(), "{rows:?}");

    // Paging those rows: two, then the last one by the `next` link.
    let first = browse(
        s,
        token,
        &all_id,
        &format!("OneDrives/{drive_id}/Documents?parentId={folder}&offset=0&limit=2"),
    )
    .await;
    assert_eq!(
        (first["offset"].as_u64(), first["limit"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(results(&first), rows[..2].to_vec());
    let next = first["_links"]["next"]["href"]
        .as_str()
        .expect("a next page");
    let second = json(s.http.get(next).bearer_auth(token).send().await.unwrap()).await;
    assert_eq!(results(&second), rows[2..].to_vec(), "{next}");
    assert!(second["_links"].get("next").is_none(), "{second}");

    // The drive's top-level folders one by one, then past the end; bad paging is a 400.
    let all = results(
        &browse(
            s,
            token,
            &all_id,
            &format!("OneDrives/{drive_id}/Folders?parentId=null"),
        )
        .await,
    );
    assert!(all.len() >= 2, "{all:?}");
    let mut paged = Vec::new();
    for offset in 0..all.len() {
        let page = browse(
            s,
            token,
            &all_id,
            &format!("OneDrives/{drive_id}/Folders?parentId=null&offset={offset}&limit=1"),
        )
        .await;
        paged.extend(results(&page));
    }
    assert_eq!(paged, all);
    let past = browse(
        s,
        token,
        &all_id,
        &format!("OneDrives/{drive_id}/Folders?offset={}&limit=5", all.len()),
    )
    .await;
    assert_eq!(past["results"], json!([]));
    let r = s
        .get(
            &format!(
                "/v5/RestoreSessions/{all_id}/Organization/OneDrives/{drive_id}/Folders?limit=abc"
            ),
            token,
        )
        .await;
    assert_eq!(r.status(), 400);
}

/// The folder is deleted in the tenant and backed up once more: hidden from a session, listed
/// (with its documents, as they last were) and savable in a session with `showDeleted`.
async fn deleted_items_show_with_show_deleted(
    s: &TestServer,
    token: &str,
    org: &str,
    job: &str,
    drive: &m365sim::DriveHandle,
    folder: &str,
) {
    drive.delete(folder).unwrap();
    let run = run_job(s, token, job).await;
    assert_eq!(run["status"], "Success", "{run}");
    let drive_id = drive.id();
    let top_of = |show: bool| async move {
        let session = explore(s, token, org, json!({"type": "veod", "showDeleted": show})).await;
        let id = session["id"].as_str().unwrap().to_owned();
        let top = browse(
            s,
            token,
            &id,
            &format!("OneDrives/{drive_id}/Folders?parentId=null"),
        )
        .await;
        (id, top)
    };
    let (_, hidden) = top_of(false).await;
    assert!(
        results(&hidden).iter().all(|f| f["name"] != "Projects"),
        "{hidden}"
    );
    let (id, shown) = top_of(true).await;
    let projects = id_named(&shown, "Projects");
    let docs = browse(
        s,
        token,
        &id,
        &format!("OneDrives/{drive_id}/Documents?parentId={projects}"),
    )
    .await;
    let plan = id_named(&docs, "plan.txt");
    let one = browse(
        s,
        token,
        &id,
        &format!("OneDrives/{drive_id}/Documents/{plan}"),
    )
    .await;
    assert_eq!(one["sizeBytes"], 5);
    let r = action(
        s,
        token,
        &id,
        &format!("OneDrives/{drive_id}/Folders/{projects}"),
        &json!({"save": {"asZip": true}}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let files = unzip(r.bytes().await.unwrap().to_vec()).await;
    assert_eq!(
        files.get("Projects/plan.txt"),
        Some(&sha256(b"third")),
        "{files:?}"
    );
}

/// A ZIP's files: path → SHA-256 (folders, ending in `/`, map to an empty string).
async fn unzip(bytes: Vec<u8>) -> BTreeMap<String, String> {
    let zip = async_zip::base::read::mem::ZipFileReader::new(bytes)
        .await
        .expect("a valid ZIP");
    let mut out = BTreeMap::new();
    for i in 0..zip.file().entries().len() {
        let mut reader = zip.reader_with_entry(i).await.unwrap();
        let name = reader.entry().filename().as_str().unwrap().to_owned();
        let mut data = Vec::new();
        reader.read_to_end_checked(&mut data).await.unwrap();
        let value = if name.ends_with('/') {
            String::new()
        } else {
            sha256(&data)
        };
        out.insert(name, value);
    }
    out
}

/// A drive's files as a ZIP of it should hold them: path under `under` (without it) → SHA-256.
fn drive_files(drive: &m365sim::DriveHandle, under: &str) -> BTreeMap<String, String> {
    drive
        .tree()
        .into_iter()
        .filter(|e| !e.is_folder)
        .filter_map(|e| {
            let path = e
                .path
                .strip_prefix(under)?
                .trim_start_matches('/')
                .to_owned();
            Some((path, e.sha256().unwrap()))
        })
        .collect()
}

#[tokio::test]
async fn saves_stream_archives_and_documents_equal_to_the_tenant() {
    let sim = start_sim(tenant(72)).await;
    let s = server(Backend::Sqlite).await;
    let token = s.admin_token().await;
    let org = add_organization(&s, &token, &sim).await;
    let job = add_job(&s, &token, &org, json!({"name": "All"})).await;
    let upn = sim.tenant().users[1].user_principal_name.clone();
    let drive = sim.onedrive(&upn).unwrap();
    let team = drive.add_folder(None, "Équipe").unwrap();
    let odd_name = "Übersicht – Q3 ✓.txt";
    let long: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    drive.add_file_bytes(Some(&team), odd_name, &long).unwrap();
    drive.add_folder(Some(&team), "Empty").unwrap();
    let big: Vec<u8> = (0..24 * 1024 * 1024u32)
        .map(|i| (i % 253) as u8 ^ (i >> 13) as u8)
        .collect();
    drive.add_file_bytes(None, "big.bin", &big).unwrap();
    assert_eq!(run_job(&s, &token, &job).await["status"], "Success");

    let session = explore(&s, &token, &org, json!({"type": "veod"})).await;
    let id = session["id"].as_str().unwrap().to_owned();
    let d = drive.id().to_owned();

    // The whole OneDrive as a ZIP equals the tenant's files; empty folders are entries.
    let r = action(
        &s,
        &token,
        &id,
        &format!("OneDrives/{d}"),
        &json!({"save": null}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    let zip = unzip(r.bytes().await.unwrap().to_vec()).await;
    let mut want = drive_files(&drive, "/");
    want.insert("Équipe/Empty/".into(), String::new());
    let empty_folders: Vec<String> = drive
        .tree()
        .iter()
        .filter(|e| e.is_folder && e.path != "/")
        .filter(|f| {
            !drive
                .tree()
                .iter()
                .any(|c| c.parent_id.as_deref() == Some(&f.id))
        })
        .map(|f| format!("{}/", f.path.trim_start_matches('/')))
        .collect();
    for f in empty_folders {
        want.insert(f, String::new());
    }
    assert_eq!(zip, want, "every file, every byte, paths as in the tenant");

    // A folder: under its own name.
    let top = browse(&s, &token, &id, &format!("OneDrives/{d}/Folders")).await;
    let team_id = id_named(&top, "Équipe");
    let r = action(
        &s,
        &token,
        &id,
        &format!("OneDrives/{d}/Folders/{team_id}"),
        &json!({"save": {"asZip": true}}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let zip = unzip(r.bytes().await.unwrap().to_vec()).await;
    assert_eq!(
        zip.keys().cloned().collect::<Vec<_>>(),
        vec!["Équipe/Empty/".to_owned(), format!("Équipe/{odd_name}")]
    );
    assert_eq!(zip[&format!("Équipe/{odd_name}")], sha256(&long));

    // Several documents: a ZIP of them; a document as a ZIP when asked.
    let docs = browse(
        &s,
        &token,
        &id,
        &format!("OneDrives/{d}/Documents?parentId={team_id}"),
    )
    .await;
    let odd_id = id_named(&docs, odd_name);
    let top_docs = browse(&s, &token, &id, &format!("OneDrives/{d}/Documents")).await;
    let big_id = id_named(&top_docs, "big.bin");
    let r = action(&s, &token, &id, &format!("OneDrives/{d}/Documents"),
        &json!({"save": {"asZip": false, "documents": [{"id": odd_id}, {"id": big_id}, {"id": odd_id}]}})).await;
    assert_eq!(r.status(), 200);
    let zip = unzip(r.bytes().await.unwrap().to_vec()).await;
    assert_eq!(zip.len(), 2);
    assert_eq!(zip["big.bin"], sha256(&big));

    // One document raw: its UTF-8 name, whole and in ranges.
    let doc_path = format!("OneDrives/{d}/Documents/{odd_id}");
    let r = action(&s, &token, &id, &doc_path, &json!({"save": {}})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(
        r.headers()["content-length"],
        long.len().to_string().as_str()
    );
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.ends_with("filename*=UTF-8''%C3%9Cbersicht%20%E2%80%93%20Q3%20%E2%9C%93.txt"),
        "{disposition}"
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), long.as_slice());
    let ranged = |range: &'static str| {
        let (s, token, id, path) = (&s, &token, &id, &doc_path);
        async move {
            s.http
                .post(s.url(&format!(
                    "/v5/RestoreSessions/{id}/Organization/{path}/Action"
                )))
                .bearer_auth(token)
                .header("Range", range)
                .json(&json!({"save": null}))
                .send()
                .await
                .unwrap()
        }
    };
    let r = ranged("bytes=1000-1999").await;
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 1000-1999/{}", long.len()).as_str()
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), &long[1000..2000]);
    let r = ranged("bytes=-10").await;
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &long[long.len() - 10..]);
    let r = ranged("bytes=299990-").await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), &long[299_990..]);
    let r = ranged("bytes=300000-").await;
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */300000");

    // A client that goes away stops the archive: its event fails, the server stays well.
    let r = action(
        &s,
        &token,
        &id,
        &format!("OneDrives/{d}"),
        &json!({"save": null}),
    )
    .await;
    let mut body = r.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    drop(body);
    let events = settled_events(&s, &token, &id).await;
    let last = events.last().unwrap();
    assert_eq!(last["status"], "Failed", "{events:?}");
    assert!(
        last["message"].as_str().unwrap().contains("went away"),
        "{last}"
    );

    // SharePoint: a site's libraries, a library as a ZIP, the whole site with library folders.
    let session = explore(&s, &token, &org, json!({"type": "vesp"})).await;
    let sp = session["id"].as_str().unwrap().to_owned();
    let sites = browse(&s, &token, &sp, "Sites").await;
    let t = sim.tenant();
    let site = &t.sites[0];
    let site_id = results(&sites)
        .iter()
        .find(|x| x["url"] == site.web_url)
        .unwrap_or_else(|| panic!("{sites}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let libraries = browse(&s, &token, &sp, &format!("Sites/{site_id}/Libraries")).await;
    assert_eq!(results(&libraries).len(), site.drives.len(), "{libraries}");
    let lib = &t.drives[site.drives[0]];
    let lib_handle = sim.drive(&lib.id).unwrap();
    let r = action(
        &s,
        &token,
        &sp,
        &format!("Sites/{site_id}/Libraries/{}", lib.id),
        &json!({"save": null}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let zip = unzip(r.bytes().await.unwrap().to_vec()).await;
    let files: BTreeMap<String, String> =
        zip.into_iter().filter(|(k, _)| !k.ends_with('/')).collect();
    assert_eq!(files, drive_files(&lib_handle, "/"));
    let folders = browse(
        &s,
        &token,
        &sp,
        &format!("Sites/{site_id}/Folders?parentId={}", lib.id),
    )
    .await;
    for f in results(&folders) {
        assert_eq!(f["type"], "LibraryFolder");
    }
    // A library's documents, and a folder's: every link of theirs answers (SharePoint lists no
    // version history route; the parent of a top-level document is its library).
    let mut docs = results(
        &browse(
            &s,
            &token,
            &sp,
            &format!("Sites/{site_id}/Documents?parentId={}", lib.id),
        )
        .await,
    );
    for f in results(&folders) {
        docs.extend(results(
            &browse(
                &s,
                &token,
                &sp,
                &format!(
                    "Sites/{site_id}/Documents?parentId={}",
                    f["id"].as_str().unwrap()
                ),
            )
            .await,
        ));
    }
    assert!(!docs.is_empty(), "{folders}");
    for doc in &docs {
        assert!(doc["_links"].get("versions").is_none(), "{doc}");
        follow_links(&s, &token, doc).await;
    }
    assert!(
        docs.iter().any(|d| d["_links"]["parent"]["href"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/libraries/{}", lib.id))),
        "{docs:?}"
    );
    let r = action(
        &s,
        &token,
        &sp,
        &format!("Sites/{site_id}"),
        &json!({"save": null}),
    )
    .await;
    let zip = unzip(r.bytes().await.unwrap().to_vec()).await;
    for drive in &site.drives {
        let name = &t.drives[*drive].name;
        assert!(
            zip.keys().any(|k| k.starts_with(&format!("{name}/"))),
            "{name} in {:?}",
            zip.keys()
        );
    }
    assert_eq!(
        json(
            s.get(
                &format!("/v5/RestoreSessions/{sp}/Organization/Sites/{site_id}/Lists"),
                &token
            )
            .await
        )
        .await["results"],
        json!([])
    );
}

#[tokio::test]
async fn hostile_requests_get_clear_errors_and_change_nothing() {
    let sim = start_sim(tenant(73)).await;
    let s = server(Backend::Sqlite).await;
    let token = s.admin_token().await;
    let org = add_organization(&s, &token, &sim).await;
    let job = add_job(&s, &token, &org, json!({"name": "All"})).await;
    assert_eq!(run_job(&s, &token, &job).await["status"], "Success");
    let t = sim.tenant();
    let (a, b) = (&t.drives[t.users[0].drive], &t.drives[t.users[1].drive]);

    // The public portal's string-built JSON: trailing commas, strings for booleans.
    let r = s
        .http
        .post(s.url(&format!("/v5/organizations/{org}/action")))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(format!(
            "{{\"explore\":{{\"datetime\":\"{}\",\"type\":\"veod\",\"showDeleted\":\"False\",\"showAllVersions\":\"true\",}},}}",
            // A minute ahead: the form has no seconds, and the backup ended this minute.
            (Utc::now() + chrono::Duration::minutes(1))
                .with_timezone(&TIME_ZONE)
                .format("%Y.%m.%d %H:%M")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = json(r).await["id"].as_str().unwrap().to_owned();
    let sessions_before = json(s.get("/v5/RestoreSessions", &token).await).await["results"]
        .as_array()
        .unwrap()
        .len();

    let bad_explores = [
        json!({"explore": {"type": "vex"}}),
        json!({"explore": {"type": "veod", "datetime": "yesterday"}}),
        json!({"explore": {"type": "veod"}, "stop": null}),
        json!({"explode": {"type": "veod"}}),
        json!(["explore"]),
        json!({"explore": {}}),
    ];
    for body in &bad_explores {
        let r = post(&s, &format!("/v5/Organizations/{org}/Action"), &token, body).await;
        assert_eq!(r.status(), 400, "{body}");
        assert!(json(r).await["message"].is_string());
    }
    let r = post(
        &s,
        &format!("/v5/Organizations/{}/Action", uuid_like()),
        &token,
        &json!({"explore": {"type": "veod"}}),
    )
    .await;
    assert_eq!(r.status(), 404);
    let after = json(s.get("/v5/RestoreSessions", &token).await).await["results"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        after, sessions_before,
        "no session opened by a refused request"
    );

    // Unknown and malformed sessions; the wrong kind of session.
    for path in [
        format!("/v5/RestoreSessions/{}", uuid_like()),
        "/v5/RestoreSessions/not-a-session".to_owned(),
        format!("/v5/RestoreSessions/{}/Organization/OneDrives", uuid_like()),
        format!("/v5/RestoreSessions/{id}/Organization/Sites"),
    ] {
        let r = s.get(&path, &token).await;
        assert_eq!(r.status(), 404, "{path}");
    }

    // An item of another OneDrive, `..` and encoded slashes in ids: not in this restore point.
    let top_b = browse(&s, &token, &id, &format!("OneDrives/{}/Documents", b.id)).await;
    let doc_b = results(&top_b)[0]["id"].as_str().unwrap().to_owned();
    for rest in [
        format!("OneDrives/{}/Documents/{doc_b}", a.id),
        format!("OneDrives/{}/Documents/..%2F..%2F{doc_b}", a.id),
        format!("OneDrives/{}/Folders/{doc_b}", b.id),
        format!("OneDrives/{}/Documents?parentId={doc_b}", b.id),
    ] {
        let r = s
            .get(
                &format!("/v5/RestoreSessions/{id}/Organization/{rest}"),
                &token,
            )
            .await;
        assert_eq!(r.status(), 404, "{rest}");
    }
    for (rest, body) in [
        (
            format!("OneDrives/{}/Documents/{doc_b}", a.id),
            json!({"save": null}),
        ),
        (
            format!("OneDrives/{}/Documents", a.id),
            json!({"save": {"documents": [{"id": doc_b}]}}),
        ),
        (
            format!("OneDrives/{}/Documents", b.id),
            json!({"save": {"documents": [{"id": doc_b}, {"id": "../../etc/passwd"}]}}),
        ),
    ] {
        let r = action(&s, &token, &id, &rest, &body).await;
        assert_eq!(r.status(), 404, "{rest} {body}");
    }
    for body in [
        json!({"save": {"documents": []}}),
        json!({"save": {"documents": "all"}}),
        json!({"delete": null}),
        json!({"save": null, "copyTo": {}}),
    ] {
        let r = action(
            &s,
            &token,
            &id,
            &format!("OneDrives/{}/Documents", b.id),
            &body,
        )
        .await;
        assert_eq!(r.status(), 400, "{body}");
    }
    let events = json(
        s.get(&format!("/v5/RestoreSessions/{id}/Events"), &token)
            .await,
    )
    .await;
    assert_eq!(events["results"], json!([]), "nothing was saved: {events}");

    // A stopped session answers 404 everywhere under it, and stopping it again too.
    let stop = json!({"stop": null});
    assert_eq!(
        post(
            &s,
            &format!("/v5/RestoreSessions/{id}/Action"),
            &token,
            &stop
        )
        .await
        .status(),
        200
    );
    assert_eq!(
        post(
            &s,
            &format!("/v5/RestoreSessions/{id}/Action"),
            &token,
            &stop
        )
        .await
        .status(),
        404
    );
    let r = action(
        &s,
        &token,
        &id,
        &format!("OneDrives/{}/Documents/{doc_b}", b.id),
        &json!({"save": null}),
    )
    .await;
    assert_eq!(r.status(), 404);
    assert!(json(r).await["message"]
        .as_str()
        .unwrap()
        .contains("stopped"));
    // Without a token: 401, not a hint about what exists.
    let r = s
        .http
        .get(s.url(&format!("/v5/RestoreSessions/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

fn uuid_like() -> String {
    "5c0ffee0-0000-4000-8000-000000000001".to_owned()
}

/// `m365backup export` beside the running server: a whole OneDrive, a folder at an earlier
/// point in time, a deleted folder with `--deleted`, a site's libraries; each ZIP equals the
/// tenant's files, and each export is a restore session of `cli` with its `Save` event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_from_the_command_line_equal_the_tenant() {
    let sim = start_sim(tenant(74)).await;
    let s = server(Backend::Sqlite).await;
    let token = s.admin_token().await;
    let org = add_organization(&s, &token, &sim).await;
    let org_name = json(s.get(&format!("/v5/Organizations/{org}"), &token).await).await["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let job = add_job(&s, &token, &org, json!({"name": "Nightly"})).await;
    let upn = sim.tenant().users[0].user_principal_name.clone();
    let drive = sim.onedrive(&upn).unwrap();
    let folder = drive.add_folder(None, "Projects").unwrap();
    let plan = drive
        .add_file_bytes(Some(&folder), "plan.txt", b"first plan")
        .unwrap();
    assert_eq!(run_job(&s, &token, &job).await["status"], "Success");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let first = Utc::now();
    drive.modify_file_bytes(&plan, b"second plan").unwrap();
    assert_eq!(run_job(&s, &token, &job).await["status"], "Success");

    let out = |name: &str| s.data_dir.path().join(name).display().to_string();
    let export = async |args: Vec<String>| {
        let mut all = vec!["export".to_owned(), org_name.clone()];
        all.extend(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        common::cli(&s, &refs).await
    };
    let files_of = |path: String| async move {
        unzip(std::fs::read(path).unwrap())
            .await
            .into_iter()
            .filter(|(k, _)| !k.ends_with('/'))
            .collect::<BTreeMap<_, _>>()
    };

    // The whole OneDrive, now.
    let (ok, stdout, stderr) = export(vec![
        "--onedrive".into(),
        upn.to_uppercase(),
        "--output".into(),
        out("drive.zip"),
    ])
    .await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("Saved"), "{stdout}");
    assert_eq!(files_of(out("drive.zip")).await, drive_files(&drive, "/"));
    // The output is not replaced without --force.
    let (ok, _, stderr) = export(vec![
        "--onedrive".into(),
        upn.clone(),
        "--output".into(),
        out("drive.zip"),
    ])
    .await;
    assert!(!ok && stderr.contains("--force"), "{stderr}");

    // One folder, as it was at the first backup.
    let (ok, _, stderr) = export(vec![
        "--onedrive".into(),
        upn.clone(),
        "--path".into(),
        "/Projects".into(),
        "--at".into(),
        first.to_rfc3339(),
        "--output".into(),
        out("first.zip"),
    ])
    .await;
    assert!(ok, "{stderr}");
    assert_eq!(
        files_of(out("first.zip")).await,
        BTreeMap::from([("Projects/plan.txt".to_owned(), sha256(b"first plan"))])
    );

    // Deleted in the tenant and backed up again: found only with --deleted.
    drive.delete(&folder).unwrap();
    assert_eq!(run_job(&s, &token, &job).await["status"], "Success");
    let deleted = async |extra: Option<&str>| {
        let mut args = vec![
            "--onedrive".to_owned(),
            upn.clone(),
            "--path".into(),
            "Projects/plan.txt".into(),
            "--output".into(),
            out("deleted.zip"),
        ];
        args.extend(extra.map(str::to_owned));
        export(args).await
    };
    let (ok, _, stderr) = deleted(None).await;
    assert!(!ok && stderr.contains("no 'Projects'"), "{stderr}");
    assert!(!std::path::Path::new(&out("deleted.zip")).exists());
    let (ok, _, stderr) = deleted(Some("--deleted")).await;
    assert!(ok, "{stderr}");
    assert_eq!(
        files_of(out("deleted.zip")).await,
        BTreeMap::from([("plan.txt".to_owned(), sha256(b"second plan"))])
    );

    // A site: each library a folder of the archive.
    let t = sim.tenant();
    let site = &t.sites[0];
    let (ok, _, stderr) = export(vec![
        "--site".into(),
        site.display_name.clone(),
        "--output".into(),
        out("site.zip"),
    ])
    .await;
    assert!(ok, "{stderr}");
    let zip = files_of(out("site.zip")).await;
    let mut want = BTreeMap::new();
    assert_eq!(site.drives.len(), 2);
    for &d in &site.drives {
        let library = &t.drives[d];
        for (path, sha) in drive_files(&sim.drive(&library.id).unwrap(), "/") {
            want.insert(format!("{}/{path}", library.name), sha);
        }
    }
    assert_eq!(zip, want);
    let (ok, _, stderr) = export(vec![
        "--site".into(),
        "no such site".into(),
        "--output".into(),
        out("none.zip"),
    ])
    .await;
    assert!(!ok && stderr.contains("no library"), "{stderr}");

    // Each export is a session of `cli`, stopped, with one successful Save event.
    let by_cli = cli_sessions(&s, &token).await;
    // Six: the refused --force opened none; the two not found saved nothing.
    assert_eq!(by_cli.len(), 6, "{by_cli:?}");
    assert!(by_cli.iter().all(|r| r["state"] == "Stopped"));
    let saved: Vec<&str> = by_cli
        .iter()
        .filter_map(|r| r["details"].as_str())
        .filter(|d| !d.starts_with("0 items"))
        .collect();
    assert_eq!(saved.len(), 4, "{by_cli:?}");
    assert!(
        saved.iter().all(|d| d.ends_with("success, 0 failed)")),
        "{saved:?}"
    );
    s.stop().await;
    sim.shutdown().await;
}

/// `m365backup restore` beside the running server: a folder deleted in the tenant goes back
/// where it was, with its bytes; a copy lands in another user's OneDrive under a folder; the
/// work is a `cli` restore session with its `Restore` event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restores_from_the_command_line_put_the_files_back() {
    let sim = start_sim(tenant(75)).await;
    let s = server(Backend::Sqlite).await;
    let token = s.admin_token().await;
    let org = add_organization(&s, &token, &sim).await;
    let job = add_job(&s, &token, &org, json!({"name": "Nightly"})).await;
    let (upn, other) = {
        let users = &sim.tenant().users;
        (
            users[0].user_principal_name.clone(),
            users[1].user_principal_name.clone(),
        )
    };
    let drive = sim.onedrive(&upn).unwrap();
    let folder = drive.add_folder(None, "Projects").unwrap();
    let plan: Vec<u8> = (0..5_000_000u32).map(|i| (i % 241) as u8).collect();
    drive
        .add_file_bytes(Some(&folder), "plan.bin", &plan)
        .unwrap();
    drive
        .add_file_bytes(Some(&folder), "notes.txt", b"notes")
        .unwrap();
    assert_eq!(run_job(&s, &token, &job).await["status"], "Success");
    drive.delete(&folder).unwrap();
    assert_eq!(run_job(&s, &token, &job).await["status"], "Success");

    let restore = async |extra: &[&str]| {
        let mut args = vec![
            "restore",
            org.as_str(),
            "--onedrive",
            &upn,
            "--path",
            "/Projects",
            "--deleted",
        ];
        args.extend_from_slice(extra);
        common::cli(&s, &args).await
    };
    let (ok, stdout, stderr) = restore(&[]).await;
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("3 items: 3 restored"), "{stdout}");
    assert_eq!(
        drive_files(&drive, "/Projects"),
        BTreeMap::from([
            ("plan.bin".to_owned(), sha256(&plan)),
            ("notes.txt".to_owned(), sha256(b"notes")),
        ])
    );
    // Again: nothing to write.
    let (ok, stdout, stderr) = restore(&[]).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("0 restored, 3 unchanged"), "{stdout}");

    // A copy into another user's OneDrive, under a folder.
    let (ok, stdout, stderr) =
        restore(&["--to-onedrive", &other, "--to-folder", "From backup"]).await;
    assert!(ok, "{stdout}\n{stderr}");
    let target = sim.onedrive(&other).unwrap();
    assert_eq!(
        drive_files(&target, "/From backup/Projects"),
        drive_files(&drive, "/Projects")
    );
    // A folder for a restore to the original location is refused before anything runs.
    let (ok, _, stderr) = restore(&["--to-folder", "x"]).await;
    assert!(!ok && stderr.contains("--to-folder"), "{stderr}");

    let by_cli = cli_sessions(&s, &token).await;
    assert_eq!(by_cli.len(), 3, "{by_cli:?}");
    assert!(by_cli
        .iter()
        .all(|r| r["state"] == "Stopped" && r["result"] == "Success"));
    // Each run is in the audit trail, newest first, with its session and where it wrote.
    let trail = json(
        s.get("/v5/AuditItems?kind=ItemsRestored,ItemsCopied", &token)
            .await,
    )
    .await;
    let items = results(&trail);
    let kinds: Vec<&str> = items.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["ItemsCopied", "ItemsRestored", "ItemsRestored"],
        "{trail}"
    );
    assert!(items
        .iter()
        .all(|i| i["via"] == "Cli" && i["action"] == "m365backup restore"));
    assert_eq!(
        items[0]["resource"],
        format!("/v5/RestoreSessions/{}", by_cli[0]["id"].as_str().unwrap())
    );
    assert!(
        items[0]["details"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/Projects to the OneDrive of {other}")),
        "{trail}"
    );
    s.stop().await;
    sim.shutdown().await;
}
