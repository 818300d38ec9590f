//! PostgreSQL backend: for several server nodes sharing one database.

use std::time::Duration;

use m365backup_core::StoreError;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::db_error;

pub struct PgStore {
    pub(crate) read: PgPool,
    /// The same pool as `read`: PostgreSQL handles concurrent writers itself.
    pub(crate) write: PgPool,
    /// `GET /v5/Organizations` from memory.
    pub(crate) organizations:
        crate::org_cache::ListCache<m365backup_core::organizations::Organization>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl PgStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(db_error("connect"))?;
        // Migrations take an advisory lock, so nodes starting together apply them once.
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::backend("migrating the schema", e))?;
        Ok(Self {
            read: pool.clone(),
            write: pool,
            organizations: Default::default(),
        })
    }
}

crate::queries::impl_store!(
    PgStore,
    sqlx::Postgres,
    "postgres",
    "SELECT id FROM organizations WHERE id = $1 FOR UPDATE"
);

// A run is claimed under a row lock (PostgreSQL) or the single writer (SQLite).
crate::jobs::impl_job_store!(PgStore, sqlx::Postgres, "FOR UPDATE SKIP LOCKED");
// The registry, proxies and repository catalogs.
mod repository_stores {
    use super::PgStore;
    crate::repositories::impl_repository_stores!(
        PgStore,
        sqlx::Postgres,
        "SELECT id FROM repositories WHERE id = $1 FOR UPDATE",
        "SELECT document FROM repositories WHERE id = $1 FOR UPDATE"
    );
}
// The audit trail.
mod audit_store {
    use super::PgStore;
    crate::audit::impl_audit_store!(PgStore);
}
