//! Drives and drive items: `/drives/{id}`, `/root`, `/root/delta` (OneDrive for Business's
//! rounds, `410 Gone` for expired or invalidated tokens), `/items/{id}`, `/children` (paged, by
//! name) and `/content` (302 to a pre-authenticated download URL).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::shapes::{drive_json, item_json};
use super::{charge, collection, json_response, page_window, Caller, Cost, GraphError};
use crate::download::DownloadTicket;
use crate::faults::{FaultKind, Stage};
use crate::tenant::{Drive, DriveState};
use crate::SharedSim;

pub fn routes() -> Router<SharedSim> {
    Router::new()
        .route("/v1.0/drives/{id}", get(get_drive))
        .route("/v1.0/drives/{id}/root", get(get_root))
        .route("/v1.0/drives/{id}/root/delta", get(delta))
        .route("/v1.0/drives/{id}/items/{item}", get(get_item))
        .route("/v1.0/drives/{id}/items/{item}/children", get(children))
        .route("/v1.0/drives/{id}/root/children", get(root_children))
        .route("/v1.0/drives/{id}/items/{item}/content", get(item_content))
}

type Q = Query<HashMap<String, String>>;

/// The drive, if the caller may read it.
pub fn readable_drive<'a>(
    sim: &'a SharedSim,
    caller: &Caller,
    id: &str,
) -> Result<&'a Drive, GraphError> {
    let drive = sim
        .tenant
        .drive(id)
        .ok_or_else(|| GraphError::not_found(id))?;
    caller.may_read_drive(sim, drive)?;
    Ok(drive)
}

/// The drive, if the caller may change it.
pub fn writable_drive<'a>(
    sim: &'a SharedSim,
    caller: &Caller,
    id: &str,
) -> Result<&'a Drive, GraphError> {
    let drive = sim
        .tenant
        .drive(id)
        .ok_or_else(|| GraphError::not_found(id))?;
    caller.may_write_drive(sim, drive)?;
    Ok(drive)
}

/// Index of a live item (`root` names the root folder, as in Graph).
pub fn live_item(state: &DriveState, item: &str) -> Result<usize, GraphError> {
    if item.eq_ignore_ascii_case("root") {
        return Ok(0);
    }
    state.live(item).ok_or_else(|| GraphError::not_found(item))
}

/// An injected fault a content request meets before any byte: 404 or 423.
pub fn content_fault(
    sim: &SharedSim,
    drive: &Drive,
    item: &str,
    version: u64,
) -> Result<(), GraphError> {
    match sim.faults.take(&drive.id, item, version, Stage::Graph) {
        Some(FaultKind::NotFound) => Err(GraphError::not_found(item)),
        Some(FaultKind::Locked) => Err(GraphError::locked()),
        _ => Ok(()),
    }
}

/// The signed, expiring URL that serves version `version` of a file to `caller`.
pub fn download_url(
    sim: &SharedSim,
    caller: &Caller,
    drive: &Drive,
    state: &DriveState,
    i: usize,
    version: u64,
) -> Option<String> {
    let ticket = DownloadTicket::new(sim, caller, drive, &state.items[i], version)?;
    Some(sim.downloads.url(&sim.base_url, &ticket))
}

async fn get_drive(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    let rate = charge(&sim, &caller, Cost::Single).await?;
    let d = readable_drive(&sim, &caller, &id)?;
    Ok(json_response(rate, drive_json(&sim, d)))
}

async fn get_root(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    let rate = charge(&sim, &caller, Cost::Single).await?;
    let d = readable_drive(&sim, &caller, &id)?;
    let state = d.state.read().unwrap_or_else(|p| p.into_inner());
    let counts = state.child_counts();
    Ok(json_response(
        rate,
        item_json(&sim, d, &state, 0, &counts, false),
    ))
}

/// Where a delta round stands: it began at log position `start` of the drive's change log
/// (epoch `epoch`) and continues at `next`; `issued` (Unix seconds) ages the token.
#[derive(Serialize, Deserialize)]
struct DeltaToken {
    epoch: u64,
    start: usize,
    next: usize,
    issued: i64,
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
    enum Asked {
        Full,
        Latest,
        Token(DeltaToken),
    }
    let asked = match q.get("token").map(String::as_str) {
        None => Asked::Full,
        Some("latest") => Asked::Latest,
        Some(raw) => Asked::Token(
            DeltaToken::decode(raw)
                .ok_or_else(|| GraphError::bad_request("Invalid delta token."))?,
        ),
    };
    // A first enumeration is a multi-item query; follow-ups with a token cost one unit.
    let cost = if matches!(asked, Asked::Full) {
        Cost::Multi
    } else {
        Cost::Single
    };
    let rate = charge(&sim, &caller, cost).await?;
    let d = readable_drive(&sim, &caller, &id)?;
    let state = d.state.read().unwrap_or_else(|p| p.into_inner());
    let now = chrono::Utc::now().timestamp();
    let link = |start: usize, next: usize| {
        let token = DeltaToken {
            epoch: state.epoch,
            start,
            next,
            issued: now,
        };
        format!(
            "{}/v1.0/drives/{}/root/delta?token={}",
            sim.base_url,
            d.id,
            token.encode()
        )
    };
    let end = state.log.len();
    let (start, next) = match asked {
        Asked::Full => (0, 0),
        Asked::Latest => (end, end),
        Asked::Token(t) => {
            let max_age = sim.behaviour().delta_token_max_age_secs as i64;
            if t.epoch != state.epoch || (max_age > 0 && now - t.issued > max_age) {
                return Err(GraphError::resync_required(link(0, 0)));
            }
            if t.start > t.next || t.next > end {
                return Err(GraphError::bad_request("Invalid delta token."));
            }
            (t.start, t.next)
        }
    };
    let page = state.delta_page(start, next, top);
    let counts = state.child_counts();
    let value: Vec<_> = page
        .items
        .iter()
        .map(|&i| item_json(&sim, d, &state, i, &counts, true))
        .collect();
    let mut body = json!({
        "@odata.context": format!("{}/v1.0/$metadata#Collection(driveItem)", sim.base_url),
        "value": value,
    });
    if page.done {
        body["@odata.deltaLink"] = json!(link(end, end));
    } else {
        body["@odata.nextLink"] = json!(link(start, page.next));
    }
    Ok(json_response(rate, body))
}

pub(super) async fn get_item(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path((id, item)): Path<(String, String)>,
) -> Result<Response, GraphError> {
    let rate = charge(&sim, &caller, Cost::Single).await?;
    let d = readable_drive(&sim, &caller, &id)?;
    let state = d.state.read().unwrap_or_else(|p| p.into_inner());
    let i = live_item(&state, &item)?;
    let mut v = item_json(&sim, d, &state, i, &state.child_counts(), false);
    if let Some(f) = state.items[i].file {
        if let Some(url) = download_url(&sim, &caller, d, &state, i, f.version) {
            v["@microsoft.graph.downloadUrl"] = json!(url);
        }
    }
    Ok(json_response(rate, v))
}

pub(super) async fn item_content(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path((id, item)): Path<(String, String)>,
) -> Result<Response, GraphError> {
    sim.content_requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let rate = charge(&sim, &caller, Cost::Single).await?;
    let d = readable_drive(&sim, &caller, &id)?;
    let state = d.state.read().unwrap_or_else(|p| p.into_inner());
    let i = live_item(&state, &item)?;
    let f = state.items[i]
        .file
        .ok_or_else(|| GraphError::bad_request("The item is a folder and has no content."))?;
    content_fault(&sim, d, &item, f.version)?;
    let url = download_url(&sim, &caller, d, &state, i, f.version)
        .ok_or_else(|| GraphError::not_found(&item))?;
    Ok((StatusCode::FOUND, rate, [(header::LOCATION, url)]).into_response())
}

async fn root_children(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, GraphError> {
    list_children(&sim, &caller, &id, "root", &q).await
}

async fn children(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path((id, item)): Path<(String, String)>,
    Query(q): Q,
) -> Result<Response, GraphError> {
    list_children(&sim, &caller, &id, &item, &q).await
}

/// A folder's live children, by name (a multi-item query: 2 units).
pub(super) async fn list_children(
    sim: &SharedSim,
    caller: &Caller,
    id: &str,
    item: &str,
    q: &HashMap<String, String>,
) -> Result<Response, GraphError> {
    let (top, skip) = page_window(q, 200, 999)?;
    let rate = charge(sim, caller, Cost::Multi).await?;
    let d = readable_drive(sim, caller, id)?;
    let state = d.state.read().unwrap_or_else(|p| p.into_inner());
    let i = live_item(&state, item)?;
    let parent = state.items[i].id.as_str();
    let mut kids: Vec<usize> = (0..state.items.len())
        .filter(|&c| !state.items[c].deleted && state.items[c].parent.as_deref() == Some(parent))
        .collect();
    kids.sort_by_key(|&c| state.items[c].name.to_lowercase());
    let counts = state.child_counts();
    let items = kids
        .into_iter()
        .map(|c| item_json(sim, d, &state, c, &counts, false))
        .collect();
    let path = format!("/drives/{id}/items/{item}/children");
    Ok(json_response(
        rate,
        collection(sim, &path, "Collection(driveItem)", q, items, top, skip),
    ))
}
