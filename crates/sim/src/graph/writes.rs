//! Changes to items through Graph: create a folder (`POST …/children` with `folder: {}`),
//! rename, move and set times (`PATCH …/items/{id}` with `name`, `parentReference`,
//! `fileSystemInfo`), delete (`DELETE …/items/{id}`). Each is a write (2 units), needs write
//! access, honours `@microsoft.graph.conflictBehavior` and `If-Match`, and is logged for delta.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::drives::{live_item, writable_drive};
use super::paths::resolve_parent_reference;
use super::request::{check_if_match, conflict, FileSystemInfo, GraphBody, WriteQuery};
use super::shapes::item_json_alone;
use super::{charge, Caller, Cost, GraphError};
use crate::tenant::Conflict;
use crate::SharedSim;

pub fn routes() -> Router<SharedSim> {
    Router::new()
        .route(
            "/v1.0/drives/{id}/items/{item}",
            patch(patch_item).delete(delete_item),
        )
        .route(
            "/v1.0/drives/{id}/items/{item}/children",
            post(post_children),
        )
        .route("/v1.0/drives/{id}/root/children", post(post_root_children))
}

/// The body of `POST …/children`.
#[derive(Debug, Deserialize)]
pub(super) struct NewChild {
    name: Option<String>,
    folder: Option<Value>,
    #[serde(rename = "fileSystemInfo")]
    file_system_info: Option<FileSystemInfo>,
    #[serde(rename = "@microsoft.graph.conflictBehavior")]
    conflict: Option<Conflict>,
}

async fn post_children(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path((id, item)): Path<(String, String)>,
    Query(q): Query<WriteQuery>,
    GraphBody(body): GraphBody<NewChild>,
) -> Result<Response, GraphError> {
    create_child(&sim, &caller, &id, &item, &q, body).await
}

async fn post_root_children(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<WriteQuery>,
    GraphBody(body): GraphBody<NewChild>,
) -> Result<Response, GraphError> {
    create_child(&sim, &caller, &id, "root", &q, body).await
}

/// Creates a folder under `parent`: `201` with the new folder, or `200` with the existing one
/// (`replace` onto a folder).
pub(super) async fn create_child(
    sim: &SharedSim,
    caller: &Caller,
    drive: &str,
    parent: &str,
    q: &WriteQuery,
    body: NewChild,
) -> Result<Response, GraphError> {
    let rate = charge(sim, caller, Cost::Write).await?;
    let d = writable_drive(sim, caller, drive)?;
    let name = body
        .name
        .ok_or_else(|| GraphError::bad_request("A name is required."))?;
    if body.folder.is_none() {
        return Err(GraphError::bad_request(
            "Only folders are created with POST …/children: upload files with PUT …/content or an upload session.",
        ));
    }
    let conflict = conflict(body.conflict, q, Conflict::Fail)?;
    let mut state = d.state.write().unwrap_or_else(|p| p.into_inner());
    let p = live_item(&state, parent)?;
    if !state.items[p].is_folder() {
        return Err(GraphError::bad_request("The parent is not a folder."));
    }
    let parent_id = state.items[p].id.clone();
    let placed = state
        .create_folder(
            &mut rand::rngs::OsRng,
            &parent_id,
            &name,
            conflict,
            body.file_system_info.into(),
            chrono::Utc::now(),
            caller.by(),
        )
        .map_err(|e| GraphError::from_change(e, &name))?;
    let v = item_json_alone(sim, d, &state, placed.index);
    let status = if placed.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, rate, Json(v)).into_response())
}

/// `parentReference` in a `PATCH`.
#[derive(Debug, Deserialize)]
pub(super) struct ParentReference {
    pub id: Option<String>,
    #[serde(rename = "driveId")]
    pub drive_id: Option<String>,
    pub path: Option<String>,
}

/// The body of `PATCH …/items/{id}`.
#[derive(Debug, Deserialize)]
pub(super) struct ItemPatch {
    name: Option<String>,
    #[serde(rename = "parentReference")]
    parent_reference: Option<ParentReference>,
    #[serde(rename = "fileSystemInfo")]
    file_system_info: Option<FileSystemInfo>,
    #[serde(rename = "@microsoft.graph.conflictBehavior")]
    conflict: Option<Conflict>,
}

async fn patch_item(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path((id, item)): Path<(String, String)>,
    Query(q): Query<WriteQuery>,
    headers: HeaderMap,
    GraphBody(body): GraphBody<ItemPatch>,
) -> Result<Response, GraphError> {
    update_item(&sim, &caller, &id, &item, &q, &headers, body).await
}

/// Renames, moves and/or sets the times of an item; `200` with the item.
pub(super) async fn update_item(
    sim: &SharedSim,
    caller: &Caller,
    drive: &str,
    item: &str,
    q: &WriteQuery,
    headers: &HeaderMap,
    body: ItemPatch,
) -> Result<Response, GraphError> {
    let rate = charge(sim, caller, Cost::Write).await?;
    let d = writable_drive(sim, caller, drive)?;
    let conflict = conflict(body.conflict, q, Conflict::Fail)?;
    let mut state = d.state.write().unwrap_or_else(|p| p.into_inner());
    let i = live_item(&state, item)?;
    check_if_match(headers, &state.items[i])?;
    let item_id = state.items[i].id.clone();
    let parent = match &body.parent_reference {
        Some(r) => resolve_parent_reference(&state, &d.id, r)?,
        None => None,
    };
    state
        .update(
            &item_id,
            body.name.as_deref(),
            parent.as_deref(),
            body.file_system_info.into(),
            conflict,
            chrono::Utc::now(),
        )
        .map_err(|e| GraphError::from_change(e, item))?;
    let v = item_json_alone(sim, d, &state, i);
    Ok((StatusCode::OK, rate, Json(v)).into_response())
}

async fn delete_item(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path((id, item)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, GraphError> {
    remove_item(&sim, &caller, &id, &item, &headers).await
}

/// Deletes an item (a folder with everything in it); `204`.
pub(super) async fn remove_item(
    sim: &SharedSim,
    caller: &Caller,
    drive: &str,
    item: &str,
    headers: &HeaderMap,
) -> Result<Response, GraphError> {
    let rate = charge(sim, caller, Cost::Write).await?;
    let d = writable_drive(sim, caller, drive)?;
    let mut state = d.state.write().unwrap_or_else(|p| p.into_inner());
    let i = live_item(&state, item)?;
    check_if_match(headers, &state.items[i])?;
    let item_id = state.items[i].id.clone();
    state
        .delete_item(&item_id, chrono::Utc::now())
        .map_err(|e| GraphError::from_change(e, item))?;
    Ok((StatusCode::NO_CONTENT, rate, ()).into_response())
}
