//! Builds an organization's account pool from its backup accounts (or, without any, from the
//! organization's own credentials).

use std::sync::Arc;

use m365backup_core::backup_accounts::BackupAccountSession;
use m365backup_core::directory::TenantConnection;
use m365backup_m365::gateway::client_parts;
use m365backup_m365::graph::{http_client, GraphClient};
use m365backup_m365::pool::{AccountPool, PoolConfig};

pub fn build_pool(
    organization: &str,
    accounts: Vec<BackupAccountSession>,
    fallback: TenantConnection,
    config: PoolConfig,
) -> Arc<AccountPool> {
    let http = http_client();
    let sessions: Vec<(String, TenantConnection)> = if accounts.is_empty() {
        let (_, credentials) = client_parts(&fallback);
        vec![(credentials.principal().to_owned(), fallback)]
    } else {
        accounts
            .into_iter()
            .map(|a| (a.login, a.connection))
            .collect()
    };
    let clients = sessions
        .into_iter()
        .map(|(login, connection)| {
            let (endpoints, credentials) = client_parts(&connection);
            (
                login,
                GraphClient::with_http(http.clone(), endpoints, credentials),
            )
        })
        .collect();
    AccountPool::new(organization, clients, config)
}
