//! What a restore meets besides throttling: the target user gone from the directory, no write
//! permission on the target, an upload session that expires midway (restarted, then through).

use reqwest::Method;
use serde_json::json;

use super::*;

#[tokio::test]
async fn a_removed_user_and_their_onedrive_are_gone() {
    let sim = start(unthrottled()).await;
    let app = app_client(&sim).await;
    let upn = "user4@contoso42.onmicrosoft.com";
    let d = sim.onedrive(upn).unwrap();
    let drive = d.id().to_owned();
    let users_before = app.all("/users").await.0.len();
    let r = control(&sim, Method::DELETE, &format!("users/{upn}"), None).await;
    assert_eq!(r.status(), 204);

    let (status, code, _) = graph_error(app.get_raw(&format!("/users/{upn}/drive")).await).await;
    assert_eq!((status, code.as_str()), (404, "itemNotFound"));
    assert_eq!(
        graph_error(app.get_raw(&format!("/users/{upn}")).await)
            .await
            .0,
        404
    );
    assert_eq!(
        graph_error(app.get_raw(&format!("/drives/{drive}/root")).await)
            .await
            .1,
        "itemNotFound"
    );
    let put = app
        .put_bytes(
            &format!("/drives/{drive}/root:/x.txt:/content"),
            b"x".to_vec(),
        )
        .await;
    assert_eq!(graph_error(put).await.0, 404);
    assert_eq!(app.all("/users").await.0.len(), users_before - 1);
    let sites = app.all("/sites/getAllSites").await.0;
    assert!(sites.iter().all(|s| s["webUrl"]
        != sim
            .tenant()
            .user_any(upn)
            .unwrap()
            .1
            .personal_site
            .web_url
            .as_str()));
    // The user cannot sign in.
    let t = sim.tenant();
    let cid = t.app.client_id.to_string();
    let body: Value = token_request(
        &sim,
        &t.id.to_string(),
        &[
            ("grant_type", "password"),
            ("client_id", &cid),
            ("scope", "https://graph.microsoft.com/.default"),
            ("username", upn),
            ("password", &t.user_any(upn).unwrap().1.password),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(aad_code(&body), 50034);
    // The truth still reads the drive (nothing was written); the user can come back.
    assert!(d.find("/x.txt").is_none());
    sim.control().restore_user(upn).unwrap();
    assert_eq!(
        app.get_raw(&format!("/drives/{drive}/root")).await.status(),
        200
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn no_write_permission_is_403_on_every_write() {
    let sim = start(unthrottled()).await;
    let t = sim.tenant();
    let site = &t.sites[1];
    let lib = t.drives[site.drives[0]].id.clone();
    let backup = "backup3@contoso42.onmicrosoft.com";
    let c = sign_in(&sim, backup).await;
    let r = control(
        &sim,
        Method::PUT,
        &format!("sites/{}/access", site.id),
        Some(json!({"user": backup, "access": "read"})),
    )
    .await;
    assert_eq!(r.status(), 204);
    let f = sim
        .drive(&lib)
        .unwrap()
        .add_file(None, "kept.txt", 10)
        .unwrap();
    assert_eq!(
        c.get_raw(&format!("/drives/{lib}/items/{f}"))
            .await
            .status(),
        200,
        "reads still"
    );
    let base = format!("/drives/{lib}/items/{f}");
    let attempts = vec![
        c.send_json(
            Method::POST,
            &format!("/drives/{lib}/root/children"),
            json!({"name": "X", "folder": {}}),
        )
        .await,
        c.put_bytes(
            &format!("/drives/{lib}/root:/y.txt:/content"),
            b"y".to_vec(),
        )
        .await,
        c.put_bytes(&format!("{base}/content"), b"y".to_vec()).await,
        c.send_json(
            Method::POST,
            &format!("/drives/{lib}/root:/z.bin:/createUploadSession"),
            json!({}),
        )
        .await,
        c.send_json(Method::PATCH, &base, json!({"name": "renamed.txt"}))
            .await,
        c.request(Method::DELETE, &base).send().await.unwrap(),
        c.request(Method::POST, &format!("{base}/versions/1.0/restoreVersion"))
            .send()
            .await
            .unwrap(),
        c.send_json(
            Method::POST,
            &format!("{base}/invite"),
            json!({"recipients": [{"email": backup}], "roles": ["read"]}),
        )
        .await,
    ];
    for r in attempts {
        let url = r.url().to_string();
        assert_eq!(
            graph_error(r).await,
            (403, "accessDenied".into(), String::new()),
            "{url}"
        );
    }
    assert_eq!(
        sim.drive(&lib).unwrap().entry(&f).unwrap().name,
        "kept.txt",
        "nothing changed"
    );
    // With no access at all, even reads are refused.
    let r = control(
        &sim,
        Method::PUT,
        &format!("sites/{}/access", site.id),
        Some(json!({"user": backup, "access": "none"})),
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(c.get_raw(&base).await.status(), 403);
    sim.shutdown().await;
}

#[tokio::test]
async fn an_upload_session_that_expires_midway_is_restarted() {
    let sim = start(unthrottled()).await;
    let upn = "user1@contoso42.onmicrosoft.com";
    let c = sign_in(&sim, upn).await;
    let d = sim.onedrive(upn).unwrap();
    let drive = d.id().to_owned();
    let unit = 320 << 10;
    let data: Vec<u8> = (0..3 * unit).map(|i| (i % 253) as u8).collect();
    // The next session writing big.bin expires once it has one fragment.
    let r = control(
        &sim,
        Method::POST,
        &format!("drives/{drive}/uploadFaults"),
        Some(json!({"name": "big.bin", "expireAfterBytes": unit, "times": 1})),
    )
    .await;
    assert_eq!(r.status(), 204);
    let create = format!("/drives/{drive}/root:/big.bin:/createUploadSession");
    let put = |url: String, start: usize, end: usize| {
        let chunk = data[start..end].to_vec();
        async move {
            reqwest::Client::new()
                .put(url)
                .header(
                    "content-range",
                    format!("bytes {start}-{}/{}", end - 1, 3 * unit),
                )
                .body(chunk)
                .send()
                .await
                .unwrap()
        }
    };
    let s: Value = c
        .send_json(Method::POST, &create, json!({}))
        .await
        .json()
        .await
        .unwrap();
    let url = s["uploadUrl"].as_str().unwrap().to_owned();
    assert_eq!(put(url.clone(), 0, unit).await.status(), 202);
    let (status, code, inner) = graph_error(put(url.clone(), unit, 2 * unit).await).await;
    assert_eq!(
        (status, code.as_str(), inner.as_str()),
        (404, "itemNotFound", "uploadSessionNotFound")
    );
    assert!(d.find("/big.bin").is_none());
    // A new session goes through.
    let s: Value = c
        .send_json(Method::POST, &create, json!({}))
        .await
        .json()
        .await
        .unwrap();
    let url = s["uploadUrl"].as_str().unwrap().to_owned();
    for n in 0..2 {
        assert_eq!(
            put(url.clone(), n * unit, (n + 1) * unit).await.status(),
            202
        );
    }
    assert_eq!(put(url.clone(), 2 * unit, 3 * unit).await.status(), 201);
    assert_eq!(d.find("/big.bin").unwrap().sha256(), Some(sha256(&data)));
    // Every open session can be expired at once, too.
    let s: Value = c
        .send_json(
            Method::POST,
            &format!("/drives/{drive}/root:/other.bin:/createUploadSession"),
            json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    let r: Value = control(&sim, Method::POST, "uploads/expire", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["expired"], 1);
    let status = reqwest::get(s["uploadUrl"].as_str().unwrap())
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
    sim.shutdown().await;
}
