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
    /// `GET /v5/Organizations` from memory.
    pub(crate) organizations:
        crate::org_cache::ListCache<m365backup_core::organizations::Organization>,
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
        make_private(options.get_filename())?;
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
            .map_err(|e| StoreError::backend("migrating the schema", e))?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.read_only(true))
            .await
            .map_err(backend_error)?;
        Ok(Self {
            read,
            write,
            organizations: Default::default(),
        })
    }
}

/// The database and its journal files, readable by the owner only. SQLite gives the WAL and
/// shared-memory files the database file's mode, so creating it 0600 covers them; files left
/// by an older version are narrowed here.
fn make_private(db: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if db.as_os_str().is_empty() || db.to_str() == Some(":memory:") {
            return Ok(());
        }
        let private =
            |e: std::io::Error| StoreError::backend("making the database file private", e);
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(db)
            .map_err(private)?;
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut path = db.as_os_str().to_owned();
            path.push(suffix);
            match std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(private(e)),
            }
        }
    }
    Ok(())
}

// SQLite has no row locks; its writes are already serialized by the single write connection.
crate::queries::impl_store!(
    SqliteStore,
    sqlx::Sqlite,
    "sqlite",
    "SELECT id FROM organizations WHERE id = $1"
);

// A run is claimed under a row lock (PostgreSQL) or the single writer (SQLite).
crate::jobs::impl_job_store!(SqliteStore, sqlx::Sqlite, "");
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
// The audit trail.
mod audit_store {
    use super::SqliteStore;
    crate::audit::impl_audit_store!(SqliteStore);
}
