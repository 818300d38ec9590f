//! The control API under `/_sim/`, guarded by a shared secret (`X-Sim-Secret`): statistics per
//! principal, throttling and behaviour at run time (here); changes to drives between backups,
//! injected faults and the drives' truth (`drives.rs`); users, access and upload sessions
//! (`directory.rs`). Both are thin layers over [`crate::handle`].

mod directory;
mod drives;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::handle::SimError;
use crate::tenant::ChangeError;
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
        .merge(drives::routes())
        .merge(directory::routes())
}

/// Proof that the caller knows the control secret.
pub(super) struct Controller;

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

/// A control request refused: its status and why.
pub(super) struct Refusal(StatusCode, String);

impl Refusal {
    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, message.into())
    }
}

impl From<SimError> for Refusal {
    fn from(e: SimError) -> Self {
        let status = match &e {
            SimError::NoSuchDrive(_)
            | SimError::NoSuchSite(_)
            | SimError::NoSuchItem(_)
            | SimError::NoSuchVersion(..)
            | SimError::Change(ChangeError::NotFound | ChangeError::NoSuchVersion) => {
                StatusCode::NOT_FOUND
            }
            SimError::Change(ChangeError::NameTaken) => StatusCode::CONFLICT,
            SimError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        Refusal(status, e.to_string())
    }
}

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
            .user_any(&id.to_string())
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
