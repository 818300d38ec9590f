//! Graph writes as OneDrive for Business answers them: folders with every conflict behaviour,
//! `PATCH` (rename, move, `fileSystemInfo`, `If-Match`), `DELETE`, `restoreVersion`, permission
//! writes; their costs (2 units, 5 for permissions), who may make them, and delta seeing them.

use reqwest::Method;
use serde_json::json;

use super::*;
use m365sim::Access;

/// user1's OneDrive, user1 signed in, and the app.
async fn setup(sim: &RunningSim) -> (String, Client, Client) {
    let upn = "user1@contoso42.onmicrosoft.com";
    let drive = sim.onedrive(upn).unwrap().id().to_owned();
    (drive, sign_in(sim, upn).await, app_client(sim).await)
}

async fn json_of(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status().as_u16(), status);
    r.json().await.unwrap()
}

#[tokio::test]
async fn folders_with_every_conflict_behaviour_and_times() {
    let sim = start(unthrottled()).await;
    let (drive, c, _) = setup(&sim).await;
    let children = format!("/drives/{drive}/root/children");
    let when = "2019-03-04T05:06:07Z";
    let created = json_of(
        c.send_json(
            Method::POST,
            &children,
            json!({"name": "Restored", "folder": {}, "fileSystemInfo": {"createdDateTime": when, "lastModifiedDateTime": when}}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(created["name"], "Restored");
    assert_eq!(created["folder"]["childCount"], 0);
    assert_eq!(created["fileSystemInfo"]["createdDateTime"], when);
    assert_eq!(created["lastModifiedDateTime"], when);
    let id = created["id"].as_str().unwrap().to_owned();

    // fail (the default) → 409; rename → "Restored 1"; replace → the same folder, 200.
    let (status, code, _) = graph_error(
        c.send_json(
            Method::POST,
            &children,
            json!({"name": "restored", "folder": {}}),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (409, "nameAlreadyExists"));
    let renamed = json_of(
        c.send_json(
            Method::POST,
            &children,
            json!({"name": "Restored", "folder": {}, "@microsoft.graph.conflictBehavior": "rename"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(renamed["name"], "Restored 1");
    let same = json_of(
        c.send_json(
            Method::POST,
            &format!("{children}?@microsoft.graph.conflictBehavior=replace"),
            json!({"name": "Restored", "folder": {}}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(same["id"], id.as_str());

    // Nested, by id and by path; refused: no folder facet, a bad behaviour, bad names.
    let sub = json_of(
        c.send_json(
            Method::POST,
            &format!("/drives/{drive}/items/{id}/children"),
            json!({"name": "Sub", "folder": {}}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(sub["parentReference"]["id"], id.as_str());
    assert_eq!(sub["parentReference"]["path"], "/drive/root:/Restored");
    let deeper = json_of(
        c.send_json(
            Method::POST,
            &format!("/drives/{drive}/root:/Restored/Sub:/children"),
            json!({"name": "Deeper", "folder": {}}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(deeper["parentReference"]["id"], sub["id"]);
    for (body, inner) in [
        (json!({"name": "x", "file": {}}), ""),
        (
            json!({"name": "x", "folder": {}, "@microsoft.graph.conflictBehavior": "merge"}),
            "",
        ),
        (json!({"name": "a:b", "folder": {}}), "invalidPath"),
        (json!({"name": "trailing.", "folder": {}}), "invalidPath"),
        (json!({"name": "CON", "folder": {}}), "invalidPath"),
        (json!({"name": "~$lock", "folder": {}}), "invalidPath"),
        (
            json!({"name": "n".repeat(390), "folder": {}}),
            "pathIsTooLong",
        ),
        (json!({"folder": {}}), ""),
    ] {
        let (status, code, got_inner) =
            graph_error(c.send_json(Method::POST, &children, body.clone()).await).await;
        assert_eq!(
            (status, code.as_str(), got_inner.as_str()),
            (400, "invalidRequest", inner),
            "{body}"
        );
    }
    let missing = c
        .send_json(
            Method::POST,
            &format!("/drives/{drive}/items/01NOPE/children"),
            json!({"name": "x", "folder": {}}),
        )
        .await;
    assert_eq!(graph_error(missing).await.0, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn patch_renames_moves_sets_times_and_honours_if_match() {
    let sim = start(unthrottled()).await;
    let (drive, c, _) = setup(&sim).await;
    let d = sim.drive(&drive).unwrap();
    let a = d.add_folder(None, "A").unwrap();
    let b = d.add_folder(None, "B").unwrap();
    let f = d.add_file(Some(&a), "f.txt", 100).unwrap();
    d.add_file(Some(&b), "taken.txt", 1).unwrap();
    let (_, first) = c.all(&format!("/drives/{drive}/root/delta")).await;
    let link = first["@odata.deltaLink"].as_str().unwrap().to_owned();
    let item = format!("/drives/{drive}/items/{f}");

    let moved = json_of(
        c.send_json(
            Method::PATCH,
            &item,
            json!({"name": "g.txt", "parentReference": {"id": b}}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (
            moved["name"].as_str(),
            moved["parentReference"]["id"].as_str()
        ),
        (Some("g.txt"), Some(b.as_str()))
    );
    let when = "2018-01-02T03:04:05Z";
    let timed = json_of(
        c.send_json(
            Method::PATCH,
            &item,
            json!({"fileSystemInfo": {"@odata.type": "microsoft.graph.fileSystemInfo", "createdDateTime": when, "lastModifiedDateTime": when}}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(timed["fileSystemInfo"]["lastModifiedDateTime"], when);
    assert_eq!(timed["createdDateTime"], when);
    assert_eq!(
        d.entry(&f).unwrap().modified.to_rfc3339(),
        "2018-01-02T03:04:05+00:00"
    );
    // By path, into a folder named by path.
    let back = json_of(
        c.send_json(
            Method::PATCH,
            &format!("/drives/{drive}/root:/B/g.txt:"),
            json!({"parentReference": {"path": "/drive/root:/A"}}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(back["parentReference"]["id"], a.as_str());

    // A taken name: 409 unless told to rename; another drive: refused.
    let into_b = json!({"name": "taken.txt", "parentReference": {"id": b}});
    assert_eq!(
        graph_error(c.send_json(Method::PATCH, &item, into_b.clone()).await)
            .await
            .1,
        "nameAlreadyExists"
    );
    let mut renaming = into_b.clone();
    renaming["@microsoft.graph.conflictBehavior"] = json!("rename");
    let r = json_of(c.send_json(Method::PATCH, &item, renaming).await, 200).await;
    assert_eq!(r["name"], "taken 1.txt");
    let other = sim.tenant().drives[1].id.clone();
    let cross = json!({"parentReference": {"driveId": other, "id": a}});
    assert_eq!(
        graph_error(c.send_json(Method::PATCH, &item, cross).await)
            .await
            .0,
        400
    );
    assert_eq!(
        graph_error(
            c.send_json(Method::PATCH, &item, json!({"name": "bad|name"}))
                .await
        )
        .await
        .2,
        "invalidPath"
    );

    // If-Match: a stale eTag is 412, the current one goes.
    let stale = moved["eTag"].as_str().unwrap();
    let r = c
        .request(Method::PATCH, &item)
        .header("if-match", stale)
        .json(&json!({"name": "h.txt"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        graph_error(r).await,
        (
            412,
            "resourceModified".into(),
            "entityTagDoesNotMatch".into()
        )
    );
    let current = c.get(&item).await["eTag"].as_str().unwrap().to_owned();
    let r = c
        .request(Method::PATCH, &item)
        .header("if-match", &current)
        .json(&json!({"name": "h.txt"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Delta saw it all: the file, its last name, its last parent.
    let (changes, _) = c.all(&link).await;
    let last = changes
        .iter()
        .rev()
        .find(|i| i["id"] == f.as_str())
        .unwrap();
    assert_eq!(
        (
            last["name"].as_str(),
            last["parentReference"]["id"].as_str()
        ),
        (Some("h.txt"), Some(b.as_str()))
    );
    assert_eq!(last["fileSystemInfo"]["createdDateTime"], when);

    // DELETE: 204, then gone, a tombstone in delta; the root cannot go.
    let r = c
        .request(Method::DELETE, &format!("/drives/{drive}/items/{a}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        c.get_raw(&format!("/drives/{drive}/items/{a}"))
            .await
            .status(),
        404
    );
    let r = c
        .request(Method::DELETE, &format!("/drives/{drive}/root:/B/h.txt:"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(d.entry(&f).is_none());
    let root = d.root_id();
    let r = c
        .request(Method::DELETE, &format!("/drives/{drive}/items/{root}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn writes_cost_two_units_permissions_five() {
    let sim = start(unthrottled()).await;
    let (drive, c, _) = setup(&sim).await;
    let units = || sim.sim.app_stats().units;
    let before = units();
    let r = c
        .send_json(
            Method::POST,
            &format!("/drives/{drive}/root/children"),
            json!({"name": "N", "folder": {}}),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(units() - before, 2.0);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = units();
    c.send_json(
        Method::PATCH,
        &format!("/drives/{drive}/items/{id}"),
        json!({"name": "M"}),
    )
    .await;
    c.put_bytes(
        &format!("/drives/{drive}/items/{id}:/x.txt:/content"),
        b"x".to_vec(),
    )
    .await;
    c.request(Method::DELETE, &format!("/drives/{drive}/items/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(units() - before, 6.0);
    let f = sim
        .drive(&drive)
        .unwrap()
        .add_file(None, "s.txt", 5)
        .unwrap();
    let before = units();
    let r = c
        .send_json(
            Method::POST,
            &format!("/drives/{drive}/items/{f}/invite"),
            json!({"recipients": [{"email": "user2@contoso42.onmicrosoft.com"}], "roles": ["read"], "requireSignIn": true, "sendInvitation": false}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(units() - before, 5.0);
    sim.shutdown().await;
}

#[tokio::test]
async fn only_people_who_may_change_a_drive_write_to_it() {
    let sim = start(unthrottled()).await;
    let (drive, owner, app) = setup(&sim).await;
    let children = format!("/drives/{drive}/root/children");
    let folder = json!({"name": "F", "folder": {}});
    // Another user: not a reader, not a writer.
    let other = sign_in(&sim, "user2@contoso42.onmicrosoft.com").await;
    let (status, code, _) = graph_error(
        other
            .send_json(Method::POST, &children, folder.clone())
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "accessDenied"));
    // The owner made a reader only: reads, cannot write (nor share, nor upload).
    let control_handle = sim.control();
    control_handle
        .set_drive_access(
            &drive,
            "user1@contoso42.onmicrosoft.com",
            Some(Access::Read),
        )
        .unwrap();
    assert_eq!(
        owner
            .get_raw(&format!("/drives/{drive}/root"))
            .await
            .status(),
        200
    );
    assert_eq!(
        graph_error(
            owner
                .send_json(Method::POST, &children, folder.clone())
                .await
        )
        .await
        .0,
        403
    );
    let put = owner
        .put_bytes(
            &format!("/drives/{drive}/root:/x.txt:/content"),
            b"x".to_vec(),
        )
        .await;
    assert_eq!(graph_error(put).await.1, "accessDenied");
    // Over HTTP: back to the membership.
    let personal = sim
        .tenant()
        .user("user1@contoso42.onmicrosoft.com")
        .unwrap()
        .1
        .personal_site
        .id
        .clone();
    let r = control(
        &sim,
        Method::PUT,
        &format!("sites/{personal}/access"),
        Some(json!({"user": "user1@contoso42.onmicrosoft.com", "access": null})),
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        owner
            .send_json(Method::POST, &children, folder.clone())
            .await
            .status(),
        201
    );
    // A backup account administers everything: it may write; the app too.
    let backup = sign_in(&sim, "backup1@contoso42.onmicrosoft.com").await;
    let g = json!({"name": "G", "folder": {}});
    assert_eq!(
        backup.send_json(Method::POST, &children, g).await.status(),
        201
    );
    let h = json!({"name": "H", "folder": {}});
    assert_eq!(
        app.send_json(Method::POST, &children, h).await.status(),
        201
    );
    // A site's members write to its libraries, others do not.
    let t = sim.tenant();
    let site = &t.sites[0];
    let lib = &t.drives[site.drives[0]].id;
    let member = sign_in(&sim, &t.users[site.members[0]].user_principal_name).await;
    let body = json!({"name": "Team", "folder": {}});
    assert_eq!(
        member
            .send_json(Method::POST, &format!("/drives/{lib}/root/children"), body)
            .await
            .status(),
        201
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn restore_version_makes_an_old_version_current() {
    let sim = start(unthrottled()).await;
    let (drive, c, _) = setup(&sim).await;
    let d = sim.drive(&drive).unwrap();
    let f = d.add_file(None, "doc.docx", 1_000).unwrap();
    d.modify_file(&f, 2_000).unwrap();
    let v1 = d.content(&f, Some(1)).unwrap().sha256_hex();
    let before = c.get(&format!("/drives/{drive}/items/{f}")).await;
    let r = c
        .request(
            Method::POST,
            &format!("/drives/{drive}/items/{f}/versions/1.0/restoreVersion"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let after = c.get(&format!("/drives/{drive}/items/{f}")).await;
    assert_eq!(after["size"], 1_000);
    assert_ne!(after["cTag"], before["cTag"]);
    assert_eq!(
        after["file"]["hashes"]["quickXorHash"],
        d.versions(&f).unwrap()[2].content.quick_xor_hash()
    );
    let versions = c.get(&format!("/drives/{drive}/items/{f}/versions")).await;
    assert_eq!(versions["value"].as_array().unwrap().len(), 3);
    let bytes = c
        .download(&format!("/drives/{drive}/items/{f}/content"))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(sha256(&bytes), v1);
    let r = c
        .request(
            Method::POST,
            &format!("/drives/{drive}/items/{f}/versions/9.0/restoreVersion"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(graph_error(r).await.0, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn permissions_are_written_and_read_back() {
    let sim = start(unthrottled()).await;
    let (drive, c, _) = setup(&sim).await;
    let f = sim
        .drive(&drive)
        .unwrap()
        .add_file(None, "share.txt", 10)
        .unwrap();
    let base = format!("/drives/{drive}/items/{f}");
    let invited = json_of(
        c.send_json(
            Method::POST,
            &format!("{base}/invite"),
            json!({"recipients": [{"email": "user2@contoso42.onmicrosoft.com"}, {"objectId": sim.tenant().user("user3@contoso42.onmicrosoft.com").unwrap().1.id}], "roles": ["write"], "requireSignIn": true, "sendInvitation": false}),
        )
        .await,
        200,
    )
    .await;
    let granted = invited["value"].as_array().unwrap();
    assert_eq!(granted.len(), 2);
    assert_eq!(granted[0]["roles"], json!(["write"]));
    assert_eq!(
        granted[0]["grantedToV2"]["user"]["email"],
        "user2@contoso42.onmicrosoft.com"
    );
    let unknown = json!({"recipients": [{"email": "nobody@elsewhere.example"}], "roles": ["read"]});
    assert_eq!(
        graph_error(
            c.send_json(Method::POST, &format!("{base}/invite"), unknown)
                .await
        )
        .await
        .0,
        400
    );
    let link = json_of(
        c.send_json(
            Method::POST,
            &format!("{base}/createLink"),
            json!({"type": "view", "scope": "organization"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(link["link"]["scope"], "organization");
    let again = json_of(
        c.send_json(
            Method::POST,
            &format!("{base}/createLink"),
            json!({"type": "view", "scope": "organization"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(again["id"], link["id"]);
    let item = c.get(&base).await;
    assert_eq!(item["shared"]["scope"], "organization");
    let perms = c.get(&format!("{base}/permissions")).await;
    assert_eq!(
        perms["value"].as_array().unwrap().len(),
        4,
        "owners, two users, a link"
    );
    // Remove one; the inherited one cannot go.
    let id = granted[0]["id"].as_str().unwrap();
    let r = c
        .request(Method::DELETE, &format!("{base}/permissions/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = c
        .request(Method::DELETE, &format!("{base}/permissions/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(graph_error(r).await.0, 404);
    let inherited = perms["value"][0]["id"].as_str().unwrap();
    let r = c
        .request(Method::DELETE, &format!("{base}/permissions/{inherited}"))
        .send()
        .await
        .unwrap();
    assert_eq!(graph_error(r).await.0, 400);
    assert_eq!(
        c.get(&format!("{base}/permissions")).await["value"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    sim.shutdown().await;
}
