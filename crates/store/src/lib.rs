//! The state store: one interface ([`m365backup_core::store::Store`]), two real backends.
//!
//! - [`SqliteStore`]: the default, one file in the data dir, WAL journal. Writes go through a
//!   single connection so they never fight over SQLite's one write lock; reads use a pool.
//! - [`PgStore`]: for several server nodes sharing one PostgreSQL database.
//!
//! Both run the same SQL (written once, in [`queries`]) and carry their own migrations under
//! `migrations/<backend>/`, applied at open.

use std::path::Path;
use std::sync::Arc;

use m365backup_core::store::Store;
use m365backup_core::StoreError;

mod audit;
mod jobs;
mod org_cache;
mod postgres;
mod queries;
mod repositories;
mod sqlite;
mod time;

pub use org_cache::ORGANIZATION_LIST_TTL;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Opens the store named by `database_url`: `postgres://…`/`postgresql://…` for PostgreSQL,
/// `sqlite://path` or `None` for SQLite (default file `m365backup.db` in `data_dir`).
pub async fn open(
    database_url: Option<&str>,
    data_dir: &Path,
) -> Result<Arc<dyn Store>, StoreError> {
    match database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(PgStore::connect(url).await?))
        }
        Some(url) if url.starts_with("sqlite:") => Ok(Arc::new(SqliteStore::open_url(url).await?)),
        Some(other) => Err(StoreError::UnsupportedUrl(redact_url(other))),
        None => Ok(Arc::new(
            SqliteStore::open_file(&data_dir.join(DEFAULT_SQLITE_FILE)).await?,
        )),
    }
}

/// The store seen through each of its interfaces: the core's, the repository registry's and
/// catalog's (`m365backup-repo`), and the proxies'. All are the same connection pool.
#[derive(Clone)]
pub struct StoreParts {
    pub store: Arc<dyn Store>,
    pub registry: Arc<dyn m365backup_repo::registry::RegistryStore>,
    pub catalog: Arc<dyn m365backup_repo::Catalog>,
    pub proxies: Arc<dyn m365backup_core::proxies::ProxyStore>,
}

impl StoreParts {
    fn of<T>(store: Arc<T>) -> Self
    where
        T: Store
            + m365backup_repo::registry::RegistryStore
            + m365backup_repo::Catalog
            + m365backup_core::proxies::ProxyStore
            + 'static,
    {
        Self {
            store: store.clone(),
            registry: store.clone(),
            catalog: store.clone(),
            proxies: store,
        }
    }
}

/// Like [`open`], with every interface of the store.
pub async fn open_parts(
    database_url: Option<&str>,
    data_dir: &Path,
) -> Result<StoreParts, StoreError> {
    match database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(StoreParts::of(Arc::new(PgStore::connect(url).await?)))
        }
        Some(url) if url.starts_with("sqlite:") => {
            Ok(StoreParts::of(Arc::new(SqliteStore::open_url(url).await?)))
        }
        Some(other) => Err(StoreError::UnsupportedUrl(redact_url(other))),
        None => Ok(StoreParts::of(Arc::new(
            SqliteStore::open_file(&data_dir.join(DEFAULT_SQLITE_FILE)).await?,
        ))),
    }
}

pub const DEFAULT_SQLITE_FILE: &str = "m365backup.db";

/// A database URL for logs: any password in it replaced, in the user info (`user:pass@`) and in
/// the query (`password=`, `sslpassword=`, any case). A URL this leaves unchanged holds no
/// password.
pub fn redact_url(url: &str) -> String {
    match url.split_once('?') {
        Some((base, query)) => format!("{}?{}", redact_userinfo(base), redact_query(query)),
        None => redact_userinfo(url),
    }
}

/// `scheme://user:pass@host…` with the password replaced (the last `@` ends the user info, so
/// a password with an unescaped `@` is hidden whole).
fn redact_userinfo(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A query string with the value of every parameter named `…password` replaced.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.to_ascii_lowercase().ends_with("password") => {
                format!("{key}=***")
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The store's error for a driver error met in `doing` (the store function that failed, so a log
/// says which query broke): a broken uniqueness rule is a conflict; anything else keeps the
/// driver's error as its source.
pub(crate) fn db_error(doing: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_owned())
        }
        _ => StoreError::backend(doing, e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_password() {
        assert_eq!(
            super::redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact_url("sqlite://x.db"), "sqlite://x.db");
    }

    #[test]
    fn redacts_a_password_in_the_query() {
        assert_eq!(
            super::redact_url("postgres://u@h/db?password=secret"),
            "postgres://u@h/db?password=***"
        );
        assert_eq!(
            super::redact_url("postgresql://h:5432/db?sslmode=require&PassWord=se%40cret&user=u"),
            "postgresql://h:5432/db?sslmode=require&PassWord=***&user=u"
        );
        assert_eq!(
            super::redact_url("postgres://u@h/db?sslpassword=k&password=a@b"),
            "postgres://u@h/db?sslpassword=***&password=***"
        );
        assert_eq!(
            super::redact_url("postgres://u:p@h/db?password=q"),
            "postgres://u:***@h/db?password=***"
        );
        // Nothing to hide: unchanged, which is how "no password here" is checked.
        let plain = "postgres://u@h/db?sslmode=require&application_name=m365backup";
        assert_eq!(super::redact_url(plain), plain);
        // A parameter that merely mentions a password in its value is not one.
        let mention = "postgres://u@h/db?application_name=password";
        assert_eq!(super::redact_url(mention), mention);
    }
}
