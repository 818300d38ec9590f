//! `/_sim/drives/…`: the drives (list, truth: tree, versions, content), changes between backups
//! (add, modify, rename, move, share, delete, force a resync) and injected faults.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Controller, Refusal};
use crate::faults::{ItemFault, UploadFault};
use crate::graph::iso;
use crate::handle::{DriveHandle, TreeEntry};
use crate::tenant::{DriveOwner, Grant, LinkScope, Role};
use crate::SharedSim;

pub fn routes() -> Router<SharedSim> {
    Router::new()
        .route("/_sim/drives", get(list_drives))
        .route("/_sim/drives/{drive}/tree", get(tree))
        .route("/_sim/drives/{drive}/files", post(add_file))
        .route("/_sim/drives/{drive}/folders", post(add_folder))
        .route("/_sim/drives/{drive}/resync", post(force_resync))
        .route(
            "/_sim/drives/{drive}/faults",
            axum::routing::delete(clear_drive_faults),
        )
        .route("/_sim/drives/{drive}/uploadFaults", post(add_upload_fault))
        .route(
            "/_sim/drives/{drive}/items/{item}",
            put(modify_item).patch(move_item).delete(delete_item),
        )
        .route(
            "/_sim/drives/{drive}/items/{item}/permissions",
            put(share_item),
        )
        .route("/_sim/drives/{drive}/items/{item}/versions", get(versions))
        .route("/_sim/drives/{drive}/items/{item}/content", get(content))
        .route(
            "/_sim/drives/{drive}/items/{item}/fault",
            put(set_fault).delete(clear_fault),
        )
        .route("/_sim/faults", get(list_faults))
}

type Answer = Result<Response, Refusal>;

fn drive(sim: &SharedSim, id: &str) -> Result<DriveHandle, Refusal> {
    Ok(DriveHandle::new(sim, id)?)
}

/// The drive handle acting as `by` (a principal name), when given.
fn drive_by(sim: &SharedSim, id: &str, by: Option<&str>) -> Result<DriveHandle, Refusal> {
    let d = drive(sim, id)?;
    match by {
        Some(upn) => d
            .by(upn)
            .map_err(|_| Refusal::bad_request(format!("no such user '{upn}'"))),
        None => Ok(d),
    }
}

fn no_content() -> Answer {
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn created(id: String) -> Answer {
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}

/// Every drive: id, name, type, owner (a user's principal name or a site's id), web address.
async fn list_drives(_: Controller, State(sim): State<SharedSim>) -> Json<Value> {
    let t = &sim.tenant;
    let drives: Vec<Value> = t
        .drives
        .iter()
        .map(|d| {
            let (kind, owner) = match d.owner {
                DriveOwner::User(u) => ("business", t.users[u].user_principal_name.clone()),
                DriveOwner::Site(s) => ("documentLibrary", t.sites[s].id.clone()),
            };
            json!({"id": d.id, "name": d.name, "driveType": kind, "owner": owner, "webUrl": d.web_url})
        })
        .collect();
    Json(json!({ "drives": drives }))
}

fn entry_json(e: &TreeEntry) -> Value {
    json!({
        "id": e.id,
        "parentId": e.parent_id,
        "name": e.name,
        "path": e.path,
        "folder": e.is_folder,
        "size": e.size,
        "version": e.version,
        "quickXorHash": e.quick_xor_hash,
        "sha256": e.sha256(),
        "createdDateTime": iso(e.created),
        "lastModifiedDateTime": iso(e.modified),
        "shared": !e.permissions.is_empty(),
    })
}

/// Every live item with its hashes: what a backup or a restore is compared with.
async fn tree(_: Controller, State(sim): State<SharedSim>, Path(id): Path<String>) -> Answer {
    let d = drive(&sim, &id)?;
    let entries: Vec<Value> = d.tree().iter().map(entry_json).collect();
    Ok(Json(json!({ "items": entries })).into_response())
}

async fn versions(
    _: Controller,
    State(sim): State<SharedSim>,
    Path((id, item)): Path<(String, String)>,
) -> Answer {
    let versions = drive(&sim, &id)?.versions(&item)?;
    let value: Vec<Value> = versions
        .iter()
        .map(|v| json!({"id": v.id, "size": v.size, "lastModifiedDateTime": iso(v.modified), "sha256": v.content.sha256_hex()}))
        .collect();
    Ok(Json(json!({ "versions": value })).into_response())
}

#[derive(Deserialize)]
struct VersionQuery {
    version: Option<u64>,
}

/// A file version's bytes (the current one without `?version=`).
async fn content(
    _: Controller,
    State(sim): State<SharedSim>,
    Path((id, item)): Path<(String, String)>,
    Query(q): Query<VersionQuery>,
) -> Answer {
    let content = drive(&sim, &id)?.content(&item, q.version)?;
    let size = content.size();
    let mut response = Response::new(Body::from_stream(content.stream(0, size)));
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, size.into());
    Ok(response)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewItem {
    /// Folder to create the item in; the drive's root when absent.
    parent_id: Option<String>,
    name: String,
    /// Bytes of a new file of generated content (folders have none)...
    #[serde(default)]
    size: u64,
    /// ...or its exact content, base64.
    base64: Option<String>,
    /// Principal name of the user who makes the change.
    by: Option<String>,
}

async fn add_file(
    _: Controller,
    State(sim): State<SharedSim>,
    Path(id): Path<String>,
    Json(f): Json<NewItem>,
) -> Answer {
    let d = drive_by(&sim, &id, f.by.as_deref())?;
    let parent = f.parent_id.as_deref();
    let new = match &f.base64 {
        Some(b) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|_| Refusal::bad_request("base64 is not valid base64"))?;
            d.add_file_bytes(parent, &f.name, &bytes)?
        }
        None => d.add_file(parent, &f.name, f.size)?,
    };
    created(new)
}

async fn add_folder(
    _: Controller,
    State(sim): State<SharedSim>,
    Path(id): Path<String>,
    Json(f): Json<NewItem>,
) -> Answer {
    let d = drive_by(&sim, &id, f.by.as_deref())?;
    created(d.add_folder(f.parent_id.as_deref(), &f.name)?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewContent {
    size: u64,
    by: Option<String>,
}

/// New content: a new version of the file.
async fn modify_item(
    _: Controller,
    State(sim): State<SharedSim>,
    Path((id, item)): Path<(String, String)>,
    Json(c): Json<NewContent>,
) -> Answer {
    drive_by(&sim, &id, c.by.as_deref())?.modify_file(&item, c.size)?;
    no_content()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Move {
    name: Option<String>,
    parent_id: Option<String>,
}

/// Renames and/or moves an item (a folder moves with everything in it).
async fn move_item(
    _: Controller,
    State(sim): State<SharedSim>,
    Path((id, item)): Path<(String, String)>,
    Json(m): Json<Move>,
) -> Answer {
    drive(&sim, &id)?.rename_and_move(&item, m.name.as_deref(), m.parent_id.as_deref())?;
    no_content()
}

async fn delete_item(
    _: Controller,
    State(sim): State<SharedSim>,
    Path((id, item)): Path<(String, String)>,
) -> Answer {
    drive(&sim, &id)?.delete(&item)?;
    no_content()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ShareSpec {
    /// Shared with this user (principal name)...
    user: Option<String>,
    /// ...or through a link of this scope.
    link: Option<LinkScope>,
    role: Role,
}

/// Replaces an item's explicit permissions (`[]`: no longer shared).
async fn share_item(
    _: Controller,
    State(sim): State<SharedSim>,
    Path((id, item)): Path<(String, String)>,
    Json(specs): Json<Vec<ShareSpec>>,
) -> Answer {
    let mut grants = Vec::new();
    for s in specs {
        grants.push(match (s.user, s.link) {
            (Some(upn), None) => match sim.tenant.user(&upn) {
                Some((user, _)) => Grant::User { user, role: s.role },
                None => return Err(Refusal::bad_request(format!("no such user '{upn}'"))),
            },
            (None, Some(scope)) => Grant::Link {
                scope,
                role: s.role,
            },
            _ => return Err(Refusal::bad_request("give either user or link")),
        });
    }
    drive(&sim, &id)?.share(&item, grants)?;
    no_content()
}

/// Every delta token of the drive issued so far answers `410 Gone` from now on.
async fn force_resync(
    _: Controller,
    State(sim): State<SharedSim>,
    Path(id): Path<String>,
) -> Answer {
    drive(&sim, &id)?.force_resync();
    no_content()
}

/// Injects a fault on an item's content: `{"kind": "notFound" | "locked" | "cut",
/// "afterBytes"?, "version"?, "times"?}`.
async fn set_fault(
    _: Controller,
    State(sim): State<SharedSim>,
    Path((id, item)): Path<(String, String)>,
    Json(fault): Json<ItemFault>,
) -> Answer {
    drive(&sim, &id)?.inject_fault(&item, fault);
    no_content()
}

async fn clear_fault(
    _: Controller,
    State(sim): State<SharedSim>,
    Path((id, item)): Path<(String, String)>,
) -> Answer {
    drive(&sim, &id)?.clear_faults(Some(&item));
    no_content()
}

async fn clear_drive_faults(
    _: Controller,
    State(sim): State<SharedSim>,
    Path(id): Path<String>,
) -> Answer {
    drive(&sim, &id)?.clear_faults(None);
    no_content()
}

/// Upload sessions for a file name expire midway: `{"name", "expireAfterBytes", "times"?}`.
async fn add_upload_fault(
    _: Controller,
    State(sim): State<SharedSim>,
    Path(id): Path<String>,
    Json(f): Json<UploadFault>,
) -> Answer {
    drive(&sim, &id)?.expire_uploads_of(&f.name, f.expire_after_bytes, f.times);
    no_content()
}

async fn list_faults(_: Controller, State(sim): State<SharedSim>) -> Json<Value> {
    let items: Vec<Value> = sim
        .faults
        .list()
        .into_iter()
        .map(|(d, i, f)| {
            let mut v = serde_json::to_value(f).unwrap_or_default();
            v["driveId"] = json!(d);
            v["itemId"] = json!(i);
            v
        })
        .collect();
    let uploads: Vec<Value> = sim
        .faults
        .uploads()
        .into_iter()
        .map(|(d, f)| {
            let mut v = serde_json::to_value(f).unwrap_or_default();
            v["driveId"] = json!(d);
            v
        })
        .collect();
    Json(json!({"items": items, "uploads": uploads}))
}
