//! `m365backup export …` and `m365backup restore …`: backed-up OneDrives, libraries, folders
//! or documents, at any point in time, written to a ZIP file or back to Microsoft 365 (where
//! they were, or copied into another OneDrive or library) at a shell on the server machine,
//! with a progress bar. The commands read the same state store and repositories as `serve` and
//! record their work as a restore session (initiated by `cli`) with one `Save` or `Restore`
//! event, so it shows in `GET /v5/RestoreSessions` like work done through the API.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use futures_util::StreamExt;
use indicatif::ProgressBar;
use m365backup_core::audit::AuditKind;
use m365backup_core::organizations::Organization;
use m365backup_core::restore::model::{EventStatus, EventType, RestoreKind, RestoreSession};
use m365backup_core::restore::service::{EventItem, ExploreInput, RestoreService};
use m365backup_core::store::Store;
use m365backup_engine::restore::browse::{Browser, RestorePoint};
use m365backup_engine::restore::export::{
    archive_entries, safe_segment, selection_items, selection_totals, zip_export, Export,
    ExportStats,
};
use m365backup_engine::restore::selection::Selection;
use m365backup_engine::restore::write::options::{
    folder_path, ChangedAction, Destination, RestoreOptions, VersionChoice,
};
use m365backup_engine::restore::write::report::{event_item, item_events, outcome};
use m365backup_engine::restore::write::stats::RestoreStats;
use m365backup_engine::restore::write::target::Connections;
use m365backup_engine::restore::write::{RestoreRequest, Restorer, RestorerConfig};
use m365backup_repo::{ItemKind, ObjectKind};
use tokio::io::AsyncWriteExt;
use tracing::Instrument;

use crate::config::Settings;
use crate::progress_style;

/// What to take from the backups: an organization's OneDrive or site, optionally one folder or
/// document of it, at a point in time.
#[derive(clap::Args, Debug, Clone)]
pub struct Pick {
    /// The organization: its name or id.
    pub organization: String,
    /// A user's OneDrive: the user's name (`someone@contoso.com`), display name or drive id.
    #[arg(long, required_unless_present = "site", conflicts_with = "site")]
    pub onedrive: Option<String>,
    /// A SharePoint site: its URL, title or id (every library of it unless --library).
    #[arg(long)]
    pub site: Option<String>,
    /// With --site: one document library, by name.
    #[arg(long, requires = "site")]
    pub library: Option<String>,
    /// A folder or document inside the OneDrive or library, as a path (`/Projects/2026`).
    #[arg(long)]
    pub path: Option<String>,
    /// The point in time (ISO 8601, `yyyy-MM-dd HH:mm:ss` or `yyyy.MM.dd HH:mm`, in the
    /// server's time zone when it has no offset); the latest backup when absent.
    #[arg(long)]
    pub at: Option<String>,
    /// Include items deleted in Microsoft 365 before the point in time.
    #[arg(long)]
    pub deleted: bool,
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub pick: Pick,
    /// The ZIP file to write (written beside as `<file>.part`, renamed when complete).
    #[arg(long, short)]
    pub output: PathBuf,
    /// Replace the output file when it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub pick: Pick,
    /// Copy into this user's OneDrive (user name, user id or drive id) instead of writing the
    /// items back where they were.
    #[arg(long, conflicts_with = "to_site")]
    pub to_onedrive: Option<String>,
    /// Copy into a library of this site (its URL or id) instead of the original location.
    #[arg(long)]
    pub to_site: Option<String>,
    /// With --to-site: the library, by name (the site's default library otherwise).
    #[arg(long, requires = "to_site")]
    pub to_library: Option<String>,
    /// With --to-onedrive or --to-site: a folder path there, created when missing.
    #[arg(long)]
    pub to_folder: Option<String>,
    /// Write every backed-up version of each document, oldest first (default: the restore
    /// point's version only).
    #[arg(long)]
    pub all_versions: bool,
    /// Leave a document that changed since the backup as it is and write the backup beside it
    /// as `name (restored <date>).ext` (default: the backup becomes the current version).
    #[arg(long)]
    pub keep: bool,
    /// Leave out documents that changed since the backup.
    #[arg(long)]
    pub skip_changed: bool,
    /// Leave out items deleted since the backup.
    #[arg(long)]
    pub skip_deleted: bool,
    /// Re-create the sharing the backup recorded.
    #[arg(long)]
    pub permissions: bool,
    /// Write as this account (its password from M365BACKUP_RESTORE_PASSWORD or asked for)
    /// instead of the organization's own credentials and backup accounts.
    #[arg(long)]
    pub as_user: Option<String>,
}

/// Who the restore session says started it.
const OPERATOR: &str = "cli";

pub async fn run_export(args: ExportArgs, settings: &Settings) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.force || !args.output.exists(),
        "{} exists: pass --force to replace it",
        args.output.display()
    );
    let opened = open_pick(&args.pick, settings).await?;
    let outcome = async {
        // Recorded before anything is read: no record, no export.
        let details = format!("{} to {}", opened.source, args.output.display());
        audit(&opened, AuditKind::ItemsSaved, "export", details).await?;
        export_to(&opened, &args.output).await
    }
    .instrument(opened.span("export"))
    .await;
    opened.restore.stop(opened.session.id).await.ok();
    let stats = outcome?;
    println!(
        "Saved {} document(s), {}, to {} (restore session {}).",
        stats.documents,
        indicatif::HumanBytes(stats.bytes),
        args.output.display(),
        opened.session.id
    );
    Ok(())
}

/// A restore session opened for a pick, and what the pick selects in it.
pub struct Opened {
    /// The state store the session lives in (a restore's services use it too).
    pub store: Arc<dyn Store>,
    pub restore: Arc<RestoreService>,
    pub session: RestoreSession,
    pub selections: Vec<Selection>,
    /// Where the selection comes from, for the event (`<OneDrive or site>[/path]`).
    pub source: String,
}

impl Opened {
    /// The span of the command's work: the organization and the restore session.
    fn span(&self, work: &'static str) -> tracing::Span {
        tracing::info_span!(
            "command",
            work,
            organization = %self.session.organization_id,
            restore_session = %self.session.id
        )
    }
}

/// Records a command's work on the items an opened session selects.
async fn audit(
    opened: &Opened,
    kind: AuditKind,
    command: &str,
    details: String,
) -> anyhow::Result<()> {
    crate::cli_audit::record(
        opened.store.clone(),
        kind,
        command,
        format!("/v5/RestoreSessions/{}", opened.session.id),
        details,
    )
    .await
}

/// Opens a restore session at the pick's point in time and resolves what it names.
pub async fn open_pick(pick: &Pick, settings: &Settings) -> anyhow::Result<Opened> {
    let parts = crate::server::open_store_parts(settings).await?;
    let store = parts.store.clone();
    let repositories = crate::repositories::service(settings, &parts)?;
    let organization = find_organization(store.as_ref(), &pick.organization).await?;
    let datetime = match pick.at.as_deref() {
        None => None,
        Some(raw) => Some(
            m365backup_api::dates::parse_v5_datetime(raw, settings.time_zone).with_context(
                || format!("--at '{raw}' is not a date (ISO 8601, yyyy-MM-dd HH:mm:ss or yyyy.MM.dd HH:mm)"),
            )?,
        ),
    };
    let restore = Arc::new(RestoreService::new(store.clone()));
    let input = ExploreInput {
        datetime,
        kind: if pick.onedrive.is_some() {
            RestoreKind::Veod
        } else {
            RestoreKind::Vesp
        },
        show_deleted: pick.deleted,
        show_all_versions: false,
    };
    let session = restore
        .explore(organization.id, None, input, OPERATOR)
        .await?;
    let browser = Browser::new(store.clone(), repositories);
    let resolved = resolve(pick, &browser, &session).await;
    let (selections, source) = match resolved {
        Ok(r) => r,
        Err(e) => {
            restore.stop(session.id).await.ok();
            return Err(e);
        }
    };
    Ok(Opened {
        store,
        restore,
        session,
        selections,
        source,
    })
}

async fn find_organization(store: &dyn Store, wanted: &str) -> anyhow::Result<Organization> {
    let wanted = wanted.trim();
    let all = store.list_organizations().await?;
    let matching: Vec<Organization> = all
        .into_iter()
        .filter(|o| {
            o.id.to_string().eq_ignore_ascii_case(wanted) || o.name.eq_ignore_ascii_case(wanted)
        })
        .collect();
    crate::job_cli::only_match(matching, "organization", wanted)
}

/// The selections a pick names in the session, and a description of where they come from.
async fn resolve(
    pick: &Pick,
    browser: &Browser,
    session: &RestoreSession,
) -> anyhow::Result<(Vec<Selection>, String)> {
    let points = browser.points(session).await?;
    let (objects, source): (Vec<RestorePoint>, String) = if let Some(user) = &pick.onedrive {
        let found = points
            .iter()
            .filter(|p| p.object().kind == ObjectKind::OneDrive && onedrive_matches(p, user))
            .cloned()
            .collect::<Vec<_>>();
        anyhow::ensure!(
            found.len() == 1,
            "{} OneDrive(s) match '{user}' in the backups at that time",
            found.len()
        );
        let name = found[0].object().name.clone();
        (found, name)
    } else {
        let site = pick
            .site
            .as_deref()
            .context("--onedrive or --site is required")?;
        let libraries: Vec<RestorePoint> = points
            .iter()
            .filter(|p| p.object().kind == ObjectKind::SiteLibrary && site_matches(p, site))
            .filter(|p| {
                pick.library
                    .as_deref()
                    .is_none_or(|l| p.object().name.eq_ignore_ascii_case(l.trim()))
            })
            .cloned()
            .collect();
        anyhow::ensure!(
            !libraries.is_empty(),
            "no library of a site matching '{site}'{} in the backups at that time",
            pick.library
                .as_deref()
                .map(|l| format!(" named '{l}'"))
                .unwrap_or_default()
        );
        let title = libraries[0]
            .attribute("siteTitle")
            .unwrap_or_else(|| site.to_owned());
        (libraries, title)
    };
    let Some(path) = pick
        .path
        .as_deref()
        .filter(|p| !p.trim_matches('/').is_empty())
    else {
        return Ok((
            objects
                .into_iter()
                .map(|point| Selection::Object { point })
                .collect(),
            source,
        ));
    };
    let count = objects.len();
    let mut objects = objects.into_iter();
    let (Some(point), None) = (objects.next(), objects.next()) else {
        anyhow::bail!("--path needs one library: add --library (the site has {count})");
    };
    let selection = walk(point, path).await?;
    Ok((
        selection.into_iter().collect(),
        format!("{source}/{}", path.trim_matches('/')),
    ))
}

fn onedrive_matches(p: &RestorePoint, wanted: &str) -> bool {
    let wanted = wanted.trim();
    let o = p.object();
    [
        Some(o.id.clone()),
        Some(o.name.clone()),
        o.owner_name.clone(),
        p.attribute("userPrincipalName"),
        p.attribute("displayName"),
    ]
    .into_iter()
    .flatten()
    .any(|v| v.eq_ignore_ascii_case(wanted))
}

fn site_matches(p: &RestorePoint, wanted: &str) -> bool {
    let wanted = wanted.trim().trim_end_matches('/');
    [
        p.site_id(),
        p.attribute("siteUrl"),
        p.attribute("siteTitle"),
        p.attribute("siteName"),
    ]
    .into_iter()
    .flatten()
    .any(|v| v.trim_end_matches('/').eq_ignore_ascii_case(wanted))
}

/// The folder or document at `path` (names separated by `/`) of a OneDrive or library.
async fn walk(point: RestorePoint, path: &str) -> anyhow::Result<Option<Selection>> {
    let mut parent: Option<String> = None;
    let mut found = None;
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    for (i, segment) in segments.iter().enumerate() {
        anyhow::ensure!(
            found
                .as_ref()
                .is_none_or(|f: &m365backup_repo::Item| f.kind == ItemKind::Folder),
            "'{}' is a document, not a folder",
            segments[..i].join("/")
        );
        let children = point.children(parent.as_deref()).await?;
        let item = children
            .into_iter()
            .find(|c| c.name == *segment)
            .with_context(|| {
                format!(
                    "no '{}' in the backup at that time",
                    segments[..=i].join("/")
                )
            })?;
        parent = Some(item.id.clone());
        found = Some(item);
    }
    Ok(found.map(|item| Selection::item(point, item)))
}

/// Writes the selections' ZIP to `output` (through `<output>.part`), recorded as a `Save` event.
async fn export_to(opened: &Opened, output: &Path) -> anyhow::Result<ExportStats> {
    let mut totals = ExportStats::default();
    for s in &opened.selections {
        let t = selection_totals(s).await?;
        totals.documents += t.documents;
        totals.bytes += t.bytes;
    }
    let target = output.display().to_string();
    let item = EventItem {
        title: format!("Saving {} to {target}", opened.source),
        name: match opened.selections.as_slice() {
            [one] => one.name().to_owned(),
            many => format!("{} items", many.len()),
        },
        item_type: match opened.selections.as_slice() {
            [one] => one.item_type().to_owned(),
            _ => "Items".to_owned(),
        },
        size: totals.bytes,
        source: opened.source.clone(),
        target: target.clone(),
    };
    let event = opened
        .restore
        .begin_event(opened.session.id, EventType::Save, item)
        .await?;
    let written = write_archive(&opened.selections, output, totals).await;
    let (status, message, succeeded, failed) = match &written {
        Ok(stats) => (
            EventStatus::Success,
            format!(
                "{} document(s), {} bytes saved to {target}",
                stats.documents, stats.bytes
            ),
            stats.documents,
            0,
        ),
        Err(e) => (EventStatus::Failed, format!("{e:#}"), 0, 1),
    };
    opened
        .restore
        .finish_event(event, status, message, succeeded, failed)
        .await?;
    written
}

async fn write_archive(
    selections: &[Selection],
    output: &Path,
    totals: ExportStats,
) -> anyhow::Result<ExportStats> {
    let part = part_path(output);
    let result = async {
        let mut file = tokio::fs::File::create(&part)
            .await
            .with_context(|| format!("cannot create {}", part.display()))?;
        let bar = progress_bar(totals);
        let Export { mut stream, done } = zip_export(archive_entries(selections));
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.context("the archive could not be written")?;
            file.write_all(&chunk)
                .await
                .with_context(|| format!("writing {} failed", part.display()))?;
            written += chunk.len() as u64;
            bar.set_position(written.min(totals.bytes));
        }
        file.sync_all().await?;
        bar.finish_and_clear();
        let stats = done
            .await
            .map_err(|_| anyhow::anyhow!("the archive writer stopped"))?
            .map_err(anyhow::Error::msg)?;
        tokio::fs::rename(&part, output).await?;
        anyhow::Ok(stats)
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&part).await;
    }
    result
}

fn part_path(output: &Path) -> PathBuf {
    let mut name = output
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| safe_segment("export.zip").into());
    name.push(".part");
    output.with_file_name(name)
}

fn progress_bar(totals: ExportStats) -> ProgressBar {
    let bar = ProgressBar::new(totals.bytes);
    bar.set_style(progress_style::bar(
        "{elapsed_precise} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
    ));
    bar.set_message(format!("{} document(s)", totals.documents));
    bar
}

/// A restore's bar: as long as the items it will meet (counted from the catalog).
async fn restore_bar(selections: &[Selection]) -> anyhow::Result<ProgressBar> {
    let mut items = 0;
    for s in selections {
        items += selection_items(s).await?;
    }
    let bar = ProgressBar::new(items);
    bar.set_style(progress_style::bar(
        "{elapsed_precise} [{bar:30}] {pos}/{len} items {msg}",
    ));
    Ok(bar)
}

/// The items a restore has met so far on its bar, and how they ended.
fn show_restore_progress(bar: &ProgressBar, s: &RestoreStats) {
    // Counted from the catalog before the restore began: never past the end, whatever it met.
    bar.set_position(s.total.min(bar.length().unwrap_or(u64::MAX)));
    bar.set_message(format!(
        "{} restored, {} unchanged, {} failed | {} written",
        s.restored,
        s.skipped_unchanged,
        s.unsuccessful(),
        indicatif::HumanBytes(s.bytes_written)
    ));
}

pub async fn run_restore(args: RestoreArgs, settings: &Settings) -> anyhow::Result<()> {
    let options = restore_options(&args)?;
    let opened = open_pick(&args.pick, settings).await?;
    let outcome = async {
        // Recorded before anything is written: no record, no restore.
        let (kind, target) = match &options.destination {
            Destination::Original => (AuditKind::ItemsRestored, "the original location".into()),
            Destination::OneDrive(user) => {
                (AuditKind::ItemsCopied, format!("the OneDrive of {user}"))
            }
            Destination::Site { site, library } => (
                AuditKind::ItemsCopied,
                format!(
                    "site {site}{}",
                    library
                        .as_deref()
                        .map(|l| format!(", library {l}"))
                        .unwrap_or_default()
                ),
            ),
        };
        let details = format!("{} to {target}", opened.source);
        audit(&opened, kind, "restore", details).await?;
        restore_to_m365(&opened, options, settings).await
    }
    .instrument(opened.span("restore"))
    .await;
    opened.restore.stop(opened.session.id).await.ok();
    let stats = outcome?;
    println!(
        "{} items: {} restored, {} unchanged, {} left out by the options, {} failed, {} not tried after an error; {} written (restore session {}).",
        stats.total,
        stats.restored,
        stats.skipped_unchanged,
        stats.skipped_by_options,
        stats.failed,
        stats.skipped_by_error,
        indicatif::HumanBytes(stats.bytes_written),
        opened.session.id
    );
    for issue in stats.issues.iter().take(50) {
        println!("  failed: {} ({})", issue.item, issue.reason);
    }
    anyhow::ensure!(
        stats.unsuccessful() == 0 && stats.failed_permissions == 0,
        "the restore did not write everything: see above"
    );
    Ok(())
}

/// The options of a restore from the command's flags.
fn restore_options(args: &RestoreArgs) -> anyhow::Result<RestoreOptions> {
    let destination = match (&args.to_onedrive, &args.to_site) {
        (Some(user), _) => Destination::OneDrive(user.trim().to_owned()),
        (None, Some(site)) => Destination::Site {
            site: site.trim().to_owned(),
            library: args.to_library.clone(),
        },
        (None, None) => Destination::Original,
    };
    anyhow::ensure!(
        args.to_folder.is_none() || destination != Destination::Original,
        "--to-folder goes with --to-onedrive or --to-site: a restore to the original location writes where the items were"
    );
    let folder = folder_path(args.to_folder.as_deref().unwrap_or(""))?;
    let account = match &args.as_user {
        None => None,
        Some(user) => {
            let password = match std::env::var("M365BACKUP_RESTORE_PASSWORD") {
                Ok(p) => p,
                Err(_) => rpassword::prompt_password(format!("Password of {user}: "))?,
            };
            Some((
                user.trim().to_owned(),
                m365backup_core::Secret::new(password),
            ))
        }
    };
    Ok(RestoreOptions {
        destination,
        folder,
        versions: if args.all_versions {
            VersionChoice::All
        } else {
            VersionChoice::Last
        },
        changed: if args.keep {
            ChangedAction::Keep
        } else {
            ChangedAction::Overwrite
        },
        changed_items: !args.skip_changed,
        deleted_items: !args.skip_deleted,
        permissions: args.permissions,
        account,
    })
}

/// Writes the selections back to Microsoft 365, recorded as a `Restore` event.
async fn restore_to_m365(
    opened: &Opened,
    options: RestoreOptions,
    settings: &Settings,
) -> anyhow::Result<RestoreStats> {
    let services = crate::services::Services::build(settings, opened.store.clone())?;
    let restorer = Restorer::new(
        Connections {
            organizations: services.organizations,
            backup_accounts: services.backup_accounts,
            directory: services.directory,
            pool: settings.engine.pool.clone(),
        },
        RestorerConfig::default(),
    );
    let item = event_item(&opened.selections, &options);
    let prepared = restorer
        .prepare(RestoreRequest {
            organization: opened.session.organization_id,
            selections: opened.selections.clone(),
            options,
        })
        .await?;
    let summary = item.clone();
    let event = opened
        .restore
        .begin_event(opened.session.id, EventType::Restore, item)
        .await?;
    let progress = prepared.progress();
    let bar = restore_bar(&opened.selections).await?;
    let running = tokio::spawn(prepared.run());
    let stats = loop {
        if running.is_finished() {
            break running.await?;
        }
        show_restore_progress(&bar, &progress.snapshot());
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    bar.finish_and_clear();
    opened
        .restore
        .record_item_events(
            opened.session.id,
            EventType::Restore,
            item_events(&stats, &summary),
        )
        .await?;
    let (status, text) = outcome(&stats);
    opened
        .restore
        .finish_event(event, status, text, stats.succeeded(), stats.unsuccessful())
        .await?;
    Ok(stats)
}
