//! m365sim over HTTP: identity errors, Graph shapes and paging, delta semantics, downloads,
//! the throttling model and the control API; OneDrive for Business's delta rounds, versions,
//! permissions and downloads (`realism.rs`), access as a tenant grants it (`access.rs`), the
//! realistic throttling profile (`realistic.rs`), sites, sub-sites, libraries and group sites
//! (`sites.rs`), injected faults (`faults.rs`), the in-process handle and the tenant's truth
//! (`handle.rs`), Graph writes (`writes.rs`), uploads (`uploads.rs`) and what a restore meets
//! (`restore_faults.rs`).

// Test and benchmark code panics on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod faults;
mod handle;
mod realism;
mod realistic;
mod restore_faults;
mod sites;
mod uploads;
mod writes;

use std::time::{Duration, Instant};

use m365sim::tenant::{GroupKind, GroupSpec, UserSpec};
use m365sim::{RunningSim, SimConfig, TenantSpec, ThrottleConfig};
use serde_json::{json, Value};

const SECRET: &str = "test-control";

fn spec() -> TenantSpec {
    TenantSpec {
        seed: 42,
        users: 130,
        files_per_drive: 12,
        folders_per_drive: 3,
        max_file_size: 3 << 20,
        extra_users: vec![UserSpec {
            id: None,
            user_principal_name: "disabled@contoso42.onmicrosoft.com".into(),
            display_name: "Disabled".into(),
            password: "pw".into(),
            account_enabled: false,
        }],
        extra_groups: vec![GroupSpec {
            id: None,
            display_name: "Extra".into(),
            kind: GroupKind::Security,
            members: vec!["user1@contoso42.onmicrosoft.com".into()],
        }],
        ..TenantSpec::default()
    }
}

async fn start(throttling: ThrottleConfig) -> RunningSim {
    start_spec(spec(), throttling).await
}

async fn start_spec(tenant: TenantSpec, throttling: ThrottleConfig) -> RunningSim {
    let config = SimConfig {
        tenant,
        throttling,
        control_secret: SECRET.into(),
        ..SimConfig::default()
    };
    m365sim::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn unthrottled() -> ThrottleConfig {
    ThrottleConfig {
        enabled: false,
        ..ThrottleConfig::default()
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

async fn token_request(sim: &RunningSim, tenant: &str, form: &[(&str, &str)]) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/{tenant}/oauth2/v2.0/token", sim.base_url()))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn sign_in(sim: &RunningSim, upn: &str) -> Client {
    let t = sim.tenant();
    let (_, user) = t.user(upn).unwrap();
    let client_id = t.app.client_id.to_string();
    let r = token_request(
        sim,
        &t.id.to_string(),
        &[
            ("grant_type", "password"),
            ("client_id", &client_id),
            ("scope", "https://graph.microsoft.com/.default"),
            ("username", upn),
            ("password", &user.password),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    Client {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        base: sim.graph_url(),
        token: body["access_token"].as_str().unwrap().into(),
    }
}

async fn app_client(sim: &RunningSim) -> Client {
    let t = sim.tenant();
    let (id, secret) = (t.app.client_id.to_string(), t.app.client_secret.clone());
    let r = token_request(
        sim,
        &t.domain,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    Client {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        base: sim.graph_url(),
        token: body["access_token"].as_str().unwrap().into(),
    }
}

/// A control API call: `method` on `/_sim/{path}` with a JSON body (or none).
async fn control(
    sim: &RunningSim,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut r = reqwest::Client::new()
        .request(method, format!("{}/_sim/{path}", sim.base_url()))
        .header("x-sim-secret", SECRET);
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.unwrap()
}

impl Client {
    /// A request with the bearer token; `url` absolute or below the Graph URL.
    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let url = if url.starts_with("http") {
            url.to_owned()
        } else {
            format!("{}{url}", self.base)
        };
        self.http.request(method, url).bearer_auth(&self.token)
    }

    async fn get_raw(&self, url: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, url)
            .send()
            .await
            .unwrap()
    }

    /// `method` with a JSON body.
    async fn send_json(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Value,
    ) -> reqwest::Response {
        self.request(method, url).json(&body).send().await.unwrap()
    }

    /// `PUT` of raw bytes (a simple upload).
    async fn put_bytes(&self, url: &str, bytes: Vec<u8>) -> reqwest::Response {
        self.request(reqwest::Method::PUT, url)
            .body(bytes)
            .send()
            .await
            .unwrap()
    }

    /// Follows a content redirect and reads the bytes.
    async fn download(&self, url: &str) -> reqwest::Response {
        let r = self.get_raw(url).await;
        assert_eq!(r.status(), 302, "{url}");
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        reqwest::get(location).await.unwrap()
    }

    async fn get(&self, url: &str) -> Value {
        let r = self.get_raw(url).await;
        assert_eq!(r.status(), 200, "{url}");
        r.json().await.unwrap()
    }

    /// Follows `@odata.nextLink` to the end; all values and the final page.
    async fn all(&self, url: &str) -> (Vec<Value>, Value) {
        let mut values = Vec::new();
        let mut page = self.get(url).await;
        loop {
            values.extend(page["value"].as_array().unwrap().iter().cloned());
            match page["@odata.nextLink"].as_str() {
                Some(next) => page = self.get(next).await,
                None => return (values, page),
            }
        }
    }
}

/// Graph's error code of an answer (and its status).
async fn graph_error(r: reqwest::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or_default();
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        body["error"]["innerError"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

fn aad_code(body: &Value) -> u64 {
    body["error_codes"][0].as_u64().unwrap()
}

#[tokio::test]
async fn identity_errors_are_microsofts() {
    let sim = start(unthrottled()).await;
    let t = sim.tenant();
    let cid = t.app.client_id.to_string();
    let tid = t.id.to_string();
    let scope = ("scope", "https://graph.microsoft.com/.default");
    let ropc = |user: &'static str, pw: &'static str| {
        vec![
            ("grant_type", "password"),
            ("client_id", cid.as_str()),
            scope,
            ("username", user),
            ("password", pw),
        ]
    };

    let r = token_request(
        &sim,
        &tid,
        &ropc("user1@contoso42.onmicrosoft.com", "wrong"),
    )
    .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(aad_code(&body), 50126);
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .starts_with("AADSTS50126: Error validating credentials"));
    assert!(body["trace_id"].is_string() && body["correlation_id"].is_string());

    let body: Value = token_request(&sim, &tid, &ropc("ghost@contoso42.onmicrosoft.com", "x"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (body["error"].as_str(), aad_code(&body)),
        (Some("invalid_grant"), 50034)
    );
    let body: Value = token_request(
        &sim,
        &tid,
        &ropc("disabled@contoso42.onmicrosoft.com", "pw"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(aad_code(&body), 50057);

    let r = token_request(
        &sim,
        &tid,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &cid),
            ("client_secret", "nope"),
            scope,
        ],
    )
    .await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["error"].as_str(), aad_code(&body)),
        (Some("invalid_client"), 7000215)
    );

    let body: Value = token_request(
        &sim,
        "00000000-0000-0000-0000-000000000001",
        &ropc("user1@contoso42.onmicrosoft.com", "x"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(aad_code(&body), 90002);
    let other_app = vec![
        ("grant_type", "password"),
        ("client_id", "11111111-1111-1111-1111-111111111111"),
        scope,
        ("username", "user1@contoso42.onmicrosoft.com"),
        ("password", "x"),
    ];
    let body: Value = token_request(&sim, &tid, &other_app)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (body["error"].as_str(), aad_code(&body)),
        (Some("unauthorized_client"), 700016)
    );

    // Graph refuses requests without a valid token, in Graph's error shape.
    let r = reqwest::get(format!("{}/users", sim.graph_url()))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    sim.shutdown().await;
}

#[tokio::test]
async fn directory_shapes_and_paging() {
    let sim = start(unthrottled()).await;
    let c = app_client(&sim).await;
    let org = c.get("/organization").await;
    assert_eq!(org["value"][0]["id"], json!(sim.tenant().id));
    assert_eq!(
        org["value"][0]["verifiedDomains"][0]["name"],
        "contoso42.onmicrosoft.com"
    );
    assert_eq!(org["value"][0]["verifiedDomains"][0]["isDefault"], true);

    let (users, _) = c.all("/users?$top=50").await;
    assert_eq!(users.len(), sim.tenant().users.len());
    let first_page = c.get("/users").await;
    assert_eq!(
        first_page["value"].as_array().unwrap().len(),
        100,
        "default page size"
    );
    assert!(first_page["@odata.nextLink"]
        .as_str()
        .unwrap()
        .contains("$skiptoken"));
    let u = &users[0];
    for key in [
        "id",
        "displayName",
        "userPrincipalName",
        "mail",
        "accountEnabled",
    ] {
        assert!(u.get(key).is_some(), "{key}");
    }
    assert_eq!(
        c.get(&format!(
            "/users/{}",
            u["userPrincipalName"].as_str().unwrap()
        ))
        .await["id"],
        u["id"]
    );
    let missing = c.get_raw("/users/nobody@nowhere").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["error"]["code"],
        "Request_ResourceNotFound"
    );

    let (security, _) = c
        .all("/groups?$filter=securityEnabled%20eq%20true&$top=2")
        .await;
    assert!(
        security.len() >= 3
            && security
                .iter()
                .all(|g| g["securityEnabled"] == true && g["groupTypes"] == json!([]))
    );
    let (unified, _) = c
        .all("/groups?$filter=groupTypes/any(c:c%20eq%20'Unified')")
        .await;
    assert!(
        !unified.is_empty()
            && unified
                .iter()
                .all(|g| g["groupTypes"] == json!(["Unified"]) && g["mailEnabled"] == true)
    );
    assert_eq!(
        c.get_raw("/groups?$filter=startswith(displayName,'A')")
            .await
            .status(),
        400
    );
    assert_eq!(c.get_raw("/users?$top=5000").await.status(), 400);

    let all_staff = security
        .iter()
        .find(|g| g["displayName"] == "All Staff")
        .unwrap();
    let gid = all_staff["id"].as_str().unwrap();
    assert_eq!(
        c.get(&format!("/groups/{gid}")).await["displayName"],
        "All Staff"
    );
    let (members, _) = c.all(&format!("/groups/{gid}/members")).await;
    assert_eq!(members.len(), 130, "more members than one page");
    assert_eq!(members[0]["@odata.type"], "#microsoft.graph.user");
    let backup = security
        .iter()
        .find(|g| g["displayName"] == "Backup Accounts")
        .unwrap();
    let (backup_members, _) = c
        .all(&format!(
            "/groups/{}/members",
            backup["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(backup_members.len(), 8, "default N backup accounts");
    sim.shutdown().await;
}

#[tokio::test]
async fn sites_drives_delta_and_content() {
    let sim = start(unthrottled()).await;
    let c = sign_in(&sim, "backup1@contoso42.onmicrosoft.com").await;
    let (sites, _) = c.all("/sites?search=*").await;
    assert_eq!(
        sites.len(),
        3 + 2,
        "three sites, two Microsoft 365 groups' team sites"
    );
    assert_eq!(
        c.get("/sites?search=site2").await["value"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let site_id = sites[0]["id"].as_str().unwrap();
    assert_eq!(
        c.get(&format!("/sites/{site_id}")).await["webUrl"],
        sites[0]["webUrl"]
    );
    let drives = c.get(&format!("/sites/{site_id}/drives")).await;
    assert_eq!(drives["value"][0]["driveType"], "documentLibrary");
    let drive = c.get("/users/user7@contoso42.onmicrosoft.com/drive").await;
    assert_eq!(drive["driveType"], "business");
    let drive_id = drive["id"].as_str().unwrap().to_owned();
    assert_eq!(
        drive["owner"]["user"]["email"],
        "user7@contoso42.onmicrosoft.com"
    );
    assert_eq!(
        c.get(&format!("/drives/{drive_id}")).await["id"],
        drive["id"]
    );
    let root = c.get(&format!("/drives/{drive_id}/root")).await;
    assert!(root.get("root").is_some() && root["folder"]["childCount"].as_u64().unwrap() >= 1);
    assert_eq!(c.get_raw("/drives/b!nope/root").await.status(), 404);

    // Full enumeration, paged: root, folders and files, nothing deleted.
    let (items, last) = c
        .all(&format!("/drives/{drive_id}/root/delta?$top=4"))
        .await;
    assert_eq!(items.len(), 1 + 3 + 12);
    assert!(items[0].get("root").is_some());
    assert_eq!(items.iter().filter(|i| i.get("file").is_some()).count(), 12);
    let delta_link = last["@odata.deltaLink"].as_str().unwrap().to_owned();
    assert!(delta_link.contains("token="));
    let (none, _) = c.all(&delta_link).await;
    assert!(none.is_empty(), "no changes yet");

    // Content: 302 to a pre-authenticated URL, bytes as generated, Range honoured.
    let file = items
        .iter()
        .find(|i| i.get("file").is_some() && i["size"].as_u64().unwrap() > 1000)
        .unwrap();
    let file_id = file["id"].as_str().unwrap();
    let size = file["size"].as_u64().unwrap();
    let r = c
        .get_raw(&format!("/drives/{drive_id}/items/{file_id}/content"))
        .await;
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let bytes = reqwest::get(&location)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.len() as u64, size);
    let key = format!("{drive_id}/{file_id}");
    let version = {
        let state = sim.tenant().drive(&drive_id).unwrap().state.read().unwrap();
        state.get(file_id).unwrap().file.unwrap().version
    };
    assert_eq!(
        sha256(&bytes),
        m365sim::content::sha256_hex(&key, version, size)
    );
    assert_eq!(
        quickxorhash::base64_of(&bytes),
        file["file"]["hashes"]["quickXorHash"].as_str().unwrap(),
        "the listed quickXorHash is the bytes'"
    );
    let part = reqwest::Client::new()
        .get(&location)
        .header("range", "bytes=100-599")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 100-599/{size}").as_str()
    );
    assert_eq!(part.bytes().await.unwrap(), bytes.slice(100..600));
    let bad = reqwest::Client::new()
        .get(&location)
        .header("range", format!("bytes={size}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 416);
    let item = c.get(&format!("/drives/{drive_id}/items/{file_id}")).await;
    assert!(item["@microsoft.graph.downloadUrl"]
        .as_str()
        .unwrap()
        .contains("/_download/"));
    let tampered = location.replace("/_download/e", "/_download/f");
    assert_ne!(reqwest::get(&tampered).await.unwrap().status(), 200);

    // Changes through the control API show up in the next delta round, deletions included,
    // with the parent folders of the changed items.
    let ctl = reqwest::Client::new();
    let added: Value = ctl
        .post(format!("{}/_sim/drives/{drive_id}/files", sim.base_url()))
        .header("x-sim-secret", SECRET)
        .json(&json!({"name": "new.docx", "size": 5000}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let modified_id = items
        .iter()
        .filter(|i| i.get("file").is_some())
        .nth(1)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = ctl
        .put(format!(
            "{}/_sim/drives/{drive_id}/items/{modified_id}",
            sim.base_url()
        ))
        .header("x-sim-secret", SECRET)
        .json(&json!({"size": 777}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = ctl
        .delete(format!(
            "{}/_sim/drives/{drive_id}/items/{file_id}",
            sim.base_url()
        ))
        .header("x-sim-secret", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (changes, last) = c.all(&delta_link).await;
    let ids: Vec<&str> = changes.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&added["id"].as_str().unwrap()) && ids.contains(&modified_id.as_str()));
    assert!(
        changes
            .iter()
            .filter(
                |i| ![file_id, modified_id.as_str(), added["id"].as_str().unwrap()]
                    .contains(&i["id"].as_str().unwrap())
            )
            .all(|i| i.get("folder").is_some()),
        "besides the three changes, only their parent folders: {changes:?}"
    );
    assert!(changes[0].get("root").is_some(), "the root comes back too");
    let deleted = changes.iter().find(|i| i["id"] == file_id).unwrap();
    assert_eq!(deleted["deleted"]["state"], "deleted");
    assert_eq!(
        changes
            .iter()
            .find(|i| i["id"] == modified_id.as_str())
            .unwrap()["size"],
        777
    );
    assert_eq!(
        c.get_raw(&format!("/drives/{drive_id}/items/{file_id}"))
            .await
            .status(),
        404
    );
    let (none, _) = c.all(last["@odata.deltaLink"].as_str().unwrap()).await;
    assert!(none.is_empty());
    // A new full enumeration lists the deleted file only as a tombstone (without a name).
    let (again, _) = c.all(&format!("/drives/{drive_id}/root/delta")).await;
    assert_eq!(again.len(), items.len() + 1);
    let tombstone = again.iter().find(|i| i["id"] == file_id).unwrap();
    assert!(tombstone.get("deleted").is_some() && tombstone.get("name").is_none());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_change_during_paging_is_not_lost() {
    let sim = start(unthrottled()).await;
    let c = app_client(&sim).await;
    let drive_id = sim.tenant().drives[0].id.clone();
    let first = c
        .get(&format!("/drives/{drive_id}/root/delta?$top=6"))
        .await;
    // A file already sent on the first page changes while the client pages.
    let early_file = first["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i.get("file").is_some())
        .expect("a file on the first page")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = reqwest::Client::new()
        .put(format!(
            "{}/_sim/drives/{drive_id}/items/{early_file}",
            sim.base_url()
        ))
        .header("x-sim-secret", SECRET)
        .json(&json!({"size": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (rest, last) = c.all(first["@odata.nextLink"].as_str().unwrap()).await;
    let mut seen: Vec<Value> = first["value"].as_array().unwrap().clone();
    seen.extend(rest);
    // OneDrive for Business sends the changed item again later in the same round: the last
    // occurrence wins.
    let last_seen = seen
        .iter()
        .rev()
        .find(|i| i["id"] == early_file.as_str())
        .unwrap();
    assert_eq!(
        last_seen["size"], 10,
        "the change arrives in the same round"
    );
    assert_eq!(
        seen.iter()
            .filter(|i| i["id"] == early_file.as_str())
            .count(),
        2
    );
    let (next_round, _) = c.all(last["@odata.deltaLink"].as_str().unwrap()).await;
    assert!(next_round.is_empty(), "{next_round:?}");
    let live = sim.tenant().drives[0].state.read().unwrap().items.len();
    let mut ids: Vec<&str> = seen.iter().map(|i| i["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), live, "every item seen at least once");
    sim.shutdown().await;
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Sends single-item reads for `secs` seconds; honours Retry-After or not. (admitted, throttled)
async fn hammer(c: &Client, path: &str, secs: f64, honour: bool) -> (u64, u64, bool) {
    let (mut ok, mut throttled, mut saw_rate_headers) = (0, 0, false);
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        let r = c.get_raw(path).await;
        match r.status().as_u16() {
            200 => {
                ok += 1;
                saw_rate_headers |= r.headers().contains_key("ratelimit-remaining");
            }
            429 | 503 => {
                throttled += 1;
                let wait: u64 = r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(wait >= 1);
                if honour {
                    tokio::time::sleep(
                        Duration::from_secs(wait)
                            .min(end.saturating_duration_since(Instant::now())),
                    )
                    .await;
                }
            }
            s => panic!("unexpected status {s}"),
        }
    }
    (ok, throttled, saw_rate_headers)
}

#[tokio::test]
async fn honouring_retry_after_gets_the_full_budget_ignoring_it_does_not() {
    let throttling = ThrottleConfig {
        user_rate: 10.0,
        user_burst: 10.0,
        app_rate: 10_000.0,
        app_burst: 10_000.0,
        extension_secs: 1.0,
        ..ThrottleConfig::default()
    };
    let sim = start(throttling).await;
    let polite = sign_in(&sim, "user1@contoso42.onmicrosoft.com").await;
    let rude = sign_in(&sim, "user2@contoso42.onmicrosoft.com").await;
    let secs = 4.0;
    let ((p_ok, p_429, headers), (r_ok, r_429, _)) = tokio::join!(
        hammer(&polite, "/organization", secs, true),
        hammer(&rude, "/organization", secs, false)
    );
    let budget = 10.0 + 10.0 * secs;
    assert!(
        p_ok as f64 >= 0.8 * budget,
        "polite client got {p_ok} of {budget}"
    );
    assert!(p_429 <= 6, "polite client throttled {p_429} times");
    assert!(
        r_ok as f64 <= 0.5 * budget,
        "rude client got {r_ok}: its throttle keeps being extended"
    );
    assert!(r_429 > 50, "rude client throttled {r_429} times");
    assert!(
        !headers,
        "no RateLimit-* headers: the app's budget is far from used"
    );

    // Statistics per principal, behind the control secret.
    let ctl = reqwest::Client::new();
    assert_eq!(
        ctl.get(format!("{}/_sim/stats", sim.base_url()))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let stats: Value = ctl
        .get(format!("{}/_sim/stats", sim.base_url()))
        .header("x-sim-secret", SECRET)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let row = |upn: &str| {
        stats["principals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["principal"] == upn)
            .cloned()
            .unwrap()
    };
    assert_eq!(row("user1@contoso42.onmicrosoft.com")["admitted"], p_ok);
    assert_eq!(
        row("user2@contoso42.onmicrosoft.com")["throttled429"],
        r_429
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn throttling_changes_at_run_time_and_503s() {
    let sim = start(unthrottled()).await;
    let c = sign_in(&sim, "user3@contoso42.onmicrosoft.com").await;
    let (ok, throttled, _) = hammer(&c, "/organization", 0.3, false).await;
    assert!(ok > 20 && throttled == 0);
    let ctl = reqwest::Client::new();
    let cfg: Value = ctl
        .put(format!("{}/_sim/throttling", sim.base_url()))
        .header("x-sim-secret", SECRET)
        .json(&json!({"enabled": true, "user_rate": 2.0, "user_burst": 2.0, "fraction_503": 1.0}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cfg["user_rate"], 2.0);
    assert_eq!(
        cfg["app_rate"],
        ThrottleConfig::default().app_rate,
        "other parameters kept"
    );
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(c.get_raw("/organization").await.status().as_u16());
    }
    assert_eq!(&statuses[2..], &[503, 503]);

    // RateLimit-* headers once 80 % of the app's budget is spent.
    ctl.put(format!("{}/_sim/throttling", sim.base_url()))
        .header("x-sim-secret", SECRET)
        .json(&json!({"user_rate": 1000.0, "user_burst": 1000.0, "app_rate": 1.0, "app_burst": 10.0, "fraction_503": 0.0}))
        .send()
        .await
        .unwrap();
    ctl.post(format!("{}/_sim/stats/reset", sim.base_url()))
        .header("x-sim-secret", SECRET)
        .send()
        .await
        .unwrap();
    let mut remaining = Vec::new();
    for _ in 0..9 {
        let r = c.get_raw("/organization").await;
        assert_eq!(r.status(), 200);
        remaining.push(
            r.headers()
                .get("ratelimit-remaining")
                .map(|v| v.to_str().unwrap().to_owned()),
        );
    }
    assert!(remaining[..7].iter().all(Option::is_none), "{remaining:?}");
    assert_eq!(remaining[8].as_deref(), Some("1"));
    let bad = ctl
        .put(format!("{}/_sim/throttling", sim.base_url()))
        .header("x-sim-secret", SECRET)
        .json(&json!({"user_rate": "fast"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    sim.shutdown().await;
}
