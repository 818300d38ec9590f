//! What the backups hold, as clients read it before a restore or to count protected users:
//! a repository's `OrganizationData`, `SiteData` and `UserData`, and the licensing resources
//! (`…/LicensingInformation`, `/v5/LicensedUsers`). Answered from the catalog.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use m365backup_core::directory::composite_id;
use m365backup_core::ids::OrganizationId;
use m365backup_core::licensing::NEW_USER_DAYS;
use m365backup_repo::registry::ProtectedSummary;
use m365backup_repo::ObjectKind;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::client::BaseUrl;
use crate::dates::iso8601;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::links::{Href, Links};
use crate::org_id::OrgId;
use crate::paging::{page_of, wildcard_match, Page, PageRequest, QueryParams};
use crate::state::AppState;

fn repository_id(raw: &str) -> ApiResult<Uuid> {
    raw.parse()
        .map_err(|_| ApiError::NotFound(format!("Backup repository '{raw}' was not found.")))
}

async fn objects_of_repository(
    state: &AppState,
    raw: &str,
) -> ApiResult<(Uuid, Vec<ProtectedSummary>)> {
    let id = repository_id(raw)?;
    state.repositories.get(id).await?;
    Ok((
        id,
        state.repositories.protected_objects(Some(id), None).await?,
    ))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationDataView {
    organization_id: String,
    display_name: String,
    #[serde(rename = "_links")]
    links: Links,
}

/// The organizations with restore points in a repository (paged).
#[utoipa::path(
    get,
    path = "/v5/BackupRepositories/{repositoryId}/OrganizationData",
    tag = "Backup repositories",
    security(("bearer" = [])),
    params(("repositoryId" = String, Path), ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query)),
    responses(
        (status = 200, description = "A page of organizations", body = inline(Object)),
        (status = 400, description = "Bad paging parameters", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such repository", body = ErrorBody),
    )
)]
pub async fn organization_data(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(repository): Path<String>,
    Query(raw): Query<HashMap<String, String>>,
) -> ApiResult<Json<Page<OrganizationDataView>>> {
    let req = PageRequest::parse(&QueryParams::new(raw))?;
    let (id, objects) = objects_of_repository(&state, &repository).await?;
    let names: HashMap<String, String> = state
        .organizations
        .list()
        .await?
        .into_iter()
        .map(|o| (o.id.to_string(), o.name))
        .collect();
    let mut orgs: Vec<String> = objects
        .iter()
        .map(|o| o.object.organization_id.clone())
        .collect();
    orgs.sort();
    orgs.dedup();
    let views = orgs
        .into_iter()
        .map(|org| OrganizationDataView {
            display_name: names.get(&org).cloned().unwrap_or_default(),
            links: Links::from([
                ("organization", Href::organization(&base, &org).link()),
                (
                    "backupRepository",
                    Href::backup_repository(&base, id).link(),
                ),
            ]),
            organization_id: org,
        })
        .collect();
    let url = Href::backup_repository(&base, id).at("organizationdata");
    Ok(Json(page_of(views, &req, &url)))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteDataView {
    /// The site collection GUID followed by the web GUID.
    id: String,
    title: String,
    url: String,
    backed_up_time: String,
    organization_id: String,
    #[serde(rename = "_links")]
    links: Links,
}

fn attribute(o: &ProtectedSummary, name: &str) -> Option<String> {
    o.object
        .attributes
        .as_ref()?
        .get(name)?
        .as_str()
        .map(str::to_owned)
}

/// The SharePoint sites with restore points in a repository (paged).
#[utoipa::path(
    get,
    path = "/v5/BackupRepositories/{repositoryId}/SiteData",
    tag = "Backup repositories",
    security(("bearer" = [])),
    params(("repositoryId" = String, Path), ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query)),
    responses(
        (status = 200, description = "A page of sites", body = inline(Object)),
        (status = 400, description = "Bad paging parameters", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such repository", body = ErrorBody),
    )
)]
pub async fn site_data(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(repository): Path<String>,
    Query(raw): Query<HashMap<String, String>>,
) -> ApiResult<Json<Page<SiteDataView>>> {
    let req = PageRequest::parse(&QueryParams::new(raw))?;
    let (id, objects) = objects_of_repository(&state, &repository).await?;
    // A site's libraries are its objects: one row per site, at its latest backup.
    let mut sites: BTreeMap<(String, String), (String, String, DateTime<Utc>)> = BTreeMap::new();
    for o in objects
        .iter()
        .filter(|o| o.object.kind == ObjectKind::SiteLibrary)
    {
        let site = attribute(o, "siteId")
            .or(o.object.owner_id.clone())
            .unwrap_or_default();
        let entry = sites
            .entry((o.object.organization_id.clone(), site))
            .or_insert_with(|| {
                (
                    attribute(o, "siteTitle").unwrap_or_default(),
                    attribute(o, "siteUrl").unwrap_or_default(),
                    o.last_backup,
                )
            });
        entry.2 = entry.2.max(o.last_backup);
    }
    let views = sites
        .into_iter()
        .map(|((org, site), (title, url, at))| SiteDataView {
            links: Links::from([("organization", Href::organization(&base, &org).link())]),
            id: site,
            title,
            url,
            backed_up_time: iso8601(at),
            organization_id: org,
        })
        .collect();
    let url = Href::backup_repository(&base, id).at("sitedata");
    Ok(Json(page_of(views, &req, &url)))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserDataView {
    account_id: String,
    email: String,
    display_name: String,
    is_one_drive_backed_up: bool,
    is_personal_site_backed_up: bool,
    backed_up_time: String,
    organization_id: String,
    #[serde(rename = "_links")]
    links: Links,
}

/// The users whose OneDrive has restore points in a repository (paged).
#[utoipa::path(
    get,
    path = "/v5/BackupRepositories/{repositoryId}/UserData",
    tag = "Backup repositories",
    security(("bearer" = [])),
    params(("repositoryId" = String, Path), ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query)),
    responses(
        (status = 200, description = "A page of users", body = inline(Object)),
        (status = 400, description = "Bad paging parameters", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such repository", body = ErrorBody),
    )
)]
pub async fn user_data(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(repository): Path<String>,
    Query(raw): Query<HashMap<String, String>>,
) -> ApiResult<Json<Page<UserDataView>>> {
    let req = PageRequest::parse(&QueryParams::new(raw))?;
    let (id, objects) = objects_of_repository(&state, &repository).await?;
    let views = protected_users(&objects)
        .into_iter()
        .map(|u| UserDataView {
            links: Links::from([(
                "organization",
                Href::organization(&base, &u.organization_id).link(),
            )]),
            account_id: u.user_id.to_string(),
            email: u.login,
            display_name: u.display_name,
            is_one_drive_backed_up: true,
            is_personal_site_backed_up: u.personal_site,
            backed_up_time: iso8601(u.last_backup),
            organization_id: u.organization_id,
        })
        .collect();
    let url = Href::backup_repository(&base, id).at("userdata");
    Ok(Json(page_of(views, &req, &url)))
}

/// A user whose OneDrive is in a backup.
struct ProtectedUser {
    organization_id: String,
    user_id: Uuid,
    login: String,
    display_name: String,
    personal_site: bool,
    first_backup: DateTime<Utc>,
    last_backup: DateTime<Utc>,
}

/// The users of `objects`' OneDrives (one per organization and user, across repositories).
fn protected_users(objects: &[ProtectedSummary]) -> Vec<ProtectedUser> {
    let mut users: BTreeMap<(String, Uuid), ProtectedUser> = BTreeMap::new();
    for o in objects
        .iter()
        .filter(|o| o.object.kind == ObjectKind::OneDrive)
    {
        let Some(user_id) = o.object.owner_id.as_deref().and_then(|u| u.parse().ok()) else {
            continue;
        };
        let entry = users
            .entry((o.object.organization_id.clone(), user_id))
            .or_insert_with(|| ProtectedUser {
                organization_id: o.object.organization_id.clone(),
                user_id,
                login: o.object.owner_name.clone().unwrap_or_default(),
                display_name: o.object.name.clone(),
                personal_site: false,
                first_backup: o.first_backup,
                last_backup: o.last_backup,
            });
        entry.first_backup = entry.first_backup.min(o.first_backup);
        entry.last_backup = entry.last_backup.max(o.last_backup);
    }
    users.into_values().collect()
}

/// Protected users that count: those not removed from the count since their last backup.
async fn counted_users(
    state: &AppState,
    organization: Option<OrganizationId>,
) -> ApiResult<Vec<ProtectedUser>> {
    let org = organization.map(|o| o.to_string());
    let objects = state
        .repositories
        .protected_objects(None, org.as_deref())
        .await?;
    let revoked: HashMap<(String, Uuid), DateTime<Utc>> = state
        .licensing
        .revocations()
        .await?
        .into_iter()
        .map(|r| ((r.organization_id.to_string(), r.user_id), r.revoked_at))
        .collect();
    Ok(protected_users(&objects)
        .into_iter()
        .filter(|u| {
            revoked
                .get(&(u.organization_id.clone(), u.user_id))
                .is_none_or(|at| u.last_backup > *at)
        })
        .collect())
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LicensingInformationView {
    /// Users whose OneDrive is in a backup.
    licensed_users: u64,
    /// Of those, first backed up in the last 30 days.
    new_users: u64,
}

/// How many protected users an organization has.
#[utoipa::path(
    get,
    path = "/v5/Organizations/{organizationId}/LicensingInformation",
    tag = "Licensing",
    security(("bearer" = [])),
    params(("organizationId" = String, Path)),
    responses(
        (status = 200, description = "Counts", body = LicensingInformationView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
    )
)]
pub async fn licensing_information(
    State(state): State<AppState>,
    OrgId(org): OrgId,
) -> ApiResult<Json<LicensingInformationView>> {
    state.organizations.get(org).await?;
    let users = counted_users(&state, Some(org)).await?;
    let since = Utc::now() - chrono::Duration::days(NEW_USER_DAYS);
    Ok(Json(LicensingInformationView {
        licensed_users: users.len() as u64,
        new_users: users.iter().filter(|u| u.first_backup >= since).count() as u64,
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LicensedUserView {
    /// The user's composite id.
    id: String,
    /// Principal name.
    name: String,
    is_backed_up: bool,
    last_backup_date: String,
    /// Always `Licensed`.
    license_state: &'static str,
    organization_id: String,
    organization_name: String,
    #[serde(rename = "_links")]
    links: Links,
}

/// The protected users (paged); `organizationId` and `name` (wildcards) filter.
#[utoipa::path(
    get,
    path = "/v5/LicensedUsers",
    tag = "Licensing",
    security(("bearer" = [])),
    params(
        ("organizationId" = Option<String>, Query), ("name" = Option<String>, Query, description = "Wildcards * and ?"),
        ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query),
    ),
    responses(
        (status = 200, description = "A page of protected users", body = inline(Object)),
        (status = 400, description = "Bad paging parameters or organization id", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn licensed_users(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Query(raw): Query<HashMap<String, String>>,
) -> ApiResult<Json<Page<LicensedUserView>>> {
    let q = QueryParams::new(raw);
    let req = PageRequest::parse(&q)?;
    let org = match q.get("organizationId") {
        None => None,
        Some(raw) => Some(raw.parse::<OrganizationId>().map_err(|_| {
            ApiError::BadRequest(format!("organizationId must be a GUID, not '{raw}'"))
        })?),
    };
    let names: HashMap<String, String> = state
        .organizations
        .list()
        .await?
        .into_iter()
        .map(|o| (o.id.to_string(), o.name))
        .collect();
    let name = q.get("name");
    let views = counted_users(&state, org)
        .await?
        .into_iter()
        .filter(|u| name.is_none_or(|p| wildcard_match(p, &u.login)))
        .map(|u| {
            let id = composite_id(u.user_id, None);
            LicensedUserView {
                links: Links::from([
                    ("self", Href::licensed_user(&base, &id).link()),
                    (
                        "organization",
                        Href::organization(&base, &u.organization_id).link(),
                    ),
                ]),
                id,
                name: u.login,
                is_backed_up: true,
                last_backup_date: iso8601(u.last_backup),
                license_state: "Licensed",
                organization_name: names.get(&u.organization_id).cloned().unwrap_or_default(),
                organization_id: u.organization_id,
            }
        })
        .collect();
    Ok(Json(page_of(
        views,
        &req,
        Href::collection(&base, "licensedusers").as_str(),
    )))
}

/// Removes a user from the protected users' count (its backups stay): 204.
#[utoipa::path(
    delete,
    path = "/v5/LicensedUsers/{userId}",
    tag = "Licensing",
    security(("bearer" = [])),
    params(("userId" = String, Path, description = "Composite or bare user id")),
    responses(
        (status = 204, description = "Removed from the count"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such protected user", body = ErrorBody),
    )
)]
pub async fn remove_licensed_user(
    State(state): State<AppState>,
    Path(user): Path<String>,
) -> ApiResult<StatusCode> {
    let not_found = || ApiError::NotFound(format!("Licensed user '{user}' was not found."));
    let id = m365backup_core::directory::parse_composite_id(&user).ok_or_else(not_found)?;
    let counted = counted_users(&state, None).await?;
    let found = counted
        .iter()
        .find(|u| u.user_id == id)
        .ok_or_else(not_found)?;
    let org: OrganizationId = found.organization_id.parse().map_err(|_| {
        ApiError::internal("a restore point names an organization that is not a GUID")
    })?;
    state.licensing.revoke(org, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
