//! The in-process handle: changes made from a test show up in the next delta round exactly as
//! changes made through `/_sim/`; the truth (tree, content, versions) is what Graph serves.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::json;

use super::*;
use m365sim::tenant::Role;

#[tokio::test]
async fn mutations_in_process_come_in_the_next_delta_round() {
    let sim = start(unthrottled()).await;
    let c = app_client(&sim).await;
    let d = sim.onedrive("user5@contoso42.onmicrosoft.com").unwrap();
    let drive = d.id().to_owned();
    let (_, first) = c.all(&format!("/drives/{drive}/root/delta")).await;
    let link = first["@odata.deltaLink"].as_str().unwrap().to_owned();

    let folder = d.add_folder(None, "Projects").unwrap();
    let by2 = d.by("user2@contoso42.onmicrosoft.com").unwrap();
    let plan = by2.add_file(Some(&folder), "plan.docx", 12_345).unwrap();
    let notes = d.add_file_bytes(None, "notes.txt", b"hello world").unwrap();
    let doomed = d.add_file(None, "doomed.txt", 10).unwrap();
    let (changes, last) = c.all(&link).await;
    let by_id: HashMap<&str, &Value> = changes
        .iter()
        .map(|i| (i["id"].as_str().unwrap(), i))
        .collect();
    assert_eq!(by_id[plan.as_str()]["size"], 12_345);
    assert_eq!(
        by_id[plan.as_str()]["parentReference"]["id"],
        folder.as_str()
    );
    assert_eq!(
        by_id[plan.as_str()]["lastModifiedBy"]["user"]["email"],
        "user2@contoso42.onmicrosoft.com"
    );
    assert_eq!(
        by_id[notes.as_str()]["file"]["hashes"]["quickXorHash"],
        quickxorhash::base64_of(b"hello world")
    );

    // Modify, rename, move, share, delete, and a resync.
    d.modify_file(&plan, 20_000).unwrap();
    d.rename(&notes, "notes 2024.txt").unwrap();
    d.move_item(&notes, &folder).unwrap();
    let permission = d
        .share_with(&plan, "user3@contoso42.onmicrosoft.com", Role::Write)
        .unwrap();
    d.delete(&doomed).unwrap();
    let (changes, last2) = c.all(last["@odata.deltaLink"].as_str().unwrap()).await;
    let at = |id: &str| {
        changes
            .iter()
            .rev()
            .find(|i| i["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(at(&plan)["size"], 20_000);
    assert_eq!(at(&plan)["shared"]["scope"], "users");
    assert_eq!(at(&notes)["name"], "notes 2024.txt");
    assert_eq!(at(&notes)["parentReference"]["id"], folder.as_str());
    assert!(at(&doomed).get("deleted").is_some());
    let perms = c
        .get(&format!("/drives/{drive}/items/{plan}/permissions"))
        .await;
    assert_eq!(perms["value"][1]["id"], permission.as_str());
    assert!(matches!(
        d.rename(&plan, "bad:name"),
        Err(m365sim::SimError::Change(
            m365sim::tenant::ChangeError::InvalidName(_)
        ))
    ));
    d.force_resync();
    assert_eq!(
        c.get_raw(last2["@odata.deltaLink"].as_str().unwrap())
            .await
            .status(),
        410
    );

    // The same change over HTTP and in-process are one code path: a taken name is 409.
    let r = control(
        &sim,
        Method::PATCH,
        &format!("drives/{drive}/items/{notes}"),
        Some(json!({"name": "PLAN.docx"})),
    )
    .await;
    assert_eq!(r.status(), 409);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_truth_is_what_graph_serves() {
    let sim = start(unthrottled()).await;
    let c = app_client(&sim).await;
    let d = sim.onedrive("user6@contoso42.onmicrosoft.com").unwrap();
    let drive = d.id().to_owned();
    let f = d.add_file(None, "v.bin", 30_000).unwrap();
    d.modify_file(&f, 40_000).unwrap();
    d.modify_file_bytes(&f, b"third version").unwrap();
    let tree = d.tree();
    assert_eq!(tree[0].path, "/");
    assert!(tree.windows(2).all(|w| w[0].path <= w[1].path));
    let (delta, _) = c.all(&format!("/drives/{drive}/root/delta")).await;
    let live: Vec<&Value> = delta
        .iter()
        .filter(|i| i.get("deleted").is_none())
        .collect();
    assert_eq!(tree.len(), live.len());
    for entry in tree.iter().filter(|e| !e.is_folder) {
        let listed = live.iter().find(|i| i["id"] == entry.id.as_str()).unwrap();
        assert_eq!(listed["size"], entry.size);
        assert_eq!(
            listed["file"]["hashes"]["quickXorHash"].as_str(),
            entry.quick_xor_hash.as_deref()
        );
        let bytes = c
            .download(&format!("/drives/{drive}/items/{}/content", entry.id))
            .await
            .bytes()
            .await
            .unwrap();
        assert_eq!(Some(sha256(&bytes)), entry.sha256(), "{}", entry.path);
        let item = c.get(&format!("/drives/{drive}/items/{}", entry.id)).await;
        let parent = item["parentReference"]["path"]
            .as_str()
            .unwrap()
            .trim_start_matches("/drive/root:");
        assert_eq!(format!("{parent}/{}", entry.name), entry.path);
    }
    // Every version's content, old ones included.
    let versions = d.versions(&f).unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| (v.id.as_str(), v.size))
            .collect::<Vec<_>>(),
        [("3.0", 13), ("2.0", 40_000), ("1.0", 30_000)]
    );
    for v in &versions {
        let bytes = c
            .download(&format!(
                "/drives/{drive}/items/{f}/versions/{}/content",
                v.id
            ))
            .await
            .bytes()
            .await
            .unwrap();
        assert_eq!(sha256(&bytes), v.content.sha256_hex());
    }
    assert_eq!(
        d.content(&f, None).unwrap().read_all().unwrap(),
        b"third version"
    );
    assert_eq!(
        d.content(&f, Some(1)).unwrap().sha256_hex(),
        m365sim::content::sha256_hex(&format!("{drive}/{f}"), 1, 30_000)
    );
    assert!(
        d.find("/V.BIN").is_some_and(|e| e.id == f),
        "paths compare case-insensitively"
    );

    // Over HTTP: the tree with hashes, and a version's bytes.
    let tree_json: Value = control(&sim, Method::GET, &format!("drives/{drive}/tree"), None)
        .await
        .json()
        .await
        .unwrap();
    let row = tree_json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == f.as_str())
        .unwrap();
    assert_eq!(row["sha256"], sha256(b"third version"));
    assert_eq!(row["path"], "/v.bin");
    let old = control(
        &sim,
        Method::GET,
        &format!("drives/{drive}/items/{f}/content?version=2"),
        None,
    )
    .await
    .bytes()
    .await
    .unwrap();
    assert_eq!(sha256(&old), versions[1].content.sha256_hex());
    let drives: Value = control(&sim, Method::GET, "drives", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        drives["drives"].as_array().unwrap().len(),
        sim.tenant().drives.len()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_large_file_streams_and_hashes_right() {
    let spec = TenantSpec {
        users: 1,
        backup_accounts: 0,
        sites: 0,
        m365_groups: 0,
        files_per_drive: 1,
        large_files_per_drive: 1,
        large_file_min_size: 50 << 20,
        large_file_max_size: 60 << 20,
        extra_users: Vec::new(),
        extra_groups: Vec::new(),
        ..spec()
    };
    let sim = start_spec(spec, unthrottled()).await;
    let c = app_client(&sim).await;
    let d = sim.drive(&sim.tenant().drives[0].id).unwrap();
    let large = d.tree().into_iter().find(|e| e.size >= 50 << 20).unwrap();
    let listed = c
        .get(&format!("/drives/{}/items/{}", d.id(), large.id))
        .await;
    let bytes = c
        .download(&format!("/drives/{}/items/{}/content", d.id(), large.id))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.len() as u64, large.size);
    assert_eq!(
        quickxorhash::base64_of(&bytes),
        listed["file"]["hashes"]["quickXorHash"].as_str().unwrap()
    );
    assert_eq!(Some(sha256(&bytes)), large.sha256());
    sim.shutdown().await;
}
