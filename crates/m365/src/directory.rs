//! Typed directory calls: the organization, users, groups and group members.

use serde::Deserialize;

use crate::error::M365Error;
use crate::graph::GraphClient;

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantInfo {
    pub id: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub verified_domains: Vec<VerifiedDomain>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedDomain {
    pub name: String,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub is_initial: bool,
}

impl TenantInfo {
    /// The default domain (e.g. `contoso.onmicrosoft.com`), else the initial one.
    pub fn default_domain(&self) -> Option<&str> {
        self.verified_domains
            .iter()
            .find(|d| d.is_default)
            .or_else(|| self.verified_domains.iter().find(|d| d.is_initial))
            .map(|d| d.name.as_str())
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryUser {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub on_premises_immutable_id: Option<String>,
    #[serde(default)]
    pub on_premises_sync_enabled: Option<bool>,
    /// `#microsoft.graph.user`, `#microsoft.graph.group`, ... (in member listings).
    #[serde(rename = "@odata.type", default)]
    pub odata_type: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryGroup {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub mail_nickname: Option<String>,
    #[serde(default)]
    pub mail_enabled: bool,
    #[serde(default)]
    pub security_enabled: bool,
    #[serde(default)]
    pub group_types: Vec<String>,
    #[serde(default)]
    pub on_premises_sync_enabled: Option<bool>,
}

/// A SharePoint site as Graph lists it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphSite {
    /// `hostname,siteCollectionGuid,webGuid`.
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub web_url: Option<String>,
}

impl GraphSite {
    /// A user's personal site (the site behind a OneDrive): its url has a `/personal/` path.
    pub fn is_personal(&self) -> bool {
        self.web_url
            .as_deref()
            .is_some_and(|u| u.contains("/personal/"))
    }
}

/// Page size asked of Graph for directory listings (its maximum is 999).
const DIRECTORY_PAGE: u32 = 999;

impl GraphClient {
    pub async fn tenant_info(&self) -> Result<TenantInfo, M365Error> {
        let mut orgs: Vec<TenantInfo> = self.get_all("/organization").await?;
        orgs.pop().ok_or_else(|| M365Error::Graph {
            status: 404,
            code: "Request_ResourceNotFound".into(),
            message: "no organization".into(),
        })
    }

    pub async fn users(&self) -> Result<Vec<DirectoryUser>, M365Error> {
        self.get_all(&format!("/users?$top={DIRECTORY_PAGE}")).await
    }

    pub async fn groups(&self) -> Result<Vec<DirectoryGroup>, M365Error> {
        self.get_all(&format!("/groups?$top={DIRECTORY_PAGE}"))
            .await
    }

    pub async fn group(&self, id: &str) -> Result<DirectoryGroup, M365Error> {
        self.get_json(&format!("/groups/{id}")).await
    }

    /// Every site collection: `getAllSites` with application permissions (personal sites
    /// included); with delegated permissions, which cannot call it, a site search.
    pub async fn all_sites(&self) -> Result<Vec<GraphSite>, M365Error> {
        match self
            .get_all(&format!("/sites/getAllSites?$top={DIRECTORY_PAGE}"))
            .await
        {
            Err(M365Error::Graph {
                status: 400 | 403, ..
            }) => self.get_all("/sites?search=*").await,
            other => other,
        }
    }

    /// The sub-sites of a site.
    pub async fn subsites(&self, site: &str) -> Result<Vec<GraphSite>, M365Error> {
        self.get_all(&format!("/sites/{site}/sites")).await
    }

    pub async fn group_members(&self, id: &str) -> Result<Vec<DirectoryUser>, M365Error> {
        self.get_all(&format!("/groups/{id}/members?$top={DIRECTORY_PAGE}"))
            .await
    }
}
