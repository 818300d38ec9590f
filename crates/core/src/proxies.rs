//! Proxies: the backup workers of the v5 API. Each running `m365backup serve` node is one,
//! registered in the state store at start with a stable id and kept alive by a heartbeat.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::store::StoreResult;

/// How long a proxy counts as `Online` after its last heartbeat.
pub const ONLINE_WINDOW: chrono::TimeDelta = chrono::TimeDelta::seconds(90);
/// How often a running node beats.
pub const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proxy {
    pub id: uuid::Uuid,
    pub host_name: String,
    pub description: String,
    pub port: u16,
    pub threads: u32,
    pub created_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
}

impl Proxy {
    pub fn is_online(&self, now: DateTime<Utc>) -> bool {
        now.signed_duration_since(self.heartbeat_at) < ONLINE_WINDOW
    }
}

#[async_trait]
pub trait ProxyStore: Send + Sync {
    /// Registers the proxy, or refreshes its host name, port and heartbeat (keeping its
    /// description and creation time).
    async fn register_proxy(&self, proxy: &Proxy) -> StoreResult<()>;
    async fn proxy_heartbeat(&self, id: uuid::Uuid, at: DateTime<Utc>) -> StoreResult<()>;
    /// All proxies, oldest first (the first is the default one).
    async fn list_proxies(&self) -> StoreResult<Vec<Proxy>>;
}
