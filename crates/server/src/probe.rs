//! `m365backup probe --organization <id>`: the traffic of a full backup of the organization's
//! OneDrives and SharePoint libraries through its backup accounts, without writing anything:
//! every file is downloaded, hashed and counted. Shows progress, then each account's figures.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use indicatif::{HumanBytes, ProgressBar};
use m365backup_core::ids::OrganizationId;
use m365backup_engine::pool_builder::build_pool;
use m365backup_engine::probe::{probe, ProbeOptions, ProbeProgress};
use m365backup_m365::pool::PoolConfig;

use crate::config::Settings;
use crate::progress_style;
use crate::services::Services;

#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// The organization (GUID).
    #[arg(long)]
    pub organization: String,
    /// Downloads in flight at once [default: 4 per account].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Starting pace per account, resource units/s (learned from there).
    #[arg(long, default_value_t = 10.0)]
    pub initial_rate: f64,
}

pub async fn run(args: ProbeArgs, settings: &Settings) -> anyhow::Result<()> {
    let org: OrganizationId = args
        .organization
        .parse()
        .context("--organization must be a GUID")?;
    let store = crate::server::open_store(settings).await?;
    let services = Services::build(settings, store)?;
    let (organization, connection) = services.organizations.connection(org).await?;
    let accounts = services.backup_accounts.sessions(org).await?;
    let using = if accounts.is_empty() {
        "the organization's own credentials".to_owned()
    } else {
        format!("{} backup accounts", accounts.len())
    };
    let workers = args.workers.unwrap_or(4 * accounts.len().max(1));
    let pool = build_pool(
        &org.to_string(),
        accounts,
        connection,
        PoolConfig {
            initial_rate: args.initial_rate,
            ..PoolConfig::default()
        },
    )
    .context("starting the HTTP client for Microsoft 365")?;
    println!(
        "Probing {} ({}) with {using}, {workers} downloads at a time.",
        organization.name, org
    );
    let usable = pool.sign_in_all().await;
    for r in pool.report().iter().filter(|r| r.quarantined.is_some()) {
        println!(
            "  quarantined {}: {}",
            r.login,
            r.quarantined.as_deref().unwrap_or_default()
        );
    }
    anyhow::ensure!(usable > 0, "no account could sign in");

    let progress = Arc::new(ProbeProgress::default());
    let bar = ProgressBar::new_spinner();
    bar.set_style(progress_style::spinner("{spinner} {elapsed_precise} {msg}"));
    let ticker = {
        let (bar, progress, pool) = (bar.clone(), progress.clone(), pool.clone());
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            loop {
                let bytes = progress.bytes_fetched.load(Ordering::Relaxed);
                let report = pool.report();
                let throttles: u64 = report
                    .iter()
                    .map(|r| r.throttled_429 + r.throttled_503)
                    .sum();
                let requests: u64 = report.iter().map(|r| r.requests).sum();
                bar.set_message(format!(
                    "drives {} | items {} | files {}/{} | {} of {} | {}/s | {:.1} req/s | throttled {}",
                    progress.drives.load(Ordering::Relaxed),
                    progress.items.load(Ordering::Relaxed),
                    progress.files_fetched.load(Ordering::Relaxed),
                    progress.files_found.load(Ordering::Relaxed),
                    HumanBytes(bytes),
                    HumanBytes(progress.bytes_found.load(Ordering::Relaxed)),
                    HumanBytes((bytes as f64 / started.elapsed().as_secs_f64().max(0.001)) as u64),
                    requests as f64 / started.elapsed().as_secs_f64().max(0.001),
                    throttles,
                ));
                bar.tick();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let report = probe(
        pool.clone(),
        ProbeOptions {
            workers,
            keep_file_list: false,
        },
        progress,
    )
    .await;
    ticker.abort();
    bar.finish_and_clear();
    let report = report?;
    println!(
        "Done in {:.1} s: {} drives, {} items, {} files, {} ({}/s).",
        report.elapsed.as_secs_f64(),
        report.drives,
        report.items,
        report.files,
        HumanBytes(report.bytes),
        HumanBytes((report.bytes as f64 / report.elapsed.as_secs_f64().max(0.001)) as u64)
    );
    println!(
        "{:<45} {:>9} {:>6} {:>6} {:>9} {:>10} {:>8}",
        "account", "requests", "429", "503", "paused s", "bytes", "rate/s"
    );
    for r in &report.accounts {
        let login = if r.organization {
            format!("{} (organization)", r.login)
        } else {
            r.login.clone()
        };
        println!(
            "{:<45} {:>9} {:>6} {:>6} {:>9.1} {:>10} {:>8.1}{}",
            login,
            r.requests,
            r.throttled_429,
            r.throttled_503,
            r.paused.as_secs_f64(),
            HumanBytes(r.bytes).to_string(),
            r.rate,
            r.quarantined
                .as_deref()
                .map(|q| format!("  quarantined: {q}"))
                .unwrap_or_default()
        );
    }
    println!(
        "quickXorHash verified for {} files{}.",
        report.verified,
        if report.hash_mismatches.is_empty() {
            String::new()
        } else {
            format!(
                "; {} did NOT match: {}",
                report.hash_mismatches.len(),
                report.hash_mismatches.join(", ")
            )
        }
    );
    if !report.access.via_organization.is_empty() {
        println!(
            "Read with the organization's own credentials (no backup account may): {}",
            report.access.via_organization.join(", ")
        );
    }
    if !report.access.unreadable.is_empty() {
        println!(
            "No credential of the organization may read: {}",
            report.access.unreadable.join(", ")
        );
    }
    if let Some(budget) = pool.app_budget() {
        println!(
            "The app's budget in the tenant was the limit: all accounts together were paced at about {budget:.1} units/s."
        );
    }
    Ok(())
}
