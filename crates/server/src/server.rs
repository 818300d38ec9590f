//! `m365backup serve`: opens the state, makes sure an operator exists, and serves the API over
//! HTTPS (or plain HTTP when asked) until told to stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum_server::Handle;
use m365backup_api::AppState;
use m365backup_core::audit::AuditService;
use m365backup_core::auth::{AuthService, BootstrapOutcome, OperatorService, BOOTSTRAP_ADMIN};
use m365backup_core::backup_accounts::BackupAccountService;
use m365backup_core::jobs::service::JobService;
use m365backup_core::organization_service::OrganizationService;
use m365backup_core::restore::service::RestoreService;
use m365backup_core::store::Store;
use m365backup_core::Secret;
use m365backup_engine::backup::BackupEngine;
use m365backup_engine::restore::browse::Browser;
use m365backup_engine::restore::write::target::Connections;
use m365backup_engine::restore::write::{Restorer, RestorerConfig};
use m365backup_engine::scheduler::Scheduler;
use tokio::task::JoinHandle;

use crate::config::Settings;
use crate::services::Services;

/// How long in-flight requests get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How often expired operator sessions are purged, idle restore sessions stopped and audit
/// items past their retention removed.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);

pub struct RunningServer {
    /// The address actually bound (useful with port 0).
    pub addr: SocketAddr,
    pub store: Arc<dyn Store>,
    pub organizations: Arc<OrganizationService>,
    pub backup_accounts: Arc<BackupAccountService>,
    /// Backup repositories, and this node as a proxy.
    pub repositories: Arc<m365backup_repo::registry::RepositoryService>,
    node: crate::repositories::RepositoryNode,
    /// Backup jobs and their sessions.
    pub jobs: Arc<JobService>,
    /// The simulated tenant of `serve --demo`.
    pub demo: Option<m365sim::RunningSim>,
    /// Stops the job scheduler; running sessions end `Stopped`.
    scheduler_stop: tokio_util::sync::CancellationToken,
    scheduling: JoinHandle<()>,
    handle: Handle,
    serving: JoinHandle<std::io::Result<()>>,
    housekeeping: JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting connections, lets in-flight requests finish, and returns.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        // Running backups stop first and record themselves, while the store is still open.
        self.scheduler_stop.cancel();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.scheduling)
            .await
            .is_err()
        {
            tracing::warn!("job runs did not stop in time");
        }
        self.handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
        self.housekeeping.abort();
        self.node.stop();
        let served = self.serving.await.context("server task")?.context("server");
        if let Some(sim) = self.demo {
            sim.shutdown().await;
        }
        served
    }

    /// Serves until `stop` completes (see [`shutdown_signal`]), then shuts down gracefully.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        stop.await;
        tracing::info!("shutting down");
        self.shutdown().await
    }
}

pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    create_private_dir(&settings.data_dir)?;
    let store = m365backup_store::open(
        settings.database_url.as_ref().map(Secret::expose),
        &settings.data_dir,
    )
    .await
    .context("opening the state store")?;
    Ok(store)
}

/// The state store with every interface of it (see [`m365backup_store::StoreParts`]).
pub async fn open_store_parts(settings: &Settings) -> anyhow::Result<m365backup_store::StoreParts> {
    create_private_dir(&settings.data_dir)?;
    m365backup_store::open_parts(
        settings.database_url.as_ref().map(Secret::expose),
        &settings.data_dir,
    )
    .await
    .context("opening the state store")
}

pub async fn start(settings: &Settings) -> anyhow::Result<RunningServer> {
    let parts = open_store_parts(settings).await?;
    let store = parts.store.clone();
    tracing::info!(backend = store.backend(), data_dir = %settings.data_dir.display(), "state store open");

    let operators = OperatorService::new(store.clone());
    match operators
        .ensure_bootstrap_admin(settings.bootstrap_admin_password.clone())
        .await?
    {
        BootstrapOutcome::CreatedWithGeneratedPassword(password) => {
            // Printed to stdout once, deliberately not logged.
            println!(
                "Created operator '{BOOTSTRAP_ADMIN}' with password: {}\n\
                 This password is shown only now. Change it with `m365backup admin passwd {BOOTSTRAP_ADMIN}`.",
                password.expose()
            );
        }
        BootstrapOutcome::CreatedWithGivenPassword => {
            println!("Created operator '{BOOTSTRAP_ADMIN}' with the password from M365BACKUP_ADMIN_PASSWORD.");
        }
        BootstrapOutcome::AlreadyHasOperators => {}
    }

    let auth = Arc::new(AuthService::new(store.clone(), settings.auth.clone()));
    // The demo's simulator listens before the services are built: organizations may sign in
    // at its (loopback) address, and nowhere else beyond what the configuration allows.
    let demo = if settings.demo {
        Some(crate::demo::start_sim().await?)
    } else {
        None
    };
    let mut service_settings = settings.clone();
    if let Some(sim) = &demo {
        service_settings
            .allowed_endpoints
            .push(sim.base_url().to_owned());
    }
    let Services {
        organizations,
        directory,
        backup_accounts,
    } = Services::build(&service_settings, store.clone())?;
    let node = crate::repositories::start_node(settings, &parts).await?;
    let jobs = crate::services::job_service(
        settings,
        store.clone(),
        directory.clone(),
        node.service.clone(),
    );
    let engine = Arc::new(BackupEngine::new(
        store.clone(),
        organizations.clone(),
        backup_accounts.clone(),
        node.service.clone(),
        settings.engine.clone(),
    ));
    let scheduler = Scheduler::new(
        store.clone(),
        jobs.clone(),
        engine,
        node.service.proxy_id(),
        settings.scheduler.clone(),
    );
    let restore =
        Arc::new(RestoreService::new(store.clone()).with_idle_stop(settings.restore_idle_stop));
    // Before serving: whatever a previous run left running is over.
    restore.fail_interrupted().await?;
    let browser = Arc::new(Browser::new(store.clone(), node.service.clone()));
    let restorer = Arc::new(Restorer::new(
        Connections {
            organizations: organizations.clone(),
            backup_accounts: backup_accounts.clone(),
            directory: directory.clone(),
            pool: settings.engine.pool.clone(),
        },
        RestorerConfig::default(),
    ));
    let scheduler_stop = scheduler.shutdown_token();
    let scheduling = scheduler.spawn();
    let audit = Arc::new(AuditService::new(store.clone()));
    let state = AppState {
        auth: auth.clone(),
        audit: audit.clone(),
        organizations: organizations.clone(),
        directory,
        backup_accounts: backup_accounts.clone(),
        jobs: jobs.clone(),
        licensing: Arc::new(m365backup_core::licensing::LicensingService::new(
            store.clone(),
        )),
        proxy_id: node.service.proxy_id(),
        repositories: node.service.clone(),
        proxies: node.proxies.clone(),
        settings: Arc::new(settings.api.clone()),
        restore: restore.clone(),
        browser: browser.clone(),
        restorer,
        metrics: Arc::new(|| {
            m365backup_m365::pool::render_metrics(&m365backup_m365::pool::live_pools())
        }),
    };
    let app = m365backup_api::build(state).into_make_service_with_connect_info::<SocketAddr>();

    let listener = std::net::TcpListener::bind(settings.listen)
        .with_context(|| format!("binding {}", settings.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    node.announce_port(addr.port()).await?;
    let handle = Handle::new();
    let tls = if settings.plain_http {
        tracing::warn!(%addr, "serving plain HTTP: use only behind a TLS-terminating proxy");
        None
    } else {
        Some(crate::tls::load(&settings.tls, &settings.data_dir).await?)
    };
    let serving = crate::listener::serve(listener, app, tls, &settings.connections, handle.clone());
    tracing::info!(%addr, scheme = settings.api.scheme, "m365backup API listening");

    let audit_retention = settings.audit_retention;
    let housekeeping = tokio::spawn(async move {
        let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
        loop {
            tick.tick().await;
            match restore.stop_idle().await {
                Ok(n) if n > 0 => tracing::info!(stopped = n, "idle restore sessions stopped"),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %m365backup_core::Chain(&e), "stopping idle restore sessions failed")
                }
            }
            browser.forget_idle(restore.idle_stop());
            match auth.purge_expired_sessions().await {
                Ok(n) if n > 0 => tracing::info!(purged = n, "expired sessions removed"),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %m365backup_core::Chain(&e), "purging expired sessions failed")
                }
            }
            if let Some(keep) = audit_retention {
                match audit.purge_older_than(keep).await {
                    Ok(n) if n > 0 => tracing::info!(purged = n, "old audit items removed"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "purging old audit items failed"),
                }
            }
            // Hand the allocator's free pages back, so a long-running server's RSS stays flat.
            let _ = tokio::task::spawn_blocking(m365backup_repo::memory::release_free_memory).await;
        }
    });
    if let Some(sim) = &demo {
        crate::demo::register(&organizations, sim).await?;
    }
    Ok(RunningServer {
        addr,
        store,
        organizations,
        backup_accounts,
        repositories: node.service.clone(),
        node,
        jobs,
        demo,
        scheduler_stop,
        scheduling,
        handle,
        serving,
        housekeeping,
    })
}

/// The data dir, readable by the server's user only, whatever mode it had before.
fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating data dir {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making data dir {} private (0700)", dir.display()))?;
    }
    Ok(())
}

/// Registers for SIGTERM and SIGINT (Ctrl-C) now, so a signal that arrives while the server is
/// still starting is not lost, and returns a future that completes on the first of them.
pub fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
