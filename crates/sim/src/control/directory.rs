//! `/_sim/users/…`, `/_sim/sites/…/access`, `/_sim/uploads/…`: users removed from the directory
//! (a restore's "target user gone"), access changed on a site (a restore's "no write
//! permission"), upload sessions expired at once.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{Controller, Refusal};
use crate::handle::TenantHandle;
use crate::tenant::Access;
use crate::SharedSim;

pub fn routes() -> Router<SharedSim> {
    Router::new()
        .route("/_sim/users/{user}", delete(remove_user))
        .route("/_sim/users/{user}/restore", post(restore_user))
        .route("/_sim/sites/{site}/access", put(set_access))
        .route("/_sim/uploads/expire", post(expire_uploads))
}

type Answer = Result<Response, Refusal>;

/// Removes a user (by principal name or id) from the directory; their OneDrive goes with them.
async fn remove_user(
    _: Controller,
    State(sim): State<SharedSim>,
    Path(user): Path<String>,
) -> Answer {
    TenantHandle::new(&sim).remove_user(&user)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn restore_user(
    _: Controller,
    State(sim): State<SharedSim>,
    Path(user): Path<String>,
) -> Answer {
    TenantHandle::new(&sim).restore_user(&user)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessChange {
    /// Principal name or id.
    user: String,
    /// `none`, `read` or `write`; absent or null: back to the site's membership.
    #[serde(default)]
    access: Option<Access>,
}

/// What a user may do on a site (by composite id; a personal site's id for a OneDrive).
async fn set_access(
    _: Controller,
    State(sim): State<SharedSim>,
    Path(site): Path<String>,
    Json(change): Json<AccessChange>,
) -> Answer {
    TenantHandle::new(&sim).set_site_access(&site, &change.user, change.access)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Every open upload session expires now.
async fn expire_uploads(_: Controller, State(sim): State<SharedSim>) -> Answer {
    let expired = TenantHandle::new(&sim).expire_upload_sessions();
    Ok(Json(json!({ "expired": expired })).into_response())
}
