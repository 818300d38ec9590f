//! Restore on the real `m365backup serve --demo` process: the README's walk-through (back up,
//! delete a folder through the simulator's `/_sim/` API, restore it, the same files are back),
//! downloads whose client goes away stop reading the repository (the process's read counter
//! stands still), and a save running when the server is killed shows as failed, not running,
//! after the restart.

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::ChildServer;
use futures_util::StreamExt;
use serde_json::{json, Value};

const ORG: &str = "6f9b3da3-204d-4a4b-b466-55586e0233fc";
const OWNER: &str = "user3@office365.onmicrosoft.com";
/// The demo simulator's control secret (README).
const SIM_SECRET: &str = "sim-control";
const MIB: u64 = 1024 * 1024;
/// A document large enough that reading it whole would show far above any buffering.
const BIG: u64 = 160 * MIB;

struct Demo {
    server: ChildServer,
    http: reqwest::Client,
    token: String,
    sim: String,
}

impl Demo {
    fn api(&self, path: &str) -> String {
        format!("{}{path}", self.server.base)
    }

    async fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(self.api(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.api(path))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn sim_get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.sim))
            .header("x-sim-secret", SIM_SECRET)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.unwrap()
    }

    /// A drive's live files under `prefix`: path → SHA-256.
    async fn files_under(&self, drive: &str, prefix: &str) -> BTreeMap<String, String> {
        let tree = self.sim_get(&format!("/_sim/drives/{drive}/tree")).await;
        tree["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["folder"] == false)
            .filter(|i| i["path"].as_str().unwrap().starts_with(prefix))
            .map(|i| {
                (
                    i["path"].as_str().unwrap().to_owned(),
                    i["sha256"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Events of a restore session once none runs.
    async fn settled_events(&self, session: &str) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let events = self
                .get(&format!("/v5/RestoreSessions/{session}/Events?limit=1000"))
                .await;
            let events = events["results"].as_array().unwrap().clone();
            if events.iter().all(|e| e["status"] != "Running") {
                return events;
            }
            assert!(
                Instant::now() < deadline,
                "events still running: {events:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The server's read counter once it has stood still for a moment.
    async fn reads_settled(&self) -> u64 {
        let mut last = self.server.read_chars();
        loop {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let now = self.server.read_chars();
            if now - last < MIB {
                return now;
            }
            last = now;
        }
    }
}

async fn start_demo() -> Demo {
    let server = ChildServer::start(&["--demo"]);
    let http = common::client();
    let token = server.admin_token(&http).await;
    // The demo registers its organization (and prints the simulator's address) once the API
    // listens.
    let deadline = Instant::now() + Duration::from_secs(60);
    let sim = loop {
        let out = server.stdout_text();
        if let Some(at) = out
            .lines()
            .find(|l| l.starts_with("Demo mode:"))
            .and_then(|l| l.split(" at ").nth(1))
        {
            break at.trim().to_owned();
        }
        assert!(Instant::now() < deadline, "no simulator address: {out}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    Demo {
        server,
        http,
        token,
        sim,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walk_through_and_downloads_that_end_early_or_crash() {
    let mut d = start_demo().await;

    // The README: the OneDrive of user3, a folder of it with files.
    let drives = d.sim_get("/_sim/drives").await;
    let drive = drives["drives"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["owner"] == OWNER)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tree = d.sim_get(&format!("/_sim/drives/{drive}/tree")).await;
    let items = tree["items"].as_array().unwrap().clone();
    let folder = items
        .iter()
        .filter(|i| i["folder"] == true && i["parentId"].is_string())
        .filter(|f| {
            let prefix = format!("{}/", f["path"].as_str().unwrap());
            items
                .iter()
                .any(|i| i["folder"] == false && i["path"].as_str().unwrap().starts_with(&prefix))
        })
        .max_by_key(|f| f["path"].as_str().unwrap().matches('/').count() == 1)
        .unwrap_or_else(|| panic!("a folder with files: {tree}"))
        .clone();
    let folder_id = folder["id"].as_str().unwrap().to_owned();
    let folder_path = format!("{}/", folder["path"].as_str().unwrap());
    let before = d.files_under(&drive, &folder_path).await;
    assert!(!before.is_empty());
    // A large document beside it, for the downloads below.
    let r = d
        .http
        .post(format!("{}/_sim/drives/{drive}/files", d.sim))
        .header("x-sim-secret", SIM_SECRET)
        .json(&json!({"name": "Large.bin", "size": BIG}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // Back up that OneDrive.
    let users = d
        .get(&format!("/v5/Organizations/{ORG}/Users?limit=100"))
        .await;
    let user = users["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == OWNER)
        .unwrap_or_else(|| panic!("{OWNER} in {users}"))
        .clone();
    let r = d
        .post(
            &format!("/v5/Organizations/{ORG}/Jobs"),
            json!({"name": "Demo backup", "backupType": "SelectedItems",
                "selectedItems": [{"type": "User", "user": {"id": user["id"]}, "oneDrive": true}],
                "schedulePolicy": {"type": "ManualOnly"}, "runNow": true}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let job = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let sessions = d.get(&format!("/v5/Jobs/{job}/JobSessions")).await;
        let last = &sessions["results"][0];
        if last.is_object() && last["status"] != "Running" {
            assert_eq!(last["status"], "Success", "{last}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the backup did not end: {sessions}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Delete the folder in the tenant.
    let r = d
        .http
        .delete(format!("{}/_sim/drives/{drive}/items/{folder_id}", d.sim))
        .header("x-sim-secret", SIM_SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(d.files_under(&drive, &folder_path).await.is_empty());

    // A restore session at the latest backup; the folder is in it; restore it in place.
    let r = d
        .post(
            &format!("/v5/Organizations/{ORG}/Action"),
            json!({"explore": {"type": "veod"}}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let rs = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let top = d
        .get(&format!(
            "/v5/RestoreSessions/{rs}/Organization/OneDrives/{drive}/Folders?parentId=null"
        ))
        .await;
    assert!(
        top["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == folder_id.as_str()),
        "{top}"
    );
    let r = d
        .post(
            &format!("/v5/RestoreSessions/{rs}/Organization/OneDrives/{drive}/Folders/{folder_id}/Action"),
            json!({"restoretoOriginallocation": {"documentVersion": "last", "documentAction": "overwrite"}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let stats: Value = r.json().await.unwrap();
    assert_eq!(stats["failedItemsCount"], 0, "{stats}");
    assert!(
        stats["restoredItemsCount"].as_u64().unwrap() > before.len() as u64,
        "the folder and its files: {stats}"
    );
    assert_eq!(
        d.files_under(&drive, &folder_path).await,
        before,
        "the same paths and bytes again"
    );
    let events = d.settled_events(&rs).await;
    assert_eq!(events[0]["type"], "Restore", "{events:?}");
    assert_eq!(events[0]["status"], "Success", "{events:?}");
    assert_eq!(
        events.len() as u64,
        1 + stats["totalItemsCount"].as_u64().unwrap(),
        "one event per item besides the restore's own: {events:?}"
    );

    // Downloads whose client goes away after the first bytes: the server reads far less than
    // the document and stops reading at once.
    let docs = d
        .get(&format!(
            "/v5/RestoreSessions/{rs}/Organization/OneDrives/{drive}/Documents?parentId=null&limit=1000"
        ))
        .await;
    let large = docs["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "Large.bin")
        .unwrap_or_else(|| panic!("{docs}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let document =
        format!("/v5/RestoreSessions/{rs}/Organization/OneDrives/{drive}/Documents/{large}/Action");
    let whole = format!("/v5/RestoreSessions/{rs}/Organization/OneDrives/{drive}/Action");
    // The counter sees the repository: a whole download reads at least the document.
    let start = d.reads_settled().await;
    let r = d.post(&document, json!({"save": null})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len() as u64, BIG);
    let whole_read = d.reads_settled().await - start;
    assert!(
        whole_read >= BIG,
        "{} MiB read for the whole document",
        whole_read / MIB
    );
    for path in [&document, &whole] {
        let start = d.reads_settled().await;
        let r = d.post(path, json!({"save": null})).await;
        assert_eq!(r.status(), 200, "{path}");
        let mut body = r.bytes_stream();
        let mut got = 0;
        while got < MIB {
            got += body.next().await.unwrap().unwrap().len() as u64;
        }
        drop(body);
        let after = d.reads_settled().await;
        let read = after - start;
        assert!(
            read < BIG / 4,
            "{path}: {} MiB read for a download dropped after {} MiB of a {} MiB document",
            read / MIB,
            got / MIB,
            BIG / MIB
        );
        eprintln!(
            "{path}: {} MiB read by the server for a download dropped after {} MiB (the whole document: {} MiB read)",
            read / MIB,
            got / MIB,
            whole_read / MIB
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        let later = d.server.read_chars() - after;
        assert!(later < MIB, "{path}: still reading: {later} bytes");
    }
    let events = d.settled_events(&rs).await;
    let saves: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "Save")
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(saves, ["Success", "Failed", "Failed"], "{events:?}");

    // A save running when the server is killed: after the restart it is failed, not running.
    let r = d.post(&document, json!({"save": null})).await;
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    body.next().await.unwrap().unwrap();
    let events = d
        .get(&format!("/v5/RestoreSessions/{rs}/Events?limit=1000"))
        .await;
    let running: Vec<Value> = events["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == "Running")
        .cloned()
        .collect();
    assert_eq!(running.len(), 1, "{events}");
    d.server.kill();
    drop(body);
    d.server.restart(1);
    d.token = d.server.admin_token(&d.http).await;
    let event = d
        .get(&format!(
            "/v5/RestoreSessions/{rs}/Events/{}",
            running[0]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(event["status"], "Failed", "{event}");
    assert!(
        event["message"].as_str().unwrap().contains("Interrupted"),
        "{event}"
    );
    assert!(event["endTime"].is_string(), "{event}");
}
