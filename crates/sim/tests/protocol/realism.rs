//! OneDrive for Business as a backup engine meets it: delta rounds (no paths, repeats, parents,
//! tombstones, 410 resyncs), renames and moves, deleted folders, item facets, versions,
//! permissions, and expiring, range-ignoring, egress-charged downloads.

use std::time::Duration;

use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};

use super::*;

/// The first OneDrive's id and a client signed in as its owner.
async fn first_drive(sim: &RunningSim) -> (String, Client) {
    let c = sign_in(sim, "user1@contoso42.onmicrosoft.com").await;
    let drive = c.get("/users/user1@contoso42.onmicrosoft.com/drive").await;
    (drive["id"].as_str().unwrap().to_owned(), c)
}

async fn created(r: reqwest::Response) -> String {
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_forged_delta_token_is_refused_not_a_panic() {
    let sim = start(unthrottled()).await;
    let (drive, c) = first_drive(&sim).await;
    let now = chrono::Utc::now().timestamp();
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!({"epoch": 0, "start": 0, "next": 999_999_999u64, "issued": now}).to_string());
    for token in [forged.as_str(), "not-a-token"] {
        let r = c
            .get_raw(&format!("/drives/{drive}/root/delta?token={token}"))
            .await;
        assert_eq!(r.status(), 400, "{token}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalidRequest");
    }
    // The simulator still answers.
    assert_eq!(
        c.get_raw(&format!("/drives/{drive}/root/delta"))
            .await
            .status(),
        200
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn deleting_a_folder_deletes_its_children_before_it() {
    let sim = start(unthrottled()).await;
    let (drive, c) = first_drive(&sim).await;
    let (_, first) = c.all(&format!("/drives/{drive}/root/delta")).await;
    let link = first["@odata.deltaLink"].as_str().unwrap().to_owned();
    let folder = created(
        control(
            &sim,
            Method::POST,
            &format!("drives/{drive}/folders"),
            Some(json!({"name": "Doomed"})),
        )
        .await,
    )
    .await;
    let sub = created(
        control(
            &sim,
            Method::POST,
            &format!("drives/{drive}/folders"),
            Some(json!({"name": "Sub", "parentId": folder})),
        )
        .await,
    )
    .await;
    let file = created(
        control(
            &sim,
            Method::POST,
            &format!("drives/{drive}/files"),
            Some(json!({"name": "a.txt", "size": 10, "parentId": sub})),
        )
        .await,
    )
    .await;
    let r = control(
        &sim,
        Method::DELETE,
        &format!("drives/{drive}/items/{folder}"),
        None,
    )
    .await;
    assert_eq!(r.status(), 204);
    // No orphans: a full enumeration has no live item under a deleted folder.
    let (all, _) = c.all(&format!("/drives/{drive}/root/delta")).await;
    for id in [&folder, &sub, &file] {
        let last = all.iter().rev().find(|i| i["id"] == id.as_str()).unwrap();
        assert!(last.get("deleted").is_some(), "{last}");
    }
    let deleted: Vec<&str> = all
        .iter()
        .filter(|i| i.get("deleted").is_some())
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert!(all
        .iter()
        .filter(|i| i.get("deleted").is_none())
        .all(|i| !deleted.contains(&i["parentReference"]["id"].as_str().unwrap_or(""))));
    // The next round: children deleted before their folder.
    let (changes, _) = c.all(&link).await;
    let pos = |id: &str| changes.iter().rposition(|i| i["id"] == id).unwrap();
    assert!(pos(&file) < pos(&sub) && pos(&sub) < pos(&folder));
    assert_eq!(
        c.get_raw(&format!("/drives/{drive}/items/{file}"))
            .await
            .status(),
        404
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn renames_and_moves_come_without_paths_or_descendants() {
    let sim = start(unthrottled()).await;
    let (drive, c) = first_drive(&sim).await;
    let folder = created(
        control(
            &sim,
            Method::POST,
            &format!("drives/{drive}/folders"),
            Some(json!({"name": "Projects"})),
        )
        .await,
    )
    .await;
    let target = created(
        control(
            &sim,
            Method::POST,
            &format!("drives/{drive}/folders"),
            Some(json!({"name": "Archive"})),
        )
        .await,
    )
    .await;
    let inner = created(
        control(
            &sim,
            Method::POST,
            &format!("drives/{drive}/files"),
            Some(json!({"name": "plan.docx", "size": 100, "parentId": folder})),
        )
        .await,
    )
    .await;
    let (_, first) = c.all(&format!("/drives/{drive}/root/delta")).await;
    let link = first["@odata.deltaLink"].as_str().unwrap().to_owned();
    let r = control(
        &sim,
        Method::PATCH,
        &format!("drives/{drive}/items/{folder}"),
        Some(json!({"name": "Projects 2024 #1", "parentId": target})),
    )
    .await;
    assert_eq!(r.status(), 204);
    let (changes, _) = c.all(&link).await;
    let ids: Vec<&str> = changes.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&folder.as_str()) && ids.contains(&target.as_str()));
    assert!(
        !ids.contains(&inner.as_str()),
        "descendants are not re-emitted"
    );
    let moved = changes.iter().find(|i| i["id"] == folder.as_str()).unwrap();
    assert_eq!(moved["name"], "Projects 2024 #1");
    assert_eq!(moved["parentReference"]["id"], target.as_str());
    assert!(
        changes
            .iter()
            .all(|i| i["parentReference"].get("path").is_none() && i.get("cTag").is_none()),
        "delta carries no paths and no cTags"
    );
    // An item read directly has its new path; the web address is encoded.
    let item = c.get(&format!("/drives/{drive}/items/{inner}")).await;
    assert_eq!(
        item["parentReference"]["path"],
        "/drive/root:/Archive/Projects 2024 #1"
    );
    assert!(item["webUrl"]
        .as_str()
        .unwrap()
        .ends_with("/Archive/Projects%202024%20%231/plan.docx"));
    // Refused: into a file, onto a sibling's name (case-insensitive), into its own subtree.
    for (body, status) in [
        (json!({"parentId": inner}), 400),
        (json!({"name": "folder 1"}), 409),
        (json!({"parentId": folder}), 400),
    ] {
        let r = control(
            &sim,
            Method::PATCH,
            &format!("drives/{drive}/items/{target}"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(r.status(), status, "{body}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn expired_or_invalidated_tokens_answer_410_with_a_fresh_start() {
    let sim = start(unthrottled()).await;
    let (drive, c) = first_drive(&sim).await;
    let (items, first) = c.all(&format!("/drives/{drive}/root/delta")).await;
    let link = first["@odata.deltaLink"].as_str().unwrap().to_owned();
    // An administrator's resync of the drive (or a restore on the service side).
    assert_eq!(
        control(&sim, Method::POST, &format!("drives/{drive}/resync"), None)
            .await
            .status(),
        204
    );
    let r = c.get_raw(&link).await;
    assert_eq!(r.status(), 410);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "resyncRequired");
    assert_eq!(
        body["error"]["innerError"]["code"],
        "resyncChangesApplyDifferences"
    );
    let (again, last) = c.all(&location).await;
    assert_eq!(
        again.len(),
        items.len(),
        "the Location starts a full enumeration"
    );
    // Tokens age out.
    let r = control(
        &sim,
        Method::PUT,
        "behaviour",
        Some(json!({"delta_token_max_age_secs": 1})),
    )
    .await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["delta_token_max_age_secs"],
        1
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = c.get_raw(last["@odata.deltaLink"].as_str().unwrap()).await;
    assert_eq!(r.status(), 410);
    sim.shutdown().await;
}

#[tokio::test]
async fn items_look_like_onedrive_for_business() {
    let sim = start(unthrottled()).await;
    let app = app_client(&sim).await;
    let mut names = Vec::new();
    let mut shared = 0;
    for d in sim.tenant().drives.iter().take(12) {
        let (items, _) = app.all(&format!("/drives/{}/root/delta", d.id)).await;
        for i in &items {
            names.push(i["name"].as_str().unwrap_or_default().to_owned());
            assert!(i.get("cTag").is_none(), "no cTag in delta: {i}");
            assert!(
                i["createdBy"]["user"].is_object()
                    || i.get("root").is_some()
                    || i["createdBy"]["application"].is_object()
            );
            assert!(i["fileSystemInfo"]["lastModifiedDateTime"].is_string());
            if i.get("file").is_some() {
                assert_eq!(
                    i["file"]["hashes"]["quickXorHash"].as_str().unwrap().len(),
                    28
                );
            }
            shared += usize::from(i.get("shared").is_some());
        }
    }
    assert!(shared > 0, "some items are shared");
    for needle in ["é", "#", "%", "会議", "🎉"] {
        assert!(
            names.iter().any(|n| n.contains(needle)),
            "a name with {needle}"
        );
    }
    let d = &sim.tenant().drives[0];
    let folder = c_get_folder(&app, &d.id).await;
    let item = app.get(&format!("/drives/{}/items/{}", d.id, folder)).await;
    assert!(
        item.get("cTag").is_none() && item["folder"].is_object(),
        "no cTag on folders"
    );
    sim.shutdown().await;
}

async fn c_get_folder(c: &Client, drive: &str) -> String {
    let (items, _) = c.all(&format!("/drives/{drive}/root/delta")).await;
    items
        .iter()
        .find(|i| i.get("folder").is_some() && i.get("root").is_none())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn versions_and_permissions() {
    let sim = start(unthrottled()).await;
    let (drive, c) = first_drive(&sim).await;
    let file = created(
        control(
            &sim,
            Method::POST,
            &format!("drives/{drive}/files"),
            Some(json!({"name": "v.docx", "size": 3000})),
        )
        .await,
    )
    .await;
    for size in [4000, 5000] {
        let r = control(
            &sim,
            Method::PUT,
            &format!("drives/{drive}/items/{file}"),
            Some(json!({"size": size, "by": "user2@contoso42.onmicrosoft.com"})),
        )
        .await;
        assert_eq!(r.status(), 204);
    }
    let versions = c
        .get(&format!("/drives/{drive}/items/{file}/versions"))
        .await;
    let v = versions["value"].as_array().unwrap();
    assert_eq!(
        v.iter()
            .map(|x| (x["id"].as_str().unwrap(), x["size"].as_u64().unwrap()))
            .collect::<Vec<_>>(),
        [("3.0", 5000), ("2.0", 4000), ("1.0", 3000)],
        "newest first, the current one included"
    );
    assert_eq!(
        v[0]["lastModifiedBy"]["user"]["email"],
        "user2@contoso42.onmicrosoft.com"
    );
    // An old version's bytes.
    let r = c
        .get_raw(&format!(
            "/drives/{drive}/items/{file}/versions/1.0/content"
        ))
        .await;
    assert_eq!(r.status(), 302);
    let bytes = reqwest::get(r.headers()["location"].to_str().unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        sha256(&bytes),
        m365sim::content::sha256_hex(&format!("{drive}/{file}"), 1, 3000)
    );
    assert_eq!(
        c.get(&format!("/drives/{drive}/items/{file}/versions/2.0"))
            .await["size"],
        4000
    );
    assert_eq!(
        c.get_raw(&format!("/drives/{drive}/items/{file}/versions/9.0"))
            .await
            .status(),
        404
    );

    // Sharing: the facet and the permissions (5 units each).
    let r = control(&sim, Method::PUT, &format!("drives/{drive}/items/{file}/permissions"), Some(json!([{"user": "user3@contoso42.onmicrosoft.com", "role": "write"}, {"link": "organization", "role": "read"}]))).await;
    assert_eq!(r.status(), 204);
    let item = c.get(&format!("/drives/{drive}/items/{file}")).await;
    assert_eq!(item["shared"]["scope"], "organization");
    let before = sim.sim.app_stats().units;
    let perms = c
        .get(&format!("/drives/{drive}/items/{file}/permissions"))
        .await;
    assert_eq!(sim.sim.app_stats().units - before, 5.0);
    let p = perms["value"].as_array().unwrap();
    assert_eq!(p.len(), 3);
    assert_eq!(p[0]["roles"], json!(["owner"]));
    assert_eq!(
        p[1]["grantedToV2"]["user"]["email"],
        "user3@contoso42.onmicrosoft.com"
    );
    assert_eq!(p[2]["link"]["scope"], "organization");
    sim.shutdown().await;
}

#[tokio::test]
async fn an_items_download_url_works_until_it_expires() {
    let sim = start(unthrottled()).await;
    let (drive, c) = first_drive(&sim).await;
    let file = created(
        control(
            &sim,
            Method::POST,
            &format!("drives/{drive}/files"),
            Some(json!({"name": "short-lived.bin", "size": 5_000})),
        )
        .await,
    )
    .await;
    control(
        &sim,
        Method::PUT,
        "behaviour",
        Some(json!({"download_url_lifetime_secs": 1})),
    )
    .await;
    let item = c.get(&format!("/drives/{drive}/items/{file}")).await;
    let url = item["@microsoft.graph.downloadUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("no downloadUrl: {item}"))
        .to_owned();
    // Pre-authenticated: no bearer token, and the whole file while it is fresh.
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 5_000);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status(), 401, "the downloadUrl expired");
    // A fresh read of the item gives a fresh URL.
    let item = c.get(&format!("/drives/{drive}/items/{file}")).await;
    let fresh = item["@microsoft.graph.downloadUrl"].as_str().unwrap();
    assert_eq!(reqwest::get(fresh).await.unwrap().status(), 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn downloads_expire_may_ignore_range_and_spend_egress() {
    let sim = start(ThrottleConfig {
        // 10,000 bytes/s, 20,000 at once.
        user_egress_bytes_per_hour: 3_600.0 * 10_000.0,
        user_rate: 1000.0,
        user_burst: 1000.0,
        ..ThrottleConfig::default()
    })
    .await;
    let (drive, c) = first_drive(&sim).await;
    let file = created(
        control(
            &sim,
            Method::POST,
            &format!("drives/{drive}/files"),
            Some(json!({"name": "big.bin", "size": 30_000})),
        )
        .await,
    )
    .await;
    async fn url(c: &Client, drive: &str, file: &str) -> String {
        let r = c
            .get_raw(&format!("/drives/{drive}/items/{file}/content"))
            .await;
        r.headers()["location"].to_str().unwrap().to_owned()
    }
    control(
        &sim,
        Method::PUT,
        "behaviour",
        Some(json!({"ignore_range": true, "download_url_lifetime_secs": 1})),
    )
    .await;
    let location = url(&c, &drive, &file).await;
    let r = reqwest::Client::new()
        .get(&location)
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the whole file despite the Range");
    assert_eq!(r.bytes().await.unwrap().len(), 30_000);
    // The first download overdrew the budget: the second has to wait.
    let second = url(&c, &drive, &file).await;
    let r = reqwest::get(&second).await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(
        r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        reqwest::get(&second).await.unwrap().status(),
        401,
        "the URL expired"
    );
    sim.shutdown().await;
}
