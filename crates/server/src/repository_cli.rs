//! `m365backup repository list | create | check | prune | rebuild-catalog | recovery-password`:
//! the repositories of this server, managed on the server machine (the same state store and
//! server key as `serve`), with progress bars on long work.

use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::ProgressBar;
use m365backup_core::audit::AuditKind;
use m365backup_core::Secret;
use m365backup_repo::check::ReadData;
use m365backup_repo::progress::Progress;
use m365backup_repo::prune::PruneOptions;
use m365backup_repo::registry::{
    NewRepository, RetentionPeriodType, RetentionSettings, S3Flavor, StorageSettings,
    YearlyRetentionPeriod,
};
use m365backup_repo::retention::RetentionType;

use crate::config::Settings;
use crate::progress_style;

pub const PASSWORD_ENV: &str = "M365BACKUP_REPOSITORY_PASSWORD";
pub const S3_SECRET_ENV: &str = "M365BACKUP_S3_SECRET_ACCESS_KEY";
pub const AZURE_KEY_ENV: &str = "M365BACKUP_AZURE_ACCOUNT_KEY";

#[derive(Subcommand, Debug)]
pub enum RepositoryCommand {
    /// List the repositories: id, name, where, retention.
    List,
    /// Add a repository (a local folder, S3-compatible storage or Azure Blob Storage), or attach
    /// the one already there. Secrets come from the environment: M365BACKUP_REPOSITORY_PASSWORD
    /// (random when unset), M365BACKUP_S3_SECRET_ACCESS_KEY, M365BACKUP_AZURE_ACCOUNT_KEY.
    Create(Box<CreateArgs>),
    /// Verify a repository: indexes, packs, restore points; with --read-data[-subset], content.
    Check {
        /// Name or id.
        repository: String,
        /// Read and verify every pack.
        #[arg(long)]
        read_data: bool,
        /// Read and verify this share of the packs, chosen at random (e.g. 10%).
        #[arg(long, value_name = "PERCENT")]
        read_data_subset: Option<String>,
    },
    /// Apply the repository's retention, then remove and repack what no restore point uses.
    Prune {
        repository: String,
        /// Leave packs younger than this alone (seconds; writers may still fill them).
        #[arg(long, default_value_t = 3600)]
        grace_secs: u64,
        /// Only remove unused data; do not apply the retention policy.
        #[arg(long)]
        no_retention: bool,
    },
    /// Recreate the repository's catalog in the state store from the repository alone.
    RebuildCatalog { repository: String },
    /// Print the repository password, for safekeeping offline.
    RecoveryPassword { repository: String },
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    pub name: String,
    #[arg(long, default_value = "")]
    pub description: String,
    /// A local folder (absolute).
    #[arg(long, conflicts_with_all = ["s3_bucket", "azure_container"])]
    pub path: Option<PathBuf>,
    /// S3 bucket (with --s3-endpoint for S3-compatible storage; without: Amazon S3).
    #[arg(long)]
    pub s3_bucket: Option<String>,
    #[arg(long)]
    pub s3_endpoint: Option<String>,
    #[arg(long, default_value = "us-east-1")]
    pub s3_region: String,
    #[arg(long)]
    pub s3_access_key_id: Option<String>,
    /// Azure storage account and container.
    #[arg(long)]
    pub azure_account: Option<String>,
    #[arg(long)]
    pub azure_container: Option<String>,
    /// Blob service URL (default https://<account>.blob.core.windows.net).
    #[arg(long)]
    pub azure_endpoint: Option<String>,
    /// Folder inside the bucket or container.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Allow a plain-HTTP endpoint (on-premises storage on a trusted network).
    #[arg(long)]
    pub allow_http: bool,
    /// `ItemLevel` or `SnapshotBased` [default: SnapshotBased].
    #[arg(long)]
    pub retention_type: Option<String>,
    /// How long to keep: `30d`, `6m`, `3y` or `keep` [default: 3y].
    #[arg(long)]
    pub retention: Option<String>,
}

/// An indicatif bar fed by the repository's progress reports.
struct Bar(Mutex<ProgressBar>);

impl Bar {
    fn new() -> Self {
        Self(Mutex::new(ProgressBar::hidden()))
    }

    fn finish(&self) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .finish_and_clear();
    }
}

impl Progress for Bar {
    fn phase(&self, name: &str, total: Option<u64>) {
        let mut bar = self.0.lock().unwrap_or_else(|p| p.into_inner());
        bar.finish_and_clear();
        *bar = match total {
            Some(n) => ProgressBar::new(n).with_style(progress_style::bar(
                "{msg:>16} [{bar:40}] {pos}/{len} ({elapsed})",
            )),
            None => ProgressBar::new_spinner()
                .with_style(progress_style::spinner("{spinner} {msg} ({elapsed})")),
        };
        bar.set_message(name.to_owned());
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
    }

    fn advance(&self, n: u64) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).inc(n);
    }
}

fn env_secret(name: &str) -> Option<Secret> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .map(Secret::new)
}

fn parse_retention(args: &CreateArgs) -> anyhow::Result<RetentionSettings> {
    let mut r = RetentionSettings::default();
    if let Some(t) = &args.retention_type {
        r.retention_type = match t.to_ascii_lowercase().as_str() {
            "itemlevel" => RetentionType::ItemLevel,
            "snapshotbased" => RetentionType::SnapshotBased,
            _ => anyhow::bail!("--retention-type must be ItemLevel or SnapshotBased"),
        };
    }
    if let Some(period) = &args.retention {
        let p = period.trim().to_ascii_lowercase();
        let number = |s: &str| {
            s.parse::<u32>()
                .with_context(|| format!("--retention '{period}'"))
        };
        if p == "keep" {
            r.retention_period_type = RetentionPeriodType::Yearly;
            r.yearly_retention_period = YearlyRetentionPeriod::Keep;
        } else if let Some(d) = p.strip_suffix('d') {
            r.retention_period_type = RetentionPeriodType::Daily;
            r.daily_retention_period = number(d)?;
        } else if let Some(m) = p.strip_suffix('m') {
            r.retention_period_type = RetentionPeriodType::Monthly;
            r.monthly_retention_period = number(m)?;
        } else if let Some(y) = p.strip_suffix('y') {
            r.retention_period_type = RetentionPeriodType::Yearly;
            r.yearly_retention_period = match number(y)? {
                1 => YearlyRetentionPeriod::Year1,
                2 => YearlyRetentionPeriod::Years2,
                3 => YearlyRetentionPeriod::Years3,
                5 => YearlyRetentionPeriod::Years5,
                7 => YearlyRetentionPeriod::Years7,
                10 => YearlyRetentionPeriod::Years10,
                25 => YearlyRetentionPeriod::Years25,
                other => {
                    anyhow::bail!("{other} years is not a v5 period: use 1, 2, 3, 5, 7, 10 or 25")
                }
            };
        } else {
            anyhow::bail!("--retention must look like 30d, 6m, 3y or keep");
        }
    }
    Ok(r)
}

fn storage(args: &CreateArgs) -> anyhow::Result<(StorageSettings, Option<Secret>)> {
    if let Some(path) = &args.path {
        let path = if path.is_absolute() {
            path.clone()
        } else {
            std::env::current_dir()?.join(path)
        };
        return Ok((StorageSettings::Local { path }, None));
    }
    if let Some(bucket) = &args.s3_bucket {
        return Ok((
            StorageSettings::S3 {
                flavor: if args.s3_endpoint.is_some() {
                    S3Flavor::S3Compatible
                } else {
                    S3Flavor::AmazonS3
                },
                endpoint: args.s3_endpoint.clone(),
                region: args.s3_region.clone(),
                bucket: bucket.clone(),
                prefix: args.prefix.clone(),
                access_key_id: args.s3_access_key_id.clone().unwrap_or_default(),
                allow_http: args.allow_http,
                path_style: args.s3_endpoint.is_some(),
            },
            env_secret(S3_SECRET_ENV),
        ));
    }
    if let (Some(account), Some(container)) = (&args.azure_account, &args.azure_container) {
        return Ok((
            StorageSettings::Azure {
                account: account.clone(),
                container: container.clone(),
                prefix: args.prefix.clone(),
                endpoint: args.azure_endpoint.clone(),
                allow_http: args.allow_http,
            },
            env_secret(AZURE_KEY_ENV),
        ));
    }
    anyhow::bail!("give --path, --s3-bucket, or --azure-account with --azure-container")
}

pub async fn run(command: RepositoryCommand, settings: &Settings) -> anyhow::Result<()> {
    let parts = crate::server::open_store_parts(settings).await?;
    let service = crate::repositories::service(settings, &parts)?;
    let audit = |kind, command: &'static str, id: uuid::Uuid, details: String| {
        crate::cli_audit::record(
            parts.store.clone(),
            kind,
            command,
            format!("/v5/BackupRepositories/{id}"),
            details,
        )
    };
    match command {
        RepositoryCommand::List => {
            for r in service.list().await? {
                let policy = r.retention.policy();
                println!(
                    "{}\t{}\t{}\t{:?} {:?}{}",
                    r.id,
                    r.name,
                    r.storage.display(),
                    policy.kind,
                    policy.period,
                    if r.is_default { "\tdefault" } else { "" }
                );
            }
        }
        RepositoryCommand::Create(args) => {
            let (storage, storage_secret) = storage(&args)?;
            let record = service
                .create(NewRepository {
                    name: args.name.clone(),
                    description: args.description.clone(),
                    storage,
                    storage_secret,
                    password: env_secret(PASSWORD_ENV),
                    retention: parse_retention(&args)?,
                })
                .await?;
            audit(
                AuditKind::RepositoryCreated,
                "repository create",
                record.id,
                format!("repository {}", record.name),
            )
            .await?;
            println!(
                "Added repository {} '{}' at {}.",
                record.id,
                record.name,
                record.storage.display()
            );
            println!(
                "Keep its password safe: `m365backup repository recovery-password {}`.",
                record.id
            );
        }
        RepositoryCommand::Check {
            repository,
            read_data,
            read_data_subset,
        } => {
            let record = service.find(&repository).await?;
            let read = match (read_data, read_data_subset) {
                (true, _) => ReadData::All,
                (false, Some(share)) => ReadData::Subset(
                    m365backup_api::routes::repositories::parse_share(&share).with_context(
                        || format!("--read-data-subset '{share}' is not a percentage"),
                    )?,
                ),
                (false, None) => ReadData::None,
            };
            let bar = Bar::new();
            let report = service.check(record.id, read, &bar).await;
            bar.finish();
            let report = report?;
            audit(
                AuditKind::RepositoryChecked,
                "repository check",
                record.id,
                format!("repository {}", record.name),
            )
            .await?;
            println!(
                "{} restore points, {} packs, {} chunks; {} packs read.",
                report.snapshots, report.packs, report.blobs, report.packs_read
            );
            if !report.unindexed_packs.is_empty() {
                println!(
                    "{} packs are not indexed (left by an interrupted writer); prune removes them.",
                    report.unindexed_packs.len()
                );
            }
            if report.unreferenced_blobs > 0 {
                println!(
                    "{} chunks are used by no restore point ({} packs wholly unused); prune gives their space back.",
                    report.unreferenced_blobs, report.unreferenced_packs
                );
            }
            for e in &report.errors {
                println!("error: {e}");
            }
            for d in &report.damaged {
                println!("damaged: {d}");
            }
            anyhow::ensure!(report.is_ok(), "the repository has errors");
            println!("No errors found.");
        }
        RepositoryCommand::Prune {
            repository,
            grace_secs,
            no_retention,
        } => {
            let record = service.find(&repository).await?;
            let repo = service.open(record.id).await?;
            let options = PruneOptions {
                retention: (!no_retention).then(|| record.retention.policy()),
                grace: std::time::Duration::from_secs(grace_secs),
                ..PruneOptions::default()
            };
            let bar = Bar::new();
            let report = repo.prune(&options, &bar).await;
            bar.finish();
            let report = report?;
            audit(
                AuditKind::RepositoryRetentionApplied,
                "repository prune",
                record.id,
                format!(
                    "repository {}{}",
                    record.name,
                    if no_retention {
                        " (unused data only)"
                    } else {
                        ""
                    }
                ),
            )
            .await?;
            println!(
                "Removed {} restore points ({} rewritten, {} item versions); deleted {} packs, repacked {}, removed {} unindexed; freed {} bytes.",
                report.restore_points_removed,
                report.restore_points_rewritten,
                report.item_versions_removed,
                report.packs_deleted,
                report.packs_repacked,
                report.unindexed_packs_deleted,
                report.bytes_freed
            );
        }
        RepositoryCommand::RebuildCatalog { repository } => {
            let record = service.find(&repository).await?;
            let bar = Bar::new();
            let report = service.rebuild_catalog(record.id, &bar).await;
            bar.finish();
            let report = report?;
            audit(
                AuditKind::RepositoryCatalogRebuilt,
                "repository rebuild-catalog",
                record.id,
                format!("repository {}", record.name),
            )
            .await?;
            println!(
                "Catalog rebuilt: {} index files, {} packs, {} chunks, {} restore points.",
                report.index_files, report.packs, report.blobs, report.snapshots
            );
            for s in report.skipped {
                println!("skipped: {s}");
            }
        }
        RepositoryCommand::RecoveryPassword { repository } => {
            let record = service.find(&repository).await?;
            let password = service.recovery_password(record.id).await?;
            // Recorded before it is shown: no record, no password.
            audit(
                AuditKind::RepositoryPasswordShown,
                "repository recovery-password",
                record.id,
                format!("repository {}", record.name),
            )
            .await?;
            // Printed on request, deliberately never logged.
            println!("{}", password.expose());
        }
    }
    Ok(())
}
