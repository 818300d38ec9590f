//! The core's [`TenantGateway`] over the real client: sign-in checks and directory reads, with
//! one cached client (and so one cached token) per distinct connection.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use base64::Engine;
use m365backup_core::directory::{
    DirectoryGroup, DirectorySite, DirectoryUser, GatewayError, GroupMember, GroupType,
    LocationType, MemberType, TenantAuth, TenantConnection, TenantGateway, TenantIdentity,
};
use m365backup_core::token::TokenDigest;
use uuid::Uuid;

use crate::directory;
use crate::endpoints::Endpoints;
use crate::error::M365Error;
use crate::graph::GraphClient;
use crate::identity::Credentials;

/// One connection pool for every call, and a cached client per connection.
pub struct M365Gateway {
    http: reqwest::Client,
    clients: Mutex<HashMap<String, GraphClient>>,
}

impl M365Gateway {
    /// Fails when the HTTP client cannot start (see [`crate::graph::http_client`]).
    pub fn new() -> reqwest::Result<Self> {
        Ok(Self {
            http: crate::graph::http_client()?,
            clients: Mutex::default(),
        })
    }
}

/// Endpoints and credentials of a connection, as the client takes them.
pub fn client_parts(c: &TenantConnection) -> (Endpoints, Credentials) {
    let endpoints =
        Endpoints::resolve(c.region, c.authority_url.as_deref(), c.graph_url.as_deref());
    let credentials = match &c.auth {
        TenantAuth::AppSecret {
            application_id,
            secret,
        } => Credentials::AppSecret {
            tenant: c.tenant.clone(),
            client_id: application_id.clone(),
            client_secret: secret.clone(),
        },
        TenantAuth::Password {
            application_id,
            application_secret,
            account,
            password,
        } => Credentials::Password {
            tenant: c.tenant.clone(),
            client_id: application_id.clone(),
            client_secret: application_secret.clone(),
            username: account.clone(),
            password: password.clone(),
        },
    };
    (endpoints, credentials)
}

/// Identifies a connection, secrets included (as digests), so changed credentials get a new client.
fn cache_key(c: &TenantConnection) -> String {
    let (endpoints, credentials) = client_parts(c);
    let secret = match &c.auth {
        TenantAuth::AppSecret { secret, .. } => TokenDigest::of(secret).0,
        TenantAuth::Password { password, .. } => TokenDigest::of(password).0,
    };
    format!(
        "{}|{}|{}|{}|{secret}",
        endpoints.authority,
        endpoints.graph,
        c.tenant,
        credentials.principal()
    )
}

pub fn gateway_error(e: M365Error) -> GatewayError {
    match e {
        M365Error::SignIn { description, .. } => GatewayError::Connection(description),
        M365Error::Unreachable { url, reason } => {
            GatewayError::Connection(format!("cannot reach {url}: {reason}"))
        }
        M365Error::Graph {
            status: 404,
            message,
            ..
        } => GatewayError::NotFound(message),
        M365Error::Graph {
            status: 401 | 403,
            code,
            message,
        } => GatewayError::Connection(format!(
            "Microsoft Graph refused access ({code}): {message}"
        )),
        M365Error::Throttled { retry_after, .. } => GatewayError::Throttled {
            retry_after,
            source: std::sync::Arc::new(e),
        },
        other => GatewayError::Failed(std::sync::Arc::new(other)),
    }
}

impl M365Gateway {
    fn client(&self, c: &TenantConnection) -> GraphClient {
        let key = cache_key(c);
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry(key)
            .or_insert_with(|| {
                let (endpoints, credentials) = client_parts(c);
                GraphClient::with_http(self.http.clone(), endpoints, credentials)
            })
            .clone()
    }
}

/// The on-premises object GUID of a synchronized object (`onPremisesImmutableId` is its base64).
fn on_premises_guid(immutable_id: Option<&str>) -> Option<Uuid> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(immutable_id?)
        .ok()?;
    let bytes: [u8; 16] = bytes.try_into().ok()?;
    Some(Uuid::from_bytes_le(bytes))
}

fn location(synced: Option<bool>) -> LocationType {
    if synced == Some(true) {
        LocationType::Hybrid
    } else {
        LocationType::Cloud
    }
}

fn parse_id(id: &str) -> Result<Uuid, GatewayError> {
    id.parse().map_err(|_| {
        GatewayError::Unavailable(format!(
            "Microsoft Graph returned an object id that is not a GUID: {id}"
        ))
    })
}

fn group_type(g: &directory::DirectoryGroup) -> GroupType {
    let has = |t: &str| g.group_types.iter().any(|x| x.eq_ignore_ascii_case(t));
    if has("Unified") {
        GroupType::Office365
    } else if g.security_enabled {
        GroupType::Security
    } else if has("DynamicMembership") {
        GroupType::DynamicDistribution
    } else {
        GroupType::Distribution
    }
}

#[async_trait]
impl TenantGateway for M365Gateway {
    async fn verify(&self, c: &TenantConnection) -> Result<TenantIdentity, GatewayError> {
        let (endpoints, credentials) = client_parts(c);
        // A fresh client: this is a check of the credentials as given, not of a cached token.
        let client = GraphClient::with_http(self.http.clone(), endpoints, credentials);
        client.tokens().sign_in().await.map_err(gateway_error)?;
        let info = client.tenant_info().await.map_err(gateway_error)?;
        let name = info.default_domain().unwrap_or(&c.tenant).to_owned();
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(cache_key(c), client);
        Ok(TenantIdentity {
            tenant_id: info.id,
            name,
            display_name: info.display_name,
        })
    }

    async fn users(&self, c: &TenantConnection) -> Result<Vec<DirectoryUser>, GatewayError> {
        let users = self.client(c).users().await.map_err(gateway_error)?;
        users
            .into_iter()
            .map(|u| {
                Ok(DirectoryUser {
                    id: parse_id(&u.id)?,
                    on_premises_id: on_premises_guid(u.on_premises_immutable_id.as_deref()),
                    display_name: u.display_name.unwrap_or_default(),
                    principal_name: u.user_principal_name.or(u.mail).unwrap_or_default(),
                    location: location(u.on_premises_sync_enabled),
                })
            })
            .collect()
    }

    async fn groups(&self, c: &TenantConnection) -> Result<Vec<DirectoryGroup>, GatewayError> {
        let groups = self.client(c).groups().await.map_err(gateway_error)?;
        groups
            .into_iter()
            .map(|g| {
                Ok(DirectoryGroup {
                    id: parse_id(&g.id)?,
                    on_premises_id: None,
                    kind: group_type(&g),
                    location: location(g.on_premises_sync_enabled),
                    name: g
                        .mail
                        .clone()
                        .or(g.mail_nickname.clone())
                        .or(g.display_name.clone())
                        .unwrap_or_default(),
                    display_name: g.display_name.unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn sites(&self, c: &TenantConnection) -> Result<Vec<DirectorySite>, GatewayError> {
        let client = self.client(c);
        let roots = client.all_sites().await.map_err(gateway_error)?;
        let mut sites = Vec::new();
        // Breadth first: each site's sub-sites, with their parent named.
        let mut pending: Vec<(directory::GraphSite, Option<String>)> =
            roots.into_iter().map(|s| (s, None)).collect();
        // A search lists sub-sites beside their parents: each site once, with its parent.
        let mut seen = std::collections::HashSet::new();
        while let Some((graph, parent)) = pending.pop() {
            let Some(site) = directory_site(&graph, parent) else {
                continue;
            };
            if !seen.insert(site.id()) {
                if site.parent_id.is_some() {
                    if let Some(known) = sites
                        .iter_mut()
                        .find(|s: &&mut DirectorySite| s.id() == site.id())
                    {
                        known.parent_id = site.parent_id;
                    }
                }
                continue;
            }
            if !site.is_personal {
                let children = match client.subsites(&graph.id).await {
                    // A site that cannot have sub-sites refuses the question.
                    Err(M365Error::Graph { status: 400, .. }) => Vec::new(),
                    other => other.map_err(gateway_error)?,
                };
                let id = site.id();
                pending.extend(children.into_iter().map(|c| (c, Some(id.clone()))));
            }
            sites.push(site);
        }
        sites.sort_by(|a, b| a.url.cmp(&b.url));
        Ok(sites)
    }

    async fn verify_account(&self, c: &TenantConnection) -> Result<(), GatewayError> {
        let (endpoints, credentials) = client_parts(c);
        let client = GraphClient::with_http(self.http.clone(), endpoints, credentials);
        client
            .tokens()
            .sign_in()
            .await
            .map(|_| ())
            .map_err(gateway_error)
    }

    async fn group_members(
        &self,
        c: &TenantConnection,
        group: Uuid,
    ) -> Result<Vec<GroupMember>, GatewayError> {
        let members = self
            .client(c)
            .group_members(&group.to_string())
            .await
            .map_err(gateway_error)?;
        members
            .into_iter()
            .map(|m| {
                let kind = match m.odata_type.as_deref() {
                    Some("#microsoft.graph.user") => MemberType::User,
                    Some("#microsoft.graph.group") => MemberType::Group,
                    _ => MemberType::Unknown,
                };
                Ok(GroupMember {
                    id: parse_id(&m.id)?,
                    name: m.display_name.unwrap_or_default(),
                    login: m.user_principal_name.or(m.mail).unwrap_or_default(),
                    kind,
                    is_cloud: m.on_premises_sync_enabled != Some(true),
                })
            })
            .collect()
    }
}

/// A Graph site as the directory keeps it; `None` for an id that is not Graph's three parts.
fn directory_site(g: &directory::GraphSite, parent_id: Option<String>) -> Option<DirectorySite> {
    let (collection_id, web_id) = DirectorySite::guids_of(&g.id)?;
    let url = g.web_url.clone().unwrap_or_default();
    let name = g
        .name
        .clone()
        .or_else(|| url.rsplit('/').next().map(str::to_owned))
        .unwrap_or_default();
    Some(DirectorySite {
        graph_id: g.id.clone(),
        collection_id,
        web_id,
        is_personal: g.is_personal(),
        title: g.display_name.clone().unwrap_or_else(|| name.clone()),
        name,
        url,
        parent_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn immutable_id_is_the_little_endian_guid() {
        let guid: Uuid = "6e570850-9ce9-40ed-b81d-41772dabcead".parse().unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(guid.to_bytes_le());
        assert_eq!(on_premises_guid(Some(&b64)), Some(guid));
        assert_eq!(on_premises_guid(Some("not base64!")), None);
        assert_eq!(on_premises_guid(None), None);
    }

    #[test]
    fn a_personal_site_is_known_by_its_url_for_the_directory_and_the_engine_alike() {
        let site = |url: &str| directory::GraphSite {
            id: "contoso.sharepoint.com,6e570850-9ce9-40ed-b81d-41772dabcead,\
                 0b9c3a5e-1d2f-4c6b-9a8e-7f6d5c4b3a21"
                .into(),
            name: None,
            display_name: None,
            web_url: Some(url.into()),
        };
        let personal = site("https://contoso-my.sharepoint.com/personal/adele_contoso_com");
        let team = site("https://contoso.sharepoint.com/sites/marketing");
        assert!(personal.is_personal());
        assert!(!team.is_personal());
        let listed = |s: &directory::GraphSite| directory_site(s, None).map(|d| d.is_personal);
        assert_eq!(listed(&personal), Some(true));
        assert_eq!(listed(&team), Some(false));
    }
}
