//! Organizations, jobs and runs through the API, as the backup and restore tests need them.

use std::time::{Duration, Instant};

use m365backup_repo::Repository;
use serde_json::{json, Value};

use super::{json, TestServer};

pub async fn post(s: &TestServer, path: &str, token: &str, body: &Value) -> reqwest::Response {
    s.http
        .post(s.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Starts a job and waits for its run to end; the session as the API shows it.
pub async fn run_job(s: &TestServer, token: &str, job: &str) -> Value {
    let r = post(
        s,
        &format!("/v5/Jobs/{job}/Action"),
        token,
        &json!({"start": null}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let j = json(s.get(&format!("/v5/Jobs/{job}"), token).await).await;
        let status = j["lastStatus"].as_str().unwrap().to_owned();
        if status != "Running" && status != "Queued" {
            let sessions = json(s.get(&format!("/v5/Jobs/{job}/JobSessions"), token).await).await;
            return sessions["results"][0].clone();
        }
        assert!(Instant::now() < deadline, "the job did not finish: {j}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Registers the simulated tenant (app-only credentials); the organization's id.
pub async fn add_organization(s: &TestServer, token: &str, sim: &m365sim::RunningSim) -> String {
    let t = sim.tenant();
    let org_body = json!({"type": "Office365", "region": "Worldwide", "isSharePointOnline": true,
        "sharePointOnlineSettings": {"useApplicationOnlyAuth": true,
            "applicationId": t.app.client_id.to_string(), "applicationSecret": t.app.client_secret,
            "officeOrganizationName": t.domain, "authorityUrl": sim.base_url(), "graphUrl": sim.graph_url()}});
    let r = post(s, "/v5/Organizations", token, &org_body).await;
    assert_eq!(r.status(), 201);
    json(r).await["id"].as_str().unwrap().to_owned()
}

/// Creates a job from `body` (a manual schedule unless it says otherwise); its id.
pub async fn add_job(s: &TestServer, token: &str, org: &str, mut body: Value) -> String {
    if body.get("schedulePolicy").is_none() {
        body["schedulePolicy"] = json!({"type": "ManualOnly"});
    }
    let r = post(s, &format!("/v5/Organizations/{org}/Jobs"), token, &body).await;
    assert_eq!(r.status(), 201);
    json(r).await["id"].as_str().unwrap().to_owned()
}

/// The repository a job writes to, opened in this process.
pub async fn repository_of(s: &TestServer, token: &str, job: &str) -> Repository {
    let view = json(s.get(&format!("/v5/Jobs/{job}"), token).await).await;
    let id = view["repositoryId"].as_str().unwrap().parse().unwrap();
    s.server
        .as_ref()
        .unwrap()
        .repositories
        .open(id)
        .await
        .unwrap()
}
