//! SQLite backend: a file in the data dir, WAL journal, foreign keys on.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use m365backup_core::StoreError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use crate::backend_error;

pub struct SqliteStore {
    /// Many readers (WAL lets them run beside the writer).
    pub(crate) read: SqlitePool,
    /// Exactly one connection: SQLite has one write lock, and queueing here beats SQLITE_BUSY.
    pub(crate) write: SqlitePool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl SqliteStore {
    pub async fn open_file(path: &Path) -> Result<Self, StoreError> {
        Self::open(SqliteConnectOptions::new().filename(path)).await
    }

    pub async fn open_url(url: &str) -> Result<Self, StoreError> {
        Self::open(SqliteConnectOptions::from_str(url).map_err(backend_error)?).await
    }

    async fn open(options: SqliteConnectOptions) -> Result<Self, StoreError> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(backend_error)?;
        MIGRATOR
            .run(&write)
            .await
            .map_err(|e| StoreError::Backend(format!("migrations: {e}")))?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.read_only(true))
            .await
            .map_err(backend_error)?;
        Ok(Self { read, write })
    }
}

// SQLite has no row locks; its writes are already serialized by the single write connection.
crate::queries::impl_store!(
    SqliteStore,
    sqlx::Sqlite,
    "sqlite",
    "SELECT id FROM organizations WHERE id = $1"
);

// The registry, proxies and repository catalogs (SQLite's writes are already serialized).
mod repository_stores {
    use super::SqliteStore;
    crate::repositories::impl_repository_stores!(
        SqliteStore,
        sqlx::Sqlite,
        "SELECT id FROM repositories WHERE id = $1",
        "SELECT document FROM repositories WHERE id = $1"
    );
}
