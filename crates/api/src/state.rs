//! What every handler can reach.

use std::sync::Arc;
use std::time::Duration;

use m365backup_core::auth::AuthService;
use m365backup_core::backup_accounts::BackupAccountService;
use m365backup_core::directory_service::DirectoryService;
use m365backup_core::jobs::service::JobService;
use m365backup_core::organization_service::OrganizationService;
use m365backup_core::proxies::ProxyStore;
use m365backup_core::Secret;
use m365backup_repo::registry::RepositoryService;

#[derive(Clone, Debug)]
pub struct ApiSettings {
    /// Request bodies above this many bytes are refused with 413.
    pub max_body_bytes: usize,
    /// Take the client address, scheme and host from `X-Forwarded-*` (only behind a proxy).
    pub trust_forwarded_headers: bool,
    /// `https`, or `http` when the server was explicitly asked to serve plain HTTP.
    pub scheme: &'static str,
    /// `scheme://host[:port]` for `_links`, instead of the request's `Host` (behind a proxy, or
    /// to pin the name clients see).
    pub public_url: Option<String>,
    /// A token a Prometheus scraper may present on `/metrics` instead of an operator's.
    pub metrics_token: Option<Secret>,
    /// Longest time to read a request's body and compute its answer (408 after it).
    pub request_timeout: Duration,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            trust_forwarded_headers: false,
            scheme: "https",
            public_url: None,
            metrics_token: None,
            request_timeout: Duration::from_secs(300),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub auth: Arc<AuthService>,
    /// The audit trail (`/v5/AuditItems`), recorded by [`crate::audit`].
    pub audit: Arc<m365backup_core::audit::AuditService>,
    pub organizations: Arc<OrganizationService>,
    pub directory: Arc<DirectoryService>,
    pub backup_accounts: Arc<BackupAccountService>,
    pub jobs: Arc<JobService>,
    /// Removals from the protected users' count (`DELETE /v5/LicensedUsers/{id}`).
    pub licensing: Arc<m365backup_core::licensing::LicensingService>,
    /// This node's proxy id (jobs that name none run on it).
    pub proxy_id: uuid::Uuid,
    pub settings: Arc<ApiSettings>,
    /// Backup repositories (`/v5/BackupRepositories`, `/v5/ObjectStorageRepositories`).
    pub repositories: Arc<RepositoryService>,
    /// The server nodes (`/v5/Proxies`).
    pub proxies: Arc<dyn ProxyStore>,
    /// Restore sessions and their events (`/v5/RestoreSessions`).
    pub restore: Arc<m365backup_core::restore::service::RestoreService>,
    /// Reads restore sessions' points in time from the repositories.
    pub browser: Arc<m365backup_engine::restore::browse::Browser>,
    /// Restores sessions' items to Microsoft 365.
    pub restorer: Arc<m365backup_engine::restore::write::Restorer>,
    /// Renders `/metrics` (Prometheus text format).
    pub metrics: Arc<dyn Fn() -> String + Send + Sync>,
}
