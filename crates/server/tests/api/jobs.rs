//! v5 Jobs over HTTPS on the demo organization, on both stores: bodies as the vendor's examples
//! and public clients send them (any case, strings for booleans, trailing commas, a fetched job
//! posted back), every schedule field, selected and excluded items, actions and their status
//! codes, and the rules that keep jobs consistent (unique names, no organization removed under
//! its jobs).

use crate::common;

use common::{json, Backend, TestServer};
use serde_json::{json, Value};

const ORG: &str = "6f9b3da3-204d-4a4b-b466-55586e0233fc";

on_both_stores! {
    jobs_are_created_read_edited_and_removed;
    lenient_bodies_and_fetched_jobs_are_accepted;
    bad_jobs_are_refused_naming_the_field;
    items_are_added_and_removed;
    actions_answer_as_v5_clients_expect;
}

/// A server on the demo organization, and an operator's token.
async fn demo_on(backend: Backend) -> (TestServer, String) {
    let s = TestServer::start_with(backend, |c| c.demo = true).await;
    let token = s.admin_token().await;
    (s, token)
}

async fn send(
    s: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<&[u8]>,
) -> reqwest::Response {
    let mut r = s.http.request(method, s.url(path)).bearer_auth(token);
    if let Some(b) = body {
        r = r
            .header("Content-Type", "application/json")
            .body(b.to_vec());
    }
    r.send().await.unwrap()
}

async fn post_json(s: &TestServer, path: &str, token: &str, body: &Value) -> reqwest::Response {
    send(
        s,
        reqwest::Method::POST,
        path,
        token,
        Some(body.to_string().as_bytes()),
    )
    .await
}

/// A user of the demo tenant, as `GET …/Users` lists it.
async fn a_user(s: &TestServer, token: &str, name: &str) -> Value {
    let page = json(
        s.get(&format!("/v5/Organizations/{ORG}/Users?name={name}"), token)
            .await,
    )
    .await;
    page["results"][0].clone()
}

/// The body of the vendor's example: a daily job for one user's OneDrive.
async fn example_job(s: &TestServer, token: &str, name: &str) -> Value {
    let user = a_user(s, token, "user1@*").await;
    json!({
        "name": name,
        "description": "Critical users",
        "backupType": "SelectedItems",
        "selectedItems": [{
            "type": "User",
            "user": {"id": user["id"], "displayName": user["displayName"], "name": user["name"]},
            "oneDrive": true, "site": false, "mailbox": false, "archiveMailbox": false
        }],
        "schedulePolicy": {
            "scheduleEnabled": true, "backupWindowEnabled": false, "type": "daily",
            "dailyType": "Everyday", "dailyTime": "22:00:00",
            "retryEnabled": true, "retryNumber": 3, "retryWaitInterval": 10
        },
        "runNow": false
    })
}

async fn jobs_are_created_read_edited_and_removed(backend: Backend) {
    let (s, token) = demo_on(backend).await;
    let body = example_job(&s, &token, "Backup Job ABC").await;
    let r = post_json(&s, &format!("/v5/Organizations/{ORG}/Jobs"), &token, &body).await;
    assert_eq!(r.status(), 201);
    let job = json(r).await;
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(job["name"], "Backup Job ABC");
    assert_eq!(job["backupType"], "SelectedItems");
    assert_eq!(job["isEnabled"], true);
    assert_eq!(job["lastStatus"], "NotConfigured");
    assert!(
        job.get("lastRun").is_none(),
        "absent before the first run, never null"
    );
    assert!(job["nextRun"].as_str().unwrap().ends_with('Z'));
    assert_eq!(job["versionPolicy"], "Latest");
    // Every schedule field is present.
    let p = &job["schedulePolicy"];
    for field in [
        "type",
        "scheduleEnabled",
        "periodicallyEvery",
        "dailyType",
        "dailyTime",
        "retryEnabled",
        "retryNumber",
        "retryWaitInterval",
        "backupWindowEnabled",
        "backupWindowSettings",
    ] {
        assert!(!p[field].is_null(), "schedulePolicy.{field}");
    }
    assert_eq!(p["type"], "Daily");
    assert_eq!(p["dailyTime"], "22:00:00");
    assert_eq!(
        p["backupWindowSettings"]["backupWindow"]
            .as_array()
            .unwrap()
            .len(),
        168
    );
    // The default repository and this node's proxy, with links clients follow.
    let repos = json(s.get("/v5/BackupRepositories", &token).await).await;
    let default = repos
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Default Backup Repository")
        .unwrap();
    assert_eq!(job["repositoryId"], default["id"]);
    let proxies = json(s.get("/v5/Proxies", &token).await).await;
    assert_eq!(job["proxyId"], proxies[0]["id"]);
    for link in [
        "self",
        "organization",
        "backupRepository",
        "jobsessions",
        "selectedItems",
        "excludedItems",
    ] {
        assert!(
            job["_links"][link]["href"]
                .as_str()
                .unwrap()
                .starts_with("https://"),
            "{link}"
        );
    }

    // Listed under /v5/Jobs and under the organization, and fetched by id (any case).
    assert_eq!(
        json(s.get("/v5/Jobs", &token).await)
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        json(
            s.get(&format!("/v5/organizations/{ORG}/jobs"), &token)
                .await
        )
        .await[0]["id"],
        id.as_str()
    );
    assert_eq!(
        json(s.get(&format!("/v5/JOBS/{id}"), &token).await).await["id"],
        id.as_str()
    );

    // PUT changes the fields present, nothing else.
    let r = send(
        &s,
        reqwest::Method::PUT,
        &format!("/v5/Jobs/{id}"),
        &token,
        Some(br#"{"description":"Nightly","schedulePolicy":{"type":"ManualOnly"}}"#),
    )
    .await;
    assert_eq!(r.status(), 204);
    let edited = json(s.get(&format!("/v5/Jobs/{id}"), &token).await).await;
    assert_eq!(edited["description"], "Nightly");
    assert_eq!(edited["name"], "Backup Job ABC");
    assert_eq!(edited["schedulePolicy"]["type"], "ManualOnly");
    assert_eq!(edited["schedulePolicy"]["dailyTime"], "22:00:00");
    assert!(
        edited.get("nextRun").is_none(),
        "a manual job has no next run"
    );

    // A second job of the same name is a conflict; another name is fine.
    let r = post_json(
        &s,
        &format!("/v5/Organizations/{ORG}/Jobs"),
        &token,
        &example_job(&s, &token, "backup job abc").await,
    )
    .await;
    assert_eq!(r.status(), 409);
    let second = json(
        post_json(
            &s,
            "/v5/BackupRepositories",
            &token,
            &json!({"name": "Second", "path": s.data_dir.path().join("second").display().to_string(),
                    "encryptionPassword": "a strong repository password"}),
        )
        .await,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = post_json(
        &s,
        &format!("/v5/Organizations/{ORG}/Jobs"),
        &token,
        &json!({"name": "Everything", "repositoryId": second}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let everything = json(r).await;
    assert_eq!(everything["backupType"], "EntireOrganization");
    let second_path = format!("/v5/BackupRepositories/{second}");
    let remove_second = || send(&s, reqwest::Method::DELETE, &second_path, &token, None);
    // A repository a job backs up into cannot be forgotten.
    let r = remove_second().await;
    assert_eq!(r.status(), 409);
    assert!(json(r).await["message"].as_str().unwrap().contains("job"));

    // The organization cannot go while jobs back it up.
    let r = send(
        &s,
        reqwest::Method::DELETE,
        &format!("/v5/Organizations/{ORG}"),
        &token,
        None,
    )
    .await;
    assert_eq!(r.status(), 409);

    // Remove both jobs; then the organization may go.
    for job in [id.as_str(), everything["id"].as_str().unwrap()] {
        let r = send(
            &s,
            reqwest::Method::DELETE,
            &format!("/v5/Jobs/{job}"),
            &token,
            None,
        )
        .await;
        assert_eq!(r.status(), 204);
    }
    assert_eq!(s.get(&format!("/v5/Jobs/{id}"), &token).await.status(), 404);
    assert_eq!(s.get("/v5/Jobs/not-a-guid", &token).await.status(), 404);
    assert_eq!(remove_second().await.status(), 204);
    let r = send(
        &s,
        reqwest::Method::DELETE,
        &format!("/v5/Organizations/{ORG}"),
        &token,
        None,
    )
    .await;
    assert_eq!(r.status(), 204);
    s.stop().await;
}

async fn lenient_bodies_and_fetched_jobs_are_accepted(backend: Backend) {
    let (s, token) = demo_on(backend).await;
    let user = a_user(&s, &token, "user2@*").await;
    // As a PHP portal builds it: any-case keys and enums, strings for booleans and numbers,
    // trailing commas, the v5 reference's `periodicInterval`.
    let body = format!(
        r#"{{"Name":"Portal job","BackupType":"selecteditems",
            "SelectedItems":[{{"Type":"user","User":{{"Id":"{}","Name":"{}"}},"OneDrive":"True",}},],
            "SchedulePolicy":{{"Type":"periodically","PeriodicInterval":"hours4","ScheduleEnabled":"true",
               "RetryEnabled":"False","BackupWindowEnabled":"false",}},
            "runNow":"false",}}"#,
        user["id"].as_str().unwrap(),
        user["name"].as_str().unwrap()
    );
    let r = send(
        &s,
        reqwest::Method::POST,
        &format!("/v5/Organizations/{ORG}/Jobs"),
        &token,
        Some(body.as_bytes()),
    )
    .await;
    assert_eq!(r.status(), 201);
    let job = json(r).await;
    assert_eq!(job["schedulePolicy"]["type"], "Periodically");
    assert_eq!(job["schedulePolicy"]["periodicallyEvery"], "Hours4");
    assert_eq!(job["schedulePolicy"]["retryEnabled"], false);

    // A public script re-POSTs the job it fetched (id, lastStatus, _links and all) as a copy.
    let mut copy = job.clone();
    copy["name"] = json!("Portal job (copy)");
    let items = json(
        s.get(
            &format!("/v5/Jobs/{}/SelectedItems", job["id"].as_str().unwrap()),
            &token,
        )
        .await,
    )
    .await;
    copy["selectedItems"] = items.clone();
    let r = post_json(&s, &format!("/v5/Organizations/{ORG}/Jobs"), &token, &copy).await;
    assert_eq!(r.status(), 201);
    let copied = json(r).await;
    assert_ne!(copied["id"], job["id"]);
    assert_eq!(copied["schedulePolicy"], job["schedulePolicy"]);
    let copied_items = json(
        s.get(
            &format!("/v5/Jobs/{}/SelectedItems", copied["id"].as_str().unwrap()),
            &token,
        )
        .await,
    )
    .await;
    assert_eq!(copied_items[0]["user"], items[0]["user"]);
    s.stop().await;
}

async fn expect_400(s: &TestServer, token: &str, body: &Value, needle: &str) {
    let r = post_json(s, &format!("/v5/Organizations/{ORG}/Jobs"), token, body).await;
    assert_eq!(r.status(), 400, "{body}");
    let message = json(r).await["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains(needle),
        "'{message}' should name '{needle}'"
    );
}

async fn bad_jobs_are_refused_naming_the_field(backend: Backend) {
    let (s, token) = demo_on(backend).await;
    let good = example_job(&s, &token, "Good").await;
    let with = |path: &[&str], value: Value| {
        let mut b = good.clone();
        let mut at = &mut b;
        for p in &path[..path.len() - 1] {
            at = if let Ok(i) = p.parse::<usize>() {
                &mut at[i]
            } else {
                &mut at[*p]
            };
        }
        at[path[path.len() - 1]] = value;
        b
    };
    expect_400(&s, &token, &with(&["name"], json!("  ")), "name").await;
    expect_400(
        &s,
        &token,
        &with(&["selectedItems"], json!([])),
        "selectedItems",
    )
    .await;
    expect_400(
        &s,
        &token,
        &with(&["selectedItems", "0", "mailbox"], json!(true)),
        "selectedItems[0]",
    )
    .await;
    expect_400(
        &s,
        &token,
        &with(
            &["selectedItems", "0", "user", "id"],
            json!("00000000-0000-0000-0000-000000000001"),
        ),
        "selectedItems[0].user",
    )
    .await;
    expect_400(
        &s,
        &token,
        &with(&["schedulePolicy", "dailyTime"], json!("25:00")),
        "dailyTime",
    )
    .await;
    expect_400(
        &s,
        &token,
        &with(&["schedulePolicy", "type"], json!("Hourly")),
        "schedulePolicy",
    )
    .await;
    expect_400(
        &s,
        &token,
        &with(
            &["schedulePolicy", "backupWindowSettings"],
            json!({"backupWindow": vec![true; 24]}),
        ),
        "168",
    )
    .await;
    expect_400(
        &s,
        &token,
        &with(&["schedulePolicy", "retryNumber"], json!(0)),
        "retryNumber",
    )
    .await;
    // A retry count or wait out of bounds is refused even while retries are off.
    let mut retries_off = with(&["schedulePolicy", "retryEnabled"], json!(false));
    retries_off["schedulePolicy"]["retryWaitInterval"] = json!(2_147_483_648u64);
    expect_400(&s, &token, &retries_off, "retryWaitInterval").await;
    retries_off["schedulePolicy"]["retryWaitInterval"] = json!(0);
    expect_400(&s, &token, &retries_off, "retryWaitInterval").await;
    retries_off["schedulePolicy"]["retryWaitInterval"] = json!(10);
    retries_off["schedulePolicy"]["retryNumber"] = json!(778);
    expect_400(&s, &token, &retries_off, "retryNumber").await;
    expect_400(
        &s,
        &token,
        &with(&["repositoryId"], json!(uuid::Uuid::new_v4().to_string())),
        "repositoryId",
    )
    .await;
    expect_400(
        &s,
        &token,
        &with(&["repositoryId"], json!("nope")),
        "repositoryId",
    )
    .await;
    expect_400(
        &s,
        &token,
        &json!({"name": "x", "selectedItems": [{"type": "PartialOrganization", "teams": true}]}),
        "Teams",
    )
    .await;
    expect_400(
        &s,
        &token,
        &json!({"name": "x", "selectedItems": [{"type": "Site", "site": true}]}),
        "site",
    )
    .await;
    let r = send(
        &s,
        reqwest::Method::POST,
        &format!("/v5/Organizations/{ORG}/Jobs"),
        &token,
        Some(b"{\"name\":"),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = post_json(
        &s,
        &format!("/v5/Organizations/{}/Jobs", uuid::Uuid::new_v4()),
        &token,
        &good,
    )
    .await;
    assert_eq!(r.status(), 404);
    // Nothing was created by any of them.
    assert_eq!(json(s.get("/v5/Jobs", &token).await).await, json!([]));
    s.stop().await;
}

async fn items_are_added_and_removed(backend: Backend) {
    let (s, token) = demo_on(backend).await;
    let r = post_json(
        &s,
        &format!("/v5/Organizations/{ORG}/Jobs"),
        &token,
        &example_job(&s, &token, "Items").await,
    )
    .await;
    let id = json(r).await["id"].as_str().unwrap().to_owned();
    let groups = json(
        s.get(
            &format!("/v5/Organizations/{ORG}/Groups?displayName=Backup*"),
            &token,
        )
        .await,
    )
    .await;
    let group = &groups["results"][0];
    // An item listed twice is one item.
    let add = json!([
        {"type": "Group", "group": {"id": group["id"]}, "members": true, "memberOnedrive": true, "site": false},
        {"type": "PersonalSites"},
        {"type": "PersonalSites", "mailbox": false},
    ]);
    let r = post_json(&s, &format!("/v5/Jobs/{id}/SelectedItems"), &token, &add).await;
    assert_eq!(r.status(), 204);
    let items = json(s.get(&format!("/v5/Jobs/{id}/SelectedItems"), &token).await).await;
    let kinds: Vec<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["User", "Group", "PersonalSites"]);
    assert_eq!(items[1]["group"]["id"], group["id"]);
    assert!(items[1]["id"].as_str().unwrap().len() == 36);

    let user = a_user(&s, &token, "user3@*").await;
    let exclude = json!([{"type": "User", "user": {"name": user["name"]}, "oneDrive": true}]);
    assert_eq!(
        post_json(
            &s,
            &format!("/v5/Jobs/{id}/ExcludedItems"),
            &token,
            &exclude
        )
        .await
        .status(),
        204
    );
    let excluded = json(s.get(&format!("/v5/Jobs/{id}/ExcludedItems"), &token).await).await;
    assert_eq!(excluded[0]["user"]["name"], user["name"]);

    // DELETE …?ids=a,b; the last selected item of a SelectedItems job stays.
    let ids = format!(
        "{},{}",
        items[1]["id"].as_str().unwrap(),
        items[2]["id"].as_str().unwrap()
    );
    let r = send(
        &s,
        reqwest::Method::DELETE,
        &format!("/v5/Jobs/{id}/SelectedItems?ids={ids}"),
        &token,
        None,
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = send(
        &s,
        reqwest::Method::DELETE,
        &format!(
            "/v5/Jobs/{id}/SelectedItems?ids={}",
            items[0]["id"].as_str().unwrap()
        ),
        &token,
        None,
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = send(
        &s,
        reqwest::Method::DELETE,
        &format!("/v5/Jobs/{id}/ExcludedItems?ids={}", uuid::Uuid::new_v4()),
        &token,
        None,
    )
    .await;
    assert_eq!(r.status(), 404);
    let r = send(
        &s,
        reqwest::Method::DELETE,
        &format!("/v5/Jobs/{id}/ExcludedItems?ids=x"),
        &token,
        None,
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        json(s.get(&format!("/v5/Jobs/{id}/SelectedItems"), &token).await)
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    s.stop().await;
}

async fn actions_answer_as_v5_clients_expect(backend: Backend) {
    let (s, token) = demo_on(backend).await;
    let r = post_json(
        &s,
        &format!("/v5/Organizations/{ORG}/Jobs"),
        &token,
        &json!({"name": "Acts", "schedulePolicy": {"type": "ManualOnly"}}),
    )
    .await;
    let id = json(r).await["id"].as_str().unwrap().to_owned();
    let action = |body: &'static str| {
        let (http, url, token) = (
            s.http.clone(),
            s.url(&format!("/v5/Jobs/{id}/Action")),
            token.clone(),
        );
        async move {
            http.post(url)
                .bearer_auth(token)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    // Stop when idle: 409. Unknown action: 400.
    assert_eq!(action(r#"{"stop":null}"#).await.status(), 409);
    assert_eq!(action(r#"{"pause":null}"#).await.status(), 400);
    assert_eq!(action(r#"{"start":null,"stop":null}"#).await.status(), 400);
    // Disable, and a disabled job cannot start.
    let r = action(r#"{"Disable":null}"#).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.bytes().await.unwrap().is_empty(),
        "200 with an empty body"
    );
    assert_eq!(
        json(s.get(&format!("/v5/Jobs/{id}"), &token).await).await["isEnabled"],
        false
    );
    assert_eq!(action(r#"{"start":null}"#).await.status(), 409);
    assert_eq!(action(r#"{"enable":null}"#).await.status(), 200);
    // Start: 200 with an empty body, the job is queued or running; a second start is 409.
    let r = action(r#"{"START":null}"#).await;
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().is_empty());
    let status = json(s.get(&format!("/v5/Jobs/{id}"), &token).await).await["lastStatus"].clone();
    assert!(status == "Queued" || status == "Running", "{status}");
    assert_eq!(action(r#"{"start":null}"#).await.status(), 409);
    // A running job cannot be removed.
    if status == "Running" {
        let r = send(
            &s,
            reqwest::Method::DELETE,
            &format!("/v5/Jobs/{id}"),
            &token,
            None,
        )
        .await;
        assert_eq!(r.status(), 409);
    }
    assert_eq!(action(r#"{"stop":null}"#).await.status(), 200);
    assert_eq!(
        s.http
            .post(s.url(&format!("/v5/Jobs/{}/Action", uuid::Uuid::new_v4())))
            .bearer_auth(&token)
            .json(&json!({"start": null}))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    s.stop().await;
}
