//! `/v5/Organizations/{organizationId}/BackupAccounts`: the founding resource. GET lists the
//! organization's backup accounts (never a password); PUT sets the whole list.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use m365backup_core::backup_accounts::{BackupAccountInput, StoredBackupAccount};
use m365backup_core::Secret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::body::JsonBody;
use crate::client::BaseUrl;
use crate::error::{ApiResult, ErrorBody};
use crate::links::{Href, Link, Links};
use crate::org_id::OrgId;
use crate::state::AppState;

/// `groupMember` as clients send it: what `.../Groups/{groupId}/Members` returned.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupMemberBody {
    /// Composite id of a security group of the organization.
    group_id: String,
    /// The account's user principal name.
    login: String,
    name: Option<String>,
    /// Must be `User`.
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupAccountBody {
    group_member: GroupMemberBody,
    /// Required for a new account; left out, the stored one is kept.
    #[schema(value_type = Option<String>)]
    password: Option<Secret>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupMemberView {
    group_id: String,
    name: String,
    login: String,
    #[serde(rename = "type")]
    kind: &'static str,
    is_cloud: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupAccountView {
    group_member: GroupMemberView,
    #[serde(rename = "_links")]
    links: Links,
}

#[derive(Serialize, ToSchema)]
pub struct LinksOnly {
    #[serde(rename = "_links")]
    links: Links,
}

fn collection_url(base: &str, org: &str) -> String {
    Href::organization(base, org).at("backupaccounts").into()
}

/// The organization's backup accounts.
#[utoipa::path(
    get,
    path = "/v5/Organizations/{organizationId}/BackupAccounts",
    tag = "BackupAccounts",
    security(("bearer" = [])),
    params(("organizationId" = String, Path, description = "Organization GUID")),
    responses(
        (status = 200, description = "The backup accounts (passwords are never returned)", body = Vec<BackupAccountView>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
    )
)]
pub async fn list_backup_accounts(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    OrgId(org): OrgId,
) -> ApiResult<Json<Vec<BackupAccountView>>> {
    let accounts = state.backup_accounts.list(org).await?;
    let org_url = Href::organization(&base, org);
    Ok(Json(
        accounts
            .into_iter()
            .map(|a: StoredBackupAccount| BackupAccountView {
                links: Links::from([
                    ("organization", Link::new(org_url.clone())),
                    (
                        "group",
                        Link::new(format!("{org_url}/groups/{}", a.group_id)),
                    ),
                ]),
                group_member: GroupMemberView {
                    group_id: a.group_id,
                    name: a.name,
                    login: a.login,
                    kind: "User",
                    is_cloud: a.is_cloud,
                },
            })
            .collect(),
    ))
}

/// Sets the organization's backup accounts: listed accounts are added or updated, unlisted ones
/// removed (`[]` removes all). Every entry is checked first (security group of the organization,
/// membership, type `User`, unique login, password signs in to the tenant); nothing is written
/// unless all pass.
#[utoipa::path(
    put,
    path = "/v5/Organizations/{organizationId}/BackupAccounts",
    tag = "BackupAccounts",
    security(("bearer" = [])),
    params(("organizationId" = String, Path, description = "Organization GUID")),
    request_body = Vec<BackupAccountBody>,
    responses(
        (status = 201, description = "Set", body = LinksOnly),
        (status = 400, description = "An entry failed a check; the message names it (index and login)", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
        (status = 503, description = "The tenant could not be reached to check the accounts", body = ErrorBody),
    )
)]
pub async fn set_backup_accounts(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    OrgId(org): OrgId,
    JsonBody(body): JsonBody<Vec<BackupAccountBody>>,
) -> ApiResult<(StatusCode, Json<LinksOnly>)> {
    let entries = body
        .into_iter()
        .map(|b| BackupAccountInput {
            group_id: b.group_member.group_id,
            login: b.group_member.login,
            name: b.group_member.name,
            member_type: b.group_member.kind,
            password: b.password,
        })
        .collect();
    state.backup_accounts.set(org, entries).await?;
    let links = Links::from([("self", Link::new(collection_url(&base, &org.to_string())))]);
    Ok((StatusCode::CREATED, Json(LinksOnly { links })))
}
