//! Adding, editing and removing organizations: credentials are checked against the tenant
//! before anything is stored, and kept sealed under the server key.

use std::sync::Arc;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::crypto::SecretSealer;
use crate::directory::{GatewayError, TenantAuth, TenantConnection, TenantGateway};
use crate::endpoint_policy::{EndpointKind, EndpointPolicy};
use crate::error::{CoreError, CoreResult};
use crate::ids::OrganizationId;
use crate::organizations::{ConnectionSettings, Organization, OrganizationType, Region};
use crate::store::Store;
use crate::Secret;

/// The secret half of a service's connection settings (sealed at rest, never returned).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ConnectionSecrets {
    #[serde(with = "exposed", default)]
    pub password: Option<Secret>,
    #[serde(with = "exposed", default)]
    pub application_secret: Option<Secret>,
    /// Base64 PKCS#12, as the vendor takes it.
    #[serde(with = "exposed", default)]
    pub application_certificate: Option<Secret>,
    #[serde(with = "exposed", default)]
    pub application_certificate_password: Option<Secret>,
}

/// Serializes secrets in the clear: used only for the plaintext that is sealed right away.
mod exposed {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::Secret;

    pub fn serialize<S: Serializer>(v: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(secret) => s.serialize_some(secret.expose()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
        Option::<String>::deserialize(d).map(|v| v.map(Secret::new))
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OrganizationSecrets {
    pub exchange: ConnectionSecrets,
    pub share_point: ConnectionSecrets,
}

/// One service's settings as a client sent them.
#[derive(Clone, Debug, Default)]
pub struct ConnectionInput {
    pub settings: ConnectionSettings,
    pub secrets: ConnectionSecrets,
}

/// An organization as a client describes it (POST and PUT bodies).
#[derive(Clone, Debug)]
pub struct OrganizationInput {
    pub kind: OrganizationType,
    pub region: Region,
    pub is_exchange_online: bool,
    pub is_share_point_online: bool,
    pub is_teams_online: bool,
    pub exchange: Option<ConnectionInput>,
    pub share_point: Option<ConnectionInput>,
}

impl OrganizationInput {
    /// The secret half of both connections, to be sealed.
    fn into_secrets(self) -> OrganizationSecrets {
        OrganizationSecrets {
            exchange: self.exchange.map(|c| c.secrets).unwrap_or_default(),
            share_point: self.share_point.map(|c| c.secrets).unwrap_or_default(),
        }
    }
}

pub struct OrganizationService {
    store: Arc<dyn Store>,
    gateway: Arc<dyn TenantGateway>,
    sealer: Arc<SecretSealer>,
    /// Where credentials may be sent (Microsoft's cloud of the region, plus configured origins).
    endpoints: EndpointPolicy,
}

fn invalid(message: impl Into<String>) -> CoreError {
    CoreError::Invalid(message.into())
}

fn gateway_error(e: GatewayError) -> CoreError {
    match e {
        GatewayError::Connection(m) => {
            CoreError::Invalid(format!("Cannot connect to the organization: {m}"))
        }
        GatewayError::NotFound(m) => CoreError::NotFound(m),
        GatewayError::Unavailable(m) => CoreError::unavailable(m),
        GatewayError::Failed(e) => {
            CoreError::unavailable_because("Microsoft 365 is unavailable", e)
        }
        GatewayError::Throttled {
            retry_after,
            source,
        } => CoreError::unavailable_because("Microsoft 365 is throttling", source)
            .retry_after(retry_after),
    }
}

/// Builds the sign-in for one service's settings, or says which field is missing.
pub fn connection_for(
    region: Region,
    field: &str,
    settings: &ConnectionSettings,
    secrets: &ConnectionSecrets,
) -> CoreResult<TenantConnection> {
    let nonempty = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let application_id = nonempty(&settings.application_id)
        .ok_or_else(|| invalid(format!("{field}.applicationId is required")))?;
    let (tenant, auth) = if settings.use_application_only_auth {
        if secrets.application_certificate.is_some() && secrets.application_secret.is_none() {
            return Err(invalid(format!("{field}.applicationCertificate sign-in is not supported yet: use applicationSecret")));
        }
        let secret = secrets
            .application_secret
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                invalid(format!(
                    "{field}.applicationSecret is required for application-only authentication"
                ))
            })?;
        let tenant = nonempty(&settings.office_organization_name).ok_or_else(|| {
            invalid(format!(
                "{field}.officeOrganizationName is required for application-only authentication"
            ))
        })?;
        (
            tenant,
            TenantAuth::AppSecret {
                application_id,
                secret,
            },
        )
    } else {
        if settings.use_mfa {
            return Err(invalid(format!("{field}.useMfa: accounts with MFA cannot sign in unattended; use application-only authentication")));
        }
        let account = nonempty(&settings.account).ok_or_else(|| {
            invalid(format!(
                "{field}.account is required (or set useApplicationOnlyAuth)"
            ))
        })?;
        let password = secrets
            .password
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid(format!("{field}.password is required")))?;
        let tenant = nonempty(&settings.office_organization_name)
            .or_else(|| account.split_once('@').map(|(_, d)| d.to_owned()))
            .ok_or_else(|| {
                invalid(format!(
                    "{field}.account must be a user principal name (user@domain)"
                ))
            })?;
        (
            tenant,
            TenantAuth::Password {
                application_id,
                application_secret: secrets.application_secret.clone(),
                account,
                password,
            },
        )
    };
    Ok(TenantConnection {
        region,
        authority_url: settings.authority_url.clone(),
        graph_url: settings.graph_url.clone(),
        tenant,
        auth,
    })
}

impl OrganizationService {
    pub fn new(
        store: Arc<dyn Store>,
        gateway: Arc<dyn TenantGateway>,
        sealer: Arc<SecretSealer>,
        endpoints: EndpointPolicy,
    ) -> Self {
        Self {
            store,
            gateway,
            sealer,
            endpoints,
        }
    }

    pub async fn list(&self) -> CoreResult<Vec<Organization>> {
        Ok(self.store.list_organizations().await?)
    }

    pub async fn get(&self, id: OrganizationId) -> CoreResult<Organization> {
        self.store
            .get_organization(id)
            .await?
            .ok_or_else(|| not_found(id))
    }

    /// Signs in with every given connection, then stores the organization. Nothing is stored
    /// when a sign-in fails.
    pub async fn add(&self, input: OrganizationInput) -> CoreResult<Organization> {
        self.add_with_id(OrganizationId::new_random(), input).await
    }

    /// As [`Self::add`], with a chosen id (the demo's fixed organization).
    pub async fn add_with_id(
        &self,
        id: OrganizationId,
        input: OrganizationInput,
    ) -> CoreResult<Organization> {
        check_kind(&input)?;
        let identity = self.verify_all(&input).await?;
        let org = Organization {
            id,
            name: identity.name,
            office_name: identity.display_name,
            kind: input.kind,
            region: input.region,
            tenant_id: identity.tenant_id,
            is_exchange_online: input.is_exchange_online,
            is_share_point_online: input.is_share_point_online,
            is_teams_online: input.is_teams_online,
            exchange_online_settings: input.exchange.as_ref().map(|c| c.settings.clone()),
            share_point_online_settings: input.share_point.as_ref().map(|c| c.settings.clone()),
            first_backup_time: None,
            last_backup_time: None,
            created_at: Utc::now(),
        };
        let sealed = self.seal(id, &input.into_secrets())?;
        self.store
            .insert_organization(&org, &sealed)
            .await
            .map_err(|e| match e {
                crate::StoreError::Conflict(_) => CoreError::Conflict(format!(
                    "The organization {} ({}) has already been added.",
                    org.name, org.tenant_id
                )),
                other => other.into(),
            })?;
        tracing::info!(organization = %org.id, name = %org.name, "organization added");
        Ok(org)
    }

    /// Replaces the organization's settings. Secrets left out are kept; changed credentials are
    /// checked against the tenant again, which must stay the same tenant.
    pub async fn edit(
        &self,
        id: OrganizationId,
        mut input: OrganizationInput,
    ) -> CoreResult<Organization> {
        check_kind(&input)?;
        let current = self.get(id).await?;
        let stored = self.secrets(id).await?;
        let region_changed = input.region != current.region;
        let changed = keep_secrets(
            "exchangeOnlineSettings",
            &mut input.exchange,
            current.exchange_online_settings.as_ref(),
            stored.exchange,
            region_changed,
        )? | keep_secrets(
            "sharePointOnlineSettings",
            &mut input.share_point,
            current.share_point_online_settings.as_ref(),
            stored.share_point,
            region_changed,
        )? | region_changed;
        let identity = if changed {
            Some(self.verify_all(&input).await?)
        } else {
            None
        };
        if let Some(identity) = &identity {
            if identity.tenant_id != current.tenant_id {
                return Err(invalid(format!(
                    "The new credentials sign in to another tenant ({}) than this organization's ({}).",
                    identity.name, current.name
                )));
            }
        }
        let org = Organization {
            name: identity
                .as_ref()
                .map(|i| i.name.clone())
                .unwrap_or(current.name),
            office_name: identity
                .map(|i| i.display_name)
                .unwrap_or(current.office_name),
            kind: input.kind,
            region: input.region,
            is_exchange_online: input.is_exchange_online,
            is_share_point_online: input.is_share_point_online,
            is_teams_online: input.is_teams_online,
            exchange_online_settings: input.exchange.as_ref().map(|c| c.settings.clone()),
            share_point_online_settings: input.share_point.as_ref().map(|c| c.settings.clone()),
            ..current
        };
        let sealed = self.seal(id, &input.into_secrets())?;
        if !self.store.update_organization(&org, &sealed).await? {
            return Err(not_found(id));
        }
        tracing::info!(organization = %org.id, revalidated = changed, "organization edited");
        Ok(org)
    }

    /// Removes an organization with its backup accounts; 409 while jobs back it up (their
    /// backups would lose the organization they belong to).
    pub async fn remove(&self, id: OrganizationId) -> CoreResult<()> {
        let jobs = self.store.list_jobs(Some(id)).await?;
        if !jobs.is_empty() {
            return Err(CoreError::Conflict(format!(
                "Organization '{id}' has {} backup job(s): remove them first.",
                jobs.len()
            )));
        }
        if !self.store.delete_organization(id).await? {
            return Err(not_found(id));
        }
        tracing::info!(organization = %id, "organization removed");
        Ok(())
    }

    /// The connection used to read the tenant (SharePoint settings first: this product backs up
    /// SharePoint and OneDrive), with its secrets opened. Its endpoints are checked against
    /// today's policy first: an organization stored under a wider `allowed_endpoints` (or
    /// before there was a policy) sends its secrets nowhere the server no longer allows (409).
    pub async fn connection(
        &self,
        id: OrganizationId,
    ) -> CoreResult<(Organization, TenantConnection)> {
        let org = self.get(id).await?;
        let secrets = self.secrets(id).await?;
        let (field, settings, secrets) = match (
            &org.share_point_online_settings,
            &org.exchange_online_settings,
        ) {
            (Some(s), _) => ("sharePointOnlineSettings", s, &secrets.share_point),
            (None, Some(e)) => ("exchangeOnlineSettings", e, &secrets.exchange),
            (None, None) => {
                return Err(CoreError::internal(
                    "connecting to an organization",
                    format!("organization {id} has no connection settings"),
                ))
            }
        };
        self.check_endpoints(org.region, field, settings)
            .map_err(|why| {
                CoreError::Conflict(format!(
                    "Organization '{id}' is not connected: its {why}. Edit the organization \
                     (with its secrets) to use an allowed endpoint."
                ))
            })?;
        let connection = connection_for(org.region, field, settings, secrets)?;
        Ok((org, connection))
    }

    pub fn gateway(&self) -> &Arc<dyn TenantGateway> {
        &self.gateway
    }

    async fn secrets(&self, id: OrganizationId) -> CoreResult<OrganizationSecrets> {
        let sealed = self
            .store
            .organization_secrets(id)
            .await?
            .ok_or_else(|| not_found(id))?;
        let plain = self.sealer.open(id.to_string().as_bytes(), &sealed)?;
        serde_json::from_slice(&plain)
            .map_err(|e| CoreError::internal("reading sealed organization secrets", e))
    }

    fn seal(&self, id: OrganizationId, secrets: &OrganizationSecrets) -> CoreResult<Vec<u8>> {
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(secrets)
                .map_err(|e| CoreError::internal("sealing organization secrets", e))?,
        );
        self.sealer.seal(id.to_string().as_bytes(), &plain)
    }

    /// Signs in with each given connection; all must reach the same tenant.
    async fn verify_all(
        &self,
        input: &OrganizationInput,
    ) -> CoreResult<crate::directory::TenantIdentity> {
        let mut identity: Option<crate::directory::TenantIdentity> = None;
        for (field, conn) in [
            ("sharePointOnlineSettings", &input.share_point),
            ("exchangeOnlineSettings", &input.exchange),
        ] {
            let Some(conn) = conn else { continue };
            self.check_endpoints(input.region, field, &conn.settings)?;
            let connection = connection_for(input.region, field, &conn.settings, &conn.secrets)?;
            let found = self
                .gateway
                .verify(&connection)
                .await
                .map_err(gateway_error)?;
            if let Some(first) = &identity {
                if first.tenant_id != found.tenant_id {
                    return Err(invalid("exchangeOnlineSettings and sharePointOnlineSettings sign in to different tenants"));
                }
            }
            identity = Some(found);
        }
        identity.ok_or_else(|| {
            invalid("sharePointOnlineSettings (or exchangeOnlineSettings) is required")
        })
    }
}

impl OrganizationService {
    /// Credentials go only where the policy allows: checked before any sign-in is attempted.
    fn check_endpoints(
        &self,
        region: Region,
        field: &str,
        settings: &ConnectionSettings,
    ) -> CoreResult<()> {
        for (name, kind, url) in [
            (
                "authorityUrl",
                EndpointKind::Authority,
                &settings.authority_url,
            ),
            ("graphUrl", EndpointKind::Graph, &settings.graph_url),
        ] {
            if let Some(url) = url {
                self.endpoints
                    .check(region, kind, url)
                    .map_err(|why| invalid(format!("{field}.{name} {why}")))?;
            }
        }
        Ok(())
    }
}

fn check_kind(input: &OrganizationInput) -> CoreResult<()> {
    match input.kind {
        OrganizationType::Office365 => Ok(()),
        other => Err(invalid(format!(
            "type '{other:?}' is not supported: only Office365 organizations can be added"
        ))),
    }
}

/// Fills secrets the client left out from the stored ones, but only while they would go to the
/// same principal at the same endpoints: a new sign-in or Graph endpoint (or region) needs every
/// secret again in the same request, or a stolen API token could send the stored secrets to a
/// host of its choosing. `Ok(true)` when the connection changed in a way that needs a sign-in.
fn keep_secrets(
    field: &str,
    input: &mut Option<ConnectionInput>,
    current: Option<&ConnectionSettings>,
    stored: ConnectionSecrets,
    region_changed: bool,
) -> CoreResult<bool> {
    let (Some(new), Some(old)) = (input.as_mut(), current) else {
        return Ok(input.is_some() != current.is_some());
    };
    let s = &mut new.secrets;
    let given = s.password.is_some()
        || s.application_secret.is_some()
        || s.application_certificate.is_some();
    let same_principal =
        new.settings.account == old.account && new.settings.application_id == old.application_id;
    let same_destination = new.settings.authority_url == old.authority_url
        && new.settings.graph_url == old.graph_url
        && !region_changed;
    if !same_destination {
        if !given {
            return Err(invalid(format!(
                "{field}: the sign-in endpoint, Graph endpoint or region changed, so every secret \
                 (password or applicationSecret) must be given again in the same request"
            )));
        }
        return Ok(true);
    }
    if !same_principal {
        return Ok(true);
    }
    s.password = s.password.take().or(stored.password);
    s.application_secret = s.application_secret.take().or(stored.application_secret);
    s.application_certificate = s
        .application_certificate
        .take()
        .or(stored.application_certificate);
    s.application_certificate_password = s
        .application_certificate_password
        .take()
        .or(stored.application_certificate_password);
    Ok(given || new.settings != *old)
}

fn not_found(id: OrganizationId) -> CoreError {
    CoreError::NotFound(format!("Organization '{id}' was not found."))
}
