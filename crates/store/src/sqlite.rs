//! SQLite backend: a file in the data dir, WAL journal, foreign keys on.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use m365backup_core::StoreError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use crate::db_error;

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
        Self::open(SqliteConnectOptions::from_str(url).map_err(db_error("open_url"))?).await
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
            .map_err(db_error("open"))?;
        MIGRATOR
            .run(&write)
            .await
            .map_err(|e| StoreError::backend("migrating the schema", e))?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.read_only(true))
            .await
            .map_err(db_error("open"))?;
        Ok(Self {
            read,
            write,
            organizations: Default::default(),
        })
    }
}

/// The database and its journal files, readable by the owner only and never a symbolic link
/// (SQLite would follow it, so whoever planted one would redirect the database). SQLite gives
/// the WAL and shared-memory files the database file's mode, so creating it 0600 covers them;
/// files left by an older version are narrowed here.
fn make_private(db: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if db.as_os_str().is_empty() || db.to_str() == Some(":memory:") {
            return Ok(());
        }
        let files = database_files(db);
        refuse_symbolic_links(&files)?;
        let private =
            |e: std::io::Error| StoreError::backend("making the database file private", e);
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(db)
            .map_err(private)?;
        for path in &files {
            match std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(private(e)),
            }
        }
    }
    Ok(())
}

/// The database file and the journal files SQLite keeps beside it.
fn database_files(db: &Path) -> Vec<std::path::PathBuf> {
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| {
            let mut path = db.as_os_str().to_owned();
            path.push(suffix);
            path.into()
        })
        .collect()
}

/// Fails on the first of `files` that is a symbolic link (a missing file is fine).
fn refuse_symbolic_links(files: &[std::path::PathBuf]) -> Result<(), StoreError> {
    for path in files {
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(StoreError::SymbolicLink(path.display().to_string()));
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn database_files_that_are_symbolic_links_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "untouched").unwrap();
        let db = dir.path().join("m365backup.db");
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let link = dir.path().join(format!("m365backup.db{suffix}"));
            std::os::unix::fs::symlink(&target, &link).unwrap();
            let err = make_private(&db).unwrap_err();
            assert!(matches!(err, StoreError::SymbolicLink(_)), "{err}");
            assert!(err.to_string().contains("symbolic link"), "{err}");
            std::fs::remove_file(&link).unwrap();
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"untouched");
        make_private(&db).unwrap();
    }
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
