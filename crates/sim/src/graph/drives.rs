//! Sites, drives and drive items: `/sites`, `/users/{id}/drive`, `/drives/{id}/root/delta`,
//! `/drives/{id}/items/{id}` and `/content` (302 to a pre-authenticated download URL).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{charge, collection, iso, json_response, page_window, Caller, Cost, GraphError};
use crate::download::DownloadTicket;
use crate::tenant::{Drive, DriveOwner, DriveState, FileInfo, Item, Site};
use crate::SharedSim;

pub fn routes() -> Router<SharedSim> {
    Router::new()
        .route("/v1.0/users/{id}/drive", get(user_drive))
        .route("/v1.0/sites", get(search_sites))
        .route("/v1.0/sites/{id}", get(get_site))
        .route("/v1.0/sites/{id}/drives", get(site_drives))
        .route("/v1.0/drives/{id}", get(get_drive))
        .route("/v1.0/drives/{id}/root", get(get_root))
        .route("/v1.0/drives/{id}/root/delta", get(delta))
        .route("/v1.0/drives/{id}/items/{item}", get(get_item))
        .route("/v1.0/drives/{id}/items/{item}/content", get(item_content))
}

type Q = Query<HashMap<String, String>>;

fn drive_json(sim: &SharedSim, d: &Drive) -> Value {
    let (drive_type, owner) = match d.owner {
        DriveOwner::User(u) => {
            let u = &sim.tenant.users[u];
            (
                "business",
                json!({"user": {"id": u.id, "displayName": u.display_name, "email": u.user_principal_name}}),
            )
        }
        DriveOwner::Site(s) => (
            "documentLibrary",
            json!({"group": {"displayName": sim.tenant.sites[s].display_name}}),
        ),
    };
    let state = d.state.read().unwrap_or_else(|p| p.into_inner());
    let used: u64 = state
        .items
        .iter()
        .filter(|i| !i.deleted)
        .filter_map(|i| i.file.map(|f| f.size))
        .sum();
    json!({
        "id": d.id,
        "name": d.name,
        "driveType": drive_type,
        "webUrl": d.web_url,
        "createdDateTime": iso(state.items[0].created),
        "owner": owner,
        "quota": {"used": used, "total": 1u64 << 40, "remaining": (1u64 << 40) - used, "state": "normal"},
    })
}

fn site_json(s: &Site) -> Value {
    let host = s.id.split(',').next().unwrap_or_default();
    json!({
        "id": s.id,
        "name": s.name,
        "displayName": s.display_name,
        "webUrl": s.web_url,
        "createdDateTime": iso(s.created),
        "siteCollection": {"hostname": host},
    })
}

/// Number of live children per folder id.
fn child_counts(state: &DriveState) -> HashMap<&str, u64> {
    let mut counts = HashMap::new();
    for item in state.items.iter().filter(|i| !i.deleted) {
        if let Some(p) = &item.parent {
            *counts.entry(p.as_str()).or_insert(0) += 1;
        }
    }
    counts
}

fn item_json(drive: &Drive, item: &Item, counts: &HashMap<&str, u64>) -> Value {
    let drive_type = if matches!(drive.owner, DriveOwner::User(_)) {
        "business"
    } else {
        "documentLibrary"
    };
    if item.deleted {
        return json!({
            "id": item.id,
            "name": item.name,
            "parentReference": {"driveId": drive.id, "driveType": drive_type, "id": item.parent},
            "deleted": {"state": "deleted"},
        });
    }
    let version = item.file.map(|f| f.version).unwrap_or(item.changed_seq);
    let mut v = json!({
        "id": item.id,
        "name": item.name,
        "eTag": format!("\"{{{}}},{version}\"", item.id),
        "cTag": format!("\"c:{{{}}},{version}\"", item.id),
        "createdDateTime": iso(item.created),
        "lastModifiedDateTime": iso(item.modified),
        "webUrl": format!("{}{}/{}", drive.web_url, item.path.trim_start_matches("/drive/root:"), item.name),
        "size": item.file.map(|f| f.size).unwrap_or(0),
    });
    match (&item.parent, item.file) {
        (None, _) => {
            v["root"] = json!({});
            v["name"] = json!("root");
            v["folder"] = json!({"childCount": counts.get(item.id.as_str()).copied().unwrap_or(0)});
        }
        (Some(parent), file) => {
            v["parentReference"] = json!({"driveId": drive.id, "driveType": drive_type, "id": parent, "path": item.path});
            match file {
                Some(_) => {
                    v["file"] = json!({"mimeType": "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "hashes": {}})
                }
                None => {
                    v["folder"] =
                        json!({"childCount": counts.get(item.id.as_str()).copied().unwrap_or(0)})
                }
            }
        }
    }
    v
}

fn find_drive<'a>(sim: &'a SharedSim, id: &str) -> Result<&'a Drive, GraphError> {
    sim.tenant
        .drive(id)
        .ok_or_else(|| GraphError::not_found(id))
}

async fn user_drive(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    let rate = charge(&sim, &caller, Cost::Single).await?;
    let (_, u) = sim
        .tenant
        .user(&id)
        .ok_or_else(|| GraphError::not_found(&id))?;
    Ok(json_response(
        rate,
        drive_json(&sim, &sim.tenant.drives[u.drive]),
    ))
}

async fn search_sites(
    State(sim): State<SharedSim>,
    caller: Caller,
    Query(q): Q,
) -> Result<Response, GraphError> {
    let (top, skip) = page_window(&q, 200, 999)?;
    let rate = charge(&sim, &caller, Cost::Multi).await?;
    let needle = q
        .get("search")
        .map(|s| s.trim().to_lowercase())
        .unwrap_or_default();
    let items = sim
        .tenant
        .sites
        .iter()
        .filter(|s| {
            needle.is_empty()
                || needle == "*"
                || s.name.to_lowercase().contains(&needle)
                || s.display_name.to_lowercase().contains(&needle)
        })
        .map(site_json)
        .collect();
    Ok(json_response(
        rate,
        collection(&sim, "/sites", "sites", &q, items, top, skip),
    ))
}

async fn get_site(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    let rate = charge(&sim, &caller, Cost::Single).await?;
    let s = sim
        .tenant
        .site(&id)
        .ok_or_else(|| GraphError::not_found(&id))?;
    Ok(json_response(rate, site_json(s)))
}

async fn site_drives(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, GraphError> {
    let (top, skip) = page_window(&q, 200, 999)?;
    let rate = charge(&sim, &caller, Cost::Multi).await?;
    let s = sim
        .tenant
        .site(&id)
        .ok_or_else(|| GraphError::not_found(&id))?;
    let items = s
        .drives
        .iter()
        .map(|&d| drive_json(&sim, &sim.tenant.drives[d]))
        .collect();
    Ok(json_response(
        rate,
        collection(
            &sim,
            &format!("/sites/{id}/drives"),
            "drives",
            &q,
            items,
            top,
            skip,
        ),
    ))
}

async fn get_drive(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    let rate = charge(&sim, &caller, Cost::Single).await?;
    let d = find_drive(&sim, &id)?;
    Ok(json_response(rate, drive_json(&sim, d)))
}

async fn get_root(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    let rate = charge(&sim, &caller, Cost::Single).await?;
    let d = find_drive(&sim, &id)?;
    let state = d.state.read().unwrap_or_else(|p| p.into_inner());
    Ok(json_response(
        rate,
        item_json(d, &state.items[0], &child_counts(&state)),
    ))
}

/// Position in a delta enumeration: changes in `(since, upto]`, items from index `next` on.
/// Items are append-only, so indexes are stable while pages are fetched; an item changed after
/// `upto` is left for the next round, whose `since` is this round's `upto`.
#[derive(Serialize, Deserialize)]
struct DeltaToken {
    since: u64,
    upto: Option<u64>,
    next: usize,
}

impl DeltaToken {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(raw: &str) -> Option<Self> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(raw).ok()?).ok()
    }
}

async fn delta(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, GraphError> {
    let (top, _) = page_window(&q, 200, 1000)?;
    let token = match q.get("token").map(String::as_str) {
        None => None,
        Some("latest") => Some(DeltaToken {
            since: u64::MAX,
            upto: None,
            next: 0,
        }),
        Some(raw) => Some(
            DeltaToken::decode(raw)
                .ok_or_else(|| GraphError::bad_request("Invalid delta token."))?,
        ),
    };
    // A first enumeration is a multi-item query; follow-ups with a token cost one unit.
    let rate = charge(
        &sim,
        &caller,
        if token.is_none() {
            Cost::Multi
        } else {
            Cost::Single
        },
    )
    .await?;
    let d = find_drive(&sim, &id)?;
    let state = d.state.read().unwrap_or_else(|p| p.into_inner());
    let mut position = token.unwrap_or(DeltaToken {
        since: 0,
        upto: None,
        next: 0,
    });
    if position.since == u64::MAX {
        position.since = state.seq;
    }
    let upto = position.upto.unwrap_or(state.seq);
    let full = position.since == 0;
    let counts = child_counts(&state);
    let mut page = Vec::with_capacity(top);
    let mut index = position.next;
    while index < state.items.len() && page.len() < top {
        let item = &state.items[index];
        index += 1;
        let in_round = item.changed_seq > position.since && item.changed_seq <= upto;
        if in_round && !(full && item.deleted) {
            page.push(item_json(d, item, &counts));
        }
    }
    let more = state.items[index..]
        .iter()
        .any(|i| i.changed_seq > position.since && i.changed_seq <= upto && !(full && i.deleted));
    let link = |t: DeltaToken| {
        format!(
            "{}/v1.0/drives/{}/root/delta?token={}",
            sim.base_url,
            d.id,
            t.encode()
        )
    };
    let mut body = json!({ "@odata.context": format!("{}/v1.0/$metadata#Collection(driveItem)", sim.base_url), "value": page });
    if more {
        body["@odata.nextLink"] = json!(link(DeltaToken {
            since: position.since,
            upto: Some(upto),
            next: index
        }));
    } else {
        body["@odata.deltaLink"] = json!(link(DeltaToken {
            since: upto,
            upto: None,
            next: 0
        }));
    }
    Ok(json_response(rate, body))
}

fn live_item<'a>(state: &'a DriveState, item: &str) -> Result<&'a Item, GraphError> {
    state
        .get(item)
        .filter(|i| !i.deleted)
        .ok_or_else(|| GraphError::not_found(item))
}

/// The signed, expiring URL that serves this version of the file to `caller`.
fn download_url(
    sim: &SharedSim,
    caller: &Caller,
    drive: &Drive,
    item: &Item,
    file: FileInfo,
) -> String {
    sim.downloads.url(
        &sim.base_url,
        &DownloadTicket::new(drive, item, file, caller, sim),
    )
}

async fn get_item(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path((id, item)): Path<(String, String)>,
) -> Result<Response, GraphError> {
    let rate = charge(&sim, &caller, Cost::Single).await?;
    let d = find_drive(&sim, &id)?;
    let state = d.state.read().unwrap_or_else(|p| p.into_inner());
    let it = live_item(&state, &item)?;
    let mut v = item_json(d, it, &child_counts(&state));
    if let Some(f) = it.file {
        v["@microsoft.graph.downloadUrl"] = json!(download_url(&sim, &caller, d, it, f));
    }
    Ok(json_response(rate, v))
}

async fn item_content(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path((id, item)): Path<(String, String)>,
) -> Result<Response, GraphError> {
    let rate = charge(&sim, &caller, Cost::Single).await?;
    let d = find_drive(&sim, &id)?;
    let state = d.state.read().unwrap_or_else(|p| p.into_inner());
    let it = live_item(&state, &item)?;
    let f = it
        .file
        .ok_or_else(|| GraphError::bad_request("The item is a folder and has no content."))?;
    let url = download_url(&sim, &caller, d, it, f);
    Ok((StatusCode::FOUND, rate, [(header::LOCATION, url)]).into_response())
}
