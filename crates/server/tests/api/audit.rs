//! The audit trail (`GET /v5/AuditItems`, ours) end to end: the real server over HTTPS on both
//! stores, an in-process simulated tenant, and the command line as a real process. Sign-ins,
//! organization and job changes, a backup, a restore session and a save are recorded with the
//! operator, time, kind and client address; filters and paging work; no secret ever reaches the
//! trail; and nothing, through the API or the database, can change it.

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::jobs::{add_job, post, run_job};
use common::{assert_plaintext_absent, json, start_sim, Backend, TestServer, ADMIN_PASSWORD};
use m365backup_api::audit::{route_kind, RouteKind};
use serde_json::{json, Value};

on_both_stores! {
    actions_are_recorded_and_listed_without_secrets;
    the_trail_cannot_be_changed_and_needs_an_operator;
}

fn tenant() -> m365sim::TenantSpec {
    m365sim::TenantSpec {
        seed: 91,
        users: 2,
        sites: 1,
        libraries_per_site: 1,
        m365_groups: 0,
        files_per_drive: 3,
        folders_per_drive: 1,
        max_file_size: 64 * 1024,
        max_versions: 1,
        ..Default::default()
    }
}

/// `GET /v5/AuditItems?<query>`: the JSON of a 200.
async fn audit(s: &TestServer, token: &str, query: &str) -> Value {
    let r = s.get(&format!("/v5/AuditItems?{query}"), token).await;
    assert_eq!(r.status(), 200, "{query}");
    json(r).await
}

fn results(page: &Value) -> Vec<Value> {
    page["results"].as_array().expect("a page").clone()
}

fn kinds(items: &[Value]) -> Vec<&str> {
    items.iter().map(|i| i["kind"].as_str().unwrap()).collect()
}

/// The one item of `kind` in `items`.
fn one<'a>(items: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = items.iter().filter(|i| i["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} in {items:#?}");
    found[0]
}

fn time_of(item: &Value) -> DateTime<Utc> {
    item["time"].as_str().unwrap().parse().unwrap()
}

/// The organization body of the simulated tenant (app-only: it carries the app's secret).
fn organization_body(sim: &m365sim::RunningSim) -> Value {
    let t = sim.tenant();
    json!({"type": "Office365", "region": "Worldwide", "isSharePointOnline": true,
        "sharePointOnlineSettings": {"useApplicationOnlyAuth": true,
            "applicationId": t.app.client_id.to_string(), "applicationSecret": t.app.client_secret,
            "officeOrganizationName": t.domain, "authorityUrl": sim.base_url(), "graphUrl": sim.graph_url()}})
}

/// Every stored item's row as text, read from the database itself.
async fn stored_rows(s: &TestServer) -> Vec<String> {
    use sqlx::Connection;
    const ROWS: &str = "SELECT id || ' ' || operator_key || ' ' || kind || ' ' || document \
                        FROM audit_items";
    match s.settings.database_url.as_ref() {
        Some(url) => {
            let mut conn = sqlx::PgConnection::connect(url.expose()).await.unwrap();
            sqlx::query_scalar(ROWS).fetch_all(&mut conn).await.unwrap()
        }
        None => {
            let mut conn = sqlite(s).await;
            sqlx::query_scalar(ROWS).fetch_all(&mut conn).await.unwrap()
        }
    }
}

async fn sqlite(s: &TestServer) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    let path = s
        .data_dir
        .path()
        .join(m365backup_store::DEFAULT_SQLITE_FILE);
    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

async fn actions_are_recorded_and_listed_without_secrets(backend: Backend) {
    let sim = start_sim(tenant()).await;
    let s = TestServer::start(backend).await;
    let started = Utc::now();
    let wrong_password = "not-the-admin-password-7f3a";

    // Refused sign-ins: a wrong password, and a hostile name (a forged log line, over-long).
    let r = s
        .token_request(&[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", wrong_password),
        ])
        .await;
    assert_eq!(r.status(), 400);
    let forged = format!(
        "nobody\n2026-01-01 INFO operator signed in{}",
        "x".repeat(100)
    );
    let r = s
        .token_request(&[
            ("grant_type", "password"),
            ("username", &forged),
            ("password", wrong_password),
        ])
        .await;
    assert_eq!(r.status(), 400);

    // A sign-in, then (a moment later) everything else.
    let signed_in = s.sign_in("admin", ADMIN_PASSWORD).await;
    let token = signed_in["access_token"].as_str().unwrap().to_owned();
    let refresh = signed_in["refresh_token"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let after_sign_in = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;

    let body = organization_body(&sim);
    let r = post(&s, "/v5/Organizations", &token, &body).await;
    assert_eq!(r.status(), 201);
    let org = json(r).await["id"].as_str().unwrap().to_owned();
    let org_name = json(s.get(&format!("/v5/Organizations/{org}"), &token).await).await["name"]
        .as_str()
        .unwrap()
        .to_owned();
    // An edit that sends the app's secret again.
    let r = s
        .http
        .put(s.url(&format!("/v5/Organizations/{org}")))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // A refused change is not recorded.
    let r = s
        .http
        .delete(s.url("/v5/Jobs/00000000-0000-0000-0000-000000000001"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let upn = sim.tenant().users[0].user_principal_name.clone();
    let drive = sim.onedrive(&upn).unwrap();
    drive
        .add_file_bytes(None, "audited.txt", b"tenant data read back")
        .unwrap();
    let job = add_job(&s, &token, &org, json!({"name": "Audited"})).await;
    assert_eq!(run_job(&s, &token, &job).await["status"], "Success");

    // A restore session, a save of one document, and the session stopped.
    let r = post(
        &s,
        &format!("/v5/Organizations/{org}/Action"),
        &token,
        &json!({"explore": {"type": "veod"}}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let session = json(r).await["id"].as_str().unwrap().to_owned();
    let under = format!("/v5/RestoreSessions/{session}/Organization/OneDrives");
    let drive_id = drive.id().to_owned();
    let docs = json(
        s.get(
            &format!("{under}/{drive_id}/Documents?parentId=null"),
            &token,
        )
        .await,
    )
    .await;
    let doc = results(&docs)
        .into_iter()
        .find(|d| d["name"] == "audited.txt")
        .unwrap_or_else(|| panic!("audited.txt in {docs}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = post(
        &s,
        &format!("{under}/{drive_id}/Documents/{doc}/Action"),
        &token,
        &json!({"save": null}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(&r.bytes().await.unwrap()[..], b"tenant data read back");
    let r = post(
        &s,
        &format!("/v5/RestoreSessions/{session}/Action"),
        &token,
        &json!({"stop": null}),
    )
    .await;
    assert_eq!(r.status(), 200);

    // The same OneDrive exported at a shell.
    let zip = s.data_dir.path().join("audit.zip").display().to_string();
    let (ok, _, stderr) = common::cli_with_env(
        &s,
        &["export", &org_name, "--onedrive", &upn, "--output", &zip],
        &[("USER", "shell-tester")],
    )
    .await;
    assert!(ok, "{stderr}");

    // Everything, newest first.
    let all = audit(&s, &token, "limit=1000").await;
    let items = results(&all);
    assert_eq!(
        kinds(&items),
        [
            "ItemsSaved",
            "RestoreSessionStopped",
            "ItemsSaved",
            "RestoreSessionStarted",
            "JobStarted",
            "JobCreated",
            "OrganizationChanged",
            "OrganizationCreated",
            "SignIn",
            "SignInFailed",
            "SignInFailed",
        ],
        "{all:#}"
    );
    let now = Utc::now();
    let mut previous = now;
    for item in &items {
        let t = time_of(item);
        assert!(started <= t && t <= previous, "{item}");
        previous = t;
        assert!(item["id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
    }

    // Who, from where, and what.
    let sign_in = one(&items, "SignIn");
    let admin_id = sign_in["operatorId"].as_str().unwrap().to_owned();
    for item in items.iter().filter(|i| i["via"] == "Api") {
        assert_eq!(item["clientAddress"], "127.0.0.1", "{item}");
        if item["kind"] != "SignInFailed" {
            assert_eq!(item["userName"], "admin", "{item}");
            assert_eq!(item["operatorId"], admin_id.as_str(), "{item}");
        }
    }
    assert_eq!(sign_in["action"], "POST /v5/Token");
    let failed: Vec<&Value> = items
        .iter()
        .filter(|i| i["kind"] == "SignInFailed")
        .collect();
    assert!(failed.iter().all(|i| i.get("operatorId").is_none()));
    assert_eq!(failed[1]["userName"], "admin");
    assert_eq!(
        failed[0]["userName"],
        format!(
            "nobody\\n2026-01-01 INFO operator signed in{}…(+77 chars)",
            "x".repeat(23)
        )
    );
    let created = one(&items, "OrganizationCreated");
    assert_eq!(created["action"], "POST /v5/Organizations");
    assert_eq!(created["resource"], format!("/v5/Organizations/{org}"));
    let changed = one(&items, "OrganizationChanged");
    assert_eq!(changed["action"], "PUT /v5/Organizations/{organizationId}");
    assert_eq!(changed["resource"], format!("/v5/Organizations/{org}"));
    assert_eq!(
        one(&items, "JobCreated")["resource"],
        format!("/v5/Jobs/{job}")
    );
    let started_job = one(&items, "JobStarted");
    assert_eq!(started_job["action"], "POST /v5/Jobs/{jobId}/Action");
    assert_eq!(started_job["resource"], format!("/v5/Jobs/{job}"));
    let explored = one(&items, "RestoreSessionStarted");
    assert_eq!(
        explored["resource"],
        format!("/v5/RestoreSessions/{session}")
    );
    assert!(
        explored["details"]
            .as_str()
            .unwrap()
            .starts_with(&format!("OneDrive restore: {org_name} - ")),
        "{explored}"
    );
    let saved = &items[2];
    assert_eq!(saved["via"], "Api");
    assert_eq!(
        saved["action"],
        "POST /v5/RestoreSessions/{restoreSessionId}/Organization/OneDrives/{oneDriveId}/Documents/{documentId}/Action"
    );
    assert_eq!(
        saved["resource"],
        format!("{under}/{drive_id}/Documents/{doc}")
    );
    assert!(
        saved["details"]
            .as_str()
            .unwrap()
            .starts_with("document 'audited.txt' of OneDrive of"),
        "{saved}"
    );
    let exported = &items[0];
    assert_eq!(exported["via"], "Cli");
    assert_eq!(exported["userName"], "shell-tester");
    assert_eq!(exported["action"], "m365backup export");
    assert!(exported.get("operatorId").is_none() && exported.get("clientAddress").is_none());
    assert!(exported["resource"]
        .as_str()
        .unwrap()
        .starts_with("/v5/RestoreSessions/"));
    assert!(
        exported["details"].as_str().unwrap().ends_with("audit.zip"),
        "{exported}"
    );

    // Filters: kind (several, any case), operator id and name, time.
    let page = audit(&s, &token, "kind=signin,SIGNINFAILED").await;
    assert_eq!(
        kinds(&results(&page)),
        ["SignIn", "SignInFailed", "SignInFailed"]
    );
    let page = audit(&s, &token, &format!("operatorId={admin_id}&limit=100")).await;
    assert_eq!(page["results"].as_array().unwrap().len(), 8, "{page:#}");
    let page = audit(&s, &token, "userName=ADMIN&limit=100").await;
    assert_eq!(
        results(&page).len(),
        9,
        "the refused sign-in as admin too: {page:#}"
    );
    let page = audit(&s, &token, "userName=shell-tester").await;
    assert_eq!(kinds(&results(&page)), ["ItemsSaved"]);
    let mid = after_sign_in.to_rfc3339();
    let page = audit(&s, &token, &format!("toTime={}", urlencode(&mid))).await;
    assert_eq!(
        kinds(&results(&page)),
        ["SignIn", "SignInFailed", "SignInFailed"]
    );
    let page = audit(
        &s,
        &token,
        &format!("fromTime={}&kind=JobStarted,SignIn", urlencode(&mid)),
    )
    .await;
    assert_eq!(kinds(&results(&page)), ["JobStarted"]);
    // A date alone is the whole day (the server's time zone is the test machine's).
    let today = Utc::now()
        .with_timezone(&s.settings.time_zone)
        .format("%Y-%m-%d")
        .to_string();
    if today
        == started
            .with_timezone(&s.settings.time_zone)
            .format("%Y-%m-%d")
            .to_string()
    {
        let page = audit(
            &s,
            &token,
            &format!("fromTime={today}&toTime={today}&limit=100"),
        )
        .await;
        assert_eq!(results(&page).len(), items.len());
    }

    // Paging: pages of 4 follow their `next` links, which keep the filter.
    let mut url = s.url("/v5/AuditItems?limit=4&userName=admin");
    let mut paged = Vec::new();
    loop {
        let r = s.http.get(&url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let page = json(r).await;
        paged.extend(results(&page));
        match page["_links"]["next"]["href"].as_str() {
            Some(next) => {
                assert!(next.contains("userName=admin"), "{next}");
                url = next.to_owned();
            }
            None => break,
        }
    }
    let admin_items: Vec<Value> = items
        .iter()
        .filter(|i| i["userName"] == "admin")
        .cloned()
        .collect();
    assert_eq!(paged, admin_items);
    let page = audit(&s, &token, "offset=2&limit=2").await;
    assert_eq!(results(&page), items[2..4].to_vec());
    assert_eq!(page["offset"], 2);

    // Bad parameters: 400, saying why.
    for bad in [
        "kind=Hacked",
        "fromTime=yesterday",
        "operatorId=admin",
        "limit=0",
    ] {
        let r = s.get(&format!("/v5/AuditItems?{bad}"), &token).await;
        assert_eq!(r.status(), 400, "{bad}");
        assert!(json(r).await["message"].is_string());
    }
    // A window that ends before it starts is valid and holds nothing.
    let empty = audit(&s, &token, "fromTime=2026-03-02&toTime=2026-03-01").await;
    assert_eq!(results(&empty), Vec::<serde_json::Value>::new());

    // Sign-out is recorded too, as the operator it was.
    let r = s
        .http
        .delete(s.url("/v5/Token"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let token = s.sign_in("admin", ADMIN_PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = audit(&s, &token, "kind=SignOut").await;
    let out = &results(&page)[0];
    assert_eq!(out["operatorId"], admin_id.as_str());
    assert_eq!(out["action"], "DELETE /v5/Token");

    // No secret anywhere: not in the listing, not in the stored rows, not in the database.
    let listing = s
        .get("/v5/AuditItems?limit=10000", &token)
        .await
        .text()
        .await
        .unwrap();
    let rows = stored_rows(&s).await.join("\n");
    let client_secret = sim.tenant().app.client_secret.clone();
    for secret in [
        ADMIN_PASSWORD,
        wrong_password,
        client_secret.as_str(),
        token.as_str(),
        refresh.as_str(),
        signed_in["access_token"].as_str().unwrap(),
    ] {
        assert!(!listing.contains(secret), "the listing holds a secret");
        assert!(!rows.contains(secret), "the audit rows hold a secret");
        assert_plaintext_absent(&s, secret).await;
    }
    s.stop().await;
}

fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `m365backup admin add <name>` as the shell user `user`, the password on standard input.
async fn admin_add(s: &TestServer, name: &str, password: &str, user: &str) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_m365backup"));
    cmd.arg("--data-dir").arg(s.data_dir.path());
    if let Some(url) = &s.settings.database_url {
        cmd.arg("--database-url").arg(url.expose());
    }
    cmd.args(["admin", "add", name])
        .env_remove("M365BACKUP_CONFIG")
        .env("USER", user)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let input = format!("{password}\n");
    let out = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn the_trail_cannot_be_changed_and_needs_an_operator(backend: Backend) {
    let s = TestServer::start_with(backend, |s| s.api.trust_forwarded_headers = true).await;

    // Only operators read it.
    let r = s.http.get(s.url("/v5/AuditItems")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(s.get("/v5/AuditItems", "not-a-token").await.status(), 401);

    // The client address behind a trusted proxy is the one it forwards.
    let r = s
        .http
        .post(s.url("/v5/Token"))
        .header("X-Forwarded-For", "198.51.100.1, 203.0.113.7")
        .form(&[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = json(r).await["access_token"].as_str().unwrap().to_owned();
    let before = results(&audit(&s, &token, "").await);
    assert_eq!(kinds(&before), ["SignIn"]);
    assert_eq!(before[0]["clientAddress"], "203.0.113.7");

    // An operator added at a shell is recorded as the shell user, never with the password.
    admin_add(&s, "carol", "carol-password-9d2e", "root-at-console").await;
    let items = results(&audit(&s, &token, "").await);
    let added = one(&items, "OperatorAdded");
    assert_eq!(added["via"], "Cli");
    assert_eq!(added["userName"], "root-at-console");
    assert_eq!(added["action"], "m365backup admin add");
    assert!(added["resource"]
        .as_str()
        .unwrap()
        .starts_with("operator carol ("));
    assert!(!stored_rows(&s)
        .await
        .join("\n")
        .contains("carol-password-9d2e"));

    // No method changes it, and there is no item route to aim at.
    let id = before[0]["id"].as_str().unwrap();
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = s
            .http
            .request(method.clone(), s.url("/v5/AuditItems"))
            .bearer_auth(&token)
            .json(&json!([]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method}");
        let r = s
            .http
            .request(method.clone(), s.url(&format!("/v5/AuditItems/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{method}");
    }
    assert_eq!(results(&audit(&s, &token, "").await), items, "unchanged");

    // Not even through the database: the store refuses updates.
    let update = "UPDATE audit_items SET document = '{}'";
    let refused = match s.settings.database_url.as_ref() {
        Some(url) => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(url.expose()).await.unwrap();
            sqlx::query(update).execute(&mut conn).await.unwrap_err()
        }
        None => {
            let mut conn = sqlite(&s).await;
            sqlx::query(update).execute(&mut conn).await.unwrap_err()
        }
    };
    assert!(
        refused
            .to_string()
            .contains("audit items cannot be changed"),
        "{refused}"
    );
    assert_eq!(results(&audit(&s, &token, "").await), items, "unchanged");

    // The OpenAPI document lists the route, read-only, and every change route has a kind.
    let doc = json(
        s.http
            .get(s.url("/swagger/v5/swagger.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let route = doc["paths"]["/v5/AuditItems"].as_object().unwrap();
    assert_eq!(route.keys().collect::<Vec<_>>(), ["get"]);
    let params: Vec<&str> = route["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in [
        "offset",
        "limit",
        "operatorId",
        "userName",
        "fromTime",
        "toTime",
        "kind",
    ] {
        assert!(params.contains(&name), "{name} in {params:?}");
    }
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let change = m365backup_api::audit::is_change(&method);
            // `POST /v5/Token` records its own items (sign-ins come before an operator).
            if change && path != "/v5/Token" {
                assert_ne!(
                    route_kind(&method, path),
                    RouteKind::Unknown,
                    "{method} {path} has no audit kind"
                );
            }
        }
    }

    // Retention: items older than the retention are removed.
    let store = s.server.as_ref().unwrap().store.clone();
    let audit_service = m365backup_core::audit::AuditService::new(store);
    assert_eq!(
        audit_service
            .purge_older_than(Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        audit_service
            .purge_older_than(Duration::ZERO)
            .await
            .unwrap(),
        items.len() as u64
    );
    assert_eq!(audit(&s, &token, "").await["results"], json!([]));
    s.stop().await;
}
