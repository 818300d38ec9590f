//! The control API under `/_sim/`, guarded by a shared secret (`X-Sim-Secret`): statistics per
//! principal, throttling parameters at run time, and content changes for incremental backups.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use rand::SeedableRng;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::throttle::{Principal, ThrottleConfig};
use crate::SharedSim;

pub const SECRET_HEADER: &str = "x-sim-secret";

pub fn routes() -> Router<SharedSim> {
    Router::new()
        .route("/_sim/tenant", get(tenant_summary))
        .route("/_sim/stats", get(stats))
        .route("/_sim/stats/reset", post(reset_stats))
        .route("/_sim/throttling", get(get_throttling).put(put_throttling))
        .route("/_sim/drives/{drive}/files", post(add_file))
        .route(
            "/_sim/drives/{drive}/items/{item}",
            put(modify_item).delete(delete_item),
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
    (status, Json(json!({ "error": message }))).into_response()
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
            v["kind"] = json!(if matches!(p, Principal::App(_)) {
                "app"
            } else {
                "user"
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

/// Changes the given parameters; the others keep their values.
async fn put_throttling(
    _: Controller,
    State(sim): State<SharedSim>,
    Json(patch): Json<Value>,
) -> Response {
    let mut current = serde_json::to_value(sim.throttler.config()).unwrap_or_default();
    let Some(fields) = patch.as_object() else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected a JSON object of throttling parameters",
        );
    };
    for (k, v) in fields {
        current[k] = v.clone();
    }
    match serde_json::from_value::<ThrottleConfig>(current) {
        Ok(cfg) => {
            sim.throttler.set_config(cfg.clone());
            Json(cfg).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewFile {
    /// Folder to create the file in; the drive's root when absent.
    parent_id: Option<String>,
    name: String,
    size: u64,
}

async fn add_file(
    _: Controller,
    State(sim): State<SharedSim>,
    Path(drive): Path<String>,
    Json(f): Json<NewFile>,
) -> Response {
    let Some(d) = sim.tenant.drive(&drive) else {
        return error(StatusCode::NOT_FOUND, "no such drive");
    };
    let mut state = d.state.write().unwrap_or_else(|p| p.into_inner());
    let parent = f.parent_id.unwrap_or_else(|| state.root_id().to_owned());
    let mut rng = rand_chacha::ChaCha8Rng::from_entropy();
    match state.add_file(&mut rng, &parent, &f.name, f.size, chrono::Utc::now()) {
        Some(id) => (StatusCode::CREATED, Json(json!({ "id": id }))).into_response(),
        None => error(
            StatusCode::BAD_REQUEST,
            "parentId is not a live folder of the drive",
        ),
    }
}

#[derive(Deserialize)]
struct NewContent {
    size: u64,
}

async fn modify_item(
    _: Controller,
    State(sim): State<SharedSim>,
    Path((drive, item)): Path<(String, String)>,
    Json(c): Json<NewContent>,
) -> Response {
    let Some(d) = sim.tenant.drive(&drive) else {
        return error(StatusCode::NOT_FOUND, "no such drive");
    };
    if d.state
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .modify_file(&item, c.size, chrono::Utc::now())
    {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, "no such live file")
    }
}

async fn delete_item(
    _: Controller,
    State(sim): State<SharedSim>,
    Path((drive, item)): Path<(String, String)>,
) -> Response {
    let Some(d) = sim.tenant.drive(&drive) else {
        return error(StatusCode::NOT_FOUND, "no such drive");
    };
    if d.state
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .delete_item(&item, chrono::Utc::now())
    {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, "no such live item")
    }
}
