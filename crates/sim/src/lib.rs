//! m365sim: a Microsoft 365 tenant simulator for tests, benchmarks and demos.
//!
//! It serves the subset of the Microsoft identity platform (`/{tenant}/oauth2/v2.0/token`) and
//! of Microsoft Graph v1.0 (`/v1.0/...`) that m365backup uses to back up and to restore, over a
//! deterministic generated tenant ([`tenant`]), with Microsoft's throttling behaviour
//! ([`throttle`]), plus a control API under `/_sim/` ([`control`]) and the same control
//! in-process ([`handle`]: mutations, injected faults, the tenant's truth). Start it in-process
//! with [`start`], or run the `m365sim` binary.

pub mod behaviour;
pub mod blobs;
pub mod content;
pub mod control;
pub mod download;
pub mod faults;
pub mod graph;
pub mod handle;
pub mod identity;
pub mod tenant;
pub mod throttle;
pub mod upload;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum_server::Handle;

pub use behaviour::Behaviour;
pub use faults::{FaultKind, ItemFault, UploadFault};
pub use handle::{DriveHandle, SimError, TreeEntry, VersionEntry};
pub use tenant::{Access, Tenant, TenantSpec};
pub use throttle::{Profile, ThrottleConfig};

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub tenant: TenantSpec,
    pub throttling: ThrottleConfig,
    pub behaviour: Behaviour,
    /// Shared secret of the control API (`X-Sim-Secret` header).
    pub control_secret: String,
    /// Lifetime of issued access tokens, seconds (Microsoft: about an hour).
    pub token_lifetime_secs: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            tenant: TenantSpec::default(),
            throttling: ThrottleConfig::default(),
            behaviour: Behaviour::default(),
            control_secret: "sim-control".into(),
            token_lifetime_secs: 3599,
        }
    }
}

/// Everything the handlers share.
pub struct Sim {
    pub tenant: Tenant,
    pub throttler: throttle::Throttler,
    pub tokens: identity::TokenRegistry,
    pub downloads: download::UrlSigner,
    pub behaviour: std::sync::RwLock<Behaviour>,
    pub config: SimConfig,
    /// `http://127.0.0.1:port`, for links the simulator hands out.
    pub base_url: String,
    /// Content clients uploaded.
    pub blobs: blobs::BlobStore,
    pub faults: faults::Faults,
    pub uploads: upload::UploadSessions,
    /// `/content` requests answered (files and versions), for tests that count downloads.
    pub content_requests: std::sync::atomic::AtomicU64,
    /// `/permissions` reads answered, for tests that check sharing is read only where shared.
    pub permission_requests: std::sync::atomic::AtomicU64,
}

pub type SharedSim = Arc<Sim>;

impl Sim {
    /// `/content` requests answered so far (a file's or a version's).
    pub fn content_requests(&self) -> u64 {
        self.content_requests
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `/permissions` reads answered so far.
    pub fn permission_requests(&self) -> u64 {
        self.permission_requests
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn behaviour(&self) -> Behaviour {
        self.behaviour
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The app principal's figures: every Graph request of the tenant is charged to the app,
    /// so these count all of them (throttles of users' budgets included).
    pub fn app_stats(&self) -> throttle::PrincipalStats {
        self.throttler
            .stats()
            .into_iter()
            .find(|(p, _)| matches!(p, throttle::Principal::App(_)))
            .map(|(_, s)| s)
            .unwrap_or_default()
    }

    /// A user principal's figures (the signed-in user of delegated calls), by UPN.
    pub fn user_stats(&self, upn: &str) -> throttle::PrincipalStats {
        let Some((_, user)) = self.tenant.user_any(upn) else {
            return Default::default();
        };
        let id = user.id;
        self.throttler
            .stats()
            .into_iter()
            .find(|(p, _)| *p == throttle::Principal::User(id))
            .map(|(_, s)| s)
            .unwrap_or_default()
    }

    /// The content of a file version of `item` in drive `drive_id`.
    pub fn content(
        &self,
        drive_id: &str,
        item: &tenant::Item,
        source: content::ContentSource,
        size: u64,
    ) -> Option<content::Content> {
        match source {
            content::ContentSource::Generated { version } => Some(content::Content::Generated {
                key: item.content_key(drive_id),
                version,
                size,
            }),
            content::ContentSource::Stored(id) => self.blobs.get(id).map(content::Content::Stored),
        }
    }
}

pub fn router(sim: SharedSim) -> Router {
    Router::new()
        .merge(identity::routes())
        .merge(graph::routes())
        .merge(download::routes())
        .merge(upload::routes())
        .merge(control::routes())
        .with_state(sim)
}

/// A simulator serving on a loopback port.
pub struct RunningSim {
    pub addr: SocketAddr,
    pub sim: SharedSim,
    handle: Handle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningSim {
    /// The simulator's state, for in-process tests and benchmarks (statistics, the tenant).
    pub fn sim(&self) -> &SharedSim {
        &self.sim
    }

    /// `http://127.0.0.1:port`: the authority URL and the Graph URL (append `/v1.0`).
    pub fn base_url(&self) -> &str {
        &self.sim.base_url
    }

    pub fn graph_url(&self) -> String {
        format!("{}/v1.0", self.sim.base_url)
    }

    pub fn tenant(&self) -> &Tenant {
        &self.sim.tenant
    }

    /// The in-process control of one drive (mutations, faults, truth): see [`handle`].
    pub fn drive(&self, id: &str) -> Result<DriveHandle, SimError> {
        DriveHandle::new(&self.sim, id)
    }

    /// The control of a user's OneDrive, by principal name or id.
    pub fn onedrive(&self, user: &str) -> Result<DriveHandle, SimError> {
        handle::onedrive(&self.sim, user)
    }

    /// The in-process control of the tenant itself: users, access, sessions, faults.
    pub fn control(&self) -> handle::TenantHandle {
        handle::TenantHandle::new(&self.sim)
    }

    pub async fn shutdown(self) {
        self.handle
            .graceful_shutdown(Some(std::time::Duration::from_secs(2)));
        let _ = self.task.await;
    }
}

/// Generates the tenant and serves it over plain HTTP on `listen` (port 0: any free port).
pub async fn start(config: SimConfig, listen: SocketAddr) -> anyhow::Result<RunningSim> {
    let tenant = Tenant::generate(&config.tenant)?;
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        addr.ip().to_string()
    };
    let sim = Arc::new(Sim {
        throttler: throttle::Throttler::new(
            config.throttling.clone(),
            config.tenant.seed,
            tenant.licenses,
        ),
        tokens: identity::TokenRegistry::default(),
        downloads: download::UrlSigner::new(),
        behaviour: std::sync::RwLock::new(config.behaviour.clone()),
        blobs: blobs::BlobStore::new()?,
        faults: faults::Faults::default(),
        uploads: upload::UploadSessions::default(),
        tenant,
        base_url: format!("http://{host}:{}", addr.port()),
        config,
        content_requests: Default::default(),
        permission_requests: Default::default(),
    });
    let handle = Handle::new();
    let app = router(sim.clone());
    let task = tokio::spawn(
        axum_server::from_tcp(listener)
            .handle(handle.clone())
            .serve(app.into_make_service()),
    );
    Ok(RunningSim {
        addr,
        sim,
        handle,
        task,
    })
}
