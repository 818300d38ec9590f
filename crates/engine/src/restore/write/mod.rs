//! Restoring backed-up items to Microsoft 365: back where they were
//! (`restoretoOriginallocation`, `restoreTo`) or into another OneDrive or library (`copyTo`).
//!
//! - [`options`]: what a restore is asked to do, and the names it refuses.
//! - [`target`]: the account pool it writes through and the drive a copy goes to.
//! - [`tree`]: walking the selection, folders first, documents to bounded workers.
//! - [`upload`]: one document compared, then written (simple upload or upload session).
//! - [`sharing`]: the recorded sharing re-created.
//! - [`stats`]: what happened to each item.
//! - [`report`]: the session event a restore records.
//!
//! [`Restorer::prepare`] checks everything it can before a byte is written (the target, the
//! credentials); [`PreparedRestore::run`] then writes, and never fails as a whole: every item
//! ends counted, and failures are named.

pub mod options;
pub mod report;
pub mod sharing;
pub mod stats;
pub mod target;
pub mod tree;
pub mod upload;

use std::sync::Arc;

use m365backup_core::error::CoreResult;
use m365backup_core::ids::OrganizationId;
use m365backup_m365::pool::PoolError;
use m365backup_m365::M365Error;
use tokio::sync::Semaphore;

use crate::restore::selection::Selection;
use options::RestoreOptions;
use stats::{RestoreStats, Tally};
use target::Connections;
use tree::Ctx;

/// Why one item was not restored.
#[derive(Clone, Debug)]
pub struct Failure {
    pub reason: String,
}

impl Failure {
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// A short reason for an item's failure, fit for an operator.
pub fn failure_reason(e: &PoolError) -> String {
    match e {
        PoolError::AccessDenied(scope) => {
            format!("no credential may write to {scope} (access denied)")
        }
        PoolError::M365(M365Error::Graph {
            status: 403, code, ..
        }) => format!("access denied by Microsoft 365 (403 {code})"),
        PoolError::M365(M365Error::Graph { status: 404, .. }) => {
            "the target is gone from Microsoft 365 (404)".into()
        }
        PoolError::M365(M365Error::Graph {
            status: 400, code, ..
        }) => format!(
            "Microsoft 365 refused the item (400 {code}): a name or path it does not allow, or a path longer than 400 characters"
        ),
        PoolError::M365(M365Error::Graph {
            status: 409, code, ..
        }) => format!("an item of that name is in the way (409 {code})"),
        PoolError::UploadSessionExpired => {
            "the upload session expired again and again before the file was complete".into()
        }
        other => other.to_string(),
    }
}

/// How many documents one restore writes at once.
#[derive(Clone, Debug)]
pub struct RestorerConfig {
    pub files_at_once: usize,
}

impl Default for RestorerConfig {
    fn default() -> Self {
        Self { files_at_once: 8 }
    }
}

/// A restore as asked for.
pub struct RestoreRequest {
    pub organization: OrganizationId,
    pub selections: Vec<Selection>,
    pub options: RestoreOptions,
}

/// Restores to Microsoft 365 (the service the API holds).
pub struct Restorer {
    connections: Connections,
    config: RestorerConfig,
}

/// A restore checked and connected, not yet started.
pub struct PreparedRestore {
    ctx: Arc<Ctx>,
    selections: Vec<Selection>,
    copy_drive: Option<String>,
}

impl Restorer {
    pub fn new(connections: Connections, config: RestorerConfig) -> Self {
        Self {
            connections,
            config,
        }
    }

    /// Signs in and finds the target; nothing is written. A target that does not exist or an
    /// account that cannot sign in is `Invalid` (the client's mistake).
    pub async fn prepare(&self, request: RestoreRequest) -> CoreResult<PreparedRestore> {
        let RestoreRequest {
            organization,
            selections,
            options,
        } = request;
        let pool = self
            .connections
            .pool(organization, options.account.as_ref())
            .await?;
        let copy_drive = self
            .connections
            .drive_of(organization, &pool, &options.destination)
            .await?;
        // More accounts carry more documents at once.
        let files_at_once = self.config.files_at_once.max(pool.accounts() * 4).min(64);
        Ok(PreparedRestore {
            ctx: Arc::new(Ctx {
                pool,
                options,
                tally: Tally::default(),
                files_at_once: Arc::new(Semaphore::new(files_at_once)),
            }),
            selections,
            copy_drive,
        })
    }
}

impl PreparedRestore {
    /// Writes every selection; what happened to each item.
    pub async fn run(self) -> RestoreStats {
        for selection in self.selections {
            tree::restore_selection(self.ctx.clone(), selection, self.copy_drive.clone()).await;
        }
        let stats = self.ctx.tally.snapshot();
        tracing::info!(
            total = stats.total,
            restored = stats.restored,
            failed = stats.failed,
            unchanged = stats.skipped_unchanged,
            "restore to Microsoft 365 finished"
        );
        stats
    }

    /// A view of the restore's counts while it runs (for progress bars).
    pub fn progress(&self) -> RestoreProgress {
        RestoreProgress(self.ctx.clone())
    }

    /// The pool's figures per account (requests, throttles), for reports and benchmarks.
    pub fn pool(&self) -> &Arc<m365backup_m365::pool::AccountPool> {
        &self.ctx.pool
    }
}

/// The counts of a running restore, readable from elsewhere.
#[derive(Clone)]
pub struct RestoreProgress(Arc<Ctx>);

impl RestoreProgress {
    /// The counts so far (no item records).
    pub fn snapshot(&self) -> RestoreStats {
        self.0.tally.counts()
    }
}
