//! Directory: `/organization`, `/users`, `/groups`, `/groups/{id}/members`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::{charge, collection, iso, json_response, page_window, Caller, Cost, GraphError};
use crate::tenant::{Group, GroupKind, User};
use crate::SharedSim;

pub fn routes() -> Router<SharedSim> {
    Router::new()
        .route("/v1.0/organization", get(organization))
        .route("/v1.0/users", get(list_users))
        .route("/v1.0/users/{id}", get(get_user))
        .route("/v1.0/groups", get(list_groups))
        .route("/v1.0/groups/{id}", get(get_group))
        .route("/v1.0/groups/{id}/members", get(list_members))
}

type Q = Query<HashMap<String, String>>;

pub fn user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "displayName": u.display_name,
        "userPrincipalName": u.user_principal_name,
        "mail": u.user_principal_name,
        "accountEnabled": u.account_enabled,
        "userType": "Member",
        "onPremisesImmutableId": null,
        "onPremisesSyncEnabled": null,
        "createdDateTime": iso(u.created),
    })
}

fn group_json(sim: &SharedSim, g: &Group) -> Value {
    let (security, mail_enabled, types): (bool, bool, Vec<&str>) = match g.kind {
        GroupKind::Security => (true, false, vec![]),
        GroupKind::Microsoft365 => (false, true, vec!["Unified"]),
        GroupKind::Distribution => (false, true, vec![]),
    };
    json!({
        "id": g.id,
        "displayName": g.display_name,
        "description": null,
        "mail": if mail_enabled { Value::from(format!("{}@{}", g.mail_nickname, sim.tenant.domain)) } else { Value::Null },
        "mailEnabled": mail_enabled,
        "mailNickname": g.mail_nickname,
        "securityEnabled": security,
        "groupTypes": types,
        "onPremisesSyncEnabled": null,
        "createdDateTime": iso(g.created),
    })
}

async fn organization(
    State(sim): State<SharedSim>,
    caller: Caller,
) -> Result<Response, GraphError> {
    let rate = charge(&sim, &caller, Cost::Single).await?;
    let t = &sim.tenant;
    Ok(json_response(
        rate,
        json!({
            "@odata.context": format!("{}/v1.0/$metadata#organization", sim.base_url),
            "value": [{
                "id": t.id,
                "displayName": t.display_name,
                "tenantType": "AAD",
                "createdDateTime": iso(t.created),
                "verifiedDomains": [{"name": t.domain, "isDefault": true, "isInitial": true, "type": "Managed", "capabilities": "Email, OfficeCommunicationsOnline"}],
            }]
        }),
    ))
}

async fn list_users(
    State(sim): State<SharedSim>,
    caller: Caller,
    Query(q): Q,
) -> Result<Response, GraphError> {
    let (top, skip) = page_window(&q, 100, 999)?;
    let rate = charge(&sim, &caller, Cost::Multi).await?;
    let t = &sim.tenant;
    let items = (0..t.users.len())
        .filter(|&u| !t.is_gone(u))
        .map(|u| user_json(&t.users[u]))
        .collect();
    Ok(json_response(
        rate,
        collection(&sim, "/users", "users", &q, items, top, skip),
    ))
}

async fn get_user(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    let rate = charge(&sim, &caller, Cost::Single).await?;
    let (_, u) = sim.tenant.user(&id).ok_or_else(|| GraphError::new(axum::http::StatusCode::NOT_FOUND, "Request_ResourceNotFound", format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present.")))?;
    Ok(json_response(rate, user_json(u)))
}

/// One `$filter` clause on groups, of those m365backup sends.
enum GroupClause {
    SecurityEnabled(bool),
    MailEnabled(bool),
    Unified,
}

impl GroupClause {
    fn matches(&self, g: &Group) -> bool {
        match self {
            GroupClause::SecurityEnabled(v) => (g.kind == GroupKind::Security) == *v,
            GroupClause::MailEnabled(v) => (g.kind != GroupKind::Security) == *v,
            GroupClause::Unified => g.kind == GroupKind::Microsoft365,
        }
    }
}

/// Parses clauses joined by `and`; anything else is refused as Graph refuses what it can't do.
fn group_filter(filter: &str) -> Result<Vec<GroupClause>, GraphError> {
    filter
        .split(" and ")
        .map(|clause| {
            let c = clause
                .trim()
                .trim_start_matches('(')
                .trim_end_matches(')')
                .trim();
            let flag = |name: &str| -> Option<bool> {
                c.strip_prefix(name)?
                    .trim()
                    .strip_prefix("eq")?
                    .trim()
                    .parse()
                    .ok()
            };
            if let Some(v) = flag("securityEnabled") {
                Ok(GroupClause::SecurityEnabled(v))
            } else if let Some(v) = flag("mailEnabled") {
                Ok(GroupClause::MailEnabled(v))
            } else if clause.replace([' ', '(', ')'], "") == "groupTypes/anyc:ceq'Unified'" {
                Ok(GroupClause::Unified)
            } else {
                Err(GraphError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "Request_UnsupportedQuery",
                    format!(
                        "Unsupported or invalid query filter clause specified for property: '{c}'."
                    ),
                ))
            }
        })
        .collect()
}

async fn list_groups(
    State(sim): State<SharedSim>,
    caller: Caller,
    Query(q): Q,
) -> Result<Response, GraphError> {
    let (top, skip) = page_window(&q, 100, 999)?;
    let filters = match q.get("$filter") {
        Some(f) => group_filter(f)?,
        None => Vec::new(),
    };
    let rate = charge(&sim, &caller, Cost::Multi).await?;
    let items = sim
        .tenant
        .groups
        .iter()
        .filter(|g| filters.iter().all(|f| f.matches(g)))
        .map(|g| group_json(&sim, g))
        .collect();
    Ok(json_response(
        rate,
        collection(&sim, "/groups", "groups", &q, items, top, skip),
    ))
}

fn find_group<'a>(sim: &'a SharedSim, id: &str) -> Result<&'a Group, GraphError> {
    sim.tenant.group(id).ok_or_else(|| {
        GraphError::new(axum::http::StatusCode::NOT_FOUND, "Request_ResourceNotFound", format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."))
    })
}

async fn get_group(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    let rate = charge(&sim, &caller, Cost::Single).await?;
    let g = find_group(&sim, &id)?;
    Ok(json_response(rate, group_json(&sim, g)))
}

async fn list_members(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, GraphError> {
    let (top, skip) = page_window(&q, 100, 999)?;
    let rate = charge(&sim, &caller, Cost::Multi).await?;
    let g = find_group(&sim, &id)?;
    let items = g
        .members
        .iter()
        .filter(|&&i| !sim.tenant.is_gone(i))
        .map(|&i| {
            let mut v = user_json(&sim.tenant.users[i]);
            v["@odata.type"] = json!("#microsoft.graph.user");
            v
        })
        .collect();
    Ok(json_response(
        rate,
        collection(
            &sim,
            &format!("/groups/{id}/members"),
            "directoryObjects",
            &q,
            items,
            top,
            skip,
        ),
    ))
}
