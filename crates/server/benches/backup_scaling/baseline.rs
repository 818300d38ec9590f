//! The same backup driven the way open-source peers drive it, as baselines beside the engine:
//! one identity (the backup account `backup1`, signed in as a user, so its budget binds as the
//! engine's N = 1 does), no account pool, eight workers (one drive each at a time, one call each
//! at a time, as peers run a few checkers/transfers), the same Graph calls as the engine —
//! every drive's delta pages, each file's `/content` (the redirect followed to the download
//! URL), the permissions of shared files — and the same repository writer API: one restore
//! point per drive, content streamed into it, committed with the delta link.
//!
//! - [`Pacing::TokenBucket`]: a fixed 20 requests/s token bucket (no burst); a 429/503 makes
//!   every worker wait its `Retry-After`.
//! - [`Pacing::Pacer`]: rclone's pacer: call starts spaced by a sleep time of 10 ms; a 429/503
//!   sets it to exactly `Retry-After`, another error doubles it (up to 2 s), each success
//!   decays it by a quarter (back to 10 ms).
//!
//! The drives are taken from the simulated tenant rather than discovered (a few dozen requests
//! fewer than the engine makes), and content is not checked against its quickXorHash; both
//! favour the baselines.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use m365backup_m365::{GraphClient, M365Error};
use m365backup_repo::{Item, ObjectKind, ProtectedObject, Repository, SnapshotSpec};
use m365sim::tenant::DriveOwner;
use m365sim::RunningSim;
use serde_json::Value;

use crate::engine_support;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pacing {
    TokenBucket,
    Pacer,
}

impl Pacing {
    pub fn describe(self) -> &'static str {
        match self {
            Pacing::TokenBucket => "(a) 1 identity, 20 req/s token bucket, all wait Retry-After",
            Pacing::Pacer => "(b) 1 identity, pacer 10 ms..2 s, exactly Retry-After",
        }
    }
}

const WORKERS: usize = 8;
const MIN_SLEEP: Duration = Duration::from_millis(10);
const MAX_SLEEP: Duration = Duration::from_secs(2);
const BUCKET_INTERVAL: Duration = Duration::from_millis(50);

/// When calls may start.
struct Gate {
    pacing: Pacing,
    state: Mutex<GateState>,
}

struct GateState {
    /// The next call may not start before this.
    next: Instant,
    /// Token bucket: nobody sends before this (a Retry-After).
    paused_until: Instant,
    /// Pacer: the spacing of call starts.
    sleep: Duration,
}

/// How a call ended, for the gate to learn from.
enum Outcome {
    Success,
    Throttled(Duration),
    Failed,
}

impl Gate {
    fn new(pacing: Pacing) -> Self {
        let now = Instant::now();
        Self {
            pacing,
            state: Mutex::new(GateState {
                next: now,
                paused_until: now,
                sleep: MIN_SLEEP,
            }),
        }
    }

    /// Waits for this call's turn.
    async fn enter(&self) {
        let at = {
            let mut s = self.state.lock().unwrap();
            let now = Instant::now();
            let at = s.next.max(now).max(s.paused_until);
            s.next = at
                + match self.pacing {
                    Pacing::TokenBucket => BUCKET_INTERVAL,
                    Pacing::Pacer => s.sleep,
                };
            at
        };
        tokio::time::sleep_until(at.into()).await;
    }

    fn learn(&self, outcome: Outcome) {
        let mut s = self.state.lock().unwrap();
        match (self.pacing, outcome) {
            (Pacing::TokenBucket, Outcome::Throttled(wait)) => {
                s.paused_until = s.paused_until.max(Instant::now() + wait);
            }
            (Pacing::TokenBucket, _) => {}
            (Pacing::Pacer, Outcome::Throttled(wait)) => s.sleep = wait.max(MIN_SLEEP),
            (Pacing::Pacer, Outcome::Failed) => s.sleep = (s.sleep * 2).min(MAX_SLEEP),
            (Pacing::Pacer, Outcome::Success) => s.sleep = (s.sleep * 3 / 4).max(MIN_SLEEP),
        }
    }
}

/// What a baseline run did.
#[derive(Debug, Default)]
pub struct Report {
    pub files: u64,
    pub bytes: u64,
    pub failed_files: u64,
}

struct Driver {
    client: GraphClient,
    downloads: reqwest::Client,
    gate: Gate,
    repo: Repository,
    report: Mutex<Report>,
}

/// Backs up every drive of the tenant into `repo` with `pacing`.
pub async fn run(
    sim: &RunningSim,
    seed: u64,
    repo: Repository,
    organization: &str,
    pacing: Pacing,
) -> Report {
    let account = engine_support::backup_account(sim, 1, seed);
    let (endpoints, credentials) = m365backup_m365::gateway::client_parts(&account.connection);
    let driver = Arc::new(Driver {
        client: GraphClient::new(endpoints, credentials).unwrap(),
        downloads: reqwest::Client::new(),
        gate: Gate::new(pacing),
        repo,
        report: Mutex::default(),
    });
    let drives: Vec<ProtectedObject> = sim
        .tenant()
        .drives
        .iter()
        .map(|d| ProtectedObject {
            organization_id: organization.to_owned(),
            kind: match d.owner {
                DriveOwner::User(_) => ObjectKind::OneDrive,
                DriveOwner::Site(_) => ObjectKind::SiteLibrary,
            },
            id: d.id.clone(),
            name: d.name.clone(),
            url: None,
            owner_id: None,
            owner_name: None,
            attributes: None,
        })
        .collect();
    let queue = Arc::new(Mutex::new(drives.into_iter()));
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (driver, queue) = (driver.clone(), queue.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let Some(drive) = queue.lock().unwrap().next() else {
                    return;
                };
                driver.back_up_drive(drive).await;
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let driver = Arc::try_unwrap(driver).ok().expect("workers are done");
    driver.report.into_inner().unwrap()
}

impl Driver {
    /// One GET through the gate, retried while throttled; the response (a redirect is
    /// followed to the download URL, which is not a Graph call but throttles too).
    async fn get(&self, url: &str) -> Result<reqwest::Response, M365Error> {
        let mut failures = 0;
        loop {
            self.gate.enter().await;
            let answer = match self.client.get_once(url).await {
                Ok(r) if r.status().is_redirection() => {
                    let location = r
                        .headers()
                        .get(reqwest::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    match self.downloads.get(&location).send().await {
                        Ok(r) if r.status() == 429 || r.status() == 503 => {
                            Err(M365Error::Throttled {
                                retry_after: m365backup_m365::graph::retry_after(&r)
                                    .unwrap_or(Duration::from_secs(1)),
                                status: r.status().as_u16(),
                            })
                        }
                        Ok(r) if r.status().is_success() => Ok(r),
                        Ok(r) => Err(M365Error::Graph {
                            status: r.status().as_u16(),
                            code: "downloadFailed".into(),
                            message: String::new(),
                        }),
                        Err(e) => Err(M365Error::Unreachable {
                            url: "download URL".into(),
                            reason: e.to_string(),
                        }),
                    }
                }
                other => other,
            };
            match answer {
                Ok(r) => {
                    self.gate.learn(Outcome::Success);
                    return Ok(r);
                }
                Err(M365Error::Throttled { retry_after, .. }) => {
                    self.gate.learn(Outcome::Throttled(retry_after));
                }
                Err(e) => {
                    self.gate.learn(Outcome::Failed);
                    failures += 1;
                    if failures > 4 {
                        return Err(e);
                    }
                }
            }
        }
    }

    async fn get_json(&self, url: &str) -> Result<Value, M365Error> {
        let r = self.get(url).await?;
        r.json().await.map_err(|e| M365Error::Unreachable {
            url: url.to_owned(),
            reason: e.to_string(),
        })
    }

    async fn back_up_drive(&self, object: ProtectedObject) {
        let drive = object.id.clone();
        let writer = self
            .repo
            .begin_snapshot(SnapshotSpec::new(object))
            .await
            .unwrap();
        let mut url = format!("/drives/{drive}/root/delta");
        let mut delta_link = None;
        loop {
            let Ok(page) = self.get_json(&url).await else {
                return; // the drive is left for the next run, as a peer would
            };
            for g in page["value"].as_array().into_iter().flatten() {
                let id = g["id"].as_str().unwrap_or_default();
                let name = g["name"].as_str().unwrap_or(id);
                let parent = g["parentReference"]["id"].as_str();
                if g.get("root").is_some() {
                    writer
                        .put_item(Item::folder(id, None, "root"))
                        .await
                        .unwrap();
                    continue;
                }
                if g.get("file").is_none() {
                    writer
                        .put_item(Item::folder(id, parent, name))
                        .await
                        .unwrap();
                    continue;
                }
                let mut item = Item::file(id, parent, name);
                item.size = g["size"].as_u64().unwrap_or(0);
                item.hashes = g["file"].get("hashes").cloned();
                match self
                    .get(&format!("/drives/{drive}/items/{id}/content"))
                    .await
                {
                    Ok(r) => {
                        let stream = r.bytes_stream().map(|c| c.map_err(std::io::Error::other));
                        match writer.store_content(stream).await {
                            Ok(content) => {
                                let mut report = self.report.lock().unwrap();
                                report.files += 1;
                                report.bytes += content.size;
                                drop(report);
                                item.content = Some(content);
                            }
                            Err(_) => {
                                self.report.lock().unwrap().failed_files += 1;
                                continue;
                            }
                        }
                    }
                    Err(_) => {
                        self.report.lock().unwrap().failed_files += 1;
                        continue;
                    }
                }
                if g.get("shared").is_some() {
                    if let Ok(p) = self
                        .get_json(&format!("/drives/{drive}/items/{id}/permissions"))
                        .await
                    {
                        item.permissions = Some(p["value"].clone());
                    }
                }
                writer.put_item(item).await.unwrap();
            }
            if let Some(link) = page["@odata.deltaLink"].as_str() {
                delta_link = Some(link.to_owned());
            }
            match page["@odata.nextLink"].as_str() {
                Some(next) => url = next.to_owned(),
                None => break,
            }
        }
        writer.commit(delta_link).await.unwrap();
    }
}
