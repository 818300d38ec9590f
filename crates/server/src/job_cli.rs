//! `m365backup job list | start <job> [--wait]` and `m365backup session show <id>`: backup
//! jobs at a shell on the server machine (the same state store as `serve`). A start queues the
//! job for the running server's scheduler, which claims it within seconds; `--wait` follows the
//! session with a progress bar until it ends.

use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use indicatif::ProgressBar;
use m365backup_core::audit::AuditKind;
use m365backup_core::jobs::model::{Job, JobSession, JobSessionId, SessionStatus};
use m365backup_core::jobs::service::JobAction;
use m365backup_core::store::Store;

use crate::config::Settings;
use crate::progress_style;

#[derive(Subcommand, Debug)]
pub enum JobCommand {
    /// List the jobs: id, organization, name, status, last and next run.
    List,
    /// Start a job (by id, or by name when the name is unique); the running server runs it.
    Start {
        job: String,
        /// Follow the run with a progress bar until it ends; the exit status says how it ended.
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum SessionCommand {
    /// A job session: status, figures and its log.
    Show { session: String },
}

/// How often `--wait` reads the session.
const POLL: Duration = Duration::from_millis(500);

fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "-".into())
}

pub async fn run_job(command: JobCommand, settings: &Settings) -> anyhow::Result<()> {
    let parts = crate::server::open_store_parts(settings).await?;
    let store = parts.store.clone();
    match command {
        JobCommand::List => {
            let jobs = store.list_jobs(None).await?;
            println!(
                "{:<36}  {:<28} {:<10} {:<23} {:<23}",
                "id", "name", "status", "last run", "next run"
            );
            for j in jobs {
                println!(
                    "{:<36}  {:<28} {:<10} {:<23} {:<23}",
                    j.id,
                    j.definition.name,
                    format!("{:?}", j.shown_status()),
                    time(j.last_run),
                    time(j.next_run)
                );
            }
            Ok(())
        }
        JobCommand::Start { job, wait } => {
            let job = find_job(store.as_ref(), &job).await?;
            let services = crate::services::Services::build(settings, store.clone())?;
            let jobs = crate::services::job_service(
                settings,
                store.clone(),
                services.directory,
                crate::repositories::service(settings, &parts)?,
            );
            jobs.act(job.id, JobAction::Start).await?;
            crate::cli_audit::record(
                store.clone(),
                AuditKind::JobStarted,
                "job start",
                format!("/v5/Jobs/{}", job.id),
                format!("job {}", job.definition.name),
            )
            .await?;
            println!(
                "Job '{}' queued; the server starts it within seconds.",
                job.definition.name
            );
            if !wait {
                return Ok(());
            }
            let session = wait_for_session(store.as_ref(), &job).await?;
            follow(store.as_ref(), session).await
        }
    }
}

pub async fn run_session(command: SessionCommand, settings: &Settings) -> anyhow::Result<()> {
    let store = crate::server::open_store(settings).await?;
    match command {
        SessionCommand::Show { session } => {
            let id: JobSessionId = session.parse().context("the session id must be a GUID")?;
            let s = store
                .get_session(id)
                .await?
                .with_context(|| format!("no job session {id}"))?;
            print_session(&s);
            let log = store.list_log_items(id, 0, 10_000).await?;
            for item in log.items {
                println!(
                    "  {}  {}",
                    item.creation_time.format("%H:%M:%S"),
                    item.title
                );
            }
            Ok(())
        }
    }
}

fn print_session(s: &JobSession) {
    let st = &s.statistics;
    println!("Session {} of job {}", s.id, s.job_id);
    println!(
        "  {:?}, {} %, started {}, ended {}",
        s.status,
        s.progress,
        time(Some(s.creation_time)),
        time(s.end_time)
    );
    println!("  {}", s.details);
    println!(
        "  {} objects, {} transferred, {}/s, bottleneck {:?}",
        st.processed_objects,
        indicatif::HumanBytes(st.transferred_data_bytes),
        indicatif::HumanBytes(st.processing_rate_bytes_ps),
        st.bottleneck
    );
}

/// A job by id, or by a name no other job has.
async fn find_job(store: &dyn Store, wanted: &str) -> anyhow::Result<Job> {
    if let Ok(id) = wanted.parse() {
        if let Some(job) = store.get_job(id).await? {
            return Ok(job);
        }
    }
    let matching: Vec<Job> = store
        .list_jobs(None)
        .await?
        .into_iter()
        .filter(|j| j.definition.name.eq_ignore_ascii_case(wanted.trim()))
        .collect();
    only_match(matching, "job", wanted)
}

/// The one thing (`what`: `job`, `organization`) a name or id given at the shell matched.
pub(crate) fn only_match<T>(matching: Vec<T>, what: &str, wanted: &str) -> anyhow::Result<T> {
    let count = matching.len();
    let mut matching = matching.into_iter();
    match (matching.next(), count) {
        (Some(one), 1) => Ok(one),
        (None, _) => anyhow::bail!("no {what} named or with id '{wanted}'"),
        (_, n) => anyhow::bail!("{n} {what}s are named '{wanted}': give the {what}'s id"),
    }
}

/// The session the server opened for the queued run.
async fn wait_for_session(store: &dyn Store, job: &Job) -> anyhow::Result<JobSessionId> {
    let waiting = ProgressBar::new_spinner();
    waiting.set_message("waiting for the server to start the run…");
    waiting.enable_steady_tick(Duration::from_millis(120));
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let current = store
            .get_job(job.id)
            .await?
            .context("the job was removed")?;
        if let m365backup_core::jobs::model::JobState::Running(session) = current.state {
            waiting.finish_and_clear();
            return Ok(session);
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "no server started the run within two minutes: is `m365backup serve` running?"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// A progress bar fed by the session until it ends; an error unless it ended `Success`.
async fn follow(store: &dyn Store, id: JobSessionId) -> anyhow::Result<()> {
    let bar = ProgressBar::new(100);
    bar.set_style(progress_style::bar(
        "{elapsed_precise} [{bar:30}] {pos:>3}% {msg}",
    ));
    let s = loop {
        let s = store
            .get_session(id)
            .await?
            .context("the session was removed")?;
        bar.set_position(u64::from(s.progress));
        bar.set_message(format!(
            "{} | {}/s",
            s.details,
            indicatif::HumanBytes(s.statistics.processing_rate_bytes_ps)
        ));
        if s.status != SessionStatus::Running {
            break s;
        }
        tokio::time::sleep(POLL).await;
    };
    bar.finish_and_clear();
    print_session(&s);
    anyhow::ensure!(
        s.status == SessionStatus::Success,
        "the run ended {:?}: see `m365backup session show {id}`",
        s.status
    );
    Ok(())
}
