//! The domain services over one store, wired the same way for `serve` and the CLI commands.

use std::sync::Arc;

use anyhow::Context;
use m365backup_core::backup_accounts::BackupAccountService;
use m365backup_core::directory::TenantGateway;
use m365backup_core::directory_service::DirectoryService;
use m365backup_core::endpoint_policy::EndpointPolicy;
use m365backup_core::jobs::service::JobService;
use m365backup_core::organization_service::OrganizationService;
use m365backup_core::store::Store;
use m365backup_m365::gateway::M365Gateway;

use crate::config::Settings;

pub struct Services {
    pub organizations: Arc<OrganizationService>,
    pub directory: Arc<DirectoryService>,
    pub backup_accounts: Arc<BackupAccountService>,
}

/// The job service over this store, with the repositories jobs may name.
pub fn job_service(
    settings: &Settings,
    store: Arc<dyn Store>,
    directory: Arc<DirectoryService>,
    repositories: Arc<m365backup_repo::registry::RepositoryService>,
) -> Arc<JobService> {
    Arc::new(JobService::new(
        store,
        directory,
        Arc::new(crate::repositories::Registry(repositories)),
        settings.time_zone,
    ))
}

impl Services {
    /// Loads (or creates) the server key and builds the services on the real Microsoft 365 client.
    pub fn build(settings: &Settings, store: Arc<dyn Store>) -> anyhow::Result<Self> {
        let sealer = Arc::new(crate::server_key::load_or_create(
            &settings.server_key_file,
            &settings.data_dir,
        )?);
        let gateway: Arc<dyn TenantGateway> =
            Arc::new(M365Gateway::new().context("starting the HTTP client for Microsoft 365")?);
        let endpoints = EndpointPolicy::with_allowed(&settings.allowed_endpoints)
            .map_err(|e| anyhow::anyhow!("allowed_endpoints: {e}"))?;
        let organizations = Arc::new(OrganizationService::new(
            store.clone(),
            gateway,
            sealer.clone(),
            endpoints,
        ));
        let directory = Arc::new(DirectoryService::new(organizations.clone()));
        let backup_accounts = Arc::new(BackupAccountService::new(
            store,
            organizations.clone(),
            directory.clone(),
            sealer,
        ));
        Ok(Self {
            organizations,
            directory,
            backup_accounts,
        })
    }
}
