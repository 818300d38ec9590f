//! The job scheduler of a server node: claims due runs from the state store (a row lock, so
//! nodes sharing PostgreSQL never run one job twice), runs them through a [`JobRunner`], keeps
//! their sessions alive (heartbeat), stops them when asked or when the backup window closes,
//! and ends them: status, next run, and a retry of the failed objects when the schedule wants
//! one. Sessions whose node died (no heartbeat, or this node before a restart) end `Failed`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use m365backup_core::error::CoreResult;
use m365backup_core::jobs::model::{
    JobSession, JobSessionId, JobStatus, LogItem, SessionStatistics, SessionStatus,
};
use m365backup_core::jobs::service::JobService;
use m365backup_core::jobs::store::{ClaimedRun, PendingRetry, RunEnd};
use m365backup_core::store::Store;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

/// What runs a claimed job: the backup engine.
#[async_trait]
pub trait JobRunner: Send + Sync + 'static {
    /// Backs up what the run covers, reporting through `session`, until done or `cancel`led.
    async fn run(
        &self,
        run: &ClaimedRun,
        session: &SessionLog,
        cancel: CancellationToken,
    ) -> RunOutcome;
}

/// How a run ended, as the runner tells it.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub status: SessionStatus,
    /// Objects that failed (retried by a retry run).
    pub failed_objects: Vec<String>,
    /// The session's `details` line.
    pub details: String,
}

/// Timing of the scheduler.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// How often due runs are looked for (a manual start wakes it at once).
    pub tick: Duration,
    /// How often a running session says it is alive, and checks for a stop request.
    pub heartbeat: Duration,
    /// A session silent this long belongs to a dead node.
    pub stale_after: Duration,
    /// Runs at once on this node.
    pub max_concurrent_runs: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(5),
            heartbeat: Duration::from_secs(2),
            stale_after: Duration::from_secs(120),
            max_concurrent_runs: 4,
        }
    }
}

/// A running session's voice: its log items, progress and statistics, written to the store.
#[derive(Clone)]
pub struct SessionLog {
    store: Arc<dyn Store>,
    session: Arc<tokio::sync::Mutex<JobSession>>,
}

impl SessionLog {
    pub fn new(store: Arc<dyn Store>, session: JobSession) -> Self {
        Self {
            store,
            session: Arc::new(tokio::sync::Mutex::new(session)),
        }
    }

    pub async fn id(&self) -> JobSessionId {
        self.session.lock().await.id
    }

    /// Appends a finished log line (`[Success] …`, `[Warning] …`, `[Failed] …`).
    pub async fn line(&self, title: &str) -> CoreResult<LogItem> {
        let id = self.id().await;
        let now = Utc::now();
        Ok(self
            .store
            .append_log_item(id, title, now, Some(now))
            .await?)
    }

    /// Starts a log line that is finished later with [`SessionLog::finish_line`].
    pub async fn begin_line(&self, title: &str) -> CoreResult<LogItem> {
        let id = self.id().await;
        Ok(self
            .store
            .append_log_item(id, title, Utc::now(), None)
            .await?)
    }

    pub async fn finish_line(&self, item: &LogItem, title: &str) -> CoreResult<()> {
        Ok(self
            .store
            .update_log_item(item.id, title, Some(Utc::now()))
            .await?)
    }

    /// Saves progress (0–100) and statistics.
    pub async fn progress(&self, progress: u8, statistics: SessionStatistics) -> CoreResult<()> {
        let mut s = self.session.lock().await;
        s.progress = progress.min(100);
        s.statistics = statistics;
        Ok(self.store.update_session(&s).await?)
    }

    /// Saves progress, statistics and the live `details` line (what a progress bar shows).
    pub async fn live(
        &self,
        progress: u8,
        statistics: SessionStatistics,
        details: String,
    ) -> CoreResult<()> {
        let mut s = self.session.lock().await;
        s.progress = progress.min(100);
        s.statistics = statistics;
        s.details = details;
        Ok(self.store.update_session(&s).await?)
    }

    async fn snapshot(&self) -> JobSession {
        self.session.lock().await.clone()
    }
}

pub struct Scheduler {
    store: Arc<dyn Store>,
    jobs: Arc<JobService>,
    runner: Arc<dyn JobRunner>,
    node: Uuid,
    config: SchedulerConfig,
    /// Cancelled when the server shuts down: running sessions stop and end `Stopped`.
    shutdown: CancellationToken,
}

impl Scheduler {
    pub fn new(
        store: Arc<dyn Store>,
        jobs: Arc<JobService>,
        runner: Arc<dyn JobRunner>,
        node: Uuid,
        config: SchedulerConfig,
    ) -> Self {
        Self {
            store,
            jobs,
            runner,
            node,
            config,
            shutdown: CancellationToken::new(),
        }
    }

    /// A token that stops the scheduler and its runs when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Recovers sessions this node left behind, then claims and runs due jobs until shut down.
    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(async move {
            let this = Arc::new(self);
            if let Err(e) = this.recover(Some(this.node)).await {
                tracing::error!(error = %m365backup_core::Chain(&e), "recovering interrupted sessions failed");
            }
            this.run_loop().await;
        })
    }

    async fn run_loop(self: Arc<Self>) {
        let slots = Arc::new(Semaphore::new(self.config.max_concurrent_runs.max(1)));
        let wake = self.jobs.wake_signal();
        let mut runs = tokio::task::JoinSet::new();
        loop {
            // Claim as many due runs as there are free slots.
            while let Ok(slot) = slots.clone().try_acquire_owned() {
                match self
                    .store
                    .claim_due_run(Utc::now(), self.node, JobSessionId::new_random())
                    .await
                {
                    Ok(Some(claimed)) => {
                        let this = self.clone();
                        runs.spawn(async move {
                            this.execute(claimed).await;
                            drop(slot);
                        });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %m365backup_core::Chain(&e), "claiming due jobs failed");
                        break;
                    }
                }
            }
            if let Err(e) = self.recover(None).await {
                tracing::warn!(error = %m365backup_core::Chain(&e), "looking for abandoned sessions failed");
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(self.config.tick) => {}
                Some(_) = runs.join_next(), if !runs.is_empty() => {}
            }
        }
        // Let running sessions stop and record themselves.
        while runs.join_next().await.is_some() {}
    }

    /// Ends sessions whose node is gone: this node's own from before a restart (`node`), and
    /// any whose heartbeat is stale.
    async fn recover(&self, node: Option<Uuid>) -> CoreResult<()> {
        let stale_before =
            Utc::now() - chrono::Duration::from_std(self.config.stale_after).unwrap_or_default();
        let abandoned = self.store.abandoned_sessions(node, stale_before).await?;
        for mut session in abandoned {
            tracing::warn!(session = %session.id, job = %session.job_id, "session interrupted; marking it failed");
            let now = Utc::now();
            session.status = SessionStatus::Failed;
            session.end_time = Some(now);
            session.details = "The run was interrupted: the server stopped while it ran.".into();
            self.store
                .append_log_item(
                    session.id,
                    "[Failed] The job session was interrupted (the server stopped); the next run resumes from the last committed restore point",
                    now,
                    Some(now),
                )
                .await?;
            let next_run = match self.store.get_job(session.job_id).await? {
                Some(job) => self.jobs.next_run(&job.definition, job.is_enabled, now),
                None => None,
            };
            let end = RunEnd {
                last_status: JobStatus::Failed,
                last_run: session.creation_time,
                next_run,
                retry: None,
            };
            self.store.finish_run(&session, &end).await?;
        }
        Ok(())
    }

    /// One run: heartbeat and stop checks beside the runner, then the end of the session.
    async fn execute(self: Arc<Self>, claimed: ClaimedRun) {
        let span = tracing::info_span!(
            "job_run",
            organization = %claimed.job.organization_id,
            job = %claimed.job.id,
            session = %claimed.session.id
        );
        async move {
            let log = SessionLog::new(self.store.clone(), claimed.session.clone());
            let cancel = self.shutdown.child_token();
            let window_closed = CancellationToken::new();
            let watchdog = self.spawn_watchdog(&claimed, cancel.clone(), window_closed.clone());
            let started = Utc::now();
            let _ = log
                .line(&format!(
                    "[Success] Job started at {}",
                    started.format("%Y-%m-%d %H:%M:%S UTC")
                ))
                .await;
            let mut outcome = self.runner.run(&claimed, &log, cancel.clone()).await;
            watchdog.abort();
            if window_closed.is_cancelled() && outcome.status == SessionStatus::Stopped {
                outcome.status = SessionStatus::Warning;
                let _ = log
                    .line("[Warning] The backup window closed: the run was stopped; the next run continues")
                    .await;
            }
            self.finish(&claimed, &log, outcome).await;
        }
        .instrument(span)
        .await
    }

    /// Heartbeat, stop requests (from any node, through the store) and the backup window.
    fn spawn_watchdog(
        &self,
        claimed: &ClaimedRun,
        cancel: CancellationToken,
        window_closed: CancellationToken,
    ) -> JoinHandle<()> {
        let store = self.store.clone();
        let session = claimed.session.id;
        let every = self.config.heartbeat;
        let window_end = claimed
            .job
            .definition
            .schedule
            .window_closes_after(Utc::now());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let now = Utc::now();
                if let Err(e) = store.heartbeat(session, now).await {
                    tracing::warn!(error = %m365backup_core::Chain(&e), "session heartbeat failed");
                }
                if store.stop_requested(session).await.unwrap_or(false) {
                    tracing::info!("stop requested");
                    cancel.cancel();
                    return;
                }
                if window_end.is_some_and(|end| now >= end) {
                    tracing::info!("backup window closed");
                    window_closed.cancel();
                    cancel.cancel();
                    return;
                }
            }
        })
    }

    /// Saves the final session, and the job's status, next run and any retry it owes.
    async fn finish(&self, claimed: &ClaimedRun, log: &SessionLog, outcome: RunOutcome) {
        let now = Utc::now();
        let job = &claimed.job;
        let schedule = &job.definition.schedule;
        let mut session = log.snapshot().await;
        session.status = outcome.status;
        session.end_time = Some(now);
        session.details = outcome.details.clone();
        if outcome.status == SessionStatus::Success {
            session.progress = 100;
        }
        let title = match outcome.status {
            SessionStatus::Success => format!(
                "[Success] Job finished at {}",
                now.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            SessionStatus::Warning => format!(
                "[Warning] Job finished with warnings at {}",
                now.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            SessionStatus::Failed => format!(
                "[Failed] Job failed at {}",
                now.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            SessionStatus::Stopped => format!(
                "[Warning] Job stopped at {}",
                now.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            SessionStatus::Running => String::new(),
        };
        if !title.is_empty() {
            let _ = log.line(&title).await;
        }
        let current = self.store.get_job(job.id).await.ok().flatten();
        let (enabled, definition) = match &current {
            Some(j) => (j.is_enabled, &j.definition),
            None => (job.is_enabled, &job.definition),
        };
        let mut next_run = self.jobs.next_run(definition, enabled, now);
        let failed = matches!(
            outcome.status,
            SessionStatus::Failed | SessionStatus::Warning
        ) && !outcome.failed_objects.is_empty();
        // Retries belong to scheduled jobs; a manual job is run again by hand.
        let retry = (failed
            && enabled
            && schedule.is_scheduled()
            && schedule.retry_enabled
            && schedule.retry_number > session.retry_count)
            .then(|| PendingRetry {
                count: session.retry_count + 1,
                objects: outcome.failed_objects.clone(),
            });
        if retry.is_some() {
            let at = now + chrono::Duration::minutes(i64::from(schedule.retry_wait_interval));
            next_run = Some(next_run.map_or(at, |n| n.min(at)));
        }
        let end = RunEnd {
            last_status: match outcome.status {
                SessionStatus::Success => JobStatus::Success,
                SessionStatus::Warning => JobStatus::Warning,
                SessionStatus::Failed => JobStatus::Failed,
                SessionStatus::Stopped | SessionStatus::Running => JobStatus::Stopped,
            },
            last_run: session.creation_time,
            next_run,
            retry,
        };
        match self.store.finish_run(&session, &end).await {
            Ok(()) => tracing::info!(status = ?outcome.status, "job run finished"),
            Err(e) => {
                tracing::error!(error = %m365backup_core::Chain(&e), "saving the end of a job run failed")
            }
        }
    }
}
