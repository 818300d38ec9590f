//! Builds an organization's account pool from its backup accounts and the organization's own
//! credentials (which serve what no backup account may read, and everything without them).

use std::sync::Arc;

use m365backup_core::backup_accounts::BackupAccountSession;
use m365backup_core::directory::TenantConnection;
use m365backup_m365::gateway::client_parts;
use m365backup_m365::graph::{http_client, GraphClient};
use m365backup_m365::pool::{AccountPool, PoolConfig};

/// Fails when the HTTP client cannot start (no CA certificates on the system, for one).
pub fn build_pool(
    organization: &str,
    accounts: Vec<BackupAccountSession>,
    fallback: TenantConnection,
    config: PoolConfig,
) -> reqwest::Result<Arc<AccountPool>> {
    let http = http_client()?;
    let client = |connection: &TenantConnection| {
        let (endpoints, credentials) = client_parts(connection);
        GraphClient::with_http(http.clone(), endpoints, credentials)
    };
    let clients = accounts
        .iter()
        .map(|a| (a.login.clone(), client(&a.connection)))
        .collect();
    let (_, own_credentials) = client_parts(&fallback);
    let own = (own_credentials.principal().to_owned(), client(&fallback));
    AccountPool::with_organization(organization, clients, Some(own), config)
}
