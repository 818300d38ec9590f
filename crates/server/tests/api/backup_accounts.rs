//! The founding endpoint, `PUT`/`GET /v5/Organizations/{id}/BackupAccounts`, over HTTPS against
//! simulated tenants, on both stores.

use crate::common;

use common::{
    assert_not_logged, assert_plaintext_absent, captured_logs, json, organization_body, start_sim,
    Backend, TestServer,
};
use m365sim::tenant::generated_password;
use m365sim::TenantSpec;
use serde_json::{json, Value};

const ORG: &str = "6f9b3da3-204d-4a4b-b466-55586e0233fc";
const GROUP: &str = "6e570850-9ce9-40ed-b81d-41772dabcead00000000-0000-0000-0000-000000000000";
/// The founding document's request body, byte for byte.
const SEED_BODY: &str = r#"[{ "groupMember":{ "groupId":"6e570850-9ce9-40ed-b81d-41772dabcead00000000-0000-0000-0000-000000000000", "login":"account1@office365.onmicrosoft.com", "name":"tworker1", "type":"User" }, "password":"XXXXX" }]"#;

on_both_stores! {
    the_seed_request_verbatim;
    every_failing_check_is_a_400_naming_the_entry_and_changes_nothing;
    get_edit_put_round_trip_and_clear;
    a_thousand_accounts;
    racing_puts_leave_one_list;
    passwords_are_sealed_at_rest_and_removed_with_the_organization;
}

async fn demo_server(backend: Backend) -> (TestServer, String) {
    let s = TestServer::start_with(backend, |c| c.demo = true).await;
    let token = s.admin_token().await;
    (s, token)
}

fn account(login: &str, password: Option<&str>) -> Value {
    let mut v = json!({"groupMember": {"groupId": GROUP, "login": login, "name": login.split('@').next().unwrap(), "type": "User"}});
    if let Some(p) = password {
        v["password"] = json!(p);
    }
    v
}

fn demo_password(i: usize) -> String {
    if i == 1 {
        "XXXXX".into()
    } else {
        generated_password(&format!("account{i}"), 365)
    }
}

fn demo_login(i: usize) -> String {
    format!("account{i}@office365.onmicrosoft.com")
}

async fn put(s: &TestServer, token: &str, org: &str, body: &Value) -> reqwest::Response {
    s.http
        .put(s.url(&format!("/v5/Organizations/{org}/BackupAccounts")))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn list(s: &TestServer, token: &str, org: &str) -> Value {
    let r = s
        .get(&format!("/v5/organizations/{org}/backupaccounts"), token)
        .await;
    assert_eq!(r.status(), 200);
    json(r).await
}

fn logins(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|a| a["groupMember"]["login"].as_str().unwrap().to_owned())
        .collect()
}

async fn the_seed_request_verbatim(backend: Backend) {
    captured_logs();
    let (s, token) = demo_server(backend).await;
    let r = s
        .http
        .put(s.url(&format!("/v5/Organizations/{ORG}/backupaccounts")))
        .bearer_auth(&token)
        .header("content-type", "application/json; charset=utf-8")
        .body(SEED_BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let body = r.text().await.unwrap();
    assert_eq!(
        body,
        format!(
            r#"{{"_links":{{"self":{{"href":"{}/v5/organizations/{ORG}/backupaccounts"}}}}}}"#,
            s.base
        )
    );

    let accounts = list(&s, &token, ORG).await;
    assert_eq!(
        accounts[0]["groupMember"],
        json!({"groupId": GROUP, "name": "tworker1", "login": "account1@office365.onmicrosoft.com", "type": "User", "isCloud": true})
    );
    assert_eq!(
        accounts[0]["_links"]["organization"]["href"],
        format!("{}/v5/organizations/{ORG}", s.base)
    );
    assert!(!accounts.to_string().to_lowercase().contains("password"));

    // Clients feed members back verbatim (isCloud, _links), with any letter case.
    let member = json(
        s.get(
            &format!("/v5/Organizations/{ORG}/Groups/{GROUP}/Members"),
            &token,
        )
        .await,
    )
    .await["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["login"] == demo_login(2))
        .unwrap()
        .clone();
    let body = json!([{"GROUPMEMBER": member, "Password": demo_password(2)}]);
    assert_eq!(put(&s, &token, ORG, &body).await.status(), 201);
    assert_eq!(logins(&list(&s, &token, ORG).await), [demo_login(2)]);

    // Unauthenticated calls and unknown organizations.
    let r = s
        .http
        .put(s.url(&format!("/v5/Organizations/{ORG}/BackupAccounts")))
        .json(&json!([]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        s.http
            .get(s.url(&format!("/v5/Organizations/{ORG}/BackupAccounts")))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let other = uuid::Uuid::new_v4().to_string();
    assert_eq!(put(&s, &token, &other, &json!([])).await.status(), 404);
    assert_eq!(
        s.get(&format!("/v5/Organizations/{other}/BackupAccounts"), &token)
            .await
            .status(),
        404
    );
    assert_not_logged("XXXXX");
    assert_not_logged(&demo_password(2));
    s.stop().await;
}

async fn every_failing_check_is_a_400_naming_the_entry_and_changes_nothing(backend: Backend) {
    let (s, token) = demo_server(backend).await;
    let good = account(&demo_login(1), Some("XXXXX"));
    assert_eq!(
        put(&s, &token, ORG, &json!([good.clone()])).await.status(),
        201
    );
    let before = list(&s, &token, ORG).await;

    let tenant = s.server.as_ref().unwrap().demo.as_ref().unwrap().tenant();
    let team = tenant
        .groups
        .iter()
        .find(|g| g.display_name == "Team 1")
        .unwrap()
        .id;
    let outsider = "user1@office365.onmicrosoft.com";
    let mut not_a_group = account(&demo_login(2), Some(&demo_password(2)));
    not_a_group["groupMember"]["groupId"] = json!(format!(
        "{}00000000-0000-0000-0000-000000000000",
        uuid::Uuid::new_v4()
    ));
    let mut m365_group = account(&demo_login(2), Some(&demo_password(2)));
    m365_group["groupMember"]["groupId"] =
        json!(format!("{team}00000000-0000-0000-0000-000000000000"));
    let mut malformed_group = account(&demo_login(2), Some(&demo_password(2)));
    malformed_group["groupMember"]["groupId"] = json!("not-a-guid");
    let mut a_group = account(&demo_login(2), Some(&demo_password(2)));
    a_group["groupMember"]["type"] = json!("Group");
    let cases: Vec<(Value, &str)> = vec![
        (not_a_group, "is not a group of the organization"),
        (m365_group, "not a security group"),
        (malformed_group, "is not a group id"),
        (
            account(outsider, Some(&generated_password("user1", 365))),
            "not a member of group 'Backup Workers'",
        ),
        (a_group, "must be a User"),
        (
            account(&demo_login(1).to_uppercase(), Some("XXXXX")),
            "listed twice (also as entry [0])",
        ),
        (account(&demo_login(3), None), "password is required"),
        (account(&demo_login(3), Some("")), "password is required"),
        (account(&demo_login(3), Some("wrong")), "AADSTS50126"),
    ];
    for (second, needle) in cases {
        let login = second["groupMember"]["login"].as_str().unwrap().to_owned();
        let r = put(&s, &token, ORG, &json!([good.clone(), second])).await;
        assert_eq!(r.status(), 400, "{needle}");
        let message = json(r).await["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains("[1]") && message.contains(&login),
            "entry named in '{message}'"
        );
        assert!(
            message.contains(needle),
            "'{message}' should say '{needle}'"
        );
        assert_eq!(list(&s, &token, ORG).await, before, "nothing written");
    }
    // Malformed bodies.
    for (body, content_type, status) in [
        ("{\"groupMember\":{}}", "application/json", 400),
        ("[{\"groupMember\":", "application/json", 400),
        ("[{\"password\":\"x\"}]", "application/json", 400),
        ("[]", "text/plain", 415),
    ] {
        let r = s
            .http
            .put(s.url(&format!("/v5/Organizations/{ORG}/BackupAccounts")))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{body}");
        assert!(json(r).await["message"].is_string());
    }
    assert_eq!(list(&s, &token, ORG).await, before);
    s.stop().await;
}

async fn get_edit_put_round_trip_and_clear(backend: Backend) {
    let (s, token) = demo_server(backend).await;
    let body: Vec<Value> = (1..=3)
        .map(|i| account(&demo_login(i), Some(&demo_password(i))))
        .collect();
    assert_eq!(put(&s, &token, ORG, &json!(body)).await.status(), 201);
    let listed = list(&s, &token, ORG).await;
    assert_eq!(
        logins(&listed),
        [demo_login(1), demo_login(2), demo_login(3)]
    );

    // GET, edit (drop one, reorder), PUT back without any password: stored passwords are kept.
    let mut edited: Vec<Value> = listed.as_array().unwrap().clone();
    edited.remove(1);
    edited.reverse();
    assert_eq!(put(&s, &token, ORG, &json!(edited)).await.status(), 201);
    assert_eq!(
        logins(&list(&s, &token, ORG).await),
        [demo_login(3), demo_login(1)]
    );

    // The engine's view: decrypted sign-ins, the passwords as given.
    let server = s.server.as_ref().unwrap();
    let sessions = server
        .backup_accounts
        .sessions(ORG.parse().unwrap())
        .await
        .unwrap();
    let got: Vec<(String, String)> = sessions
        .iter()
        .map(|a| match &a.connection.auth {
            m365backup_core::directory::TenantAuth::Password {
                account, password, ..
            } => (account.clone(), password.expose().to_owned()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        [
            (demo_login(3), demo_password(3)),
            (demo_login(1), demo_password(1))
        ]
    );
    assert!(
        !format!("{:?}", sessions).contains(&demo_password(3)),
        "the engine's type redacts passwords"
    );

    // A new password for an existing account is checked too.
    let r = put(
        &s,
        &token,
        ORG,
        &json!([account(&demo_login(1), Some("wrong"))]),
    )
    .await;
    assert_eq!(r.status(), 400);
    // [] clears.
    assert_eq!(put(&s, &token, ORG, &json!([])).await.status(), 201);
    assert_eq!(list(&s, &token, ORG).await, json!([]));
    s.stop().await;
}

async fn a_thousand_accounts(backend: Backend) {
    let sim = start_sim(TenantSpec {
        seed: 8,
        users: 1000,
        files_per_drive: 0,
        folders_per_drive: 0,
        ..TenantSpec::default()
    })
    .await;
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let r = s
        .http
        .post(s.url("/v5/Organizations"))
        .bearer_auth(&token)
        .json(&organization_body(
            &sim,
            "user1@contoso8.onmicrosoft.com",
            &generated_password("user1", 8),
        ))
        .send()
        .await
        .unwrap();
    let org = json(r).await["id"].as_str().unwrap().to_owned();
    let staff = sim
        .tenant()
        .groups
        .iter()
        .find(|g| g.display_name == "All Staff")
        .unwrap()
        .id;
    let group = format!("{staff}00000000-0000-0000-0000-000000000000");
    let body: Vec<Value> = (1..=1000)
        .map(|i| {
            json!({"groupMember": {"groupId": group, "login": format!("user{i}@contoso8.onmicrosoft.com"), "name": format!("User {i}"), "type": "User"},
                   "password": generated_password(&format!("user{i}"), 8)})
        })
        .collect();
    let t0 = std::time::Instant::now();
    let r = put(&s, &token, &org, &json!(body)).await;
    assert_eq!(r.status(), 201);
    let elapsed = t0.elapsed();
    let listed = list(&s, &token, &org).await;
    assert_eq!(listed.as_array().unwrap().len(), 1000);
    assert_eq!(
        listed[999]["groupMember"]["login"],
        "user1000@contoso8.onmicrosoft.com"
    );
    assert_eq!(listed[999]["groupMember"]["name"], "User 1000");
    eprintln!("1000 backup accounts checked and set in {elapsed:?}");
    s.stop().await;
    sim.shutdown().await;
}

async fn racing_puts_leave_one_list(backend: Backend) {
    let (s, token) = demo_server(backend).await;
    let a = json!([
        account(&demo_login(1), Some(&demo_password(1))),
        account(&demo_login(2), Some(&demo_password(2)))
    ]);
    let b = json!([
        account(&demo_login(3), Some(&demo_password(3))),
        account(&demo_login(4), Some(&demo_password(4))),
        account(&demo_login(2), Some(&demo_password(2)))
    ]);
    let (la, lb) = (
        vec![demo_login(1), demo_login(2)],
        vec![demo_login(3), demo_login(4), demo_login(2)],
    );
    for _ in 0..6 {
        let (ra, rb) = tokio::join!(put(&s, &token, ORG, &a), put(&s, &token, ORG, &b));
        assert_eq!(
            (ra.status(), rb.status()),
            (reqwest::StatusCode::CREATED, reqwest::StatusCode::CREATED)
        );
        let now = logins(&list(&s, &token, ORG).await);
        assert!(now == la || now == lb, "a mix: {now:?}");
    }
    s.stop().await;
}

async fn passwords_are_sealed_at_rest_and_removed_with_the_organization(backend: Backend) {
    let (s, token) = demo_server(backend).await;
    let password = demo_password(2);
    assert_eq!(
        put(
            &s,
            &token,
            ORG,
            &json!([account(&demo_login(2), Some(&password))])
        )
        .await
        .status(),
        201
    );
    assert_plaintext_absent(&s, &password).await;
    if let Backend::Postgres = backend {
        use sqlx::Connection;
        let mut conn =
            sqlx::PgConnection::connect(s.settings.database_url.as_ref().unwrap().expose())
                .await
                .unwrap();
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM backup_accounts")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(rows, 1);
    }
    let r = s
        .http
        .delete(s.url(&format!("/v5/Organizations/{ORG}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let store = s.server.as_ref().unwrap().store.clone();
    assert!(
        store
            .list_backup_accounts(ORG.parse().unwrap())
            .await
            .unwrap()
            .is_empty(),
        "removed with the organization"
    );
    s.stop().await;
}
