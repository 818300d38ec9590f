//! The tenant's directory as the server sees it, and the gateway through which it is read.
//! The gateway is implemented by the Microsoft 365 client (`m365backup-m365`).

use async_trait::async_trait;
use uuid::Uuid;

use crate::organizations::Region;
use crate::Secret;

/// The vendor's composite id of a directory object: its Microsoft 365 GUID immediately followed
/// by its on-premises GUID (all zeros for cloud-only objects), 72 characters.
pub fn composite_id(id: Uuid, on_premises: Option<Uuid>) -> String {
    format!(
        "{}{}",
        id.hyphenated(),
        on_premises.unwrap_or(Uuid::nil()).hyphenated()
    )
}

/// The Microsoft 365 GUID of a composite id; a bare GUID is accepted too.
pub fn parse_composite_id(raw: &str) -> Option<Uuid> {
    match raw.len() {
        72 => {
            // Checked: byte 36 of a non-ASCII id need not start a character.
            let (id, on_premises) = raw.split_at_checked(36)?;
            on_premises.parse::<Uuid>().ok()?;
            id.parse().ok()
        }
        36 => raw.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_ids() {
        let g: Uuid = "6e570850-9ce9-40ed-b81d-41772dabcead".parse().unwrap();
        let c = composite_id(g, None);
        assert_eq!(
            c,
            "6e570850-9ce9-40ed-b81d-41772dabcead00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(parse_composite_id(&c), Some(g));
        assert_eq!(
            parse_composite_id("6e570850-9ce9-40ed-b81d-41772dabcead"),
            Some(g)
        );
        assert_eq!(parse_composite_id("6e570850"), None);
        assert_eq!(
            parse_composite_id(&format!("{g}xxxxxxxx-0000-0000-0000-000000000000")),
            None
        );
    }

    /// Found by the property tests: 72 bytes whose 37th is inside a character (a group id in
    /// a URL path) panicked slicing the string at byte 36.
    #[test]
    fn composite_ids_split_inside_a_character_are_not_ids() {
        let raw = format!("{}é{}", "a".repeat(35), "b".repeat(35));
        assert_eq!(raw.len(), 72);
        assert_eq!(parse_composite_id(&raw), None);
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        fn uuid() -> impl Strategy<Value = Uuid> {
            any::<u128>().prop_map(Uuid::from_u128)
        }

        proptest! {
            /// Any text: an id or none, never a panic; ids round-trip in either case.
            #[test]
            fn composite_ids_parse_or_not(
                raw in prop_oneof!["\\PC{0,80}", "[0-9a-fA-F-]{72}", "[0-9a-f-é]{36}[0-9a-f-é]{35,36}"],
                id in uuid(),
                on_premises in proptest::option::of(uuid()),
            ) {
                crate::fuzzing::composite_id(raw.as_bytes());
                let composite = composite_id(id, on_premises);
                prop_assert_eq!(parse_composite_id(&composite), Some(id));
                prop_assert_eq!(parse_composite_id(&composite.to_uppercase()), Some(id));
                prop_assert_eq!(parse_composite_id(&id.to_string()), Some(id));
            }
        }
    }
}

/// How to reach and sign in to one tenant.
#[derive(Clone, Debug)]
pub struct TenantConnection {
    pub region: Region,
    pub authority_url: Option<String>,
    pub graph_url: Option<String>,
    /// Tenant id or domain, as the sign-in endpoint takes it.
    pub tenant: String,
    pub auth: TenantAuth,
}

#[derive(Clone, Debug)]
pub enum TenantAuth {
    AppSecret {
        application_id: String,
        secret: Secret,
    },
    Password {
        application_id: String,
        application_secret: Option<Secret>,
        account: String,
        password: Secret,
    },
}

/// What signing in to a tenant tells about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantIdentity {
    pub tenant_id: String,
    /// Default domain, e.g. `contoso.onmicrosoft.com`.
    pub name: String,
    pub display_name: String,
}

/// The vendor's group types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum GroupType {
    Office365,
    Security,
    Distribution,
    DynamicDistribution,
}

/// Where a directory object is mastered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum LocationType {
    Cloud,
    OnPremises,
    Hybrid,
}

#[derive(Clone, Debug)]
pub struct DirectoryUser {
    pub id: Uuid,
    /// The on-premises object GUID of a synchronized user.
    pub on_premises_id: Option<Uuid>,
    pub display_name: String,
    pub principal_name: String,
    pub location: LocationType,
}

#[derive(Clone, Debug)]
pub struct DirectoryGroup {
    pub id: Uuid,
    pub on_premises_id: Option<Uuid>,
    pub display_name: String,
    /// Mail address, or the mail nickname when the group has no mail.
    pub name: String,
    pub kind: GroupType,
    pub location: LocationType,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum MemberType {
    Unknown,
    User,
    Group,
}

#[derive(Clone, Debug)]
pub struct GroupMember {
    pub id: Uuid,
    pub name: String,
    pub login: String,
    pub kind: MemberType,
    pub is_cloud: bool,
}

/// A SharePoint site (a site collection's root web, a sub-site or a personal site).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectorySite {
    /// Graph's id: `hostname,siteCollectionGuid,webGuid`.
    pub graph_id: String,
    pub collection_id: Uuid,
    pub web_id: Uuid,
    pub url: String,
    /// Display name.
    pub title: String,
    /// The site's name (last URL segment).
    pub name: String,
    /// A user's personal site (`…-my.sharepoint.com/personal/…`).
    pub is_personal: bool,
    /// Our id of the parent site, for sub-sites.
    pub parent_id: Option<String>,
}

impl DirectorySite {
    /// Our id of a site, as the vendor writes site ids: the site collection GUID followed by
    /// the web GUID (72 characters).
    pub fn id(&self) -> String {
        format!(
            "{}{}",
            self.collection_id.hyphenated(),
            self.web_id.hyphenated()
        )
    }

    /// The GUIDs of a Graph site id (`hostname,collection,web`).
    pub fn guids_of(graph_id: &str) -> Option<(Uuid, Uuid)> {
        let mut parts = graph_id.split(',');
        let (_host, collection, web) = (parts.next()?, parts.next()?, parts.next()?);
        Some((collection.parse().ok()?, web.parse().ok()?))
    }
}

/// A failure to talk to the tenant: the text is Microsoft's reason, fit to show an operator.
#[derive(Clone, Debug, thiserror::Error)]
pub enum GatewayError {
    /// Sign-in refused, tenant unknown, endpoint unreachable: a problem with the given settings.
    #[error("{0}")]
    Connection(String),
    #[error("{0}")]
    NotFound(String),
    /// The tenant answered something this server cannot use (the text says what).
    #[error("{0}")]
    Unavailable(String),
    /// Microsoft 365 failed (5xx, unreachable mid-read): its error, kept whole and shared (a
    /// listing's failure reaches every request waiting for it).
    #[error(transparent)]
    Failed(std::sync::Arc<dyn std::error::Error + Send + Sync>),
    /// Microsoft 365 still throttled the call after the client's retries: its error, and how
    /// long it asked to wait (the server passes that on as `Retry-After`).
    #[error("Microsoft 365 asks to wait {} s", retry_after.as_secs().max(1))]
    Throttled {
        retry_after: std::time::Duration,
        #[source]
        source: std::sync::Arc<dyn std::error::Error + Send + Sync>,
    },
}

#[async_trait]
pub trait TenantGateway: Send + Sync {
    /// Signs in with the connection's credentials and reads the tenant's identity.
    async fn verify(&self, connection: &TenantConnection) -> Result<TenantIdentity, GatewayError>;
    async fn users(
        &self,
        connection: &TenantConnection,
    ) -> Result<Vec<DirectoryUser>, GatewayError>;
    async fn groups(
        &self,
        connection: &TenantConnection,
    ) -> Result<Vec<DirectoryGroup>, GatewayError>;
    async fn group_members(
        &self,
        connection: &TenantConnection,
        group: Uuid,
    ) -> Result<Vec<GroupMember>, GatewayError>;
    /// Every site collection of the tenant (personal sites included) and their sub-sites.
    async fn sites(
        &self,
        connection: &TenantConnection,
    ) -> Result<Vec<DirectorySite>, GatewayError>;
    /// Signs in with the connection's credentials (an account's password grant) and nothing else.
    async fn verify_account(&self, connection: &TenantConnection) -> Result<(), GatewayError>;
}
