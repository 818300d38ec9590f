//! A file's versions (`/versions`, `/versions/{id}`, `/versions/{id}/content`,
//! `POST /versions/{id}/restoreVersion`) and an item's permissions (`/permissions`, 5 resource
//! units each).

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use super::drives::{content_fault, download_url, live_item, readable_drive, writable_drive};
use super::shapes::{identity, permissions_json};
use super::{charge, iso, json_response, Caller, Cost, GraphError};
use crate::tenant::{DriveState, FileVersion};
use crate::SharedSim;

pub fn routes() -> Router<SharedSim> {
    Router::new()
        .route(
            "/v1.0/drives/{id}/items/{item}/versions",
            get(list_versions),
        )
        .route(
            "/v1.0/drives/{id}/items/{item}/versions/{version}",
            get(get_version),
        )
        .route(
            "/v1.0/drives/{id}/items/{item}/versions/{version}/content",
            get(version_content),
        )
        .route(
            "/v1.0/drives/{id}/items/{item}/versions/{version}/restoreVersion",
            post(restore_version),
        )
        .route(
            "/v1.0/drives/{id}/items/{item}/permissions",
            get(permissions),
        )
}

/// Every version of a live file, newest (the current one) first.
fn versions(state: &DriveState, i: usize) -> Result<Vec<FileVersion>, GraphError> {
    let item = &state.items[i];
    if item.is_folder() {
        return Err(GraphError::bad_request("Versions are kept for files only."));
    }
    Ok(item.versions())
}

fn version_json(sim: &SharedSim, v: &FileVersion) -> Value {
    json!({
        "id": format!("{}.0", v.version),
        "lastModifiedDateTime": iso(v.modified),
        "lastModifiedBy": identity(&sim.tenant, v.modified_by),
        "size": v.size,
    })
}

/// `3.0` → 3.
fn version_number(id: &str) -> Option<u64> {
    id.strip_suffix(".0").unwrap_or(id).parse().ok()
}

async fn list_versions(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path((id, item)): Path<(String, String)>,
) -> Result<Response, GraphError> {
    let rate = charge(&sim, &caller, Cost::Multi).await?;
    let d = readable_drive(&sim, &caller, &id)?;
    let state = d.state.read().unwrap_or_else(|p| p.into_inner());
    let i = live_item(&state, &item)?;
    let value: Vec<Value> = versions(&state, i)?
        .iter()
        .map(|v| version_json(&sim, v))
        .collect();
    Ok(json_response(
        rate,
        json!({
            "@odata.context": format!("{}/v1.0/$metadata#drives('{id}')/items('{item}')/versions", sim.base_url),
            "value": value,
        }),
    ))
}

fn find_version(state: &DriveState, i: usize, version: &str) -> Result<FileVersion, GraphError> {
    let wanted = version_number(version).ok_or_else(|| GraphError::not_found(version))?;
    versions(state, i)?
        .into_iter()
        .find(|v| v.version == wanted)
        .ok_or_else(|| GraphError::not_found(version))
}

async fn get_version(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path((id, item, version)): Path<(String, String, String)>,
) -> Result<Response, GraphError> {
    let rate = charge(&sim, &caller, Cost::Single).await?;
    let d = readable_drive(&sim, &caller, &id)?;
    let state = d.state.read().unwrap_or_else(|p| p.into_inner());
    let i = live_item(&state, &item)?;
    let v = find_version(&state, i, &version)?;
    Ok(json_response(rate, version_json(&sim, &v)))
}

async fn version_content(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path((id, item, version)): Path<(String, String, String)>,
) -> Result<Response, GraphError> {
    sim.content_requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let rate = charge(&sim, &caller, Cost::Single).await?;
    let d = readable_drive(&sim, &caller, &id)?;
    let state = d.state.read().unwrap_or_else(|p| p.into_inner());
    let i = live_item(&state, &item)?;
    let v = find_version(&state, i, &version)?;
    content_fault(&sim, d, &item, v.version)?;
    let url = download_url(&sim, &caller, d, &state, i, v.version)
        .ok_or_else(|| GraphError::not_found(&version))?;
    Ok((StatusCode::FOUND, rate, [(header::LOCATION, url)]).into_response())
}

/// `restoreVersion`: the version's content becomes a new current version (a write: 2 units);
/// `204 No Content`.
async fn restore_version(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path((id, item, version)): Path<(String, String, String)>,
) -> Result<Response, GraphError> {
    let rate = charge(&sim, &caller, Cost::Write).await?;
    let d = writable_drive(&sim, &caller, &id)?;
    let mut state = d.state.write().unwrap_or_else(|p| p.into_inner());
    let i = live_item(&state, &item)?;
    let v = find_version(&state, i, &version)?;
    state
        .restore_version(&item, v.version, chrono::Utc::now(), caller.by())
        .map_err(|e| GraphError::from_change(e, &version))?;
    Ok((StatusCode::NO_CONTENT, rate, ()).into_response())
}

async fn permissions(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path((id, item)): Path<(String, String)>,
) -> Result<Response, GraphError> {
    let rate = charge(&sim, &caller, Cost::Permissions).await?;
    let d = readable_drive(&sim, &caller, &id)?;
    let state = d.state.read().unwrap_or_else(|p| p.into_inner());
    let i = live_item(&state, &item)?;
    sim.permission_requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(json_response(
        rate,
        json!({
            "@odata.context": format!("{}/v1.0/$metadata#drives('{id}')/items('{item}')/permissions", sim.base_url),
            "value": permissions_json(&sim, d, &state, i),
        }),
    ))
}
