//! Writing file content through Graph: the simple upload (`PUT …/content`, up to
//! `Behaviour::simple_upload_max_bytes`, 250 MB as Graph allows; `conflictBehavior` `replace` by
//! default; by path, missing folders are created) and `createUploadSession` (`fail` by default;
//! the folder must exist), whose bytes then go to [`crate::upload`]. Both are writes (2 units);
//! the bytes are charged to the user's ingress budget. A new file answers `201`, new content
//! for an existing one `200`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use chrono::Utc;
use futures_util::StreamExt;
use serde::Deserialize;

use super::drives::{live_item, writable_drive};
use super::request::{check_if_match, conflict, FileSystemInfo, GraphBody, WriteQuery};
use super::shapes::item_json_alone;
use super::{charge, Caller, Cost, GraphError};
use crate::blobs::Blob;
use crate::content::ContentSource;
use crate::tenant::{Conflict, Drive, DriveState, Times};
use crate::throttle::{Admission, Direction};
use crate::upload::{session_json, NewSession, Target};
use crate::SharedSim;

pub fn routes() -> Router<SharedSim> {
    Router::new()
        .route("/v1.0/drives/{id}/items/{item}/content", put(put_content))
        .route(
            "/v1.0/drives/{id}/items/{item}/createUploadSession",
            post(post_session),
        )
}

/// Where content is written.
#[derive(Debug, Clone)]
pub(super) enum Destination {
    /// An existing file, by id.
    Item(String),
    /// File `name` under folder `parent` (an item id, or `root`), in `folders` below it that
    /// may not exist yet.
    Path {
        parent: String,
        folders: Vec<String>,
        name: String,
    },
}

async fn put_content(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path((id, item)): Path<(String, String)>,
    Query(q): Query<WriteQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GraphError> {
    simple_upload(
        &sim,
        &caller,
        &id,
        Destination::Item(item),
        &q,
        &headers,
        body,
    )
    .await
}

fn internal(e: std::io::Error) -> GraphError {
    GraphError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "generalException",
        e.to_string(),
    )
}

fn too_large(max: u64) -> GraphError {
    GraphError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalidRequest",
        format!("A simple upload takes at most {max} bytes: use an upload session."),
    )
    .inner("maxFileSizeExceeded")
}

/// Refuses, before any byte is read, what the upload could never write.
fn check_destination(
    state: &DriveState,
    dest: &Destination,
    headers: &HeaderMap,
) -> Result<(), GraphError> {
    match dest {
        Destination::Item(id) => {
            let i = live_item(state, id)?;
            if state.items[i].is_folder() {
                return Err(GraphError::bad_request(
                    "The item is a folder and has no content.",
                ));
            }
            check_if_match(headers, &state.items[i])
        }
        Destination::Path {
            parent,
            folders,
            name,
        } => {
            let p = live_item(state, parent)?;
            if !state.items[p].is_folder() {
                return Err(GraphError::bad_request("The parent is not a folder."));
            }
            let mut names: Vec<&str> = folders.iter().map(String::as_str).collect();
            names.push(name);
            state
                .check_new_path(p, &names)
                .map_err(|e| GraphError::from_change(e, name))
        }
    }
}

fn ingress(sim: &SharedSim, caller: &Caller, bytes: u64) -> Result<(), GraphError> {
    match sim.throttler.admit_transfer(
        Direction::Ingress,
        caller.user_id(sim),
        caller.token.app,
        bytes,
    ) {
        Admission::Admitted { .. } => Ok(()),
        Admission::Throttled {
            retry_after_secs,
            service_unavailable,
        } => Err(GraphError::throttled(retry_after_secs, service_unavailable)),
    }
}

/// `PUT …/content`: the body becomes the file's content.
pub(super) async fn simple_upload(
    sim: &SharedSim,
    caller: &Caller,
    drive: &str,
    dest: Destination,
    q: &WriteQuery,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, GraphError> {
    let rate = charge(sim, caller, Cost::Write).await?;
    let d = writable_drive(sim, caller, drive)?;
    let conflict = conflict(None, q, Conflict::Replace)?;
    let max = sim.behaviour().simple_upload_max_bytes;
    let declared: Option<u64> = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    check_destination(
        &d.state.read().unwrap_or_else(|p| p.into_inner()),
        &dest,
        headers,
    )?;
    if let Some(n) = declared {
        ingress(sim, caller, n)?;
    }
    let mut writer = sim.blobs.writer().await.map_err(internal)?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let bytes =
            chunk.map_err(|_| GraphError::bad_request("The request body did not arrive whole."))?;
        if writer.size() + bytes.len() as u64 > max {
            return Err(too_large(max));
        }
        writer.write(&bytes).await.map_err(internal)?;
    }
    if declared.is_none() {
        ingress(sim, caller, writer.size())?;
    }
    let blob = sim.blobs.finish(writer).await.map_err(internal)?;
    let mut state = d.state.write().unwrap_or_else(|p| p.into_inner());
    let (index, created) = place(&mut state, &dest, &blob, conflict, caller.by())
        .inspect_err(|_| sim.blobs.discard(blob.id))?;
    let v = item_json_alone(sim, d, &state, index);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, rate, Json(v)).into_response())
}

/// Writes a received blob where it goes: (item index, whether the item is new).
fn place(
    state: &mut DriveState,
    dest: &Destination,
    blob: &Arc<Blob>,
    conflict: Conflict,
    by: Option<usize>,
) -> Result<(usize, bool), GraphError> {
    let now = Utc::now();
    let content = ContentSource::Stored(blob.id);
    match dest {
        Destination::Item(id) => {
            let i = live_item(state, id)?;
            let id = state.items[i].id.clone();
            state
                .replace_content(&id, blob.size, content, None, now, by)
                .map_err(|e| GraphError::from_change(e, &id))?;
            Ok((i, false))
        }
        Destination::Path {
            parent,
            folders,
            name,
        } => {
            let mut p = live_item(state, parent)?;
            for folder in folders {
                p = match state.child(p, folder) {
                    Some(c) if state.items[c].is_folder() => c,
                    Some(_) => return Err(GraphError::name_exists()),
                    None => {
                        let parent_id = state.items[p].id.clone();
                        let times = Times::default();
                        state
                            .create_folder(
                                &mut rand::rngs::OsRng,
                                &parent_id,
                                folder,
                                Conflict::Fail,
                                times,
                                now,
                                by,
                            )
                            .map_err(|e| GraphError::from_change(e, folder))?
                            .index
                    }
                };
            }
            let parent_id = state.items[p].id.clone();
            let placed = state
                .put_file(
                    &mut rand::rngs::OsRng,
                    &parent_id,
                    name,
                    blob.size,
                    content,
                    conflict,
                    Times::default(),
                    now,
                    by,
                )
                .map_err(|e| GraphError::from_change(e, name))?;
            Ok((placed.index, placed.created))
        }
    }
}

/// The body of `createUploadSession`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct SessionRequest {
    item: Option<SessionItem>,
    #[serde(rename = "deferCommit")]
    defer_commit: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
struct SessionItem {
    #[serde(rename = "@microsoft.graph.conflictBehavior")]
    conflict: Option<Conflict>,
    name: Option<String>,
    #[serde(rename = "fileSize")]
    file_size: Option<u64>,
    #[serde(rename = "fileSystemInfo")]
    file_system_info: Option<FileSystemInfo>,
}

async fn post_session(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path((id, item)): Path<(String, String)>,
    Query(q): Query<WriteQuery>,
    headers: HeaderMap,
    GraphBody(body): GraphBody<SessionRequest>,
) -> Result<Response, GraphError> {
    create_session(
        &sim,
        &caller,
        &id,
        Destination::Item(item),
        &q,
        &headers,
        body,
    )
    .await
}

/// What a session will write, checked now: (target, the file's name).
fn session_target(
    d: &Drive,
    dest: &Destination,
    item: &SessionItem,
    conflict: Conflict,
    headers: &HeaderMap,
) -> Result<(Target, String), GraphError> {
    let state = d.state.read().unwrap_or_else(|p| p.into_inner());
    check_destination(&state, dest, headers)?;
    match dest {
        Destination::Item(id) => {
            let i = live_item(&state, id)?;
            let item = &state.items[i];
            Ok((
                Target::Existing {
                    item: item.id.clone(),
                },
                item.name.clone(),
            ))
        }
        Destination::Path {
            parent,
            folders,
            name,
        } => {
            if !folders.is_empty() {
                return Err(GraphError::not_found(&folders.join("/")));
            }
            if item.name.as_ref().is_some_and(|n| n != name) {
                return Err(GraphError::bad_request(
                    "The name in the request body must be the one in the path.",
                ));
            }
            let p = live_item(&state, parent)?;
            if conflict == Conflict::Fail && state.child(p, name).is_some() {
                return Err(GraphError::name_exists());
            }
            let target = Target::New {
                parent: state.items[p].id.clone(),
                name: name.clone(),
                conflict,
            };
            Ok((target, name.clone()))
        }
    }
}

/// `createUploadSession`: `200` with the session's upload URL.
pub(super) async fn create_session(
    sim: &SharedSim,
    caller: &Caller,
    drive: &str,
    dest: Destination,
    q: &WriteQuery,
    headers: &HeaderMap,
    body: SessionRequest,
) -> Result<Response, GraphError> {
    let rate = charge(sim, caller, Cost::Write).await?;
    let d = writable_drive(sim, caller, drive)?;
    let item = body.item.unwrap_or_default();
    let conflict = conflict(item.conflict, q, Conflict::Fail)?;
    let (target, name) = session_target(d, &dest, &item, conflict, headers)?;
    let spec = NewSession {
        drive: d.id.clone(),
        target,
        times: item.file_system_info.into(),
        file_size: item.file_size,
        defer_commit: body.defer_commit.unwrap_or(false),
        by: caller.by(),
        user: caller.user_id(sim),
        app: caller.token.app,
        expire_after_bytes: sim.faults.take_upload(&d.id, &name),
    };
    let (url, expires) = sim.uploads.create(sim, spec);
    Ok((StatusCode::OK, rate, Json(session_json(sim, &url, expires))).into_response())
}
