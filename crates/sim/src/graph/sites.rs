//! Sites and how drives are found: `/sites?search=` (sub-sites included, as SharePoint search
//! finds them), `/sites/getAllSites` (app-only: site collections' root sites, personal sites
//! included, sub-sites not), `/sites/{id}`, `/sites/{id}/sites` (sub-sites), `/sites/{id}/drives`
//! and `/sites/{id}/drive`, `/groups/{id}/sites/root` and `/groups/{id}/drive` (a Microsoft 365
//! group's team site), `/users/{id}/drive`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::shapes::{drive_json, site_json};
use super::{charge, collection, json_response, page_window, Caller, Cost, GraphError};
use crate::tenant::SiteRef;
use crate::SharedSim;

pub fn routes() -> Router<SharedSim> {
    Router::new()
        .route("/v1.0/users/{id}/drive", get(user_drive))
        .route("/v1.0/sites", get(search_sites))
        .route("/v1.0/sites/getAllSites", get(all_sites))
        .route("/v1.0/sites/{id}", get(get_site))
        .route("/v1.0/sites/{id}/sites", get(subsites))
        .route("/v1.0/sites/{id}/drives", get(site_drives))
        .route("/v1.0/sites/{id}/drive", get(site_drive))
        .route("/v1.0/groups/{id}/sites/root", get(group_site))
        .route("/v1.0/groups/{id}/drive", get(group_drive))
}

type Q = Query<HashMap<String, String>>;

fn find_site(sim: &SharedSim, id: &str) -> Result<SiteRef, GraphError> {
    sim.tenant.site(id).ok_or_else(|| GraphError::not_found(id))
}

async fn user_drive(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    let rate = charge(&sim, &caller, Cost::Single).await?;
    let (_, u) = sim
        .tenant
        .user(&id)
        .ok_or_else(|| GraphError::not_found(&id))?;
    let drive = &sim.tenant.drives[u.drive];
    caller.may_read_drive(&sim, drive)?;
    Ok(json_response(rate, drive_json(&sim, drive)))
}

/// SharePoint sites whose name matches `search` (`*`: all), among those the caller may read;
/// personal sites are not searched.
async fn search_sites(
    State(sim): State<SharedSim>,
    caller: Caller,
    Query(q): Q,
) -> Result<Response, GraphError> {
    let (top, skip) = page_window(&q, 200, 999)?;
    let rate = charge(&sim, &caller, Cost::Multi).await?;
    let needle = q
        .get("search")
        .map(|s| s.trim().to_lowercase())
        .unwrap_or_default();
    let items = (0..sim.tenant.sites.len())
        .filter(|&s| {
            let site = &sim.tenant.sites[s];
            (needle.is_empty()
                || needle == "*"
                || site.name.to_lowercase().contains(&needle)
                || site.display_name.to_lowercase().contains(&needle))
                && caller.may_read_site(&sim, SiteRef::Team(s)).is_ok()
        })
        .map(|s| site_json(&sim.tenant, SiteRef::Team(s)))
        .collect();
    Ok(json_response(
        rate,
        collection(&sim, "/sites", "sites", &q, items, top, skip),
    ))
}

/// Every site of the tenant, personal sites included; application permissions only.
async fn all_sites(
    State(sim): State<SharedSim>,
    caller: Caller,
    Query(q): Q,
) -> Result<Response, GraphError> {
    let (top, skip) = page_window(&q, 200, 999)?;
    let rate = charge(&sim, &caller, Cost::Multi).await?;
    if caller.token.user.is_some() {
        return Err(GraphError::access_denied());
    }
    let t = &sim.tenant;
    let items = (0..t.sites.len())
        .filter(|&s| t.sites[s].parent.is_none())
        .map(SiteRef::Team)
        .chain(
            (0..t.users.len())
                .filter(|&u| !t.is_gone(u))
                .map(SiteRef::Personal),
        )
        .map(|s| site_json(t, s))
        .collect();
    Ok(json_response(
        rate,
        collection(&sim, "/sites/getAllSites", "sites", &q, items, top, skip),
    ))
}

async fn get_site(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    let rate = charge(&sim, &caller, Cost::Single).await?;
    let site = find_site(&sim, &id)?;
    caller.may_read_site(&sim, site)?;
    Ok(json_response(rate, site_json(&sim.tenant, site)))
}

async fn site_drives(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, GraphError> {
    let (top, skip) = page_window(&q, 200, 999)?;
    let rate = charge(&sim, &caller, Cost::Multi).await?;
    let site = find_site(&sim, &id)?;
    caller.may_read_site(&sim, site)?;
    let items = sim
        .tenant
        .site_drives(site)
        .into_iter()
        .map(|d| drive_json(&sim, &sim.tenant.drives[d]))
        .collect();
    Ok(json_response(
        rate,
        collection(
            &sim,
            &format!("/sites/{id}/drives"),
            "drives",
            &q,
            items,
            top,
            skip,
        ),
    ))
}

/// The direct sub-sites of a site the caller may read (a personal site has none).
async fn subsites(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, GraphError> {
    let (top, skip) = page_window(&q, 200, 999)?;
    let rate = charge(&sim, &caller, Cost::Multi).await?;
    let site = find_site(&sim, &id)?;
    caller.may_read_site(&sim, site)?;
    let children = match site {
        SiteRef::Team(s) => sim.tenant.sites[s].subsites.clone(),
        SiteRef::Personal(_) => Vec::new(),
    };
    let items = children
        .into_iter()
        .map(SiteRef::Team)
        .filter(|&s| caller.may_read_site(&sim, s).is_ok())
        .map(|s| site_json(&sim.tenant, s))
        .collect();
    Ok(json_response(
        rate,
        collection(
            &sim,
            &format!("/sites/{id}/sites"),
            "sites",
            &q,
            items,
            top,
            skip,
        ),
    ))
}

/// A site's default document library (its first).
fn default_library(sim: &SharedSim, site: SiteRef, id: &str) -> Result<usize, GraphError> {
    sim.tenant
        .site_drives(site)
        .first()
        .copied()
        .ok_or_else(|| GraphError::not_found(id))
}

async fn site_drive(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    let rate = charge(&sim, &caller, Cost::Single).await?;
    let site = find_site(&sim, &id)?;
    caller.may_read_site(&sim, site)?;
    let d = default_library(&sim, site, &id)?;
    Ok(json_response(rate, drive_json(&sim, &sim.tenant.drives[d])))
}

/// A Microsoft 365 group's team site; groups without one answer 404.
fn group_site_ref(sim: &SharedSim, caller: &Caller, id: &str) -> Result<SiteRef, GraphError> {
    let s = sim
        .tenant
        .group(id)
        .and_then(|g| g.site)
        .ok_or_else(|| GraphError::not_found(id))?;
    caller.may_read_site(sim, SiteRef::Team(s))?;
    Ok(SiteRef::Team(s))
}

async fn group_site(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    let rate = charge(&sim, &caller, Cost::Single).await?;
    let site = group_site_ref(&sim, &caller, &id)?;
    Ok(json_response(rate, site_json(&sim.tenant, site)))
}

async fn group_drive(
    State(sim): State<SharedSim>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    let rate = charge(&sim, &caller, Cost::Single).await?;
    let site = group_site_ref(&sim, &caller, &id)?;
    let d = default_library(&sim, site, &id)?;
    Ok(json_response(rate, drive_json(&sim, &sim.tenant.drives[d])))
}
