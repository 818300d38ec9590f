//! The organization's directory: `Groups`, `Groups/{groupId}`, `Groups/{groupId}/Members`,
//! `Users`, `Users/{userId}`, read from the tenant through the Microsoft 365 client.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use m365backup_core::directory::{
    composite_id, parse_composite_id, DirectoryGroup, DirectoryUser, GroupMember, GroupType,
    LocationType, MemberType,
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::client::BaseUrl;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::links::{Href, Link, Links};
use crate::org_id::OrgId;
use crate::paging::{page, wildcard_match, Page, PageRequest, QueryParams};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupView {
    /// Composite id.
    id: String,
    display_name: String,
    /// Mail address or mail nickname.
    name: String,
    /// `Office365`, `Security`, `Distribution` or `DynamicDistribution`.
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    kind: GroupType,
    /// `Cloud`, `OnPremises` or `Hybrid`.
    #[schema(value_type = String)]
    location_type: LocationType,
    #[serde(rename = "_links")]
    links: Links,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupMemberView {
    /// Composite id of the group: what a backup account's `groupMember.groupId` holds.
    group_id: String,
    name: String,
    login: String,
    /// `Unknown`, `User` or `Group`.
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    kind: MemberType,
    is_cloud: bool,
    #[serde(rename = "_links")]
    links: Links,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    /// Composite id.
    id: String,
    display_name: String,
    /// User principal name.
    name: String,
    /// `User` (`Shared` and `Public` mailboxes are not told apart yet).
    #[serde(rename = "type")]
    kind: &'static str,
    #[schema(value_type = String)]
    location_type: LocationType,
    is_backed_up: bool,
    #[serde(rename = "_links")]
    links: Links,
}

fn org_url(base: &str, org: &str) -> String {
    Href::organization(base, org).into()
}

fn group_view(base: &str, org: &str, g: &DirectoryGroup) -> GroupView {
    let id = composite_id(g.id, g.on_premises_id);
    GroupView {
        links: Links::from([
            (
                "self",
                Link::new(format!("{}/groups/{id}", org_url(base, org))),
            ),
            ("organization", Link::new(org_url(base, org))),
            (
                "members",
                Link::new(format!("{}/groups/{id}/members", org_url(base, org))),
            ),
        ]),
        id,
        display_name: g.display_name.clone(),
        name: g.name.clone(),
        kind: g.kind,
        location_type: g.location,
    }
}

fn user_view(base: &str, org: &str, u: &DirectoryUser) -> UserView {
    let id = composite_id(u.id, u.on_premises_id);
    UserView {
        links: Links::from([
            (
                "self",
                Link::new(format!("{}/users/{id}", org_url(base, org))),
            ),
            ("organization", Link::new(org_url(base, org))),
        ]),
        id,
        display_name: u.display_name.clone(),
        name: u.principal_name.clone(),
        kind: "User",
        location_type: u.location,
        is_backed_up: false,
    }
}

fn location_matches(filter: Option<&str>, location: LocationType) -> ApiResult<bool> {
    let Some(f) = filter else { return Ok(true) };
    let wanted: &[LocationType] = match f.to_ascii_lowercase().as_str() {
        "any" => return Ok(true),
        "cloud" => &[LocationType::Cloud],
        "onpremises" => &[LocationType::OnPremises],
        "hybrid" => &[LocationType::Hybrid],
        "cloudandhybrid" => &[LocationType::Cloud, LocationType::Hybrid],
        "onpremisesandhybrid" => &[LocationType::OnPremises, LocationType::Hybrid],
        _ => {
            return Err(ApiError::BadRequest(format!(
                "locationFilter '{f}' is not one of Any, Cloud, OnPremises, Hybrid, CloudAndHybrid, OnPremisesAndHybrid"
            )))
        }
    };
    Ok(wanted.contains(&location))
}

fn not_found(kind: &str, raw: &str) -> ApiError {
    ApiError::NotFound(format!("{kind} '{raw}' was not found in the organization."))
}

/// Groups of the organization, paged; filters `displayName`, `groupName` (`*`, `?`), `locationFilter`.
#[utoipa::path(
    get,
    path = "/v5/Organizations/{organizationId}/Groups",
    tag = "Groups",
    security(("bearer" = [])),
    params(
        ("organizationId" = String, Path, description = "Organization GUID"),
        ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query, description = "1 to 10000, default 30"),
        ("setId" = Option<String>, Query, description = "Page through the same listing"),
        ("displayName" = Option<String>, Query, description = "Wildcards * and ?"),
        ("groupName" = Option<String>, Query, description = "Wildcards * and ?"),
        ("locationFilter" = Option<String>, Query, description = "Any, Cloud, OnPremises, Hybrid, CloudAndHybrid, OnPremisesAndHybrid"),
    ),
    responses(
        (status = 200, description = "A page of groups", body = inline(Object)),
        (status = 400, description = "Bad paging or filter", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
        (status = 503, description = "The tenant could not be read", body = ErrorBody),
    )
)]
pub async fn list_groups(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    OrgId(org): OrgId,
    Query(raw): Query<HashMap<String, String>>,
) -> ApiResult<Json<Page<GroupView>>> {
    let q = QueryParams::new(raw);
    let req = PageRequest::parse(&q)?;
    let (display, name, location) = (
        q.get("displayName"),
        q.get("groupName"),
        q.get("locationFilter"),
    );
    location_matches(location, LocationType::Cloud)?;
    let snapshot = state.directory.groups(org, req.set_id).await?;
    let selected: Vec<&DirectoryGroup> = snapshot
        .items
        .iter()
        .filter(|g| display.is_none_or(|p| wildcard_match(p, &g.display_name)))
        .filter(|g| name.is_none_or(|p| wildcard_match(p, &g.name)))
        .filter(|g| location_matches(location, g.location).unwrap_or(false))
        .collect();
    let filters: Vec<(&str, &str)> = [
        ("displayName", display),
        ("groupName", name),
        ("locationFilter", location),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k, v?)))
    .collect();
    let org_str = org.to_string();
    let url = format!("{}/groups", org_url(&base, &org_str));
    Ok(Json(page(
        &selected,
        &req,
        snapshot.set_id,
        &url,
        &filters,
        |g| group_view(&base, &org_str, g),
    )))
}

/// One group.
#[utoipa::path(
    get,
    path = "/v5/Organizations/{organizationId}/Groups/{groupId}",
    tag = "Groups",
    security(("bearer" = [])),
    params(("organizationId" = String, Path), ("groupId" = String, Path, description = "Composite group id")),
    responses(
        (status = 200, description = "The group", body = GroupView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such organization or group", body = ErrorBody),
    )
)]
pub async fn get_group(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    OrgId(org): OrgId,
    Path((_organization_id, group_id)): Path<(String, String)>,
) -> ApiResult<Json<GroupView>> {
    let gid = parse_composite_id(&group_id).ok_or_else(|| not_found("Group", &group_id))?;
    let group = state.directory.group(org, gid).await?;
    Ok(Json(group_view(&base, &org.to_string(), &group)))
}

/// Members of a group, paged: each is what a backup account's `groupMember` takes.
#[utoipa::path(
    get,
    path = "/v5/Organizations/{organizationId}/Groups/{groupId}/Members",
    tag = "Groups",
    security(("bearer" = [])),
    params(
        ("organizationId" = String, Path), ("groupId" = String, Path, description = "Composite group id"),
        ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query), ("setId" = Option<String>, Query),
    ),
    responses(
        (status = 200, description = "A page of members", body = inline(Object)),
        (status = 400, description = "Bad paging", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such organization or group", body = ErrorBody),
    )
)]
pub async fn list_members(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    OrgId(org): OrgId,
    Path((_organization_id, group_id)): Path<(String, String)>,
    Query(raw): Query<HashMap<String, String>>,
) -> ApiResult<Json<Page<GroupMemberView>>> {
    let gid = parse_composite_id(&group_id).ok_or_else(|| not_found("Group", &group_id))?;
    let req = PageRequest::parse(&QueryParams::new(raw))?;
    let snapshot = state.directory.members(org, gid, req.set_id).await?;
    let org_str = org.to_string();
    let group_composite = composite_id(gid, None);
    let group_url = format!("{}/groups/{group_composite}", org_url(&base, &org_str));
    let url = format!("{group_url}/members");
    Ok(Json(page(
        &snapshot.items,
        &req,
        snapshot.set_id,
        &url,
        &[],
        |m: &GroupMember| GroupMemberView {
            group_id: group_composite.clone(),
            name: m.name.clone(),
            login: m.login.clone(),
            kind: m.kind,
            is_cloud: m.is_cloud,
            links: Links::from([("group", Link::new(group_url.clone()))]),
        },
    )))
}

/// Users of the organization, paged; filter `name` (`*`, `?`) on the principal or display name.
#[utoipa::path(
    get,
    path = "/v5/Organizations/{organizationId}/Users",
    tag = "Users",
    security(("bearer" = [])),
    params(
        ("organizationId" = String, Path),
        ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query), ("setId" = Option<String>, Query),
        ("name" = Option<String>, Query, description = "Wildcards * and ?"),
    ),
    responses(
        (status = 200, description = "A page of users", body = inline(Object)),
        (status = 400, description = "Bad paging", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
    )
)]
pub async fn list_users(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    OrgId(org): OrgId,
    Query(raw): Query<HashMap<String, String>>,
) -> ApiResult<Json<Page<UserView>>> {
    let q = QueryParams::new(raw);
    let req = PageRequest::parse(&q)?;
    let name = q.get("name");
    let snapshot = state.directory.users(org, req.set_id).await?;
    let selected: Vec<&DirectoryUser> = snapshot
        .items
        .iter()
        .filter(|u| {
            name.is_none_or(|p| {
                wildcard_match(p, &u.principal_name) || wildcard_match(p, &u.display_name)
            })
        })
        .collect();
    let filters: Vec<(&str, &str)> = name.map(|n| ("name", n)).into_iter().collect();
    let org_str = org.to_string();
    let url = format!("{}/users", org_url(&base, &org_str));
    Ok(Json(page(
        &selected,
        &req,
        snapshot.set_id,
        &url,
        &filters,
        |u| user_view(&base, &org_str, u),
    )))
}

/// One user.
#[utoipa::path(
    get,
    path = "/v5/Organizations/{organizationId}/Users/{userId}",
    tag = "Users",
    security(("bearer" = [])),
    params(("organizationId" = String, Path), ("userId" = String, Path, description = "Composite user id")),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such organization or user", body = ErrorBody),
    )
)]
pub async fn get_user(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    OrgId(org): OrgId,
    Path((_organization_id, user_id)): Path<(String, String)>,
) -> ApiResult<Json<UserView>> {
    let uid = parse_composite_id(&user_id).ok_or_else(|| not_found("User", &user_id))?;
    let users = state.directory.users(org, None).await?;
    let user = users
        .items
        .iter()
        .find(|u| u.id == uid)
        .ok_or_else(|| not_found("User", &user_id))?;
    Ok(Json(user_view(&base, &org.to_string(), user)))
}
