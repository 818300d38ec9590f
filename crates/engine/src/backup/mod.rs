//! The backup engine: runs a claimed job. It connects to the organization through its backup
//! accounts (one account pool per organization on this node, shared by its jobs), resolves the
//! job's items to protected objects ([`objects`]), backs each up into the job's repository
//! ([`drive`]) several at a time, and reports to the job session as it goes: progress and
//! statistics ([`progress`]), one log line per object and one per backup account.

pub mod drive;
pub mod objects;
pub mod progress;
pub mod setup_error;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use futures_util::stream::{self, StreamExt};
use m365backup_core::backup_accounts::BackupAccountService;
use m365backup_core::error::Chain;
use m365backup_core::ids::OrganizationId;
use m365backup_core::jobs::model::SessionStatus;
use m365backup_core::jobs::store::{ClaimedRun, ItemList};
use m365backup_core::organization_service::OrganizationService;
use m365backup_core::store::Store;
use m365backup_m365::pool::{AccountPool, PoolConfig};
use m365backup_repo::registry::RepositoryService;
use m365backup_repo::{ObjectKind, ProtectedObject, Repository};
use tokio_util::sync::CancellationToken;

use crate::backup::drive::{DriveOptions, ObjectResult};
use crate::backup::progress::{details_line, human_bytes, RunCounters, StatisticsMaker};
use crate::backup::setup_error::RunSetupError;
use crate::pool_builder::build_pool;
use crate::scheduler::{JobRunner, RunOutcome, SessionLog};

/// How much a run does at once.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Objects backed up at once (at least this many, more with more backup accounts).
    pub objects_at_once: usize,
    /// Files downloaded at once per object.
    pub downloads_per_object: usize,
    /// How often the session's progress is saved.
    pub progress_every: Duration,
    pub pool: PoolConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            objects_at_once: 4,
            downloads_per_object: 4,
            progress_every: Duration::from_secs(2),
            pool: PoolConfig::default(),
        }
    }
}

pub struct BackupEngine {
    store: Arc<dyn Store>,
    organizations: Arc<OrganizationService>,
    backup_accounts: Arc<BackupAccountService>,
    repositories: Arc<RepositoryService>,
    config: EngineConfig,
    /// One pool per organization on this node: its jobs share their accounts' budgets.
    pools: Mutex<HashMap<OrganizationId, Weak<AccountPool>>>,
}

impl BackupEngine {
    pub fn new(
        store: Arc<dyn Store>,
        organizations: Arc<OrganizationService>,
        backup_accounts: Arc<BackupAccountService>,
        repositories: Arc<RepositoryService>,
        config: EngineConfig,
    ) -> Self {
        Self {
            store,
            organizations,
            backup_accounts,
            repositories,
            config,
            pools: Mutex::default(),
        }
    }

    /// The organization's pool: the live one, or a new one signed in now.
    async fn pool(&self, org: OrganizationId) -> Result<(Arc<AccountPool>, String), RunSetupError> {
        let live = self
            .pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&org)
            .and_then(Weak::upgrade);
        let (organization, connection) = self
            .organizations
            .connection(org)
            .await
            .map_err(RunSetupError::Settings)?;
        if let Some(pool) = live {
            return Ok((pool, organization.name));
        }
        let accounts = self
            .backup_accounts
            .sessions(org)
            .await
            .map_err(RunSetupError::BackupAccounts)?;
        let pool = build_pool(
            &org.to_string(),
            accounts,
            connection,
            self.config.pool.clone(),
        )
        .map_err(RunSetupError::HttpClient)?;
        if pool.sign_in_all().await == 0 {
            return Err(RunSetupError::NoSignIn);
        }
        self.pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(org, Arc::downgrade(&pool));
        Ok((pool, organization.name))
    }

    async fn objects(
        &self,
        run: &ClaimedRun,
        pool: &AccountPool,
    ) -> Result<Vec<ProtectedObject>, RunSetupError> {
        let job = &run.job;
        let items = |list| self.store.job_items(job.id, list);
        let selected = items(ItemList::Selected)
            .await
            .map_err(RunSetupError::JobItems)?;
        let excluded = items(ItemList::Excluded)
            .await
            .map_err(RunSetupError::JobItems)?;
        let mut objects = objects::resolve(
            pool,
            job.organization_id,
            job.definition.backup_type,
            &selected,
            &excluded,
            self.config.objects_at_once.max(4),
        )
        .await
        .map_err(RunSetupError::Objects)?;
        if let Some(retry) = &run.retry_objects {
            objects.retain(|o| retry.contains(&o.id));
        }
        Ok(objects)
    }
}

/// `OneDrive of Alice (alice@contoso.com)` or `Library 'Documents' of site 'Sales'`.
fn describe(o: &ProtectedObject) -> String {
    match o.kind {
        ObjectKind::OneDrive => match &o.owner_name {
            Some(login) => format!("OneDrive of {} ({login})", o.name),
            None => format!("OneDrive of {}", o.name),
        },
        ObjectKind::SiteLibrary => format!(
            "Library '{}' of site '{}'",
            o.name,
            o.owner_name.as_deref().unwrap_or("?")
        ),
    }
}

fn object_line(o: &ProtectedObject, r: &ObjectResult) -> String {
    let what = describe(o);
    if let Some(e) = &r.error {
        return format!("[Failed] {what}: {e}");
    }
    if r.stopped {
        return format!("[Warning] {what}: stopped before its restore point was saved");
    }
    let counts = format!(
        "{} items, {} new or changed files ({}), {} unchanged, {} deleted",
        r.items,
        r.new_files,
        human_bytes(r.bytes_read),
        r.carried_files,
        r.deleted
    );
    if r.failures.is_empty() {
        format!("[Success] {what}: {counts}")
    } else {
        let named: Vec<String> = r
            .failures
            .iter()
            .take(10)
            .map(|f| format!("{} ({})", f.name, f.reason))
            .collect();
        let more = r.failures.len().saturating_sub(named.len());
        format!(
            "[Warning] {what}: {counts}; {} file(s) not backed up, retried next run: {}{}",
            r.failures.len(),
            named.join("; "),
            if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            }
        )
    }
}

#[async_trait]
impl JobRunner for BackupEngine {
    async fn run(
        &self,
        run: &ClaimedRun,
        log: &SessionLog,
        cancel: CancellationToken,
    ) -> RunOutcome {
        let failed = |details: String| RunOutcome {
            status: SessionStatus::Failed,
            failed_objects: Vec::new(),
            details,
        };
        let org = run.job.organization_id;
        let (pool, org_name) = match self.pool(org).await {
            Ok(p) => p,
            Err(e) => {
                let e = Chain(&e).to_string();
                let _ = log
                    .line(&format!("[Failed] Cannot connect to the organization: {e}"))
                    .await;
                return failed(format!("Cannot connect to the organization: {e}"));
            }
        };
        let backup_accounts = pool.report().iter().filter(|a| !a.organization).count();
        let _ = log
            .line(&format!(
                "[Success] Connected to organization {org_name} ({})",
                match backup_accounts {
                    0 => "with the organization's own credentials".to_owned(),
                    n => format!("{n} backup account(s)"),
                }
            ))
            .await;
        let repo = match self
            .repositories
            .open(run.job.definition.repository_id)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                let e = Chain(&e).to_string();
                let _ = log
                    .line(&format!(
                        "[Failed] The backup repository cannot be opened: {e}"
                    ))
                    .await;
                return failed(format!("The backup repository cannot be opened: {e}"));
            }
        };
        let objects = match self.objects(run, &pool).await {
            Ok(o) => o,
            Err(e) => {
                let e = Chain(&e).to_string();
                let _ = log.line(&format!("[Failed] {e}")).await;
                return failed(e);
            }
        };
        let onedrives = objects
            .iter()
            .filter(|o| o.kind == ObjectKind::OneDrive)
            .count();
        let _ = log
            .line(&format!(
                "[Success] Found {} object(s) to back up: {onedrives} OneDrive(s), {} document librar(ies)",
                objects.len(),
                objects.len() - onedrives
            ))
            .await;
        let counters = Arc::new(RunCounters::default());
        counters
            .objects_total
            .store(objects.len() as u64, Ordering::Relaxed);
        let maker = Arc::new(StatisticsMaker::new(&pool.report()));
        let ticker = spawn_ticker(
            log.clone(),
            pool.clone(),
            counters.clone(),
            maker.clone(),
            self.config.progress_every,
        );
        let results = self
            .back_up_all(
                run,
                &pool,
                &repo,
                objects,
                counters.clone(),
                log,
                cancel.clone(),
            )
            .await;
        ticker.abort();

        for a in pool.report() {
            let who = if a.organization {
                format!("Organization credentials {}", a.login)
            } else {
                format!("Backup account {}", a.login)
            };
            let status = if a.quarantined.is_some() {
                "[Warning]"
            } else {
                "[Success]"
            };
            let _ = log
                .line(&format!(
                    "{status} {who}: {} requests, {} throttled (429), {} unavailable (503), paused {:.1} s, {} read{}",
                    a.requests,
                    a.throttled_429,
                    a.throttled_503,
                    a.paused.as_secs_f64(),
                    human_bytes(a.bytes),
                    a.quarantined.map(|q| format!("; taken out: {q}")).unwrap_or_default()
                ))
                .await;
        }
        let unreadable = pool.access_report().unreadable;
        if !unreadable.is_empty() {
            let _ = log
                .line(&format!(
                    "[Warning] No credential may read {} site(s) or drive(s): {}",
                    unreadable.len(),
                    unreadable.join(", ")
                ))
                .await;
        }
        let outcome = outcome(&results, cancel.is_cancelled(), &counters);
        if results.iter().any(|(_, r)| r.committed) {
            if let Err(e) = self.store.record_backup_time(org, Utc::now()).await {
                tracing::warn!(error = %m365backup_core::Chain(&e), "saving the organization's backup time failed");
            }
        }
        let (mut stats, _) = maker.reading(&counters, &pool.report());
        stats.processed_objects = results.iter().filter(|(_, r)| r.committed).count() as u64;
        let _ = log.progress(100, stats).await;
        outcome
    }
}

impl BackupEngine {
    #[allow(clippy::too_many_arguments)]
    async fn back_up_all(
        &self,
        run: &ClaimedRun,
        pool: &Arc<AccountPool>,
        repo: &Repository,
        objects: Vec<ProtectedObject>,
        counters: Arc<RunCounters>,
        log: &SessionLog,
        cancel: CancellationToken,
    ) -> Vec<(ProtectedObject, ObjectResult)> {
        let at_once = self
            .config
            .objects_at_once
            .max(pool.accounts() / 2)
            .clamp(1, 16);
        let options = DriveOptions {
            downloads: self.config.downloads_per_object,
            version_policy: run.job.definition.version_policy,
            job_id: run.job.id.to_string(),
            session_id: run.session.id.to_string(),
        };
        stream::iter(objects)
            .map(|object| {
                let (pool, counters, cancel, options) = (
                    pool.clone(),
                    counters.clone(),
                    cancel.clone(),
                    options.clone(),
                );
                async move {
                    if cancel.is_cancelled() {
                        let stopped = ObjectResult {
                            stopped: true,
                            ..ObjectResult::default()
                        };
                        return (object, stopped);
                    }
                    let line = log
                        .begin_line(&format!("[Success] {}: backing up", describe(&object)))
                        .await;
                    let span = tracing::info_span!("object", object = %object.key());
                    let result = tracing::Instrument::instrument(
                        drive::back_up(
                            pool,
                            repo,
                            object.clone(),
                            options,
                            counters.clone(),
                            cancel,
                        ),
                        span,
                    )
                    .await;
                    counters.objects_done.fetch_add(1, Ordering::Relaxed);
                    counters
                        .failures
                        .fetch_add(result.failures.len() as u64, Ordering::Relaxed);
                    if let Ok(item) = line {
                        let _ = log.finish_line(&item, &object_line(&object, &result)).await;
                    }
                    (object, result)
                }
            })
            .buffer_unordered(at_once)
            .collect()
            .await
    }
}

/// Saves the session's progress, statistics and details line every `every`.
fn spawn_ticker(
    log: SessionLog,
    pool: Arc<AccountPool>,
    counters: Arc<RunCounters>,
    maker: Arc<StatisticsMaker>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let accounts = pool.report();
            let (stats, progress) = maker.reading(&counters, &accounts);
            let _ = log
                .live(progress, stats, details_line(&counters, &accounts))
                .await;
        }
    })
}

/// The session's end from its objects' ends.
fn outcome(
    results: &[(ProtectedObject, ObjectResult)],
    cancelled: bool,
    counters: &RunCounters,
) -> RunOutcome {
    let committed = results.iter().filter(|(_, r)| r.committed).count();
    let failed: Vec<String> = results
        .iter()
        .filter(|(_, r)| r.error.is_some() || !r.failures.is_empty())
        .map(|(o, _)| o.id.clone())
        .collect();
    let item_failures = counters.failures.load(Ordering::Relaxed);
    let object_failures = results.iter().filter(|(_, r)| r.error.is_some()).count();
    let details = format!(
        "{committed} of {} object(s) backed up, {} files, {} read, {item_failures} file(s) and {object_failures} object(s) failed",
        results.len(),
        counters.files.load(Ordering::Relaxed),
        human_bytes(counters.bytes_read.load(Ordering::Relaxed)),
    );
    let status = if cancelled {
        SessionStatus::Stopped
    } else if results.is_empty() {
        SessionStatus::Warning
    } else if committed == 0 {
        SessionStatus::Failed
    } else if failed.is_empty() {
        SessionStatus::Success
    } else {
        SessionStatus::Warning
    };
    RunOutcome {
        status,
        failed_objects: failed,
        details: if results.is_empty() {
            "The job's items cover no OneDrive or document library.".into()
        } else {
            details
        },
    }
}
