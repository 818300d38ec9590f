//! Path-based addressing, as Graph allows it: `/drives/{id}/root:/{path}:` and
//! `/drives/{id}/items/{item}:/{path}:`, alone (get, `PATCH`, `DELETE` the item) or followed by
//! `/content` (download, simple upload), `/createUploadSession` or `/children` (list, create a
//! folder). Paths are
//! matched case-insensitively, segment by segment; `.` and `..` are refused.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::drives::{get_item, item_content, list_children, live_item, readable_drive};
use super::request::{GraphBody, WriteQuery};
use super::uploads::{create_session, simple_upload, Destination, SessionRequest};
use super::writes::{create_child, remove_item, update_item, ItemPatch, NewChild, ParentReference};
use super::{charge, Caller, Cost, GraphError};
use crate::tenant::DriveState;
use crate::SharedSim;

pub fn routes() -> Router<SharedSim> {
    Router::new().route(
        "/v1.0/drives/{id}/{*rest}",
        get(get_by_path)
            .put(put_by_path)
            .post(post_by_path)
            .patch(patch_by_path)
            .delete(delete_by_path),
    )
}

/// A path-addressed request: the item it starts from, the path below it, what follows.
#[derive(Debug, PartialEq, Eq)]
struct Addressed {
    base: String,
    segments: Vec<String>,
    action: Option<String>,
}

fn no_such_segment(rest: &str) -> GraphError {
    GraphError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "BadRequest",
        format!("Resource not found for the segment '{rest}'."),
    )
}

/// Reads `root:/a/b:/action` or `items/{id}:/a/b:` (the tail after `/drives/{id}/`).
fn parse(rest: &str) -> Result<Addressed, GraphError> {
    let (base, tail) = if let Some(tail) = rest.strip_prefix("root:") {
        ("root", tail)
    } else if let Some((id, tail)) = rest
        .strip_prefix("items/")
        .and_then(|r| r.split_once(':'))
        .filter(|(id, _)| !id.contains('/'))
    {
        (id, tail)
    } else {
        return Err(no_such_segment(rest));
    };
    let tail = tail.strip_prefix('/').unwrap_or(tail);
    let (path, action) = match tail.rsplit_once(":/") {
        Some((path, action)) => (path, Some(action.to_owned())),
        None => (tail.strip_suffix(':').unwrap_or(tail), None),
    };
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if segments.iter().any(|s| s == "." || s == "..") {
        return Err(
            GraphError::bad_request("A path may not contain '.' or '..'.").inner("invalidPath"),
        );
    }
    Ok(Addressed {
        base: base.to_owned(),
        segments,
        action,
    })
}

/// Walks `segments` down from item `from`: as far as they exist (index), and what is left.
fn walk<'a>(state: &DriveState, from: usize, segments: &'a [String]) -> (usize, &'a [String]) {
    let mut at = from;
    for (n, seg) in segments.iter().enumerate() {
        match state.child(at, seg) {
            Some(c) => at = c,
            None => return (at, &segments[n..]),
        }
    }
    (at, &[])
}

/// The id of the item a path names; `404 itemNotFound` when some segment is missing.
fn resolve(state: &DriveState, base: &str, segments: &[String]) -> Result<String, GraphError> {
    let from = live_item(state, base)?;
    match walk(state, from, segments) {
        (at, []) => Ok(state.items[at].id.clone()),
        _ => Err(GraphError::not_found(&segments.join("/"))),
    }
}

/// `parentReference` of a `PATCH`: by `id`, or by `path` (`/drive/root:/a/b`); another drive
/// is refused (Graph moves items across drives only by copying).
pub(super) fn resolve_parent_reference(
    state: &DriveState,
    drive_id: &str,
    r: &ParentReference,
) -> Result<Option<String>, GraphError> {
    if r.drive_id.as_deref().is_some_and(|d| d != drive_id) {
        return Err(GraphError::bad_request(
            "Moving an item to another drive is not supported: copy it.",
        ));
    }
    if let Some(id) = &r.id {
        let p = live_item(state, id)?;
        return Ok(Some(state.items[p].id.clone()));
    }
    let Some(path) = &r.path else {
        return Ok(None);
    };
    let below = path.split_once("root:").map(|(_, p)| p).ok_or_else(|| {
        GraphError::bad_request(format!("Invalid parentReference.path '{path}'."))
    })?;
    let segments: Vec<String> = below
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    resolve(state, "root", &segments).map(Some)
}

/// The item a path names, read with the caller's access; a miss is charged like a read.
async fn locate(
    sim: &SharedSim,
    caller: &Caller,
    drive: &str,
    a: &Addressed,
) -> Result<String, GraphError> {
    let found = readable_drive(sim, caller, drive).and_then(|d| {
        resolve(
            &d.state.read().unwrap_or_else(|p| p.into_inner()),
            &a.base,
            &a.segments,
        )
    });
    if found.is_err() {
        charge(sim, caller, Cost::Single).await?;
    }
    found
}

async fn get_by_path(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path((drive, rest)): Path<(String, String)>,
    Query(q): Query<WriteQuery>,
) -> Result<Response, GraphError> {
    let a = parse(&rest)?;
    let item = locate(&sim, &caller, &drive, &a).await?;
    match a.action.as_deref() {
        None => get_item(State(sim), caller, Path((drive, item))).await,
        Some("content") => item_content(State(sim), caller, Path((drive, item))).await,
        Some("children") => list_children(&sim, &caller, &drive, &item, &q).await,
        Some(_) => Err(no_such_segment(&rest)),
    }
}

async fn put_by_path(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path((drive, rest)): Path<(String, String)>,
    Query(q): Query<WriteQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GraphError> {
    let a = parse(&rest)?;
    if a.action.as_deref() != Some("content") {
        return Err(no_such_segment(&rest));
    }
    let Some((name, folders)) = a.segments.split_last() else {
        return Err(GraphError::bad_request("The path names no file."));
    };
    // Folders missing on the way are created (only once the content has arrived).
    let d = readable_drive(&sim, &caller, &drive)?;
    let (parent, missing) = {
        let state = d.state.read().unwrap_or_else(|p| p.into_inner());
        let from = live_item(&state, &a.base)?;
        let (at, missing) = walk(&state, from, folders);
        (state.items[at].id.clone(), missing.to_vec())
    };
    let dest = Destination::Path {
        parent,
        folders: missing,
        name: name.clone(),
    };
    simple_upload(&sim, &caller, &drive, dest, &q, &headers, body).await
}

async fn post_by_path(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path((drive, rest)): Path<(String, String)>,
    Query(q): Query<WriteQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GraphError> {
    let a = parse(&rest)?;
    let request = axum::extract::Request::new(body);
    match a.action.as_deref() {
        Some("createUploadSession") => {
            let GraphBody(body) =
                <GraphBody<SessionRequest> as axum::extract::FromRequest<()>>::from_request(
                    request,
                    &(),
                )
                .await?;
            let Some((name, folders)) = a.segments.split_last() else {
                return Err(GraphError::bad_request("The path names no file."));
            };
            // The folder must exist before an upload session is created in it.
            let parent = locate(
                &sim,
                &caller,
                &drive,
                &Addressed {
                    base: a.base.clone(),
                    segments: folders.to_vec(),
                    action: None,
                },
            )
            .await?;
            let dest = Destination::Path {
                parent,
                folders: Vec::new(),
                name: name.clone(),
            };
            create_session(&sim, &caller, &drive, dest, &q, &headers, body).await
        }
        Some("children") => {
            let GraphBody(body) =
                <GraphBody<NewChild> as axum::extract::FromRequest<()>>::from_request(request, &())
                    .await?;
            let parent = locate(&sim, &caller, &drive, &a).await?;
            create_child(&sim, &caller, &drive, &parent, &q, body).await
        }
        _ => Err(no_such_segment(&rest)),
    }
}

async fn patch_by_path(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path((drive, rest)): Path<(String, String)>,
    Query(q): Query<WriteQuery>,
    headers: HeaderMap,
    GraphBody(body): GraphBody<ItemPatch>,
) -> Result<Response, GraphError> {
    let a = parse(&rest)?;
    if a.action.is_some() {
        return Err(no_such_segment(&rest));
    }
    let item = locate(&sim, &caller, &drive, &a).await?;
    update_item(&sim, &caller, &drive, &item, &q, &headers, body).await
}

async fn delete_by_path(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path((drive, rest)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, GraphError> {
    let a = parse(&rest)?;
    if a.action.is_some() {
        return Err(no_such_segment(&rest));
    }
    let item = locate(&sim, &caller, &drive, &a).await?;
    remove_item(&sim, &caller, &drive, &item, &headers).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(base: &str, segments: &[&str], action: Option<&str>) -> Addressed {
        Addressed {
            base: base.into(),
            segments: segments.iter().map(|s| s.to_string()).collect(),
            action: action.map(str::to_owned),
        }
    }

    #[test]
    fn path_addressing() {
        assert_eq!(
            parse("root:/A/b c.txt:/content").unwrap(),
            a("root", &["A", "b c.txt"], Some("content"))
        );
        assert_eq!(
            parse("root:/A/b.txt:").unwrap(),
            a("root", &["A", "b.txt"], None)
        );
        assert_eq!(
            parse("root:/A/b.txt").unwrap(),
            a("root", &["A", "b.txt"], None)
        );
        assert_eq!(
            parse("items/01AB:/new.bin:/createUploadSession").unwrap(),
            a("01AB", &["new.bin"], Some("createUploadSession"))
        );
        assert!(parse("root:/a/../b:/content").is_err());
        assert!(parse("bogus").is_err());
        assert!(parse("items/01AB/bogus").is_err());
    }
}
