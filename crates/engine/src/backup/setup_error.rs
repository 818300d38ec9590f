//! Why a backup run could not start backing up: each failure keeps the error behind it, and the
//! session log shows the whole chain (`Chain`).

use m365backup_core::{CoreError, StoreError};
use m365backup_m365::pool::PoolError;

/// A run that ends before its first object: the organization, its accounts, the job's items.
#[derive(Debug, thiserror::Error)]
pub enum RunSetupError {
    #[error("the organization's settings cannot be used")]
    Settings(#[source] CoreError),
    #[error("the backup accounts cannot be opened")]
    BackupAccounts(#[source] CoreError),
    #[error("the HTTP client cannot start")]
    HttpClient(#[source] reqwest::Error),
    #[error("no backup account and not the organization's own credentials could sign in")]
    NoSignIn,
    #[error("the job's items cannot be read")]
    JobItems(#[source] StoreError),
    #[error("the organization's OneDrives and sites could not be listed")]
    Objects(#[source] PoolError),
}
