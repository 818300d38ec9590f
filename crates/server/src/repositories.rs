//! This node's share of the repositories: it registers itself as a v5 proxy (stable id in the
//! data dir, heartbeat in the state store), creates `Default Backup Repository` on first start,
//! and applies each repository's retention at its daily time.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use m365backup_core::proxies::{Proxy, ProxyStore, HEARTBEAT_EVERY};
use m365backup_repo::registry::RepositoryService;
use m365backup_store::StoreParts;
use tokio::task::JoinHandle;

use crate::config::Settings;

pub const PROXY_ID_FILE: &str = "proxy.id";
pub const DEFAULT_REPOSITORY_DIR: &str = "repository";
/// Worker threads a proxy reports (the vendor's default).
pub const PROXY_THREADS: u32 = 64;
const RETENTION_TICK: Duration = Duration::from_secs(60);

/// This node's id as a proxy, kept in the data dir so it survives restarts.
pub fn proxy_id(settings: &Settings) -> anyhow::Result<uuid::Uuid> {
    let path = settings.data_dir.join(PROXY_ID_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        return text
            .trim()
            .parse()
            .with_context(|| format!("{} does not hold a GUID", path.display()));
    }
    let id = uuid::Uuid::new_v4();
    crate::fsutil::write_private(&path, format!("{id}\n").as_bytes())?;
    Ok(id)
}

/// The repository service on this store, as this node (for `serve` and the CLI).
pub fn service(settings: &Settings, parts: &StoreParts) -> anyhow::Result<Arc<RepositoryService>> {
    let sealer = Arc::new(crate::server_key::load_or_create(
        &settings.server_key_file,
        &settings.data_dir,
    )?);
    Ok(Arc::new(RepositoryService::new(
        parts.registry.clone(),
        parts.catalog.clone(),
        sealer,
        proxy_id(settings)?,
    )))
}

/// The repository registry as jobs see it: which repositories exist, and the default one.
pub struct Registry(pub Arc<RepositoryService>);

#[async_trait::async_trait]
impl m365backup_core::jobs::service::RepositoryDirectory for Registry {
    async fn default_repository(&self) -> m365backup_core::error::CoreResult<uuid::Uuid> {
        self.0
            .list()
            .await?
            .into_iter()
            .find(|r| r.is_default)
            .map(|r| r.id)
            .ok_or_else(|| {
                m365backup_core::CoreError::Invalid(
                    "repositoryId is required: this server has no default backup repository".into(),
                )
            })
    }

    async fn repository_exists(&self, id: uuid::Uuid) -> m365backup_core::error::CoreResult<bool> {
        Ok(self.0.list().await?.iter().any(|r| r.id == id))
    }
}

pub struct RepositoryNode {
    pub service: Arc<RepositoryService>,
    pub proxies: Arc<dyn ProxyStore>,
    proxy: Proxy,
    tasks: Vec<JoinHandle<()>>,
}

impl RepositoryNode {
    /// Records the port the API really listens on (known once bound, e.g. with port 0).
    pub async fn announce_port(&self, port: u16) -> anyhow::Result<()> {
        let proxy = Proxy {
            port,
            heartbeat_at: Utc::now(),
            ..self.proxy.clone()
        };
        self.proxies
            .register_proxy(&proxy)
            .await
            .context("registering this node as a proxy")
    }

    pub fn stop(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

pub async fn start_node(settings: &Settings, parts: &StoreParts) -> anyhow::Result<RepositoryNode> {
    let service = service(settings, parts)?;
    let id = service.proxy_id();
    let host_name = m365backup_repo::lock::hostname();
    let now = Utc::now();
    let proxy = Proxy {
        id,
        host_name: host_name.clone(),
        description: format!("m365backup on {host_name}"),
        port: settings.listen.port(),
        threads: PROXY_THREADS,
        created_at: now,
        heartbeat_at: now,
    };
    parts
        .proxies
        .register_proxy(&proxy)
        .await
        .context("registering this node as a proxy")?;
    match service
        .ensure_default(&settings.data_dir.join(DEFAULT_REPOSITORY_DIR))
        .await
    {
        Ok(Some(r)) => {
            tracing::info!(path = %r.storage.display(), "created the default backup repository")
        }
        Ok(None) => {}
        Err(e) => {
            tracing::error!(error = %m365backup_core::Chain(&e), "the default backup repository could not be created")
        }
    }
    let heartbeat = {
        let proxies = parts.proxies.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
            loop {
                tick.tick().await;
                if let Err(e) = proxies.proxy_heartbeat(id, Utc::now()).await {
                    tracing::warn!(error = %m365backup_core::Chain(&e), "proxy heartbeat failed");
                }
            }
        })
    };
    let retention = {
        let service = service.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RETENTION_TICK);
            loop {
                tick.tick().await;
                service.run_due_retention(Utc::now()).await;
            }
        })
    };
    Ok(RepositoryNode {
        service,
        proxies: parts.proxies.clone(),
        proxy,
        tasks: vec![heartbeat, retention],
    })
}
