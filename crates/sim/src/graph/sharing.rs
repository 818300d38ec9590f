//! Permission writes, 5 resource units each, with write access: `POST …/invite` (share with
//! users of the tenant, by e-mail or object id), `POST …/createLink` (an organization or
//! anonymous link, `view` or `edit`), `DELETE …/permissions/{id}` (explicit permissions only).
//! Each change is logged for delta, and the item's `shared` facet follows.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::drives::{live_item, writable_drive};
use super::request::GraphBody;
use super::shapes::{inherited_permission_id, permission_json};
use super::{charge, Caller, Cost, GraphError};
use crate::tenant::{Grant, LinkScope, Role};
use crate::SharedSim;

pub fn routes() -> Router<SharedSim> {
    Router::new()
        .route("/v1.0/drives/{id}/items/{item}/invite", post(invite))
        .route(
            "/v1.0/drives/{id}/items/{item}/createLink",
            post(create_link),
        )
        .route(
            "/v1.0/drives/{id}/items/{item}/permissions/{permission}",
            delete(delete_permission),
        )
}

#[derive(Debug, Deserialize)]
struct Recipient {
    email: Option<String>,
    #[serde(rename = "objectId")]
    object_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Invitation {
    #[serde(default)]
    recipients: Vec<Recipient>,
    #[serde(default)]
    roles: Vec<String>,
}

fn role(name: &str) -> Result<Role, GraphError> {
    match name {
        "read" => Ok(Role::Read),
        "write" => Ok(Role::Write),
        other => Err(GraphError::bad_request(format!(
            "Invalid role '{other}': read or write."
        ))),
    }
}

/// Shares an item with users: `200` with one permission per recipient.
async fn invite(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path((id, item)): Path<(String, String)>,
    GraphBody(body): GraphBody<Invitation>,
) -> Result<Response, GraphError> {
    let rate = charge(&sim, &caller, Cost::Permissions).await?;
    let d = writable_drive(&sim, &caller, &id)?;
    if body.recipients.is_empty() {
        return Err(GraphError::bad_request(
            "At least one recipient is required.",
        ));
    }
    // The strongest role asked for.
    let roles = body
        .roles
        .iter()
        .map(|r| role(r))
        .collect::<Result<Vec<_>, _>>()?;
    let role = match (roles.contains(&Role::Write), roles.is_empty()) {
        (true, _) => Role::Write,
        (false, false) => Role::Read,
        (false, true) => return Err(GraphError::bad_request("At least one role is required.")),
    };
    let mut users = Vec::new();
    for r in &body.recipients {
        let key = r.email.as_deref().or(r.object_id.as_deref()).unwrap_or("");
        let (user, _) = sim
            .tenant
            .user(key)
            .ok_or_else(|| GraphError::bad_request("One or more users could not be resolved."))?;
        users.push(user);
    }
    let mut state = d.state.write().unwrap_or_else(|p| p.into_inner());
    let i = live_item(&state, &item)?;
    let item_id = state.items[i].id.clone();
    let mut value = Vec::new();
    for user in users {
        let (permission, _) = state
            .grant(&item_id, Grant::User { user, role })
            .map_err(|e| GraphError::from_change(e, &item))?;
        value.push(permission_json(&sim, d, &state, i, &permission));
    }
    Ok((StatusCode::OK, rate, Json(json!({ "value": value }))).into_response())
}

#[derive(Debug, Deserialize)]
struct LinkRequest {
    #[serde(rename = "type")]
    kind: String,
    scope: Option<String>,
}

/// A sharing link: `201` when new, `200` when the item already had that link.
async fn create_link(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path((id, item)): Path<(String, String)>,
    GraphBody(body): GraphBody<LinkRequest>,
) -> Result<Response, GraphError> {
    let rate = charge(&sim, &caller, Cost::Permissions).await?;
    let d = writable_drive(&sim, &caller, &id)?;
    let role = match body.kind.as_str() {
        "view" => Role::Read,
        "edit" => Role::Write,
        other => {
            return Err(GraphError::bad_request(format!(
                "Invalid link type '{other}': view or edit."
            )))
        }
    };
    let scope = match body.scope.as_deref().unwrap_or("organization") {
        "organization" => LinkScope::Organization,
        "anonymous" => LinkScope::Anonymous,
        other => {
            return Err(GraphError::bad_request(format!(
                "Invalid link scope '{other}': organization or anonymous."
            )))
        }
    };
    let mut state = d.state.write().unwrap_or_else(|p| p.into_inner());
    let i = live_item(&state, &item)?;
    let item_id = state.items[i].id.clone();
    let (permission, new) = state
        .grant(&item_id, Grant::Link { scope, role })
        .map_err(|e| GraphError::from_change(e, &item))?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let v = permission_json(&sim, d, &state, i, &permission);
    Ok((status, rate, Json(v)).into_response())
}

/// Removes an explicit permission: `204`; the inherited owners' permission cannot go.
async fn delete_permission(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path((id, item, permission)): Path<(String, String, String)>,
) -> Result<Response, GraphError> {
    let rate = charge(&sim, &caller, Cost::Permissions).await?;
    let d = writable_drive(&sim, &caller, &id)?;
    let mut state = d.state.write().unwrap_or_else(|p| p.into_inner());
    let i = live_item(&state, &item)?;
    if permission == inherited_permission_id(&state) {
        return Err(GraphError::bad_request(
            "Only sharing permissions that are not inherited can be deleted.",
        ));
    }
    let item_id = state.items[i].id.clone();
    state
        .revoke(&item_id, &permission)
        .map_err(|e| GraphError::from_change(e, &permission))?;
    Ok((StatusCode::NO_CONTENT, rate, ()).into_response())
}
