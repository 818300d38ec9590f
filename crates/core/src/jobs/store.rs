//! How jobs, their items, sessions and log items are kept (implemented by `m365backup-store`).
//! Every state change of a job is one statement or one transaction, so two nodes sharing a
//! database never run one job twice: a run is claimed with a row lock.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::ids::OrganizationId;
use crate::jobs::model::{
    BackupItem, BackupItemId, Job, JobId, JobSession, JobSessionId, JobStatus, LogItem, LogItemId,
};
use crate::store::StoreResult;

/// Which list of a job's items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemList {
    Selected,
    Excluded,
}

/// A run the store handed to a node: the job as it was claimed and its new session.
#[derive(Clone, Debug)]
pub struct ClaimedRun {
    pub job: Job,
    pub session: JobSession,
    /// Objects a retry run is limited to (those that failed in the run before).
    pub retry_objects: Option<Vec<String>>,
}

/// A retry the next run of a job owes (`retryNumber` after `retryWaitInterval`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingRetry {
    /// Retries already made for the run that failed first.
    pub count: u32,
    /// Protected objects (by our object key) that failed.
    pub objects: Vec<String>,
}

/// How a run ended, as the job keeps it.
#[derive(Clone, Debug)]
pub struct RunEnd {
    pub last_status: JobStatus,
    pub last_run: DateTime<Utc>,
    pub next_run: Option<DateTime<Utc>>,
    pub retry: Option<PendingRetry>,
}

/// One page of a list, and how many there are in all.
#[derive(Clone, Debug)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub total: u64,
}

#[async_trait]
pub trait JobStore: Send + Sync {
    /// Adds a job with its items; `Conflict` when the organization has a job of that name.
    async fn insert_job(
        &self,
        job: &Job,
        selected: &[BackupItem],
        excluded: &[BackupItem],
    ) -> StoreResult<()>;
    /// Saves a job's definition, enabled flag and next run (never its run state).
    async fn update_job(&self, job: &Job) -> StoreResult<bool>;
    /// Removes an idle job and its items and sessions; `false` when it is unknown or running.
    async fn delete_job(&self, id: JobId) -> StoreResult<bool>;
    async fn get_job(&self, id: JobId) -> StoreResult<Option<Job>>;
    async fn list_jobs(&self, organization: Option<OrganizationId>) -> StoreResult<Vec<Job>>;
    /// Jobs writing to a repository (it cannot be removed while any does).
    async fn count_jobs_using_repository(&self, repository: Uuid) -> StoreResult<u64>;

    async fn job_items(&self, job: JobId, list: ItemList) -> StoreResult<Vec<BackupItem>>;
    async fn add_job_items(
        &self,
        job: JobId,
        list: ItemList,
        items: &[BackupItem],
    ) -> StoreResult<()>;
    /// Removes the named items of one list; how many were removed.
    async fn remove_job_items(
        &self,
        job: JobId,
        list: ItemList,
        ids: &[BackupItemId],
    ) -> StoreResult<u64>;

    /// Idle → queued (a manual start). `false` when the job is unknown, queued or running.
    async fn queue_job(&self, id: JobId) -> StoreResult<bool>;
    /// Queued → idle. `false` when it was not queued.
    async fn dequeue_job(&self, id: JobId) -> StoreResult<bool>;
    /// Claims one run that is due at `now` (queued, or enabled with its next run passed) for
    /// `node`, and stores its session; `None` when nothing is due.
    async fn claim_due_run(
        &self,
        now: DateTime<Utc>,
        node: Uuid,
        session: JobSessionId,
    ) -> StoreResult<Option<ClaimedRun>>;
    /// Marks a run's session as still worked on.
    async fn heartbeat(&self, session: JobSessionId, now: DateTime<Utc>) -> StoreResult<()>;
    /// Ends a run: the session is saved final and the job is idle again.
    async fn finish_run(&self, session: &JobSession, end: &RunEnd) -> StoreResult<()>;
    /// Asks the running session of a job to stop; the session, or `None` when not running.
    async fn request_stop(&self, job: JobId) -> StoreResult<Option<JobSessionId>>;
    async fn stop_requested(&self, session: JobSessionId) -> StoreResult<bool>;
    /// Running sessions whose node is gone: those claimed by `node` (this node, before a
    /// restart) and those whose heartbeat is older than `stale_before`.
    async fn abandoned_sessions(
        &self,
        node: Option<Uuid>,
        stale_before: DateTime<Utc>,
    ) -> StoreResult<Vec<JobSession>>;
    /// Clears a job's pending retry (after the job was edited or disabled).
    async fn set_pending_retry(&self, job: JobId, retry: Option<&PendingRetry>) -> StoreResult<()>;

    /// Notes a backup of the organization at `at` (its `firstBackuptime`/`lastBackuptime`).
    async fn record_backup_time(
        &self,
        organization: OrganizationId,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;

    async fn update_session(&self, session: &JobSession) -> StoreResult<()>;
    async fn get_session(&self, id: JobSessionId) -> StoreResult<Option<JobSession>>;
    /// Sessions newest first, of one job or of all.
    async fn list_sessions(
        &self,
        job: Option<JobId>,
        offset: u64,
        limit: u64,
    ) -> StoreResult<Paged<JobSession>>;

    /// Appends a log line; its `usn` is assigned here.
    async fn append_log_item(
        &self,
        session: JobSessionId,
        title: &str,
        creation_time: DateTime<Utc>,
        end_time: Option<DateTime<Utc>>,
    ) -> StoreResult<LogItem>;
    async fn update_log_item(
        &self,
        id: LogItemId,
        title: &str,
        end_time: Option<DateTime<Utc>>,
    ) -> StoreResult<()>;
    async fn get_log_item(&self, id: LogItemId) -> StoreResult<Option<LogItem>>;
    /// Log lines of a session, oldest first.
    async fn list_log_items(
        &self,
        session: JobSessionId,
        offset: u64,
        limit: u64,
    ) -> StoreResult<Paged<LogItem>>;
}
