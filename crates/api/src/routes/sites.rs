//! `/v5/Organizations/{organizationId}/Sites`: the organization's SharePoint sites (site
//! collections with `parentId` absent, sub-sites by their parent, personal sites), as job items
//! name them.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use m365backup_core::directory::DirectorySite;
use serde::Serialize;
use utoipa::ToSchema;

use crate::client::BaseUrl;
use crate::error::{ApiResult, ErrorBody};
use crate::links::{Href, Link, Links};
use crate::org_id::OrgId;
use crate::paging::{page, Page, PageRequest, QueryParams};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteView {
    /// The site collection GUID followed by the web GUID.
    id: String,
    url: String,
    title: String,
    name: String,
    is_cloud: bool,
    is_personal: bool,
    is_available: bool,
    #[serde(rename = "_links")]
    links: Links,
}

fn site_view(base: &str, org: &str, s: &DirectorySite) -> SiteView {
    let sites = Href::organization(base, org).at("sites");
    let id = s.id();
    SiteView {
        links: Links::from([
            ("self", Link::new(format!("{sites}/{id}"))),
            ("children", Link::new(format!("{sites}?parentId={id}"))),
            ("organization", Href::organization(base, org).link()),
        ]),
        id,
        url: s.url.clone(),
        title: s.title.clone(),
        name: s.name.clone(),
        is_cloud: true,
        is_personal: s.is_personal,
        is_available: true,
    }
}

/// Sites of the organization, paged: top level without `parentId` (or `parentId=null`),
/// sub-sites of a site with it.
#[utoipa::path(
    get,
    path = "/v5/Organizations/{organizationId}/Sites",
    tag = "Sites",
    security(("bearer" = [])),
    params(
        ("organizationId" = String, Path),
        ("parentId" = Option<String>, Query, description = "A site's id: its sub-sites"),
        ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query, description = "1 to 10000, default 30"),
        ("setId" = Option<String>, Query, description = "Page through the same listing"),
    ),
    responses(
        (status = 200, description = "A page of sites", body = inline(Object)),
        (status = 400, description = "Bad paging parameters", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such organization, parent site or listing", body = ErrorBody),
        (status = 503, description = "The tenant could not be read", body = ErrorBody),
    )
)]
pub async fn list_sites(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    OrgId(org): OrgId,
    Query(raw): Query<HashMap<String, String>>,
) -> ApiResult<Json<Page<SiteView>>> {
    let q = QueryParams::new(raw);
    let req = PageRequest::parse(&q)?;
    let parent = q
        .get("parentId")
        .filter(|p| !p.eq_ignore_ascii_case("null"));
    let snapshot = state.directory.sites(org, req.set_id).await?;
    if let Some(p) = parent {
        state.directory.site(org, p).await?;
    }
    let selected: Vec<&DirectorySite> = snapshot
        .items
        .iter()
        .filter(|s| match parent {
            None => s.parent_id.is_none(),
            Some(p) => s
                .parent_id
                .as_deref()
                .is_some_and(|id| id.eq_ignore_ascii_case(p)),
        })
        .collect();
    let org_str = org.to_string();
    let url = Href::organization(&base, &org_str).at("sites");
    let filters: Vec<(&str, &str)> = parent.map(|p| ("parentId", p)).into_iter().collect();
    Ok(Json(page(
        &selected,
        &req,
        snapshot.set_id,
        &url,
        &filters,
        |s| site_view(&base, &org_str, s),
    )))
}

/// One site, by id.
#[utoipa::path(
    get,
    path = "/v5/Organizations/{organizationId}/Sites/{siteId}",
    tag = "Sites",
    security(("bearer" = [])),
    params(("organizationId" = String, Path), ("siteId" = String, Path)),
    responses(
        (status = 200, description = "The site", body = SiteView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such organization or site", body = ErrorBody),
        (status = 503, description = "The tenant could not be read", body = ErrorBody),
    )
)]
pub async fn get_site(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    OrgId(org): OrgId,
    Path((_organization_id, site_id)): Path<(String, String)>,
) -> ApiResult<Json<SiteView>> {
    let site = state.directory.site(org, &site_id).await?;
    Ok(Json(site_view(&base, &org.to_string(), &site)))
}
