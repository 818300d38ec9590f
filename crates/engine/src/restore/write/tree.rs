//! Walking what a restore selected, folders before what they hold: the base folder is found or
//! made (the original parents of a folder or document, or the copy's folder), each folder is
//! found or re-created (a deleted parent before its children), and documents are handed to
//! workers, at most `files_at_once` in flight across the whole restore. A folder that cannot
//! be made leaves what it held untried, and counted.

use std::sync::Arc;

use m365backup_core::error::CoreResult;
use m365backup_m365::pool::writes::FileTimes;
use m365backup_m365::pool::{AccountPool, PoolError};
use m365backup_m365::M365Error;
use m365backup_repo::{Item, ItemKind};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::options::{check_name, Destination, RestoreOptions};
use super::stats::{ItemRef, Outcome, Tally};
use super::upload::restore_document;
use super::{failure_reason, Failure};
use crate::restore::browse::RestorePoint;
use crate::restore::selection::Selection;

/// What every worker of one restore shares.
pub struct Ctx {
    pub pool: Arc<AccountPool>,
    pub options: RestoreOptions,
    pub tally: Tally,
    pub files_at_once: Arc<Semaphore>,
}

/// One selection being restored: its restore point and the drive it is written to.
pub struct Job {
    pub ctx: Arc<Ctx>,
    pub point: RestorePoint,
    pub drive: String,
}

/// A folder of the target.
#[derive(Clone, Debug)]
pub struct TargetFolder {
    pub id: String,
    /// Made by this restore: nothing can be in it yet, so nothing needs looking up.
    pub fresh: bool,
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

fn times_of(item: &Item) -> FileTimes {
    FileTimes {
        created: item.created,
        modified: item.modified,
    }
}

fn is_conflict(e: &PoolError) -> bool {
    matches!(e, PoolError::M365(M365Error::Graph { status: 409, .. }))
}

/// Finds folder `name` in `parent`, or makes it: the folder and whether it was made.
async fn find_or_make(
    job: &Job,
    parent: &TargetFolder,
    name: &str,
    times: FileTimes,
    may_make: bool,
) -> Result<Option<(TargetFolder, bool)>, Failure> {
    check_name(name).map_err(Failure::new)?;
    let pool = &job.ctx.pool;
    let found = |item: m365backup_m365::pool::writes::DriveItem| {
        if item.is_folder() {
            Ok(Some((
                TargetFolder {
                    id: item.id,
                    fresh: false,
                },
                false,
            )))
        } else {
            Err(Failure::new(
                "a file of the same name is in its place in the target",
            ))
        }
    };
    if !parent.fresh {
        let existing = pool
            .child(&job.drive, &parent.id, name)
            .await
            .map_err(|e| Failure::new(failure_reason(&e)))?;
        if let Some(item) = existing {
            return found(item);
        }
    }
    if !may_make {
        return Ok(None);
    }
    match pool
        .create_folder(&job.drive, &parent.id, name, times)
        .await
    {
        Ok(made) => Ok(Some((
            TargetFolder {
                id: made.id,
                fresh: true,
            },
            true,
        ))),
        // Made meanwhile by someone else: use it.
        Err(e) if is_conflict(&e) => match pool.child(&job.drive, &parent.id, name).await {
            Ok(Some(item)) => found(item),
            _ => Err(Failure::new(failure_reason(&e))),
        },
        Err(e) => Err(Failure::new(failure_reason(&e))),
    }
}

/// A folder on the way to what is restored (not itself counted), made when missing.
async fn path_folder(
    job: &Job,
    parent: &TargetFolder,
    name: &str,
    times: FileTimes,
) -> Result<TargetFolder, Failure> {
    find_or_make(job, parent, name, times, true)
        .await?
        .map(|(folder, _)| folder)
        .ok_or_else(|| Failure::new("a parent folder could not be made"))
}

/// The folders above `item` in the backup, top first (the root left out).
async fn ancestors(point: &RestorePoint, item: &Item) -> CoreResult<Vec<Item>> {
    let mut chain = Vec::new();
    let mut parent = item.parent_id.clone();
    while let Some(id) = parent {
        let Some(folder) = point.item(&id).await? else {
            break;
        };
        if folder.parent_id.is_none() || chain.len() > 400 {
            break;
        }
        parent = folder.parent_id.clone();
        chain.push(folder);
    }
    chain.reverse();
    Ok(chain)
}

/// Where the selection's top items go: found or made.
async fn base_folder(job: &Job, selection: &Selection) -> Result<TargetFolder, Failure> {
    let root = job
        .ctx
        .pool
        .root_of(&job.drive)
        .await
        .map_err(|e| Failure::new(failure_reason(&e)))?;
    let mut at = TargetFolder {
        id: root.id,
        fresh: false,
    };
    let options = &job.ctx.options;
    if options.destination == Destination::Original {
        let top = match selection {
            Selection::Object { .. } => return Ok(at),
            Selection::Folder { folder: item, .. } | Selection::Document { item, .. } => item,
        };
        let chain = ancestors(&job.point, top)
            .await
            .map_err(|e| Failure::new(e.to_string()))?;
        for folder in &chain {
            at = path_folder(job, &at, &folder.name, times_of(folder)).await?;
        }
        return Ok(at);
    }
    for name in &options.folder {
        at = path_folder(job, &at, name, FileTimes::default()).await?;
    }
    if let Selection::Object { point } = selection {
        at = path_folder(job, &at, &point.object().name, FileTimes::default()).await?;
    }
    Ok(at)
}

/// Restores one selection; its items are counted in the restore's tally.
pub async fn restore_selection(ctx: Arc<Ctx>, selection: Selection, copy_drive: Option<String>) {
    let point = selection.point().clone();
    let drive = copy_drive.unwrap_or_else(|| point.object().id.clone());
    let job = Arc::new(Job { ctx, point, drive });
    let base = match base_folder(&job, &selection).await {
        Ok(base) => base,
        Err(f) => return fail_selection(&job, &selection, &f.reason).await,
    };
    match selection {
        Selection::Document { item, .. } => {
            let result = restore_document(&job, &item, &base, &item.name).await;
            record(&job, document(&item.name, &item), result);
        }
        Selection::Folder { folder, .. } => walk(&job, Some(folder), base).await,
        Selection::Object { .. } => walk(&job, None, base).await,
    }
}

fn record(job: &Job, item: ItemRef<'_>, result: Result<Outcome, Failure>) {
    match result {
        Ok(outcome) => job.ctx.tally.count(item, outcome),
        Err(f) => job.ctx.tally.fail(item, f.reason),
    }
}

/// A backed-up item at `path`, as the tally records it.
fn item_ref<'a>(path: &'a str, item: &Item) -> ItemRef<'a> {
    match item.kind {
        ItemKind::File => document(path, item),
        ItemKind::Folder => folder_ref(path),
    }
}

fn document<'a>(path: &'a str, item: &Item) -> ItemRef<'a> {
    ItemRef {
        path,
        kind: "Document",
        size: item.size,
    }
}

fn folder_ref(path: &str) -> ItemRef<'_> {
    ItemRef {
        path,
        kind: "Folder",
        size: 0,
    }
}

/// A folder of the selection: found (unchanged), made (restored), or left out when it was
/// deleted and deleted items are not restored. Its target folder, when its content goes on.
async fn restore_folder(
    job: &Job,
    parent: &TargetFolder,
    folder: &Item,
    path: &str,
) -> Option<TargetFolder> {
    let may_make = job.ctx.options.deleted_items;
    match find_or_make(job, parent, &folder.name, times_of(folder), may_make).await {
        Ok(Some((target, made))) => {
            if made {
                job.ctx.tally.count(folder_ref(path), Outcome::Restored);
                if job.ctx.options.permissions {
                    super::sharing::restore_sharing(job, folder, &target.id, path).await;
                }
            } else {
                job.ctx.tally.count(folder_ref(path), Outcome::Unchanged);
            }
            Some(target)
        }
        Ok(None) => {
            job.ctx.tally.count(folder_ref(path), Outcome::LeftOut);
            count_below(job, &folder.id, path, |tally, item| {
                tally.count(item, Outcome::LeftOut)
            })
            .await;
            None
        }
        Err(f) => {
            job.ctx.tally.fail(folder_ref(path), f.reason);
            count_below(job, &folder.id, path, |tally, item| {
                tally.count(item, Outcome::NotTried)
            })
            .await;
            None
        }
    }
}

/// Restores a folder (or the object's root when `None`) and everything below it.
async fn walk(job: &Arc<Job>, top: Option<Item>, base: TargetFolder) {
    let mut pending: Vec<(Option<String>, TargetFolder, String)> = Vec::new();
    match top {
        Some(folder) => {
            if let Some(target) = restore_folder(job, &base, &folder, &folder.name).await {
                pending.push((Some(folder.id.clone()), target, folder.name.clone()));
            }
        }
        None => pending.push((None, base, String::new())),
    }
    let mut tasks = JoinSet::new();
    while let Some((folder, target, path)) = pending.pop() {
        let children = match job.point.children(folder.as_deref()).await {
            Ok(c) => c,
            Err(e) => {
                job.ctx
                    .tally
                    .fail(folder_ref(&path), format!("the backup cannot be read: {e}"));
                continue;
            }
        };
        for child in children {
            let child_path = join(&path, &child.name);
            match child.kind {
                ItemKind::Folder => {
                    if let Some(t) = restore_folder(job, &target, &child, &child_path).await {
                        pending.push((Some(child.id.clone()), t, child_path));
                    }
                }
                ItemKind::File => {
                    let permit = job.ctx.files_at_once.clone().acquire_owned().await;
                    let (job, target) = (job.clone(), target.clone());
                    tasks.spawn(async move {
                        let _permit = permit;
                        let result = restore_document(&job, &child, &target, &child_path).await;
                        record(&job, document(&child_path, &child), result);
                    });
                }
            }
            while tasks.try_join_next().is_some() {}
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// Calls `each` for every item below a backed-up folder (tally and item).
async fn count_below(job: &Job, folder: &str, path: &str, each: impl Fn(&Tally, ItemRef<'_>)) {
    let mut pending = vec![(folder.to_owned(), path.to_owned())];
    while let Some((id, path)) = pending.pop() {
        let Ok(children) = job.point.children(Some(&id)).await else {
            continue;
        };
        for child in children {
            let child_path = join(&path, &child.name);
            each(&job.ctx.tally, item_ref(&child_path, &child));
            if child.kind == ItemKind::Folder {
                pending.push((child.id.clone(), child_path));
            }
        }
    }
}

/// The whole selection failed before anything was written (its target cannot be reached):
/// every item of it is counted as failed, with the reason.
async fn fail_selection(job: &Job, selection: &Selection, reason: &str) {
    match selection {
        Selection::Document { item, .. } => job.ctx.tally.fail(document(&item.name, item), reason),
        Selection::Folder { folder, .. } => {
            job.ctx.tally.fail(folder_ref(&folder.name), reason);
            count_below(job, &folder.id, &folder.name, |tally, item| {
                tally.fail(item, reason)
            })
            .await;
        }
        Selection::Object { point } => match point.root().await {
            Ok(Some(root)) => {
                count_below(job, &root.id, "", |tally, item| tally.fail(item, reason)).await
            }
            _ => job.ctx.tally.fail(folder_ref(&point.object().name), reason),
        },
    }
}
