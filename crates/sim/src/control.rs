//! The control API under `/_sim/`, guarded by a shared secret (`X-Sim-Secret`): statistics per
//! principal, throttling and behaviour at run time, and changes to drives between backups (add,
//! modify, rename, move, share, delete, force a resync).

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use rand::SeedableRng;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::tenant::{ChangeError, DriveState, Grant, LinkScope, Role};
use crate::throttle::{Principal, ThrottleConfig};
use crate::{Behaviour, SharedSim};

pub const SECRET_HEADER: &str = "x-sim-secret";

pub fn routes() -> Router<SharedSim> {
    Router::new()
        .route("/_sim/tenant", get(tenant_summary))
        .route("/_sim/stats", get(stats))
        .route("/_sim/stats/reset", post(reset_stats))
        .route("/_sim/throttling", get(get_throttling).put(put_throttling))
        .route("/_sim/behaviour", get(get_behaviour).put(put_behaviour))
        .route("/_sim/drives/{drive}/files", post(add_file))
        .route("/_sim/drives/{drive}/folders", post(add_folder))
        .route("/_sim/drives/{drive}/resync", post(force_resync))
        .route(
            "/_sim/drives/{drive}/items/{item}",
            put(modify_item).patch(move_item).delete(delete_item),
        )
        .route(
            "/_sim/drives/{drive}/items/{item}/permissions",
            put(share_item),
        )
}

/// Proof that the caller knows the control secret.
struct Controller;

impl FromRequestParts<SharedSim> for Controller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        sim: &SharedSim,
    ) -> Result<Self, Self::Rejection> {
        let given = parts
            .headers
            .get(SECRET_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        let expected = sim.config.control_secret.as_bytes();
        let same = given.len() == expected.len()
            && given
                .iter()
                .zip(expected)
                .fold(0u8, |a, (x, y)| a | (x ^ y))
                == 0;
        if same {
            Ok(Controller)
        } else {
            Err((
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "missing or wrong X-Sim-Secret"})),
            )
                .into_response())
        }
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    Refusal(status, message.to_owned()).into_response()
}

/// A control request refused: its status and why.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

/// What a client needs to connect: tenant, app registration, backup accounts and their passwords.
async fn tenant_summary(_: Controller, State(sim): State<SharedSim>) -> Json<Value> {
    let t = &sim.tenant;
    let backup: Vec<Value> = t
        .backup_accounts_group()
        .map(|g| g.members.iter().map(|&i| json!({"userPrincipalName": t.users[i].user_principal_name, "password": t.users[i].password})).collect())
        .unwrap_or_default();
    Json(json!({
        "tenantId": t.id,
        "domain": t.domain,
        "displayName": t.display_name,
        "authorityUrl": sim.base_url,
        "graphUrl": format!("{}/v1.0", sim.base_url),
        "app": {"clientId": t.app.client_id, "clientSecret": t.app.client_secret},
        "backupAccountsGroup": t.backup_accounts_group().map(|g| g.id),
        "backupAccounts": backup,
        "licenses": t.licenses,
        "users": t.users.len(),
        "groups": t.groups.len(),
        "sites": t.sites.len(),
        "drives": t.drives.len(),
    }))
}

fn principal_name(sim: &SharedSim, p: &Principal) -> String {
    match p {
        Principal::User(id) => sim
            .tenant
            .user(&id.to_string())
            .map(|(_, u)| u.user_principal_name.clone())
            .unwrap_or_else(|| id.to_string()),
        Principal::App(id) => format!("app:{id}"),
        Principal::Tenant => "tenant".into(),
    }
}

async fn stats(_: Controller, State(sim): State<SharedSim>) -> Json<Value> {
    let mut rows: Vec<Value> = sim
        .throttler
        .stats()
        .into_iter()
        .map(|(p, s)| {
            let mut v = serde_json::to_value(&s).unwrap_or_default();
            v["principal"] = json!(principal_name(&sim, &p));
            v["kind"] = json!(match p {
                Principal::App(_) => "app",
                Principal::User(_) => "user",
                Principal::Tenant => "tenant",
            });
            v
        })
        .collect();
    rows.sort_by(|a, b| a["principal"].as_str().cmp(&b["principal"].as_str()));
    Json(json!({ "principals": rows }))
}

async fn reset_stats(_: Controller, State(sim): State<SharedSim>) -> StatusCode {
    sim.throttler.reset();
    StatusCode::NO_CONTENT
}

async fn get_throttling(_: Controller, State(sim): State<SharedSim>) -> Json<ThrottleConfig> {
    Json(sim.throttler.config())
}

/// `current` with the fields of `patch` replaced: the others keep their values.
fn patched<T: serde::Serialize + DeserializeOwned>(
    current: &T,
    patch: &Value,
) -> Result<T, Refusal> {
    let mut merged = serde_json::to_value(current).unwrap_or_default();
    let Some(fields) = patch.as_object() else {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            "expected a JSON object of parameters".into(),
        ));
    };
    for (k, v) in fields {
        merged[k] = v.clone();
    }
    serde_json::from_value(merged).map_err(|e| Refusal(StatusCode::BAD_REQUEST, e.to_string()))
}

/// Changes the given parameters; the others keep their values.
async fn put_throttling(
    _: Controller,
    State(sim): State<SharedSim>,
    Json(patch): Json<Value>,
) -> Response {
    match patched(&sim.throttler.config(), &patch) {
        Ok(cfg) => {
            sim.throttler.set_config(cfg);
            Json(sim.throttler.config()).into_response()
        }
        Err(r) => r.into_response(),
    }
}

async fn get_behaviour(_: Controller, State(sim): State<SharedSim>) -> Json<Behaviour> {
    Json(sim.behaviour())
}

async fn put_behaviour(
    _: Controller,
    State(sim): State<SharedSim>,
    Json(patch): Json<Value>,
) -> Response {
    match patched(&sim.behaviour(), &patch) {
        Ok(b) => {
            *sim.behaviour.write().unwrap_or_else(|p| p.into_inner()) = b;
            Json(sim.behaviour()).into_response()
        }
        Err(r) => r.into_response(),
    }
}

fn change_error(e: ChangeError) -> Response {
    let (status, message) = match e {
        ChangeError::NotFound => (StatusCode::NOT_FOUND, "no such live item"),
        ChangeError::InvalidParent => (
            StatusCode::BAD_REQUEST,
            "parentId is not a live folder of the drive (or is inside the item)",
        ),
        ChangeError::NameTaken => (
            StatusCode::CONFLICT,
            "a live item of that name is already there",
        ),
        ChangeError::InvalidName => (StatusCode::BAD_REQUEST, "not a valid SharePoint name"),
        ChangeError::Root => (
            StatusCode::BAD_REQUEST,
            "the root folder cannot be changed so",
        ),
    };
    error(status, message)
}

/// Runs `change` on the drive's state; 404 when there is no such drive.
fn with_drive(
    sim: &SharedSim,
    drive: &str,
    change: impl FnOnce(&mut DriveState) -> Response,
) -> Response {
    match sim.tenant.drive(drive) {
        Some(d) => change(&mut d.state.write().unwrap_or_else(|p| p.into_inner())),
        None => error(StatusCode::NOT_FOUND, "no such drive"),
    }
}

/// A user by principal name, for who made a change; 400 when unknown.
fn who(sim: &SharedSim, upn: Option<&str>) -> Result<Option<usize>, Refusal> {
    upn.map(|u| {
        sim.tenant
            .user(u)
            .map(|(i, _)| i)
            .ok_or_else(|| Refusal(StatusCode::BAD_REQUEST, "no such user".into()))
    })
    .transpose()
}

fn created(result: Result<String, ChangeError>) -> Response {
    match result {
        Ok(id) => (StatusCode::CREATED, Json(json!({ "id": id }))).into_response(),
        Err(e) => change_error(e),
    }
}

fn done(result: Result<(), ChangeError>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => change_error(e),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewItem {
    /// Folder to create the item in; the drive's root when absent.
    parent_id: Option<String>,
    name: String,
    /// Bytes of a new file (folders have none).
    #[serde(default)]
    size: u64,
    /// Principal name of the user who makes the change.
    by: Option<String>,
}

async fn add_file(
    _: Controller,
    State(sim): State<SharedSim>,
    Path(drive): Path<String>,
    Json(f): Json<NewItem>,
) -> Response {
    add_item(&sim, &drive, f, true)
}

async fn add_folder(
    _: Controller,
    State(sim): State<SharedSim>,
    Path(drive): Path<String>,
    Json(f): Json<NewItem>,
) -> Response {
    add_item(&sim, &drive, f, false)
}

/// Adds a file (or a folder) under its parent, the drive's root by default.
fn add_item(sim: &SharedSim, drive: &str, f: NewItem, file: bool) -> Response {
    let by = match who(sim, f.by.as_deref()) {
        Ok(by) => by,
        Err(r) => return r.into_response(),
    };
    with_drive(sim, drive, |state| {
        let parent = f.parent_id.unwrap_or_else(|| state.root_id().to_owned());
        let mut rng = rand_chacha::ChaCha8Rng::from_entropy();
        let now = chrono::Utc::now();
        created(if file {
            state.add_file(&mut rng, &parent, &f.name, f.size, now, by)
        } else {
            state.add_folder(&mut rng, &parent, &f.name, now, by)
        })
    })
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
    Path((drive, item)): Path<(String, String)>,
    Json(c): Json<NewContent>,
) -> Response {
    let by = match who(&sim, c.by.as_deref()) {
        Ok(by) => by,
        Err(r) => return r.into_response(),
    };
    with_drive(&sim, &drive, |state| {
        done(state.modify_file(&item, c.size, chrono::Utc::now(), by))
    })
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
    Path((drive, item)): Path<(String, String)>,
    Json(m): Json<Move>,
) -> Response {
    with_drive(&sim, &drive, |state| {
        done(state.rename_or_move(
            &item,
            m.name.as_deref(),
            m.parent_id.as_deref(),
            chrono::Utc::now(),
        ))
    })
}

/// Deletes an item; a folder with everything in it.
async fn delete_item(
    _: Controller,
    State(sim): State<SharedSim>,
    Path((drive, item)): Path<(String, String)>,
) -> Response {
    with_drive(&sim, &drive, |state| {
        done(state.delete_item(&item, chrono::Utc::now()))
    })
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
    Path((drive, item)): Path<(String, String)>,
    Json(specs): Json<Vec<ShareSpec>>,
) -> Response {
    let mut grants = Vec::new();
    for s in specs {
        grants.push(match (s.user, s.link) {
            (Some(upn), None) => match sim.tenant.user(&upn) {
                Some((user, _)) => Grant::User { user, role: s.role },
                None => return error(StatusCode::BAD_REQUEST, "no such user"),
            },
            (None, Some(scope)) => Grant::Link {
                scope,
                role: s.role,
            },
            _ => return error(StatusCode::BAD_REQUEST, "give either user or link"),
        });
    }
    with_drive(&sim, &drive, |state| done(state.set_grants(&item, grants)))
}

/// Every delta token of the drive issued so far answers `410 Gone` from now on.
async fn force_resync(
    _: Controller,
    State(sim): State<SharedSim>,
    Path(drive): Path<String>,
) -> Response {
    with_drive(&sim, &drive, |state| {
        state.epoch += 1;
        StatusCode::NO_CONTENT.into_response()
    })
}
