//! Jobs and their runs in the Prometheus text format, appended to `/metrics`: whether each job
//! runs, how it last ended, when it ran and runs next, and the running session's figures.

use std::fmt::Write;

use m365backup_core::jobs::model::{Job, JobSession, JobState, JobStatus};

use crate::state::AppState;

/// A label value with `\` and `"` escaped, as the text format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', " ")
}

fn labels(job: &Job) -> String {
    format!(
        "job=\"{}\",name=\"{}\",organization=\"{}\"",
        job.id,
        label(&job.definition.name),
        job.organization_id
    )
}

const STATUSES: [JobStatus; 7] = [
    JobStatus::Stopped,
    JobStatus::Running,
    JobStatus::Success,
    JobStatus::Failed,
    JobStatus::Warning,
    JobStatus::NotConfigured,
    JobStatus::Queued,
];

/// The job families; errors reading the store leave them out (the scrape still answers).
pub async fn render(state: &AppState) -> String {
    let Ok(jobs) = state.jobs.list(None).await else {
        return String::new();
    };
    let mut out = String::new();
    let _ = writeln!(out, "# HELP m365backup_job_running 1 while the job runs");
    let _ = writeln!(out, "# TYPE m365backup_job_running gauge");
    for j in &jobs {
        let running = matches!(j.state, JobState::Running(_));
        let _ = writeln!(
            out,
            "m365backup_job_running{{{}}} {}",
            labels(j),
            u8::from(running)
        );
    }
    let _ = writeln!(
        out,
        "# HELP m365backup_job_status 1 for the job's current status"
    );
    let _ = writeln!(out, "# TYPE m365backup_job_status gauge");
    for j in &jobs {
        for s in STATUSES {
            let _ = writeln!(
                out,
                "m365backup_job_status{{{},status=\"{s:?}\"}} {}",
                labels(j),
                u8::from(j.shown_status() == s)
            );
        }
    }
    for (metric, help, value) in [
        (
            "m365backup_job_last_run_timestamp_seconds",
            "When the job's last run started",
            (|j: &Job| j.last_run) as fn(&Job) -> Option<chrono::DateTime<chrono::Utc>>,
        ),
        (
            "m365backup_job_next_run_timestamp_seconds",
            "When the job runs next",
            |j: &Job| j.next_run,
        ),
    ] {
        let _ = writeln!(out, "# HELP {metric} {help}");
        let _ = writeln!(out, "# TYPE {metric} gauge");
        for j in &jobs {
            if let Some(t) = value(j) {
                let _ = writeln!(out, "{metric}{{{}}} {}", labels(j), t.timestamp());
            }
        }
    }
    // The running sessions first, then one group per family: the text format wants each
    // family's samples together after its HELP and TYPE lines.
    let mut running = Vec::new();
    for j in &jobs {
        let JobState::Running(id) = j.state else {
            continue;
        };
        if let Ok(s) = state.jobs.session(id).await {
            running.push((format!("{},session=\"{}\"", labels(j), s.id), s));
        }
    }
    for (metric, help, value) in [
        (
            "m365backup_session_progress_percent",
            "Progress of the running session",
            (|s: &JobSession| u64::from(s.progress)) as fn(&JobSession) -> u64,
        ),
        (
            "m365backup_session_transferred_bytes",
            "Bytes the running session read",
            |s: &JobSession| s.statistics.transferred_data_bytes,
        ),
        (
            "m365backup_session_processed_objects",
            "Objects the running session finished",
            |s: &JobSession| s.statistics.processed_objects,
        ),
    ] {
        let _ = writeln!(out, "# HELP {metric} {help}");
        let _ = writeln!(out, "# TYPE {metric} gauge");
        for (l, s) in &running {
            let _ = writeln!(out, "{metric}{{{l}}} {}", value(s));
        }
    }
    out
}
