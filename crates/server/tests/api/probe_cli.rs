//! `m365backup probe --organization <id>` run as a real process against the demo organization
//! (its simulated tenant lives in the server process, with Microsoft's default throttling), after
//! its backup accounts were set through the API; on both stores.

use crate::common;

use common::{Backend, TestServer};
use m365sim::tenant::generated_password;
use serde_json::json;

const ORG: &str = "6f9b3da3-204d-4a4b-b466-55586e0233fc";
const GROUP: &str = "6e570850-9ce9-40ed-b81d-41772dabcead00000000-0000-0000-0000-000000000000";

on_both_stores! {
    the_probe_fetches_every_file_through_the_backup_accounts;
}

async fn probe(s: &TestServer, organization: &str) -> (bool, String, String) {
    common::cli(s, &["probe", "--organization", organization]).await
}

async fn the_probe_fetches_every_file_through_the_backup_accounts(backend: Backend) {
    let s = TestServer::start_with(backend, |c| c.demo = true).await;
    let token = s.admin_token().await;
    let logins: Vec<String> = (1..=4)
        .map(|i| format!("account{i}@office365.onmicrosoft.com"))
        .collect();
    let body: Vec<_> = logins
        .iter()
        .enumerate()
        .map(|(i, login)| {
            let password = if i == 0 {
                "XXXXX".to_owned()
            } else {
                generated_password(&format!("account{}", i + 1), 365)
            };
            json!({"groupMember": {"groupId": GROUP, "login": login, "name": login, "type": "User"}, "password": password})
        })
        .collect();
    let r = s
        .http
        .put(s.url(&format!("/v5/Organizations/{ORG}/BackupAccounts")))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let files = {
        let sim = s.server.as_ref().unwrap().demo.as_ref().unwrap();
        sim.tenant()
            .drives
            .iter()
            .map(|d| {
                let state = d.state.read().unwrap();
                state
                    .items
                    .iter()
                    .filter(|i| i.file.is_some() && !i.deleted)
                    .count()
            })
            .sum::<usize>()
    };
    let (ok, out, err) = probe(&s, ORG).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("with 4 backup accounts"), "{out}");
    assert!(
        out.contains(&format!(" {files} files, ")),
        "{files} files: {out}"
    );
    // Every account carried part of the traffic (its row: login, requests, 429, 503, ...).
    for login in &logins {
        let row = out
            .lines()
            .find(|l| l.starts_with(login.as_str()))
            .unwrap_or_else(|| panic!("{login}: {out}"));
        let requests: u64 = row.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(requests > 20, "{row}");
    }

    let (ok, _, err) = probe(&s, "not-a-guid").await;
    assert!(
        !ok && err.contains("--organization must be a GUID"),
        "{err}"
    );
    let (ok, _, err) = probe(&s, "00000000-0000-0000-0000-000000000001").await;
    assert!(!ok && err.contains("was not found"), "{err}");
    s.stop().await;
}
