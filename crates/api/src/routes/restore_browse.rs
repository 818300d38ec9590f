//! Browsing a restore session (`/v5/RestoreSessions/{id}/Organization/…`): OneDrives (`Veod`),
//! sites, sub-sites and libraries (`Vesp`), and their folders, documents and versions, at the
//! session's point in time. Every listing is paged; `parentId` absent or `null` is the top level.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use m365backup_core::restore::model::{RestoreKind, RestoreSession};
use m365backup_engine::restore::browse::{RestorePoint, SiteEntry};
use m365backup_repo::{Item, ItemKind};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::client::BaseUrl;
use crate::dates::iso8601;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::links::{Href, Link, Links};
use crate::paging::{filtered_page_of, page_of, Page, PageRequest, QueryParams};
use crate::routes::restore_sessions::parse_session_id;
use crate::state::AppState;

type Params = Query<HashMap<String, String>>;

/// The working session behind a route, of the kind the route serves.
pub async fn session_of(
    state: &AppState,
    raw: &str,
    kind: RestoreKind,
) -> ApiResult<RestoreSession> {
    let s = state.restore.working(parse_session_id(raw)?).await?;
    if s.kind != kind {
        return Err(ApiError::NotFound(format!(
            "Restore session '{}' is a {} session: this resource belongs to {} sessions.",
            s.id,
            s.kind.label(),
            kind.label()
        )));
    }
    Ok(s)
}

/// `parentId` (also `parentID`), with `null` meaning the top level.
fn parent_id(q: &QueryParams) -> Option<String> {
    q.get("parentId")
        .filter(|p| !p.eq_ignore_ascii_case("null"))
        .map(str::to_owned)
}

/// The parameters a listing's page links keep: its `parentId`.
fn parent_filter(parent: Option<&str>) -> Vec<(&'static str, String)> {
    parent
        .map(|p| vec![("parentId", p.to_owned())])
        .unwrap_or_default()
}

fn rs(base: &str, s: &RestoreSession) -> String {
    Href::restore_session(base, s.id).at("organization").into()
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OneDriveView {
    /// The OneDrive's Graph drive id.
    id: String,
    /// Its owner's display name.
    name: String,
    url: String,
    #[serde(rename = "_links")]
    links: Links,
}

fn onedrive_view(base: &str, s: &RestoreSession, p: &RestorePoint) -> OneDriveView {
    let own = format!("{}/onedrives/{}", rs(base, s), p.object().id);
    OneDriveView {
        id: p.object().id.clone(),
        name: p.object().name.clone(),
        url: p.object().url.clone().unwrap_or_default(),
        links: Links::from([
            ("self", Link::new(own.clone())),
            ("folders", Link::new(format!("{own}/folders"))),
            ("documents", Link::new(format!("{own}/documents"))),
        ]),
    }
}

/// A `createdBy`/`lastModifiedBy` identity set as a name.
fn who(identity: &Option<Value>) -> String {
    identity
        .as_ref()
        .and_then(|v| v.get("user").or_else(|| v.get("application")))
        .and_then(|u| u.get("displayName").or_else(|| u.get("email")))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ItemView {
    id: String,
    name: String,
    /// Documents only.
    #[serde(skip_serializing_if = "Option::is_none")]
    size_bytes: Option<u64>,
    /// Documents only: the version label.
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_id: Option<String>,
    /// `LibraryFolder` for SharePoint folders.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    created_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    creation_time: Option<String>,
    modified_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    modification_time: Option<String>,
    /// No permissions of its own were backed up.
    inherited_permissions: bool,
    #[serde(rename = "_links")]
    links: Links,
}

/// Where an item's links point: its container (`onedrives/{id}` or `sites/{id}`) and parent
/// (a folder; else a site's library, else the container).
struct Place<'a> {
    container_rel: &'static str,
    container: String,
    parent: Option<&'a str>,
    library: Option<&'a str>,
}

fn item_view(
    base: &str,
    s: &RestoreSession,
    place: &Place<'_>,
    item: &Item,
    version: Option<&m365backup_repo::ItemVersion>,
) -> ItemView {
    let container = format!("{}/{}", rs(base, s), place.container);
    let (collection, is_file) = match item.kind {
        ItemKind::File => ("documents", true),
        ItemKind::Folder => ("folders", false),
    };
    let own = format!("{container}/{collection}/{}", item.id);
    let mut links = Links::from([
        ("self", Link::new(own.clone())),
        (place.container_rel, Link::new(container.clone())),
    ]);
    links.insert(
        "parent",
        Link::new(match (place.parent, place.library) {
            (Some(p), _) => format!("{container}/folders/{p}"),
            (None, Some(l)) => format!("{container}/libraries/{l}"),
            (None, None) => container.clone(),
        }),
    );
    // The contract lists `…/Documents/{id}/Versions` for OneDrive only (a SharePoint session
    // shows versions as rows with `showAllVersions`).
    if is_file && s.kind == RestoreKind::Veod {
        links.insert("versions", Link::new(format!("{own}/versions")));
    }
    let (size, version_id, modified, modified_by) = match version {
        Some(v) => (
            v.size,
            Some(v.version_id.clone()),
            v.modified,
            &v.modified_by,
        ),
        None => (
            item.size,
            item.version_id.clone(),
            item.modified,
            &item.modified_by,
        ),
    };
    ItemView {
        id: item.id.clone(),
        name: item.name.clone(),
        size_bytes: is_file.then_some(size),
        version: if is_file {
            version_id.clone().or(Some("1.0".into()))
        } else {
            None
        },
        version_id: if is_file { version_id } else { None },
        kind: (!is_file && s.kind == RestoreKind::Vesp).then_some("LibraryFolder"),
        created_by: who(&item.created_by),
        creation_time: item.created.map(iso8601),
        modified_by: who(modified_by),
        modification_time: modified.map(iso8601),
        inherited_permissions: item.permissions.is_none(),
        links,
    }
}

/// The folders or documents under `parent` (rows for earlier versions too with
/// `showAllVersions`).
fn rows(
    base: &str,
    s: &RestoreSession,
    place: &Place<'_>,
    items: &[Item],
    kind: ItemKind,
) -> Vec<ItemView> {
    let mut out = Vec::new();
    for item in items.iter().filter(|i| i.kind == kind) {
        out.push(item_view(base, s, place, item, None));
        if s.show_all_versions && kind == ItemKind::File {
            out.extend(
                item.versions
                    .iter()
                    .rev()
                    .map(|v| item_view(base, s, place, item, Some(v))),
            );
        }
    }
    out
}

// ---- OneDrive ------------------------------------------------------------------------------

/// The OneDrives of a `Veod` session (paged).
#[utoipa::path(get, path = "/v5/RestoreSessions/{restoreSessionId}/Organization/OneDrives", tag = "Restore: OneDrive", security(("bearer" = [])),
    params(("restoreSessionId" = String, Path), ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, description = "A page of OneDrives", body = inline(Object)), (status = 400, description = "Bad paging", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody), (status = 404, description = "Unknown, stopped or SharePoint session", body = ErrorBody)))]
pub async fn list_onedrives(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    Query(raw): Params,
) -> ApiResult<Json<Page<OneDriveView>>> {
    let req = PageRequest::parse(&QueryParams::new(raw))?;
    let s = session_of(&state, &id, RestoreKind::Veod).await?;
    let points = state.browser.points(&s).await?;
    let views = points.iter().map(|p| onedrive_view(&base, &s, p)).collect();
    Ok(Json(page_of(
        views,
        &req,
        &format!("{}/onedrives", rs(&base, &s)),
    )))
}

/// One OneDrive.
#[utoipa::path(get, path = "/v5/RestoreSessions/{restoreSessionId}/Organization/OneDrives/{oneDriveId}", tag = "Restore: OneDrive", security(("bearer" = [])),
    params(("restoreSessionId" = String, Path), ("oneDriveId" = String, Path)),
    responses((status = 200, description = "The OneDrive", body = OneDriveView), (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown session or OneDrive", body = ErrorBody)))]
pub async fn get_onedrive(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path((id, drive)): Path<(String, String)>,
) -> ApiResult<Json<OneDriveView>> {
    let s = session_of(&state, &id, RestoreKind::Veod).await?;
    let p = state.browser.point(&s, &drive).await?;
    Ok(Json(onedrive_view(&base, &s, &p)))
}

async fn onedrive_rows(
    state: &AppState,
    base: &str,
    id: &str,
    drive: &str,
    raw: HashMap<String, String>,
    kind: ItemKind,
) -> ApiResult<Page<ItemView>> {
    let q = QueryParams::new(raw);
    let req = PageRequest::parse(&q)?;
    let s = session_of(state, id, RestoreKind::Veod).await?;
    let p = state.browser.point(&s, drive).await?;
    let parent = parent_id(&q);
    if let Some(f) = &parent {
        p.item(f)
            .await?
            .filter(|i| i.kind == ItemKind::Folder)
            .ok_or_else(|| {
                ApiError::NotFound(format!(
                    "Folder '{f}' is not in this OneDrive's restore point."
                ))
            })?;
    }
    let items = p.children(parent.as_deref()).await?;
    let place = Place {
        container_rel: "oneDrive",
        container: format!("onedrives/{drive}"),
        parent: parent.as_deref(),
        library: None,
    };
    let views = rows(base, &s, &place, &items, kind);
    let collection = if kind == ItemKind::File {
        "documents"
    } else {
        "folders"
    };
    Ok(filtered_page_of(
        views,
        &req,
        &format!("{}/onedrives/{drive}/{collection}", rs(base, &s)),
        &parent_filter(parent.as_deref()),
    ))
}

/// A OneDrive's folders under `parentId` (paged).
#[utoipa::path(get, path = "/v5/RestoreSessions/{restoreSessionId}/Organization/OneDrives/{oneDriveId}/Folders", tag = "Restore: OneDrive", security(("bearer" = [])),
    params(("restoreSessionId" = String, Path), ("oneDriveId" = String, Path), ("parentId" = Option<String>, Query, description = "A folder id; absent or null: the top level"), ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, description = "A page of folders", body = inline(Object)), (status = 400, description = "Bad paging", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody), (status = 404, description = "Unknown session, OneDrive or folder", body = ErrorBody)))]
pub async fn onedrive_folders(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path((id, drive)): Path<(String, String)>,
    Query(raw): Params,
) -> ApiResult<Json<Page<ItemView>>> {
    Ok(Json(
        onedrive_rows(&state, &base, &id, &drive, raw, ItemKind::Folder).await?,
    ))
}

/// A OneDrive's documents under `parentId` (paged).
#[utoipa::path(get, path = "/v5/RestoreSessions/{restoreSessionId}/Organization/OneDrives/{oneDriveId}/Documents", tag = "Restore: OneDrive", security(("bearer" = [])),
    params(("restoreSessionId" = String, Path), ("oneDriveId" = String, Path), ("parentId" = Option<String>, Query, description = "A folder id; absent or null: the top level"), ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, description = "A page of documents", body = inline(Object)), (status = 400, description = "Bad paging", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody), (status = 404, description = "Unknown session, OneDrive or folder", body = ErrorBody)))]
pub async fn onedrive_documents(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path((id, drive)): Path<(String, String)>,
    Query(raw): Params,
) -> ApiResult<Json<Page<ItemView>>> {
    Ok(Json(
        onedrive_rows(&state, &base, &id, &drive, raw, ItemKind::File).await?,
    ))
}

async fn onedrive_item(
    state: &AppState,
    base: &str,
    id: &str,
    drive: &str,
    item: &str,
    kind: ItemKind,
) -> ApiResult<ItemView> {
    let s = session_of(state, id, RestoreKind::Veod).await?;
    let p = state.browser.point(&s, drive).await?;
    let found = p
        .item(item)
        .await?
        .filter(|i| i.kind == kind)
        .ok_or_else(|| {
            ApiError::NotFound(format!("'{item}' is not in this OneDrive's restore point."))
        })?;
    let place = Place {
        container_rel: "oneDrive",
        container: format!("onedrives/{drive}"),
        parent: found.parent_id.as_deref(),
        library: None,
    };
    Ok(item_view(base, &s, &place, &found, None))
}

/// One folder of a OneDrive.
#[utoipa::path(get, path = "/v5/RestoreSessions/{restoreSessionId}/Organization/OneDrives/{oneDriveId}/Folders/{folderId}", tag = "Restore: OneDrive", security(("bearer" = [])),
    params(("restoreSessionId" = String, Path), ("oneDriveId" = String, Path), ("folderId" = String, Path)),
    responses((status = 200, description = "The folder", body = ItemView), (status = 401, description = "Not signed in", body = ErrorBody), (status = 404, description = "Unknown", body = ErrorBody)))]
pub async fn onedrive_folder(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path((id, drive, item)): Path<(String, String, String)>,
) -> ApiResult<Json<ItemView>> {
    Ok(Json(
        onedrive_item(&state, &base, &id, &drive, &item, ItemKind::Folder).await?,
    ))
}

/// One document of a OneDrive.
#[utoipa::path(get, path = "/v5/RestoreSessions/{restoreSessionId}/Organization/OneDrives/{oneDriveId}/Documents/{documentId}", tag = "Restore: OneDrive", security(("bearer" = [])),
    params(("restoreSessionId" = String, Path), ("oneDriveId" = String, Path), ("documentId" = String, Path)),
    responses((status = 200, description = "The document", body = ItemView), (status = 401, description = "Not signed in", body = ErrorBody), (status = 404, description = "Unknown", body = ErrorBody)))]
pub async fn onedrive_document(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path((id, drive, item)): Path<(String, String, String)>,
) -> ApiResult<Json<ItemView>> {
    Ok(Json(
        onedrive_item(&state, &base, &id, &drive, &item, ItemKind::File).await?,
    ))
}

/// Every backed-up version of a document, newest first (paged).
#[utoipa::path(get, path = "/v5/RestoreSessions/{restoreSessionId}/Organization/OneDrives/{oneDriveId}/Documents/{documentId}/Versions", tag = "Restore: OneDrive", security(("bearer" = [])),
    params(("restoreSessionId" = String, Path), ("oneDriveId" = String, Path), ("documentId" = String, Path), ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, description = "A page of versions", body = inline(Object)), (status = 400, description = "Bad paging", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 404, description = "Unknown", body = ErrorBody)))]
pub async fn onedrive_document_versions(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path((id, drive, item)): Path<(String, String, String)>,
    Query(raw): Params,
) -> ApiResult<Json<Page<ItemView>>> {
    let req = PageRequest::parse(&QueryParams::new(raw))?;
    let s = session_of(&state, &id, RestoreKind::Veod).await?;
    let p = state.browser.point(&s, &drive).await?;
    let found = p
        .item(&item)
        .await?
        .filter(|i| i.kind == ItemKind::File)
        .ok_or_else(|| {
            ApiError::NotFound(format!("'{item}' is not in this OneDrive's restore point."))
        })?;
    let place = Place {
        container_rel: "oneDrive",
        container: format!("onedrives/{drive}"),
        parent: found.parent_id.as_deref(),
        library: None,
    };
    let mut views = vec![item_view(&base, &s, &place, &found, None)];
    views.extend(
        found
            .versions
            .iter()
            .rev()
            .map(|v| item_view(&base, &s, &place, &found, Some(v))),
    );
    Ok(Json(page_of(
        views,
        &req,
        &format!(
            "{}/onedrives/{drive}/documents/{item}/versions",
            rs(&base, &s)
        ),
    )))
}

// ---- SharePoint ----------------------------------------------------------------------------

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteView {
    id: String,
    name: String,
    url: String,
    #[serde(rename = "_links")]
    links: Links,
}

fn site_view(base: &str, s: &RestoreSession, site: &SiteEntry) -> SiteView {
    let own = format!("{}/sites/{}", rs(base, s), site.id);
    SiteView {
        id: site.id.clone(),
        name: site.title.clone(),
        url: site.url.clone(),
        links: Links::from([
            ("self", Link::new(own.clone())),
            (
                "sites",
                Link::new(format!("{}/sites?parentId={}", rs(base, s), site.id)),
            ),
            ("libraries", Link::new(format!("{own}/libraries"))),
        ]),
    }
}

/// Sites of a `Vesp` session: top level without `parentId`, sub-sites with it (paged).
#[utoipa::path(get, path = "/v5/RestoreSessions/{restoreSessionId}/Organization/Sites", tag = "Restore: SharePoint", security(("bearer" = [])),
    params(("restoreSessionId" = String, Path), ("parentId" = Option<String>, Query), ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, description = "A page of sites", body = inline(Object)), (status = 400, description = "Bad paging", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 404, description = "Unknown, stopped or OneDrive session", body = ErrorBody)))]
pub async fn list_sites(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    Query(raw): Params,
) -> ApiResult<Json<Page<SiteView>>> {
    let q = QueryParams::new(raw);
    let req = PageRequest::parse(&q)?;
    let s = session_of(&state, &id, RestoreKind::Vesp).await?;
    let parent = parent_id(&q);
    let sites = state.browser.sites(&s).await?;
    // A sub-site whose parent has no restore point of its own is shown at the top.
    let known: Vec<String> = sites.iter().map(|x| x.id.to_lowercase()).collect();
    let views = sites
        .iter()
        .filter(|site| {
            let shown_parent = site
                .parent_id
                .as_ref()
                .filter(|p| known.contains(&p.to_lowercase()));
            match (&parent, shown_parent) {
                (None, None) => true,
                (Some(p), Some(sp)) => p.eq_ignore_ascii_case(sp),
                _ => false,
            }
        })
        .map(|site| site_view(&base, &s, site))
        .collect();
    Ok(Json(filtered_page_of(
        views,
        &req,
        &format!("{}/sites", rs(&base, &s)),
        &parent_filter(parent.as_deref()),
    )))
}

/// One site.
#[utoipa::path(get, path = "/v5/RestoreSessions/{restoreSessionId}/Organization/Sites/{siteId}", tag = "Restore: SharePoint", security(("bearer" = [])),
    params(("restoreSessionId" = String, Path), ("siteId" = String, Path)),
    responses((status = 200, description = "The site", body = SiteView), (status = 401, description = "Not signed in", body = ErrorBody), (status = 404, description = "Unknown", body = ErrorBody)))]
pub async fn get_site(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path((id, site)): Path<(String, String)>,
) -> ApiResult<Json<SiteView>> {
    let s = session_of(&state, &id, RestoreKind::Vesp).await?;
    let site = state.browser.site(&s, &site).await?;
    Ok(Json(site_view(&base, &s, &site)))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LibraryView {
    /// The library's Graph drive id.
    id: String,
    name: String,
    url: String,
    description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    creation_time: Option<String>,
    #[serde(rename = "_links")]
    links: Links,
}

fn library_view(base: &str, s: &RestoreSession, site: &str, p: &RestorePoint) -> LibraryView {
    let site_url = format!("{}/sites/{site}", rs(base, s));
    LibraryView {
        id: p.object().id.clone(),
        name: p.object().name.clone(),
        url: p.object().url.clone().unwrap_or_default(),
        description: p.attribute("description").unwrap_or_default(),
        creation_time: p
            .attribute("created")
            .and_then(|c| c.parse::<chrono::DateTime<chrono::Utc>>().ok())
            .map(iso8601),
        links: Links::from([
            (
                "self",
                Link::new(format!("{site_url}/libraries/{}", p.object().id)),
            ),
            ("site", Link::new(site_url.clone())),
            (
                "folders",
                Link::new(format!("{site_url}/folders?parentId={}", p.object().id)),
            ),
        ]),
    }
}

/// A site's document libraries (paged).
#[utoipa::path(get, path = "/v5/RestoreSessions/{restoreSessionId}/Organization/Sites/{siteId}/Libraries", tag = "Restore: SharePoint", security(("bearer" = [])),
    params(("restoreSessionId" = String, Path), ("siteId" = String, Path), ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, description = "A page of libraries", body = inline(Object)), (status = 400, description = "Bad paging", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 404, description = "Unknown", body = ErrorBody)))]
pub async fn list_libraries(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path((id, site)): Path<(String, String)>,
    Query(raw): Params,
) -> ApiResult<Json<Page<LibraryView>>> {
    let req = PageRequest::parse(&QueryParams::new(raw))?;
    let s = session_of(&state, &id, RestoreKind::Vesp).await?;
    state.browser.site(&s, &site).await?;
    let libraries = state.browser.libraries(&s, &site).await?;
    let views = libraries
        .iter()
        .map(|p| library_view(&base, &s, &site, p))
        .collect();
    Ok(Json(page_of(
        views,
        &req,
        &format!("{}/sites/{site}/libraries", rs(&base, &s)),
    )))
}

/// One library of a site.
#[utoipa::path(get, path = "/v5/RestoreSessions/{restoreSessionId}/Organization/Sites/{siteId}/Libraries/{libraryId}", tag = "Restore: SharePoint", security(("bearer" = [])),
    params(("restoreSessionId" = String, Path), ("siteId" = String, Path), ("libraryId" = String, Path)),
    responses((status = 200, description = "The library", body = LibraryView), (status = 401, description = "Not signed in", body = ErrorBody), (status = 404, description = "Unknown", body = ErrorBody)))]
pub async fn get_library(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path((id, site, library)): Path<(String, String, String)>,
) -> ApiResult<Json<LibraryView>> {
    let s = session_of(&state, &id, RestoreKind::Vesp).await?;
    let (p, item) = state.browser.library_of(&s, &site, &library).await?;
    if item.is_some() {
        return Err(ApiError::NotFound(format!(
            "'{library}' is not a library of this site."
        )));
    }
    Ok(Json(library_view(&base, &s, &site, &p)))
}

/// A site's lists: none are backed up yet (always empty, paged).
#[utoipa::path(get, path = "/v5/RestoreSessions/{restoreSessionId}/Organization/Sites/{siteId}/Lists", tag = "Restore: SharePoint", security(("bearer" = [])),
    params(("restoreSessionId" = String, Path), ("siteId" = String, Path), ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, description = "An empty page", body = inline(Object)), (status = 400, description = "Bad paging", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 404, description = "Unknown", body = ErrorBody)))]
pub async fn list_lists(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path((id, site)): Path<(String, String)>,
    Query(raw): Params,
) -> ApiResult<Json<Page<Value>>> {
    let req = PageRequest::parse(&QueryParams::new(raw))?;
    let s = session_of(&state, &id, RestoreKind::Vesp).await?;
    state.browser.site(&s, &site).await?;
    Ok(Json(page_of(
        Vec::new(),
        &req,
        &format!("{}/sites/{site}/lists", rs(&base, &s)),
    )))
}

async fn site_rows(
    state: &AppState,
    base: &str,
    id: &str,
    site: &str,
    raw: HashMap<String, String>,
    kind: ItemKind,
) -> ApiResult<Page<ItemView>> {
    let q = QueryParams::new(raw);
    let req = PageRequest::parse(&q)?;
    let s = session_of(state, id, RestoreKind::Vesp).await?;
    let parent = parent_id(&q).ok_or_else(|| {
        ApiError::BadRequest("parentId must name a library or a folder of the site".into())
    })?;
    let (library, folder) = state.browser.library_of(&s, site, &parent).await?;
    if folder.as_ref().is_some_and(|f| f.kind != ItemKind::Folder) {
        return Err(ApiError::NotFound(format!("'{parent}' is not a folder.")));
    }
    let items = library
        .children(folder.as_ref().map(|f| f.id.as_str()))
        .await?;
    let place = Place {
        container_rel: "site",
        container: format!("sites/{site}"),
        parent: folder.as_ref().map(|f| f.id.as_str()),
        library: Some(&library.object().id),
    };
    let views = rows(base, &s, &place, &items, kind);
    let collection = if kind == ItemKind::File {
        "documents"
    } else {
        "folders"
    };
    Ok(filtered_page_of(
        views,
        &req,
        &format!("{}/sites/{site}/{collection}", rs(base, &s)),
        &parent_filter(Some(parent.as_str())),
    ))
}

/// Folders under a library or folder of a site (`parentId`, paged).
#[utoipa::path(get, path = "/v5/RestoreSessions/{restoreSessionId}/Organization/Sites/{siteId}/Folders", tag = "Restore: SharePoint", security(("bearer" = [])),
    params(("restoreSessionId" = String, Path), ("siteId" = String, Path), ("parentId" = String, Query, description = "A library or folder id"), ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, description = "A page of folders", body = inline(Object)), (status = 400, description = "No parentId, or bad paging", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 404, description = "Unknown", body = ErrorBody)))]
pub async fn site_folders(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path((id, site)): Path<(String, String)>,
    Query(raw): Params,
) -> ApiResult<Json<Page<ItemView>>> {
    Ok(Json(
        site_rows(&state, &base, &id, &site, raw, ItemKind::Folder).await?,
    ))
}

/// Documents under a library or folder of a site (`parentId`, paged).
#[utoipa::path(get, path = "/v5/RestoreSessions/{restoreSessionId}/Organization/Sites/{siteId}/Documents", tag = "Restore: SharePoint", security(("bearer" = [])),
    params(("restoreSessionId" = String, Path), ("siteId" = String, Path), ("parentId" = String, Query, description = "A library or folder id"), ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, description = "A page of documents", body = inline(Object)), (status = 400, description = "No parentId, or bad paging", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 404, description = "Unknown", body = ErrorBody)))]
pub async fn site_documents(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path((id, site)): Path<(String, String)>,
    Query(raw): Params,
) -> ApiResult<Json<Page<ItemView>>> {
    Ok(Json(
        site_rows(&state, &base, &id, &site, raw, ItemKind::File).await?,
    ))
}

async fn site_item(
    state: &AppState,
    base: &str,
    id: &str,
    site: &str,
    item: &str,
    kind: ItemKind,
) -> ApiResult<ItemView> {
    let s = session_of(state, id, RestoreKind::Vesp).await?;
    let (library, found) = state.browser.library_of(&s, site, item).await?;
    let found = found.filter(|i| i.kind == kind).ok_or_else(|| {
        ApiError::NotFound(format!(
            "'{item}' is not a {} of this site.",
            if kind == ItemKind::File {
                "document"
            } else {
                "folder"
            }
        ))
    })?;
    let place = Place {
        container_rel: "site",
        container: format!("sites/{site}"),
        parent: found.parent_id.as_deref(),
        library: Some(&library.object().id),
    };
    Ok(item_view(base, &s, &place, &found, None))
}

/// One folder of a site.
#[utoipa::path(get, path = "/v5/RestoreSessions/{restoreSessionId}/Organization/Sites/{siteId}/Folders/{folderId}", tag = "Restore: SharePoint", security(("bearer" = [])),
    params(("restoreSessionId" = String, Path), ("siteId" = String, Path), ("folderId" = String, Path)),
    responses((status = 200, description = "The folder", body = ItemView), (status = 401, description = "Not signed in", body = ErrorBody), (status = 404, description = "Unknown", body = ErrorBody)))]
pub async fn site_folder(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path((id, site, item)): Path<(String, String, String)>,
) -> ApiResult<Json<ItemView>> {
    Ok(Json(
        site_item(&state, &base, &id, &site, &item, ItemKind::Folder).await?,
    ))
}

/// One document of a site.
#[utoipa::path(get, path = "/v5/RestoreSessions/{restoreSessionId}/Organization/Sites/{siteId}/Documents/{documentId}", tag = "Restore: SharePoint", security(("bearer" = [])),
    params(("restoreSessionId" = String, Path), ("siteId" = String, Path), ("documentId" = String, Path)),
    responses((status = 200, description = "The document", body = ItemView), (status = 401, description = "Not signed in", body = ErrorBody), (status = 404, description = "Unknown", body = ErrorBody)))]
pub async fn site_document(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path((id, site, item)): Path<(String, String, String)>,
) -> ApiResult<Json<ItemView>> {
    Ok(Json(
        site_item(&state, &base, &id, &site, &item, ItemKind::File).await?,
    ))
}
