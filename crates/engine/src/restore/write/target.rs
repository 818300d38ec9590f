//! Who writes and where: the account pool of a restore (the account the request names, or the
//! organization's own credentials with its backup accounts), and the drive a copy goes to (a
//! user's OneDrive, a site's library). Everything here only reads; a target that cannot be
//! found is the client's mistake (400) and nothing is written.

use std::sync::Arc;

use m365backup_core::backup_accounts::{account_connection, BackupAccountService};
use m365backup_core::directory::TenantConnection;
use m365backup_core::directory_service::DirectoryService;
use m365backup_core::error::{CoreError, CoreResult};
use m365backup_core::ids::OrganizationId;
use m365backup_core::organization_service::OrganizationService;
use m365backup_core::Secret;
use m365backup_m365::gateway::client_parts;
use m365backup_m365::graph::{http_client, GraphClient};
use m365backup_m365::pool::writes::segment;
use m365backup_m365::pool::{AccountPool, PoolConfig, PoolError};
use serde::Deserialize;

use crate::pool_builder::build_pool;

/// What a restore needs to reach the tenant.
pub struct Connections {
    pub organizations: Arc<OrganizationService>,
    pub backup_accounts: Arc<BackupAccountService>,
    pub directory: Arc<DirectoryService>,
    pub pool: PoolConfig,
}

impl Connections {
    /// The pool a restore writes through, signed in.
    pub async fn pool(
        &self,
        org: OrganizationId,
        account: Option<&(String, Secret)>,
    ) -> CoreResult<Arc<AccountPool>> {
        let (_, connection) = self.organizations.connection(org).await?;
        match account {
            Some((login, password)) => {
                single_account_pool(org, &connection, login, password, &self.pool).await
            }
            None => {
                let accounts = self.backup_accounts.sessions(org).await?;
                let pool = build_pool(&org.to_string(), accounts, connection, self.pool.clone())
                    .map_err(|e| CoreError::internal("starting the HTTP client", e))?;
                if pool.sign_in_all().await == 0 {
                    return Err(CoreError::unavailable(format!(
                        "No backup account and not the organization's own credentials could sign in: {}",
                        quarantine_reasons(&pool)
                    )));
                }
                Ok(pool)
            }
        }
    }

    /// The drive a copy goes to.
    pub async fn drive_of(
        &self,
        org: OrganizationId,
        pool: &AccountPool,
        destination: &super::options::Destination,
    ) -> CoreResult<Option<String>> {
        use super::options::Destination;
        match destination {
            Destination::Original => Ok(None),
            Destination::OneDrive(user) => onedrive_of(pool, user).await.map(Some),
            Destination::Site { site, library } => {
                let graph_id = if site.contains(',') {
                    site.clone()
                } else {
                    self.directory
                        .site(org, site)
                        .await
                        .map_err(|e| match e {
                            CoreError::NotFound(m) => {
                                CoreError::Invalid(format!("copyTo.site: {m}"))
                            }
                            other => other,
                        })?
                        .graph_id
                };
                library_of(pool, &graph_id, library.as_deref())
                    .await
                    .map(Some)
            }
        }
    }
}

/// A pool of the one account the request names, signing in through the organization's app.
async fn single_account_pool(
    org: OrganizationId,
    connection: &TenantConnection,
    login: &str,
    password: &Secret,
    config: &PoolConfig,
) -> CoreResult<Arc<AccountPool>> {
    let connection = account_connection(connection, login, password.clone());
    let (endpoints, credentials) = client_parts(&connection);
    let http = http_client().map_err(|e| CoreError::internal("starting the HTTP client", e))?;
    let client = GraphClient::with_http(http, endpoints, credentials);
    let pool = AccountPool::new(
        org.to_string(),
        vec![(login.to_owned(), client)],
        config.clone(),
    )
    .map_err(|e| CoreError::internal("starting the HTTP client", e))?;
    if pool.sign_in_all().await == 0 {
        return Err(CoreError::Invalid(format!(
            "userName '{login}' could not sign in: {}",
            quarantine_reasons(&pool)
        )));
    }
    Ok(pool)
}

fn quarantine_reasons(pool: &AccountPool) -> String {
    pool.report()
        .into_iter()
        .filter_map(|r| r.quarantined.map(|q| format!("{}: {q}", r.login)))
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Deserialize)]
struct DriveRef {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct Page<T> {
    value: Vec<T>,
}

/// A lookup that found nothing (404, or an id Graph cannot parse) is `None`; other failures
/// are the tenant's, not the client's.
fn absent<T>(result: Result<T, PoolError>) -> CoreResult<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(PoolError::M365(e)) if e.is_not_found() => Ok(None),
        Err(PoolError::M365(m365backup_m365::M365Error::Graph { status: 400, .. })) => Ok(None),
        Err(e) => Err(CoreError::unavailable_because(
            "Microsoft 365 could not be asked for the restore's target",
            e,
        )),
    }
}

/// A user's OneDrive (by principal name or id), or a drive by id.
async fn onedrive_of(pool: &AccountPool, user: &str) -> CoreResult<String> {
    let by_user = pool
        .get_json::<DriveRef>(&format!("/users/{}/drive", segment(user)))
        .await;
    if let Some(d) = absent(by_user)? {
        return Ok(d.id);
    }
    let by_id = pool
        .get_json::<DriveRef>(&format!("/drives/{}", segment(user)))
        .await;
    match absent(by_id)? {
        Some(d) => Ok(d.id),
        None => Err(CoreError::Invalid(format!(
            "copyTo.oneDrive '{user}' is not a user or a OneDrive of the organization"
        ))),
    }
}

/// A site's library by name, or its default library.
async fn library_of(pool: &AccountPool, site: &str, library: Option<&str>) -> CoreResult<String> {
    let unknown = || {
        CoreError::Invalid(format!(
            "copyTo.site '{site}' is not a site of the organization"
        ))
    };
    let Some(name) = library else {
        let drive = pool
            .get_json::<DriveRef>(&format!("/sites/{}/drive", segment(site)))
            .await;
        return absent(drive)?.map(|d| d.id).ok_or_else(unknown);
    };
    let drives = pool
        .get_json::<Page<DriveRef>>(&format!("/sites/{}/drives", segment(site)))
        .await;
    let drives = absent(drives)?.ok_or_else(unknown)?;
    drives
        .value
        .into_iter()
        .find(|d| {
            d.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
                || d.id == name
        })
        .map(|d| d.id)
        .ok_or_else(|| {
            CoreError::Invalid(format!(
                "copyTo.library '{name}' is not a library of site '{site}'"
            ))
        })
}
