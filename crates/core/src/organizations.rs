//! Microsoft 365 organizations (tenants) registered with this server.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::OrganizationId;

/// The vendor's organization types; only `Office365` can be added here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrganizationType {
    Office365,
    OnPremises,
    Hybrid,
}

/// Microsoft cloud the tenant lives in; decides the default sign-in and Graph endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Region {
    Worldwide,
    USgovCommunity,
    Germany,
    China,
    USgovDefence,
}

/// How the server connects to one service (SharePoint Online or Exchange Online) of the tenant,
/// without any secret: secrets are kept encrypted, apart from this.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSettings {
    pub account: Option<String>,
    pub use_mfa: bool,
    pub grant_admin_access: bool,
    pub application_id: Option<String>,
    pub use_application_only_auth: bool,
    pub office_organization_name: Option<String>,
    /// Sign-in endpoint (default: the region's public cloud).
    pub authority_url: Option<String>,
    /// Graph endpoint (default: the region's public cloud).
    pub graph_url: Option<String>,
}

/// A registered organization as the server keeps it (secrets excluded).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: OrganizationId,
    /// Default domain, e.g. `contoso.onmicrosoft.com`.
    pub name: String,
    /// Display name of the tenant.
    pub office_name: String,
    #[serde(rename = "type")]
    pub kind: OrganizationType,
    pub region: Region,
    /// The Entra ID tenant id (GUID).
    pub tenant_id: String,
    pub is_exchange_online: bool,
    pub is_share_point_online: bool,
    pub is_teams_online: bool,
    pub exchange_online_settings: Option<ConnectionSettings>,
    pub share_point_online_settings: Option<ConnectionSettings>,
    pub first_backup_time: Option<DateTime<Utc>>,
    pub last_backup_time: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}
