//! Backup repositories and proxies over HTTPS on both stores: the default repository of first
//! start, local and object-storage repositories (a real S3-compatible server), their secrets
//! sealed, bad input refused, retention on demand, the SQL catalog browsed, wiped and rebuilt,
//! and usedRepositories of an organization.

use crate::common;

use chrono::{TimeZone, Utc};
use common::{assert_plaintext_absent, json, organization_body, start_sim, Backend, TestServer};
use m365backup_repo::testing::{
    Azurite, S3Server, AZURITE_ACCOUNT, AZURITE_KEY, S3_ACCESS_KEY, S3_SECRET_KEY,
};
use m365backup_repo::{
    Item, ItemKind, ObjectKind, ProtectedObject, Repository, SnapshotFilter, SnapshotRecord,
    SnapshotSpec,
};
use serde_json::{json, Value};

on_both_stores! {
    default_repository_and_proxy_exist_from_first_start;
    local_repositories_are_added_edited_and_removed;
    bad_repository_input_is_refused_and_changes_nothing;
    object_storage_repository_on_an_s3_server;
    object_storage_repository_on_azurite;
    retention_applies_on_demand_through_the_action;
    retention_runs_on_schedule_without_a_call;
    prune_without_retention_frees_only_unused_data;
    sql_catalog_browses_and_rebuilds_the_same;
    used_repositories_of_an_organization;
}

async fn send(
    s: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut r = s.http.request(method, s.url(path)).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.unwrap()
}

async fn post(s: &TestServer, path: &str, token: &str, body: Value) -> reqwest::Response {
    send(s, reqwest::Method::POST, path, token, Some(body)).await
}

/// `POST /v5/BackupRepositories/{id}/Action`, asserting 200; the answer.
async fn action(s: &TestServer, token: &str, id: impl std::fmt::Display, body: Value) -> Value {
    let r = post(
        s,
        &format!("/v5/BackupRepositories/{id}/Action"),
        token,
        body,
    )
    .await;
    assert_eq!(r.status(), 200);
    json(r).await
}

async fn default_repository_and_proxy_exist_from_first_start(backend: Backend) {
    let mut s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    assert_eq!(
        s.get("/v5/proxies?extendedView=null", &token)
            .await
            .status(),
        400,
        "extendedView is a boolean"
    );
    assert_eq!(
        s.get("/v5/proxies?extendedView=", &token).await.status(),
        200,
        "an empty value is no value"
    );
    let proxies = json(s.get("/v5/proxies?extendedView=true", &token).await).await;
    let proxies = proxies.as_array().unwrap();
    assert_eq!(proxies.len(), 1);
    let p = &proxies[0];
    let proxy_id = p["id"].as_str().unwrap().to_owned();
    assert_eq!(p["status"], "Online");
    assert_eq!(p["isDefault"], true);
    assert_eq!(p["type"], "Local");
    assert_eq!(p["port"], s.addr.port());
    assert_eq!(p["enableNetworkThrottling"], false);
    assert!(!p["hostName"].as_str().unwrap().is_empty());
    assert!(p["_links"]["repositories"]["href"]
        .as_str()
        .unwrap()
        .ends_with("/repositories"));

    let repos = json(s.get("/v5/BackupRepositories", &token).await).await;
    let repos = repos.as_array().unwrap();
    assert_eq!(repos.len(), 1);
    let r = &repos[0];
    assert_eq!(r["name"], "Default Backup Repository");
    assert!(r["description"].as_str().is_some());
    let expected_path = s.data_dir.path().join("repository");
    assert_eq!(r["path"], expected_path.display().to_string());
    assert!(
        expected_path.join("config").exists(),
        "the repository is created on disk"
    );
    assert_eq!(r["proxyId"], proxy_id.as_str());
    assert!(r["capacityBytes"].as_u64().unwrap() > 0);
    assert!(r["freeSpaceBytes"].as_u64().unwrap() > 0);
    assert_eq!(r["isOutOfSync"], false);
    assert!(r.get("objectStorageId").is_none());
    assert_eq!(r["retentionType"], "SnapshotBased");
    assert_eq!(r["retentionPeriodType"], "Yearly");
    assert_eq!(r["yearlyRetentionPeriod"], "Years3");
    assert_eq!(r["dailyTime"], "18:00:00");
    assert!(r["_links"]["proxy"]["href"]
        .as_str()
        .unwrap()
        .contains(&proxy_id));
    let id = r["id"].as_str().unwrap().to_owned();
    // Case-insensitive paths, one trailing slash.
    let one = json(
        s.get(&format!("/v5/backuprepositories/{id}/"), &token)
            .await,
    )
    .await;
    assert_eq!(one["id"], id.as_str());
    let of_proxy = json(
        s.get(&format!("/v5/Proxies/{proxy_id}/Repositories"), &token)
            .await,
    )
    .await;
    assert_eq!(of_proxy.as_array().unwrap().len(), 1);
    let filtered = json(
        s.get(
            &format!("/v5/BackupRepositories?proxyId={proxy_id}"),
            &token,
        )
        .await,
    )
    .await;
    assert_eq!(filtered.as_array().unwrap().len(), 1);
    assert_eq!(
        s.get(&format!("/v5/Proxies/{}", uuid::Uuid::new_v4()), &token)
            .await
            .status(),
        404
    );
    // A node whose heartbeat stopped is Offline; it is Online again when it beats.
    let parts = m365backup_store::open_parts(
        s.settings.database_url.as_ref().map(|u| u.expose()),
        s.data_dir.path(),
    )
    .await
    .unwrap();
    let proxy_uuid: uuid::Uuid = proxy_id.parse().unwrap();
    let stale =
        Utc::now() - m365backup_core::proxies::ONLINE_WINDOW - chrono::TimeDelta::seconds(5);
    parts
        .proxies
        .proxy_heartbeat(proxy_uuid, stale)
        .await
        .unwrap();
    let p = json(s.get(&format!("/v5/Proxies/{proxy_id}"), &token).await).await;
    assert_eq!(p["status"], "Offline", "{p}");
    let listed = json(s.get("/v5/Proxies", &token).await).await;
    assert_eq!(listed[0]["status"], "Offline", "{listed}");
    parts
        .proxies
        .proxy_heartbeat(proxy_uuid, Utc::now())
        .await
        .unwrap();
    let p = json(s.get(&format!("/v5/Proxies/{proxy_id}"), &token).await).await;
    assert_eq!(p["status"], "Online", "{p}");
    drop(parts);
    // The same proxy and repository after a restart: nothing is created twice.
    s.restart().await;
    let token = s.admin_token().await;
    let again = json(s.get("/v5/BackupRepositories", &token).await).await;
    assert_eq!(again.as_array().unwrap().len(), 1);
    assert_eq!(again[0]["id"], id.as_str());
    let proxies = json(s.get("/v5/Proxies", &token).await).await;
    assert_eq!(proxies[0]["id"], proxy_id.as_str());
    // The default repository cannot be removed.
    let r = send(
        &s,
        reqwest::Method::DELETE,
        &format!("/v5/BackupRepositories/{id}"),
        &token,
        None,
    )
    .await;
    assert_eq!(r.status(), 409);
    s.stop().await;
}

async fn local_repositories_are_added_edited_and_removed(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let folder = s.data_dir.path().join("second");
    // Any-case keys, string booleans and enums, read-only fields ignored.
    let r = post(
        &s,
        "/v5/backuprepositories",
        &token,
        json!({
            "Name": "Second", "DESCRIPTION": "for tests", "path": folder.display().to_string(),
            "retentionType": "itemlevel", "RetentionPeriodType": "Daily", "dailyRetentionPeriod": 30,
            "dailyTime": "02:30", "dailyType": "workdays", "isOutOfSync": "false", "_links": {},
            "encryptionPassword": "a strong repository password"
        }),
    )
    .await;
    assert_eq!(r.status(), 201);
    let created = json(r).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["name"], "Second");
    assert_eq!(created["retentionType"], "ItemLevel");
    assert_eq!(created["dailyRetentionPeriod"], 30);
    assert_eq!(created["dailyTime"], "02:30:00");
    assert_eq!(created["dailyType"], "Workdays");
    assert!(created.get("encryptionPassword").is_none());
    assert!(folder.join("config").exists());
    // The same name again: 409, in any case.
    let dup = post(
        &s,
        "/v5/BackupRepositories",
        &token,
        json!({"name": "SECOND", "path": s.data_dir.path().join("third").display().to_string()}),
    )
    .await;
    assert_eq!(dup.status(), 409);
    // A GET result sent back with changes.
    let mut edited = created.clone();
    edited["name"] = json!("Second (renamed)");
    edited["retentionType"] = json!("SnapshotBased");
    edited["retentionPeriodType"] = json!("Monthly");
    edited["monthlyRetentionPeriod"] = json!(6);
    let r = send(
        &s,
        reqwest::Method::PUT,
        &format!("/v5/BackupRepositories/{id}"),
        &token,
        Some(edited),
    )
    .await;
    assert_eq!(r.status(), 204);
    let now = json(s.get(&format!("/v5/BackupRepositories/{id}"), &token).await).await;
    assert_eq!(now["name"], "Second (renamed)");
    assert_eq!(now["retentionType"], "SnapshotBased");
    assert_eq!(now["monthlyRetentionPeriod"], 6);
    assert_eq!(now["description"], "for tests");
    let moved = send(
        &s,
        reqwest::Method::PUT,
        &format!("/v5/BackupRepositories/{id}"),
        &token,
        Some(json!({"path": "/elsewhere"})),
    )
    .await;
    assert_eq!(moved.status(), 400);
    // Attaching the same folder again needs its password, and the right one.
    let body = |password: Option<&str>| {
        let mut b = json!({"name": "Attached", "path": folder.display().to_string()});
        if let Some(p) = password {
            b["encryptionPassword"] = json!(p);
        }
        b
    };
    let r = post(&s, "/v5/BackupRepositories", &token, body(None)).await;
    assert_eq!(r.status(), 400);
    assert!(json(r).await["message"]
        .as_str()
        .unwrap()
        .contains("encryptionPassword"));
    let r = post(
        &s,
        "/v5/BackupRepositories",
        &token,
        body(Some("not the password")),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(json(r).await["message"]
        .as_str()
        .unwrap()
        .contains("password is wrong"));
    // Removing forgets the repository; its data stays and can be attached again.
    let r = send(
        &s,
        reqwest::Method::DELETE,
        &format!("/v5/BackupRepositories/{id}"),
        &token,
        None,
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        s.get(&format!("/v5/BackupRepositories/{id}"), &token)
            .await
            .status(),
        404
    );
    assert!(folder.join("config").exists());
    let r = post(
        &s,
        "/v5/BackupRepositories",
        &token,
        body(Some("a strong repository password")),
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_plaintext_absent(&s, "a strong repository password").await;
    s.stop().await;
}

async fn bad_repository_input_is_refused_and_changes_nothing(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let folder = s.data_dir.path().join("x").display().to_string();
    for (body, needle) in [
        (json!({"path": folder}), "name"),
        (json!({"name": "A"}), "path or objectStorage"),
        (json!({"name": "A", "path": "relative/folder"}), "absolute"),
        (
            json!({"name": "A", "path": "/proc/m365backup/x"}),
            "cannot create the folder",
        ),
        (
            json!({"name": "A", "path": folder, "objectStorage": {"type": "S3Compatible"}}),
            "either",
        ),
        (
            json!({"name": "A", "path": folder, "dailyTime": "25:99"}),
            "dailyTime",
        ),
        (
            json!({"name": "A", "path": folder, "retentionType": "Forever"}),
            "retentionType",
        ),
        (
            json!({"name": "A", "path": folder, "dailyRetentionPeriod": 0, "retentionPeriodType": "Daily"}),
            "dailyRetentionPeriod",
        ),
        (
            json!({"name": "A", "path": folder, "encryptionPassword": "short"}),
            "encryptionPassword",
        ),
        (
            json!({"name": "A", "objectStorage": {"type": "S3Compatible", "bucket": "b1b"}}),
            "endpoint",
        ),
        (
            json!({"name": "A", "objectStorage": {"type": "S3Compatible", "endpoint": "http://127.0.0.1:1", "bucket": "Bad_Bucket", "accessKeyId": "k", "secretAccessKey": "s", "allowHttp": true}}),
            "bucket",
        ),
        (
            json!({"name": "A", "objectStorage": {"type": "S3Compatible", "endpoint": "http://127.0.0.1:1", "bucket": "bucket", "accessKeyId": "k", "secretAccessKey": "s"}}),
            "allowHttp",
        ),
        (
            json!({"name": "A", "objectStorage": {"type": "Tape"}}),
            "objectStorage.type",
        ),
        (
            json!({"name": "A", "path": folder, "proxyId": uuid::Uuid::new_v4().to_string()}),
            "proxyId",
        ),
    ] {
        let r = post(&s, "/v5/BackupRepositories", &token, body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
        let message = json(r).await["message"].as_str().unwrap().to_owned();
        assert!(message.contains(needle), "{body}: {message}");
    }
    let malformed = s
        .http
        .post(s.url("/v5/BackupRepositories"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert!(!s.data_dir.path().join("x").exists(), "nothing was created");
    let repos = json(s.get("/v5/BackupRepositories", &token).await).await;
    assert_eq!(repos.as_array().unwrap().len(), 1);
    // Unknown ids and actions.
    let unknown = uuid::Uuid::new_v4();
    assert_eq!(
        s.get(&format!("/v5/BackupRepositories/{unknown}"), &token)
            .await
            .status(),
        404
    );
    assert_eq!(
        s.get("/v5/BackupRepositories/not-a-guid", &token)
            .await
            .status(),
        404
    );
    let id = repos[0]["id"].as_str().unwrap();
    let action_path = format!("/v5/BackupRepositories/{id}/Action");
    let action = |b: Value| post(&s, &action_path, &token, b);
    assert_eq!(action(json!({"explode": null})).await.status(), 400);
    assert_eq!(
        action(json!({"applyRetention": null, "check": null}))
            .await
            .status(),
        400
    );
    assert_eq!(
        action(json!({"check": {"readDataSubset": "150%"}}))
            .await
            .status(),
        400
    );
    // check's options are an object (or null), readData a boolean: anything else is refused,
    // even beside a valid readDataSubset.
    for bad in [
        json!({"check": 5}),
        json!({"check": {"readData": {}}}),
        json!({"check": {"readData": 1, "readDataSubset": "100%"}}),
    ] {
        assert_eq!(action(bad.clone()).await.status(), 400, "{bad}");
    }
    assert_eq!(
        s.get("/v5/ObjectStorageRepositories", &token)
            .await
            .status(),
        200
    );
    assert_eq!(
        s.get(&format!("/v5/ObjectStorageRepositories/{unknown}"), &token)
            .await
            .status(),
        404
    );
    s.stop().await;
}

fn s3_body(server: &S3Server, bucket: &str, secret: &str) -> Value {
    json!({
        "name": format!("S3 {bucket}"),
        "objectStorage": {
            "type": "S3Compatible", "endpoint": server.endpoint, "region": "us-east-1",
            "bucket": bucket, "prefix": "m365/backups", "accessKeyId": S3_ACCESS_KEY,
            "secretAccessKey": secret, "allowHttp": "true"
        },
        "encryptionPassword": "repository password for s3"
    })
}

async fn object_storage_repository_on_an_s3_server(backend: Backend) {
    let server = S3Server::shared();
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let bucket = format!("srv{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    // The bucket must exist, the credentials must be accepted, the endpoint must answer.
    assert_refused(
        &s,
        &token,
        s3_body(server, &bucket, S3_SECRET_KEY),
        400,
        "does not exist",
    )
    .await;
    server.create_bucket(&bucket);
    assert_refused(
        &s,
        &token,
        s3_body(server, &bucket, "wrong-secret-key"),
        400,
        "access denied",
    )
    .await;
    let mut unreachable = s3_body(server, &bucket, S3_SECRET_KEY);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    unreachable["objectStorage"]["endpoint"] = json!(format!("http://127.0.0.1:{closed}"));
    assert_refused(&s, &token, unreachable, 503, "cannot be reached").await;

    let r = post(
        &s,
        "/v5/BackupRepositories",
        &token,
        s3_body(server, &bucket, S3_SECRET_KEY),
    )
    .await;
    assert_eq!(r.status(), 201);
    let created = json(r).await;
    assert_eq!(created["path"], format!("s3://{bucket}/m365/backups"));
    assert_eq!(created["freeSpaceBytes"], 0);
    assert_eq!(created["objectStorageEncryptionEnabled"], true);
    let os_id = created["objectStorageId"].as_str().unwrap().to_owned();
    let text = created.to_string();
    assert!(!text.contains(S3_SECRET_KEY) && !text.contains("repository password for s3"));
    let list = json(s.get("/v5/objectstoragerepositories", &token).await).await;
    let os = &list.as_array().unwrap()[0];
    assert_eq!(os["id"], os_id.as_str());
    assert_eq!(os["type"], "S3Compatible");
    assert_eq!(os["bucket"]["name"], bucket.as_str());
    assert_eq!(os["bucket"]["servicePoint"], server.endpoint.as_str());
    assert_eq!(os["bucket"]["customRegionId"], "us-east-1");
    assert_eq!(os["folder"], "m365/backups");
    assert!(os["usedSpaceBytes"].is_u64());
    assert!(!os.to_string().contains(S3_SECRET_KEY));
    let one = json(
        s.get(&format!("/v5/ObjectStorageRepositories/{os_id}"), &token)
            .await,
    )
    .await;
    assert_eq!(one["name"], created["name"]);
    // The repository really lives in the bucket and works: a restore point, then check.
    let id: uuid::Uuid = created["id"].as_str().unwrap().parse().unwrap();
    let repo = open_repository(&s, id).await;
    write_files(&repo, "org-1", "drive-s3", 1, &[("a", 300_000)]).await;
    assert!(server.object_path(&bucket, "m365/backups/config").exists());
    let check = action(&s, &token, id, json!({"Check": {"readData": "true"}})).await;
    assert_eq!(check["ok"], true, "{check}");
    assert_eq!(check["restorePoints"], 1);
    assert!(check["packsRead"].as_u64().unwrap() >= 1);
    assert!(
        json(s.get(&format!("/v5/BackupRepositories/{id}"), &token).await).await["capacityBytes"]
            .as_u64()
            .unwrap()
            > 300_000
    );
    assert_plaintext_absent(&s, S3_SECRET_KEY).await;
    assert_plaintext_absent(&s, "repository password for s3").await;
    s.stop().await;
}

fn azure_body(azurite: &Azurite, container: &str, key: &str) -> Value {
    json!({
        "name": format!("Azure {container}"),
        "objectStorage": {
            "type": "AzureBlob", "endpoint": azurite.endpoint(), "accountName": AZURITE_ACCOUNT,
            "accountKey": key, "container": container, "folder": "m365", "allowHttp": true
        },
        "encryptionPassword": "repository password for azure"
    })
}

/// An Azure Blob repository added through the API (Azurite), then used: a restore point
/// written, checked reading its data, browsed after the server restarts.
async fn object_storage_repository_on_azurite(backend: Backend) {
    let azurite = Azurite::shared();
    let mut s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let container = format!("srv{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    assert_refused(
        &s,
        &token,
        azure_body(azurite, &container, AZURITE_KEY),
        400,
        "does not exist",
    )
    .await;
    azurite.create_container(&container).await;
    let wrong_key = "d3JvbmcgYXp1cml0ZSBrZXkgZm9yIHRlc3Rpbmc=";
    assert_refused(
        &s,
        &token,
        azure_body(azurite, &container, wrong_key),
        400,
        "access denied",
    )
    .await;
    let r = post(
        &s,
        "/v5/BackupRepositories",
        &token,
        azure_body(azurite, &container, AZURITE_KEY),
    )
    .await;
    assert_eq!(r.status(), 201);
    let created = json(r).await;
    assert_eq!(
        created["path"],
        format!("azure://{AZURITE_ACCOUNT}/{container}/m365")
    );
    assert_eq!(created["objectStorageEncryptionEnabled"], true);
    assert!(!created.to_string().contains(AZURITE_KEY));
    let os_id = created["objectStorageId"].as_str().unwrap().to_owned();
    let os = json(
        s.get(&format!("/v5/ObjectStorageRepositories/{os_id}"), &token)
            .await,
    )
    .await;
    assert_eq!(os["type"], "AzureBlob");
    assert_eq!(os["bucket"]["name"], container.as_str());
    assert_eq!(os["bucket"]["servicePoint"], azurite.endpoint().as_str());
    assert_eq!(os["folder"], "m365");
    assert!(!os.to_string().contains(AZURITE_KEY));

    let id: uuid::Uuid = created["id"].as_str().unwrap().parse().unwrap();
    let repo = open_repository(&s, id).await;
    let snap = write_files(&repo, "org-1", "drive-az", 1, &[("a", 300_000), ("b", 7)]).await;
    drop(repo);
    let check = action(&s, &token, id, json!({"check": {"readData": true}})).await;
    assert_eq!(check["ok"], true, "{check}");
    assert_eq!(check["restorePoints"], 1);
    assert!(check["packsRead"].as_u64().unwrap() >= 1, "{check}");
    let one = json(s.get(&format!("/v5/BackupRepositories/{id}"), &token).await).await;
    assert!(one["capacityBytes"].as_u64().unwrap() > 300_000, "{one}");
    // After a restart the sealed key opens it again.
    s.restart().await;
    let token = s.admin_token().await;
    let repo = open_repository(&s, id).await;
    let back = repo.snapshot(snap.id).await.unwrap();
    let files = repo.list_folder(&back, Some("root-folder")).await.unwrap();
    assert_eq!(
        files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        ["a.bin", "b.bin"]
    );
    let data: Vec<bytes::Bytes> = futures_util::TryStreamExt::try_collect(
        repo.read_content(files[0].content.as_ref().unwrap(), None)
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(data.concat().len(), 300_000);
    drop(repo);
    let r = send(
        &s,
        reqwest::Method::DELETE,
        &format!("/v5/BackupRepositories/{id}"),
        &token,
        None,
    )
    .await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_plaintext_absent(&s, AZURITE_KEY).await;
    assert_plaintext_absent(&s, "repository password for azure").await;
    s.stop().await;
}

fn object(org: &str, drive: &str) -> ProtectedObject {
    ProtectedObject {
        organization_id: org.into(),
        kind: ObjectKind::OneDrive,
        id: drive.into(),
        name: format!("OneDrive {drive}"),
        url: None,
        owner_id: None,
        owner_name: None,
        attributes: None,
    }
}

fn day(d: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, d, 20, 0, 0).unwrap()
}

/// A restore point on `day(d)` with a folder and the given files (name, size).
async fn write_files(
    repo: &Repository,
    org: &str,
    drive: &str,
    d: u32,
    files: &[(&str, usize)],
) -> SnapshotRecord {
    let w = repo
        .begin_snapshot(SnapshotSpec {
            time: Some(day(d)),
            ..SnapshotSpec::new(object(org, drive))
        })
        .await
        .unwrap();
    w.put_item(Item::folder("root-folder", None, "Documents"))
        .await
        .unwrap();
    for (name, size) in files {
        let mut item = Item::file(*name, Some("root-folder"), format!("{name}.bin"));
        item.modified = Some(day(d));
        // Incompressible, like most files: what is stored is about what was read.
        let data: Vec<u8> = (0..size.div_ceil(16))
            .flat_map(|_| *uuid::Uuid::new_v4().as_bytes())
            .take(*size)
            .collect();
        let bytes = bytes::Bytes::from(data);
        w.put_file(
            item,
            futures_util::stream::iter([Ok::<_, std::io::Error>(bytes)]),
        )
        .await
        .unwrap();
    }
    w.commit(None).await.unwrap()
}

/// The server's own handle on repository `id`.
async fn open_repository(s: &TestServer, id: uuid::Uuid) -> Repository {
    s.server
        .as_ref()
        .unwrap()
        .repositories
        .open(id)
        .await
        .unwrap()
}

/// `POST /v5/BackupRepositories` of `body`, refused with `status` and a message containing
/// `needle`.
async fn assert_refused(s: &TestServer, token: &str, body: Value, status: u16, needle: &str) {
    let r = post(s, "/v5/BackupRepositories", token, body).await;
    assert_eq!(r.status(), status);
    let message = json(r).await["message"].as_str().unwrap().to_owned();
    assert!(message.contains(needle), "{message}");
}

async fn default_repository(s: &TestServer, token: &str) -> (uuid::Uuid, Repository) {
    let repos = json(s.get("/v5/BackupRepositories", token).await).await;
    let id: uuid::Uuid = repos[0]["id"].as_str().unwrap().parse().unwrap();
    (id, open_repository(s, id).await)
}

async fn retention_applies_on_demand_through_the_action(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let (id, repo) = default_repository(&s, &token).await;
    for d in 1..=4 {
        write_files(&repo, "org-1", "drive-r", d, &[(&format!("f{d}"), 200_000)]).await;
    }
    // Keep one day: every restore point (all in May 2026, before now) goes, and their data.
    // (Numbers may come as strings, as portals build them: "1" is read as 1.)
    let r = send(
        &s,
        reqwest::Method::PUT,
        &format!("/v5/BackupRepositories/{id}"),
        &token,
        Some(json!({"retentionPeriodType": "Daily", "dailyRetentionPeriod": "1"})),
    )
    .await;
    assert_eq!(r.status(), 204);
    let before = repo.stored_bytes().await.unwrap();
    assert!(before > 800_000);
    // The restore points go at once; their packs after the grace period (they are new here).
    let report = action(&s, &token, id, json!({"applyretention": null})).await;
    assert_eq!(report["restorePointsRemoved"], 4, "{report}");
    assert!(repo
        .snapshots(&SnapshotFilter::default())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(repo.snapshot_ids().await.unwrap().len(), 0);
    s.stop().await;
}

/// `{"prune": null}`: no restore point goes, whatever the retention; data none uses (here what
/// an earlier retention run let go, past the grace period) is deleted.
async fn prune_without_retention_frees_only_unused_data(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let (id, repo) = default_repository(&s, &token).await;
    write_files(&repo, "org-1", "drive-p", 1, &[("old", 1_000_000)]).await;
    let w = repo
        .begin_snapshot(SnapshotSpec::new(object("org-1", "drive-q")))
        .await
        .unwrap();
    w.put_file(
        Item::file("new", None, "new.bin"),
        futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(
            b"recent content",
        ))]),
    )
    .await
    .unwrap();
    let recent = w.commit(None).await.unwrap();
    // A week's retention takes the May restore point; its data stays (younger than the grace).
    let r = send(
        &s,
        reqwest::Method::PUT,
        &format!("/v5/BackupRepositories/{id}"),
        &token,
        Some(json!({"retentionPeriodType": "Daily", "dailyRetentionPeriod": 7})),
    )
    .await;
    assert_eq!(r.status(), 204);
    let report = action(&s, &token, id, json!({"applyRetention": null})).await;
    assert_eq!(report["restorePointsRemoved"], 1, "{report}");
    assert_eq!(report["packsDeleted"], 0, "{report}");
    // Nothing is young any more: every pack is older than the grace period.
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
    let data = s.data_dir.path().join("repository/data");
    for dir in std::fs::read_dir(&data).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let f = std::fs::File::options()
                .write(true)
                .open(f.unwrap().path())
                .unwrap();
            f.set_modified(long_ago).unwrap();
        }
    }
    let check = action(&s, &token, id, json!({"check": null})).await;
    assert!(check["unreferencedChunks"].as_u64().unwrap() > 0, "{check}");
    let report = action(&s, &token, id, json!({"PRUNE": null})).await;
    assert_eq!(report["restorePointsRemoved"], 0, "{report}");
    assert!(
        report["packsDeleted"].as_u64().unwrap() + report["packsRepacked"].as_u64().unwrap() >= 1,
        "{report}"
    );
    assert!(
        report["bytesFreed"].as_u64().unwrap() > 1_000_000,
        "{report}"
    );
    let check = action(&s, &token, id, json!({"check": {"readData": true}})).await;
    assert_eq!(check["ok"], true, "{check}");
    assert_eq!(check["restorePoints"], 1, "{check}");
    assert_eq!(check["unreferencedChunks"], 0, "{check}");
    let kept = repo.snapshot(recent.id).await.unwrap();
    let item = repo.item(&kept, "new").await.unwrap().unwrap();
    let back: Vec<bytes::Bytes> = futures_util::TryStreamExt::try_collect(
        repo.read_content(item.content.as_ref().unwrap(), None)
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(back.concat(), b"recent content");
    s.stop().await;
}

async fn sql_catalog_browses_and_rebuilds_the_same(backend: Backend) {
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let (id, repo) = default_repository(&s, &token).await;
    let s1 = write_files(
        &repo,
        "org-1",
        "drive-c",
        1,
        &[("a", 10), ("b", 2_000_000), ("c", 0)],
    )
    .await;
    // Day 2: b changes, c goes, d comes; a is carried over.
    let w = repo
        .begin_snapshot(SnapshotSpec {
            time: Some(day(2)),
            ..SnapshotSpec::new(object("org-1", "drive-c"))
        })
        .await
        .unwrap();
    w.put_file(
        Item::file("b", Some("root-folder"), "b.bin"),
        futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"new b"))]),
    )
    .await
    .unwrap();
    w.delete_item("c").await.unwrap();
    w.put_file(
        Item::file("d", Some("root-folder"), "d.bin"),
        futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"d"))]),
    )
    .await
    .unwrap();
    let s2 = w.commit(None).await.unwrap();
    let browse = |snap: SnapshotRecord| {
        let repo = repo.clone();
        async move {
            let top = repo.list_folder(&snap, None).await.unwrap();
            assert_eq!(top.len(), 1);
            assert_eq!(top[0].kind, ItemKind::Folder);
            let files = repo.list_folder(&snap, Some("root-folder")).await.unwrap();
            let mut out = Vec::new();
            for f in files {
                let data: Vec<bytes::Bytes> = futures_util::TryStreamExt::try_collect(
                    repo.read_content(f.content.as_ref().unwrap(), None)
                        .unwrap(),
                )
                .await
                .unwrap();
                out.push((f.name.clone(), data.concat().len()));
            }
            out
        }
    };
    let b1 = browse(s1.clone()).await;
    let b2 = browse(s2.clone()).await;
    assert_eq!(
        b1,
        [
            ("a.bin".to_owned(), 10),
            ("b.bin".to_owned(), 2_000_000),
            ("c.bin".to_owned(), 0)
        ]
    );
    assert_eq!(
        b2,
        [
            ("a.bin".to_owned(), 10),
            ("b.bin".to_owned(), 5),
            ("d.bin".to_owned(), 1)
        ]
    );
    // The catalog is lost; the action rebuilds it from the repository alone.
    repo.catalog().clear(id).await.unwrap();
    assert!(repo
        .snapshots(&SnapshotFilter::default())
        .await
        .unwrap()
        .is_empty());
    let rebuilt = action(&s, &token, id, json!({"rebuildCatalog": null})).await;
    assert_eq!(rebuilt["restorePoints"], 2, "{rebuilt}");
    assert_eq!(browse(repo.snapshot(s1.id).await.unwrap()).await, b1);
    assert_eq!(browse(repo.snapshot(s2.id).await.unwrap()).await, b2);
    let check = action(&s, &token, id, json!({"check": {"readDataSubset": "100%"}})).await;
    assert_eq!(check["ok"], true, "{check}");

    // The same from the command line, beside the running server: lost again, rebuilt by
    // `repository rebuild-catalog`, browsed the same.
    repo.catalog().clear(id).await.unwrap();
    assert!(repo.snapshot(s1.id).await.is_err());
    let id_arg = id.to_string();
    let (ok, out, err) = common::cli(&s, &["repository", "rebuild-catalog", &id_arg]).await;
    assert!(ok, "{out}{err}");
    assert_eq!(browse(repo.snapshot(s1.id).await.unwrap()).await, b1);
    assert_eq!(browse(repo.snapshot(s2.id).await.unwrap()).await, b2);
    assert_eq!(
        repo.snapshots(&SnapshotFilter::default())
            .await
            .unwrap()
            .len(),
        2
    );
    // `check --read-data-subset` on it reads its share of the packs, rounded up.
    let all = action(&s, &token, id, json!({"check": {"readData": true}})).await;
    let packs = all["packs"].as_u64().unwrap();
    assert!(packs >= 1 && all["packsRead"] == packs, "{all}");
    let (ok, out, err) = common::cli(
        &s,
        &["repository", "check", &id_arg, "--read-data-subset", "50%"],
    )
    .await;
    assert!(ok, "{out}{err}");
    let expected = format!(
        "2 restore points, {packs} packs, {} chunks; {} packs read.",
        all["blobs"],
        packs.div_ceil(2)
    );
    assert!(out.contains(&expected), "{out} (expected {expected})");
    assert!(out.contains("No errors found."), "{out}");
    s.stop().await;
}

/// The server applies a repository's retention at its daily time on its own: no API call, no
/// command. The server's scheduler looks every minute and once as it starts; the restart
/// (same data, same store) makes that look come now instead of within a minute.
async fn retention_runs_on_schedule_without_a_call(backend: Backend) {
    let mut s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let (id, repo) = default_repository(&s, &token).await;
    for d in 1..=3 {
        write_files(&repo, "org-1", "drive-s", d, &[(&format!("f{d}"), 100_000)]).await;
    }
    drop(repo);
    // Due from now on (a second on, so a run at start earlier today does not count as today's).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let due = chrono::Local::now().format("%H:%M:%S").to_string();
    let r = send(
        &s,
        reqwest::Method::PUT,
        &format!("/v5/BackupRepositories/{id}"),
        &token,
        Some(json!({
            "retentionPeriodType": "Daily", "dailyRetentionPeriod": 1,
            "retentionFrequencyType": "Daily", "dailyTime": due, "dailyType": "Everyday"
        })),
    )
    .await;
    assert_eq!(r.status(), 204);
    s.restart().await;
    let token = s.admin_token().await;
    let (_, repo) = default_repository(&s, &token).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let left = repo.snapshot_ids().await.unwrap().len();
        if left == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{left} expired restore points are still there"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(repo
        .snapshots(&SnapshotFilter::default())
        .await
        .unwrap()
        .is_empty());
    s.stop().await;
}

async fn used_repositories_of_an_organization(backend: Backend) {
    let sim = start_sim(m365sim::TenantSpec {
        seed: 12,
        users: 3,
        files_per_drive: 0,
        folders_per_drive: 0,
        ..m365sim::TenantSpec::default()
    })
    .await;
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let password = m365sim::tenant::generated_password("user1", 12);
    let org = json(
        post(
            &s,
            "/v5/Organizations",
            &token,
            organization_body(&sim, "user1@contoso12.onmicrosoft.com", &password),
        )
        .await,
    )
    .await;
    let org_id = org["id"].as_str().unwrap().to_owned();
    let used = json(
        s.get(
            &format!("/v5/Organizations/{org_id}/usedRepositories"),
            &token,
        )
        .await,
    )
    .await;
    assert_eq!(used, json!([]));
    let (id, repo) = default_repository(&s, &token).await;
    write_files(&repo, &org_id, "drive-u", 1, &[("u", 100_000)]).await;
    write_files(&repo, "another-org", "drive-v", 1, &[("v", 100_000)]).await;
    let used = json(
        s.get(
            &format!("/v5/organizations/{org_id}/usedrepositories"),
            &token,
        )
        .await,
    )
    .await;
    let used = used.as_array().unwrap();
    assert_eq!(used.len(), 1);
    let u = &used[0];
    assert!(u["usedSpaceBytes"].as_u64().unwrap() >= 100_000);
    assert_eq!(u["localCacheUsedSpaceBytes"], 0);
    assert_eq!(u["objectStorageUsedSpaceBytes"], 0);
    assert_eq!(u["isAvailable"], true);
    assert_eq!(u["details"], "");
    assert!(u["_links"]["backupRepository"]["href"]
        .as_str()
        .unwrap()
        .ends_with(&id.to_string()));
    assert_eq!(
        s.get(
            &format!(
                "/v5/Organizations/{}/usedRepositories",
                uuid::Uuid::new_v4()
            ),
            &token
        )
        .await
        .status(),
        404
    );
    s.stop().await;
    sim.shutdown().await;
}
