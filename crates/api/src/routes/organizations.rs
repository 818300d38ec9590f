//! `/v5/Organizations`: Microsoft 365 organizations registered with this server.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use m365backup_core::organization_service::{
    ConnectionInput, ConnectionSecrets, OrganizationInput,
};
use m365backup_core::organizations::{ConnectionSettings, Organization, OrganizationType, Region};
use m365backup_core::Secret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::AuditNote;
use crate::body::JsonBody;
use crate::client::BaseUrl;
use crate::error::{ApiResult, ErrorBody};
use crate::links::{Href, Link, Links};
use crate::org_id::OrgId;
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
        let own = Href::organization(base, org.id);
        let href = |suffix: &str| Link::new(format!("{own}{suffix}"));
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
    let orgs = state.organizations.list().await?;
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
    OrgId(id): OrgId,
) -> ApiResult<Json<OrganizationView>> {
    let org = state.organizations.get(id).await?;
    Ok(Json(OrganizationView::new(org, &base)))
}

/// Connection settings as a client sends them; the secrets are sealed, never returned.
#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSettingsBody {
    account: Option<String>,
    #[schema(value_type = Option<String>)]
    password: Option<Secret>,
    #[serde(default)]
    use_mfa: bool,
    #[serde(default)]
    grant_admin_access: bool,
    application_id: Option<String>,
    #[schema(value_type = Option<String>)]
    application_secret: Option<Secret>,
    /// Base64 PKCS#12 certificate (stored; certificate sign-in is not supported yet).
    #[schema(value_type = Option<String>)]
    application_certificate: Option<Secret>,
    #[schema(value_type = Option<String>)]
    application_certificate_password: Option<Secret>,
    #[serde(default)]
    use_application_only_auth: bool,
    office_organization_name: Option<String>,
    /// (ours) Sign-in endpoint; default: the public cloud of `region`.
    authority_url: Option<String>,
    /// (ours) Graph endpoint; default: the public cloud of `region`.
    graph_url: Option<String>,
}

impl From<ConnectionSettingsBody> for ConnectionInput {
    fn from(b: ConnectionSettingsBody) -> Self {
        ConnectionInput {
            settings: ConnectionSettings {
                account: b.account,
                use_mfa: b.use_mfa,
                grant_admin_access: b.grant_admin_access,
                application_id: b.application_id,
                use_application_only_auth: b.use_application_only_auth,
                office_organization_name: b.office_organization_name,
                authority_url: b.authority_url,
                graph_url: b.graph_url,
            },
            secrets: ConnectionSecrets {
                password: b.password,
                application_secret: b.application_secret,
                application_certificate: b.application_certificate,
                application_certificate_password: b.application_certificate_password,
            },
        }
    }
}

/// Body of `POST` and `PUT /v5/Organizations`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationBody {
    /// `Office365` (default); `OnPremises` and `Hybrid` are refused.
    #[serde(rename = "type")]
    #[schema(value_type = Option<String>)]
    kind: Option<OrganizationType>,
    /// `Worldwide` (default), `USgovCommunity`, `Germany`, `China`, `USgovDefence`.
    #[schema(value_type = Option<String>)]
    region: Option<Region>,
    is_exchange_online: Option<bool>,
    is_share_point_online: Option<bool>,
    is_teams_online: Option<bool>,
    exchange_online_settings: Option<ConnectionSettingsBody>,
    share_point_online_settings: Option<ConnectionSettingsBody>,
}

impl From<OrganizationBody> for OrganizationInput {
    fn from(b: OrganizationBody) -> Self {
        OrganizationInput {
            kind: b.kind.unwrap_or(OrganizationType::Office365),
            region: b.region.unwrap_or(Region::Worldwide),
            is_exchange_online: b
                .is_exchange_online
                .unwrap_or(b.exchange_online_settings.is_some()),
            is_share_point_online: b
                .is_share_point_online
                .unwrap_or(b.share_point_online_settings.is_some()),
            is_teams_online: b.is_teams_online.unwrap_or(false),
            exchange: b.exchange_online_settings.map(Into::into),
            share_point: b.share_point_online_settings.map(Into::into),
        }
    }
}

/// Adds an organization: signs in to the tenant with the given credentials first.
#[utoipa::path(
    post,
    path = "/v5/Organizations",
    tag = "Organizations",
    security(("bearer" = [])),
    request_body = OrganizationBody,
    responses(
        (status = 201, description = "Added", body = OrganizationView),
        (status = 400, description = "Invalid settings, or the tenant refused the sign-in (its reason quoted)", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 409, description = "The tenant is already added", body = ErrorBody),
        (status = 503, description = "Microsoft 365 could not check the sign-in (down, or throttling: then Retry-After says how long to wait)", body = ErrorBody),
    )
)]
pub async fn add_organization(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    JsonBody(body): JsonBody<OrganizationBody>,
) -> ApiResult<Response> {
    let org = state.organizations.add(body.into()).await?;
    let note = AuditNote::created(format!("/v5/Organizations/{}", org.id))
        .details(format!("organization {}", org.name));
    Ok(note.on((StatusCode::CREATED, Json(OrganizationView::new(org, &base)))))
}

/// Edits an organization; left-out secrets are kept, changed credentials are checked again.
#[utoipa::path(
    put,
    path = "/v5/Organizations/{organizationId}",
    tag = "Organizations",
    security(("bearer" = [])),
    params(("organizationId" = String, Path, description = "Organization GUID")),
    request_body = OrganizationBody,
    responses(
        (status = 204, description = "Edited"),
        (status = 400, description = "Invalid settings or refused sign-in", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
        (status = 503, description = "Microsoft 365 could not check the sign-in (down, or throttling: then Retry-After says how long to wait)", body = ErrorBody),
    )
)]
pub async fn edit_organization(
    State(state): State<AppState>,
    OrgId(id): OrgId,
    JsonBody(body): JsonBody<OrganizationBody>,
) -> ApiResult<StatusCode> {
    state.organizations.edit(id, body.into()).await?;
    state.directory.forget(id);
    Ok(StatusCode::NO_CONTENT)
}

/// Removes an organization and its backup accounts.
#[utoipa::path(
    delete,
    path = "/v5/Organizations/{organizationId}",
    tag = "Organizations",
    security(("bearer" = [])),
    params(("organizationId" = String, Path, description = "Organization GUID")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
    )
)]
pub async fn remove_organization(
    State(state): State<AppState>,
    OrgId(id): OrgId,
) -> ApiResult<StatusCode> {
    state.organizations.remove(id).await?;
    state.directory.forget(id);
    Ok(StatusCode::NO_CONTENT)
}
