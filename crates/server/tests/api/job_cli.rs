//! `m365backup job list | start --wait` and `m365backup session show` as processes beside a
//! running server, on both stores: the CLI queues the job, the server runs it, the CLI follows
//! it to its end and exits 0 on success.

use crate::common;

use common::{cli, json, start_sim, Backend, TestServer};
use serde_json::json;

on_both_stores! {
    jobs_start_and_are_followed_from_the_command_line;
}

async fn jobs_start_and_are_followed_from_the_command_line(backend: Backend) {
    let sim = start_sim(m365sim::TenantSpec {
        seed: 51,
        users: 3,
        sites: 1,
        files_per_drive: 5,
        ..Default::default()
    })
    .await;
    let s = TestServer::start(backend).await;
    let token = s.admin_token().await;
    let t = sim.tenant();
    let r = s
        .http
        .post(s.url("/v5/Organizations"))
        .bearer_auth(&token)
        .json(&json!({"type": "Office365", "region": "Worldwide", "isSharePointOnline": true,
            "sharePointOnlineSettings": {"useApplicationOnlyAuth": true,
                "applicationId": t.app.client_id.to_string(), "applicationSecret": t.app.client_secret,
                "officeOrganizationName": t.domain, "authorityUrl": sim.base_url(), "graphUrl": sim.graph_url()}}))
        .send()
        .await
        .unwrap();
    let org = json(r).await["id"].as_str().unwrap().to_owned();
    let r = s
        .http
        .post(s.url(&format!("/v5/Organizations/{org}/Jobs")))
        .bearer_auth(&token)
        .json(&json!({"name": "Shell job", "schedulePolicy": {"type": "ManualOnly"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let (ok, stdout, stderr) = cli(&s, &["job", "list"]).await;
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("Shell job") && stdout.contains("NotConfigured"),
        "{stdout}"
    );

    let (ok, stdout, stderr) = cli(&s, &["job", "start", "shell job", "--wait"]).await;
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("queued") && stdout.contains("Success"),
        "{stdout}"
    );
    let session = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Session "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();

    let (ok, stdout, stderr) = cli(&s, &["session", "show", &session]).await;
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("[Success] Job started") && stdout.contains("[Success] Job finished"),
        "{stdout}"
    );
    let (ok, _, stderr) = cli(&s, &["job", "start", "no such job"]).await;
    assert!(!ok && stderr.contains("no job named"), "{stderr}");
    s.stop().await;
    sim.shutdown().await;
}
