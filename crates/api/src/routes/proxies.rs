//! `/v5/Proxies`: the backup workers. Each running server node is one, with a stable id.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use chrono::Utc;
use m365backup_core::error::CoreError;
use m365backup_core::proxies::Proxy;
use serde::Serialize;
use utoipa::ToSchema;

use crate::client::BaseUrl;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::links::{Href, Link, Links};
use crate::paging::QueryParams;
use crate::routes::repositories::{repository_view, BackupRepositoryView};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxyView {
    id: String,
    host_name: String,
    description: String,
    port: u16,
    threads_number: u32,
    /// `Online` while the node's heartbeat is fresh, else `Offline`.
    status: &'static str,
    /// Always `Local`.
    #[serde(rename = "type")]
    kind: &'static str,
    is_default: bool,
    enable_network_throttling: bool,
    #[serde(rename = "_links")]
    links: Links,
}

impl ProxyView {
    fn new(p: Proxy, is_default: bool, base: &str) -> Self {
        let own = Href::proxy(base, p.id);
        let href = |suffix: &str| Link::new(format!("{own}{suffix}"));
        Self {
            id: p.id.to_string(),
            status: if p.is_online(Utc::now()) {
                "Online"
            } else {
                "Offline"
            },
            host_name: p.host_name,
            description: p.description,
            port: p.port,
            threads_number: p.threads,
            kind: "Local",
            is_default,
            enable_network_throttling: false,
            links: Links::from([("self", href("")), ("repositories", href("/repositories"))]),
        }
    }
}

/// All proxies, the first registered being the default.
async fn proxies(state: &AppState) -> ApiResult<Vec<(Proxy, bool)>> {
    let list = state
        .proxies
        .list_proxies()
        .await
        .map_err(CoreError::from)?;
    Ok(list
        .into_iter()
        .enumerate()
        .map(|(i, p)| (p, i == 0))
        .collect())
}

async fn find(state: &AppState, raw: &str) -> ApiResult<(Proxy, bool)> {
    proxies(state)
        .await?
        .into_iter()
        .find(|(p, _)| p.id.to_string().eq_ignore_ascii_case(raw))
        .ok_or_else(|| ApiError::NotFound(format!("Proxy '{raw}' was not found.")))
}

/// Lists the proxies (`extendedView` is accepted; the answer is the same).
#[utoipa::path(
    get,
    path = "/v5/Proxies",
    tag = "Proxies",
    security(("bearer" = [])),
    params(("extendedView" = Option<bool>, Query, description = "Accepted for compatibility")),
    responses(
        (status = 200, description = "The proxies", body = Vec<ProxyView>),
        (status = 400, description = "extendedView is not true or false", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn list_proxies(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Query(raw): Query<HashMap<String, String>>,
) -> ApiResult<Json<Vec<ProxyView>>> {
    if let Some(v) = QueryParams::new(raw).get("extendedView") {
        if !(v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false")) {
            return Err(ApiError::BadRequest(format!(
                "extendedView must be true or false, not '{v}'"
            )));
        }
    }
    Ok(Json(
        proxies(&state)
            .await?
            .into_iter()
            .map(|(p, d)| ProxyView::new(p, d, &base))
            .collect(),
    ))
}

/// One proxy.
#[utoipa::path(
    get,
    path = "/v5/Proxies/{proxyId}",
    tag = "Proxies",
    security(("bearer" = [])),
    params(("proxyId" = String, Path, description = "Proxy GUID")),
    responses(
        (status = 200, description = "The proxy", body = ProxyView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such proxy", body = ErrorBody),
    )
)]
pub async fn get_proxy(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(proxy_id): Path<String>,
) -> ApiResult<Json<ProxyView>> {
    let (p, d) = find(&state, &proxy_id).await?;
    Ok(Json(ProxyView::new(p, d, &base)))
}

/// The repositories a proxy writes to.
#[utoipa::path(
    get,
    path = "/v5/Proxies/{proxyId}/Repositories",
    tag = "Proxies",
    security(("bearer" = [])),
    params(("proxyId" = String, Path, description = "Proxy GUID")),
    responses(
        (status = 200, description = "Its repositories", body = Vec<BackupRepositoryView>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such proxy", body = ErrorBody),
    )
)]
pub async fn proxy_repositories(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(proxy_id): Path<String>,
) -> ApiResult<Json<Vec<BackupRepositoryView>>> {
    let (p, _) = find(&state, &proxy_id).await?;
    let mut out = Vec::new();
    for r in state.repositories.list().await? {
        if r.proxy_id == p.id {
            out.push(repository_view(&state, r, &base).await);
        }
    }
    Ok(Json(out))
}
