//! `/v5/Organizations`: Microsoft 365 organizations registered with this server.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use m365backup_core::ids::OrganizationId;
use m365backup_core::organizations::{ConnectionSettings, Organization};
use serde::Serialize;
use utoipa::ToSchema;

use crate::client::BaseUrl;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::links::{Link, Links};
use crate::state::AppState;

/// Connection settings as returned: never a password, secret or certificate.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSettingsView {
    account: Option<String>,
    use_mfa: bool,
    grant_admin_access: bool,
    application_id: Option<String>,
    use_application_only_auth: bool,
    office_organization_name: Option<String>,
    authority_url: Option<String>,
    graph_url: Option<String>,
}

impl From<ConnectionSettings> for ConnectionSettingsView {
    fn from(c: ConnectionSettings) -> Self {
        Self {
            account: c.account,
            use_mfa: c.use_mfa,
            grant_admin_access: c.grant_admin_access,
            application_id: c.application_id,
            use_application_only_auth: c.use_application_only_auth,
            office_organization_name: c.office_organization_name,
            authority_url: c.authority_url,
            graph_url: c.graph_url,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationView {
    id: String,
    name: String,
    office_name: String,
    /// `Office365`.
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    kind: m365backup_core::organizations::OrganizationType,
    #[schema(value_type = String)]
    region: m365backup_core::organizations::Region,
    is_exchange_online: bool,
    is_share_point_online: bool,
    is_teams_online: bool,
    is_backedup: bool,
    /// ISO 8601 UTC, or null before the first backup.
    first_backuptime: Option<String>,
    last_backuptime: Option<String>,
    exchange_online_settings: Option<ConnectionSettingsView>,
    share_point_online_settings: Option<ConnectionSettingsView>,
    #[serde(rename = "_links")]
    links: Links,
    /// Always `{}` (the vendor's shape).
    #[serde(rename = "_actions")]
    actions: BTreeMap<String, serde_json::Value>,
}

impl OrganizationView {
    pub fn new(org: Organization, base: &str) -> Self {
        let href = |suffix: &str| Link::new(format!("{base}/v5/organizations/{}{suffix}", org.id));
        let links = Links::from([
            ("self", href("")),
            ("jobs", href("/jobs")),
            ("groups", href("/groups")),
            ("users", href("/users")),
            ("sites", href("/sites")),
            ("usedRepositories", href("/usedrepositories")),
            ("backupAccounts", href("/backupaccounts")),
        ]);
        Self {
            id: org.id.to_string(),
            name: org.name,
            office_name: org.office_name,
            kind: org.kind,
            region: org.region,
            is_exchange_online: org.is_exchange_online,
            is_share_point_online: org.is_share_point_online,
            is_teams_online: org.is_teams_online,
            is_backedup: org.last_backup_time.is_some(),
            first_backuptime: org.first_backup_time.map(crate::dates::iso8601),
            last_backuptime: org.last_backup_time.map(crate::dates::iso8601),
            exchange_online_settings: org.exchange_online_settings.map(Into::into),
            share_point_online_settings: org.share_point_online_settings.map(Into::into),
            links,
            actions: BTreeMap::new(),
        }
    }
}

/// Lists the organizations registered with this server.
#[utoipa::path(
    get,
    path = "/v5/Organizations",
    tag = "Organizations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "All organizations", body = Vec<OrganizationView>),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn list_organizations(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
) -> ApiResult<Json<Vec<OrganizationView>>> {
    let orgs = state
        .store
        .list_organizations()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(
        orgs.into_iter()
            .map(|o| OrganizationView::new(o, &base))
            .collect(),
    ))
}

/// One organization.
#[utoipa::path(
    get,
    path = "/v5/Organizations/{organizationId}",
    tag = "Organizations",
    security(("bearer" = [])),
    params(("organizationId" = String, Path, description = "Organization GUID")),
    responses(
        (status = 200, description = "The organization", body = OrganizationView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
    )
)]
pub async fn get_organization(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(organization_id): Path<String>,
) -> ApiResult<Json<OrganizationView>> {
    let id = parse_organization_id(&organization_id)?;
    let org = state
        .store
        .get_organization(id)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .ok_or_else(|| not_found(&organization_id))?;
    Ok(Json(OrganizationView::new(org, &base)))
}

fn not_found(raw: &str) -> ApiError {
    ApiError::NotFound(format!("Organization '{raw}' was not found."))
}

/// A malformed id names no organization: 404, as for an unknown one.
pub fn parse_organization_id(raw: &str) -> ApiResult<OrganizationId> {
    raw.parse().map_err(|_| not_found(raw))
}
