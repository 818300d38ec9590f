//! One protected object's restore point: a delta query from where the last restore point left
//! off (a full enumeration on the first run or when Graph answers `410`), every new or changed
//! file's content streamed through the account pool into the repository and checked against
//! its quickXorHash, unchanged files carried over by id without a download, deletions recorded,
//! and the restore point committed with its next delta link only once everything is durable.
//!
//! A file that cannot be read (vanished, locked, a cut stream) is a warning: it keeps its last
//! backed-up state and is asked for again by the next run (it is remembered in the restore
//! point's delta state, since the next delta will not mention it unless it changes again).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};
use m365backup_core::jobs::model::VersionPolicy;
use m365backup_m365::paging::Pager;
use m365backup_m365::pool::{AccountPool, PoolError};
use m365backup_m365::M365Error;
use m365backup_repo::{
    Content, Item, ItemKind, ItemVersion, ProtectedObject, RepoError, Repository, SnapshotSpec,
    SnapshotWriter,
};
use quickxorhash::QuickXorHash;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::backup::progress::{add_wait, RunCounters};
use crate::discovery::{readable, Page};

/// What a restore point keeps for the next run of its object.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeltaState {
    /// Graph's `@odata.deltaLink`: the next delta starts there.
    pub link: Option<String>,
    /// Files that could not be read: asked for again by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<String>,
}

impl DeltaState {
    fn parse(raw: Option<&str>) -> Self {
        raw.and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or_default()
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ParentRef {
    #[serde(default)]
    id: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileSystemInfo {
    #[serde(default)]
    created_date_time: Option<DateTime<Utc>>,
    #[serde(default)]
    last_modified_date_time: Option<DateTime<Utc>>,
}

/// A drive item as Graph's delta (or an item read) describes it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GraphItem {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    parent_reference: Option<ParentRef>,
    #[serde(default)]
    file: Option<Value>,
    #[serde(default)]
    root: Option<Value>,
    #[serde(default)]
    deleted: Option<Value>,
    #[serde(default)]
    e_tag: Option<String>,
    #[serde(default)]
    c_tag: Option<String>,
    #[serde(default)]
    created_date_time: Option<DateTime<Utc>>,
    #[serde(default)]
    last_modified_date_time: Option<DateTime<Utc>>,
    #[serde(default)]
    file_system_info: Option<FileSystemInfo>,
    #[serde(default)]
    created_by: Option<Value>,
    #[serde(default)]
    last_modified_by: Option<Value>,
    #[serde(default)]
    shared: Option<Value>,
}

impl GraphItem {
    fn quick_xor_hash(&self) -> Option<&str> {
        self.file
            .as_ref()?
            .get("hashes")?
            .get("quickXorHash")?
            .as_str()
    }

    /// The item's metadata as the repository keeps it (content attached separately).
    pub(crate) fn to_item(&self) -> Item {
        let kind = if self.file.is_some() {
            ItemKind::File
        } else {
            ItemKind::Folder
        };
        let parent = if self.root.is_some() {
            None
        } else {
            self.parent_reference.as_ref().and_then(|p| p.id.clone())
        };
        let name = match (&self.name, self.root.is_some()) {
            (_, true) => "root".to_owned(),
            (Some(n), _) if !n.is_empty() => n.clone(),
            _ => self.id.clone(),
        };
        let mut item = match kind {
            ItemKind::File => Item::file(&self.id, parent.as_deref(), name),
            ItemKind::Folder => Item::folder(&self.id, parent.as_deref(), name),
        };
        let fs = self.file_system_info.as_ref();
        item.size = if kind == ItemKind::File {
            self.size.unwrap_or(0)
        } else {
            0
        };
        item.created = fs
            .and_then(|f| f.created_date_time)
            .or(self.created_date_time);
        item.modified = fs
            .and_then(|f| f.last_modified_date_time)
            .or(self.last_modified_date_time);
        item.created_by = self.created_by.clone();
        item.modified_by = self.last_modified_by.clone();
        item.e_tag = self.e_tag.clone();
        item.c_tag = self.c_tag.clone();
        item.hashes = self.file.as_ref().and_then(|f| f.get("hashes").cloned());
        item
    }
}

/// Why a file could not be backed up this time.
#[derive(Clone, Debug)]
pub struct ItemFailure {
    pub item_id: String,
    pub name: String,
    pub reason: String,
}

/// How one object's backup ended.
#[derive(Debug, Default)]
pub struct ObjectResult {
    /// A restore point was committed.
    pub committed: bool,
    pub stopped: bool,
    pub items: u64,
    pub new_files: u64,
    pub carried_files: u64,
    pub deleted: u64,
    pub bytes_read: u64,
    pub failures: Vec<ItemFailure>,
    /// Why the object failed as a whole (nothing committed).
    pub error: Option<String>,
}

/// Limits of one object's backup.
#[derive(Clone, Debug)]
pub struct DriveOptions {
    /// Files downloaded at once for this object.
    pub downloads: usize,
    pub version_policy: VersionPolicy,
    pub job_id: String,
    pub session_id: String,
}

/// A file to fetch, and what its last restore point holds.
struct FileWork {
    graph: GraphItem,
    previous: Option<Item>,
    /// Which listing of the file this run this is ([`Latest`]).
    generation: u64,
}

/// The latest listing of each file this run. A file may come again later in a round (it
/// changed between two pages) or be deleted: a fetch started for an earlier listing then
/// neither records its content (which may be older than the later one's) nor its failure
/// (the content no longer matched the hash listed earlier).
#[derive(Default)]
struct Latest {
    generation: HashMap<String, u64>,
    issued: u64,
}

impl Latest {
    /// A new listing of `id`: its generation.
    fn listed(&mut self, id: &str) -> u64 {
        self.issued += 1;
        self.generation.insert(id.to_owned(), self.issued);
        self.issued
    }

    fn is_current(&self, id: &str, generation: u64) -> bool {
        self.generation.get(id) == Some(&generation)
    }
}

struct Shared {
    pool: Arc<AccountPool>,
    drive: String,
    options: DriveOptions,
    counters: Arc<RunCounters>,
    cancel: CancellationToken,
    writer: SnapshotWriter,
    /// Held while a file is recorded or deleted, so that a tombstone or a later listing and an
    /// earlier listing's fetch never interleave.
    latest: tokio::sync::Mutex<Latest>,
}

/// Backs up one drive into `repo`.
pub async fn back_up(
    pool: Arc<AccountPool>,
    repo: &Repository,
    object: ProtectedObject,
    options: DriveOptions,
    counters: Arc<RunCounters>,
    cancel: CancellationToken,
) -> ObjectResult {
    let mut spec = SnapshotSpec::new(object.clone());
    spec.job_id = Some(options.job_id.clone());
    spec.session_id = Some(options.session_id.clone());
    let writer = match repo.begin_snapshot(spec).await {
        Ok(w) => w,
        Err(e) => {
            return ObjectResult {
                error: Some(format!("the repository refused a restore point: {e}")),
                ..ObjectResult::default()
            }
        }
    };
    let previous = DeltaState::parse(writer.parent().and_then(|p| p.doc.delta_state.as_deref()));
    let shared = Arc::new(Shared {
        pool,
        drive: object.id.clone(),
        options,
        counters,
        cancel,
        writer,
        latest: tokio::sync::Mutex::default(),
    });
    let mut result = ObjectResult::default();
    match enumerate_and_fetch(&shared, repo, &previous, &mut result).await {
        Ok(next) if !shared.cancel.is_cancelled() => {
            let Ok(shared) = Arc::try_unwrap(shared) else {
                result.error = Some("internal error: the restore point is still in use".into());
                return result;
            };
            let state = serde_json::to_string(&next).ok();
            match shared.writer.commit(state).await {
                Ok(record) => {
                    result.committed = true;
                    shared
                        .counters
                        .bytes_stored
                        .fetch_add(record.doc.stats.stored_bytes, Ordering::Relaxed);
                }
                Err(e) => result.error = Some(format!("the restore point could not be saved: {e}")),
            }
        }
        Ok(_) => result.stopped = true,
        Err(e) => result.error = Some(e),
    }
    result
}

/// Why a delta round stopped short.
fn not_enumerated(e: &dyn std::fmt::Display) -> String {
    format!("the drive could not be enumerated: {e}")
}

/// The delta rounds and the downloads they call for; the state for the next run.
async fn enumerate_and_fetch(
    shared: &Arc<Shared>,
    repo: &Repository,
    previous: &DeltaState,
    result: &mut ObjectResult,
) -> Result<DeltaState, String> {
    let first = format!("/drives/{}/root/delta", shared.drive);
    let mut pager = Pager::new(previous.link.clone().unwrap_or_else(|| first.clone()));
    // A full enumeration (first run, or after a 410) lists every live item: what the last
    // restore point has and it does not is gone.
    let mut full = previous.link.is_none();
    let mut seen: HashSet<String> = HashSet::new();
    let mut done: HashMap<String, String> = HashMap::new();
    let mut resyncs = 0;
    let mut delta_link = None;
    let slots = Arc::new(Semaphore::new(shared.options.downloads.max(1)));
    let mut fetches = tokio::task::JoinSet::new();
    let failures: Arc<Mutex<Vec<(u64, ItemFailure)>>> = Arc::default();
    let fetch_stats: Arc<Mutex<FetchStats>> = Arc::default();

    while let Some(url) = pager.next_page().map_err(|e| not_enumerated(&e))? {
        if shared.cancel.is_cancelled() {
            break;
        }
        let page: Page<GraphItem> = match shared.pool.get_json(&url).await {
            Ok(page) => page,
            Err(PoolError::M365(M365Error::ResyncRequired { location, .. })) if resyncs < 3 => {
                resyncs += 1;
                full = true;
                seen.clear();
                pager.restart(location.unwrap_or_else(|| first.clone()));
                continue;
            }
            Err(e) => return Err(match readable::<()>(Err(e)) {
                Ok(_) => {
                    "no backup account and not the organization's credentials may read this drive"
                        .into()
                }
                Err(e) => not_enumerated(&e),
            }),
        };
        for graph in page.value {
            result.items += 1;
            shared.counters.items.fetch_add(1, Ordering::Relaxed);
            if graph.deleted.is_some() {
                seen.remove(&graph.id);
                done.remove(&graph.id);
                let mut latest = shared.latest.lock().await;
                latest.generation.remove(&graph.id);
                shared
                    .writer
                    .delete_item(&graph.id)
                    .await
                    .map_err(|e| target_error(&e))?;
                drop(latest);
                result.deleted += 1;
                continue;
            }
            seen.insert(graph.id.clone());
            if graph.file.is_none() {
                let mut item = graph.to_item();
                // A shared folder's sharing, as a document's (restorePermissions re-creates
                // it). Best effort: a folder whose sharing cannot be read is still recorded.
                if graph.shared.is_some() {
                    match read_permissions(shared, &graph.id).await {
                        Ok(p) => item.permissions = Some(p),
                        Err(e) => tracing::warn!(
                            drive = %shared.drive,
                            folder = %graph.id,
                            error = %m365backup_core::Chain(&e),
                            "a shared folder's permissions could not be read"
                        ),
                    }
                }
                shared
                    .writer
                    .put_item(item)
                    .await
                    .map_err(|e| target_error(&e))?;
                continue;
            }
            let tag = change_tag(&graph);
            if done.get(&graph.id) == Some(&tag) {
                continue; // the same state came twice in one round
            }
            done.insert(graph.id.clone(), tag);
            let generation = shared.latest.lock().await.listed(&graph.id);
            let previous = shared
                .writer
                .parent_item(&graph.id)
                .await
                .map_err(|e| target_error(&e))?;
            spawn_fetch(
                shared,
                &slots,
                &mut fetches,
                &failures,
                &fetch_stats,
                FileWork {
                    graph,
                    previous,
                    generation,
                },
            )
            .await;
        }
        pager
            .follow(page.next_link)
            .map_err(|e| not_enumerated(&e))?;
        if page.delta_link.is_some() {
            delta_link = page.delta_link;
        }
    }

    // Files that failed last time, unless this round already covered them.
    for id in &previous.pending {
        if done.contains_key(id) || shared.cancel.is_cancelled() {
            continue;
        }
        let url = format!("/drives/{}/items/{id}", shared.drive);
        match shared.pool.get_json::<GraphItem>(&url).await {
            Ok(graph) if graph.file.is_some() && graph.deleted.is_none() => {
                done.insert(graph.id.clone(), change_tag(&graph));
                let generation = shared.latest.lock().await.listed(&graph.id);
                let previous = shared
                    .writer
                    .parent_item(&graph.id)
                    .await
                    .map_err(|e| target_error(&e))?;
                spawn_fetch(
                    shared,
                    &slots,
                    &mut fetches,
                    &failures,
                    &fetch_stats,
                    FileWork {
                        graph,
                        previous,
                        generation,
                    },
                )
                .await;
            }
            Ok(_) => {}
            Err(PoolError::M365(e)) if e.is_not_found() => {
                shared
                    .writer
                    .delete_item(id)
                    .await
                    .map_err(|e| target_error(&e))?;
            }
            Err(e) => {
                let generation = shared.latest.lock().await.listed(id);
                failures.lock().unwrap_or_else(|p| p.into_inner()).push((
                    generation,
                    ItemFailure {
                        item_id: id.clone(),
                        name: id.clone(),
                        reason: e.to_string(),
                    },
                ));
            }
        }
    }

    // Every download must be durable before the restore point is.
    let mut target_failure = None;
    while let Some(joined) = fetches.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => target_failure = target_failure.or(Some(e)),
            Err(e) => {
                target_failure = target_failure.or(Some(format!("a download task failed: {e}")))
            }
        }
    }
    if let Some(e) = target_failure {
        return Err(e);
    }
    if full && !shared.cancel.is_cancelled() {
        forget_unseen(shared, repo, &seen, result).await?;
    }
    // A failure of a listing that a later one (or a tombstone) superseded is no failure.
    let failures: Vec<ItemFailure> = {
        let latest = shared.latest.lock().await;
        std::mem::take(&mut *failures.lock().unwrap_or_else(|p| p.into_inner()))
            .into_iter()
            .filter(|(generation, f)| latest.is_current(&f.item_id, *generation))
            .map(|(_, f)| f)
            .collect()
    };
    let stats = fetch_stats
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    result.new_files = stats.new_files;
    result.carried_files = stats.carried_files;
    result.bytes_read = stats.bytes;
    let pending: Vec<String> = failures.iter().map(|f| f.item_id.clone()).collect();
    result.failures = failures;
    Ok(DeltaState {
        link: delta_link
            .map(|l| graph_relative(&l))
            .or_else(|| previous.link.clone()),
        pending,
    })
}

/// A Graph link without its host: `/drives/{id}/root/delta?token=…`. The delta link is kept in
/// the restore point this way, so the next run asks the organization's Graph endpoint as it is
/// configured then (the host of a link is never trusted anyway).
pub(crate) fn graph_relative(link: &str) -> String {
    match link.find("/v1.0/") {
        Some(at) if link.starts_with("http") => link[at + "/v1.0".len()..].to_owned(),
        _ => link.to_owned(),
    }
}

/// After a full enumeration: items of the last restore point that no longer exist.
async fn forget_unseen(
    shared: &Shared,
    repo: &Repository,
    seen: &HashSet<String>,
    result: &mut ObjectResult,
) -> Result<(), String> {
    let Some(parent) = shared.writer.parent() else {
        return Ok(());
    };
    let mut items = Box::pin(repo.items(&parent.doc));
    while let Some(item) = items.next().await {
        let item = item.map_err(|e| target_error(&e))?;
        if !seen.contains(&item.id) {
            shared
                .writer
                .delete_item(&item.id)
                .await
                .map_err(|e| target_error(&e))?;
            result.deleted += 1;
        }
    }
    Ok(())
}

/// What says a file's content changed: its quickXorHash and size, else its eTag.
pub(crate) fn change_tag(g: &GraphItem) -> String {
    match g.quick_xor_hash() {
        Some(h) => format!("{h}/{}", g.size.unwrap_or(0)),
        None => g.e_tag.clone().unwrap_or_default(),
    }
}

#[derive(Clone, Debug, Default)]
struct FetchStats {
    new_files: u64,
    carried_files: u64,
    bytes: u64,
}

async fn spawn_fetch(
    shared: &Arc<Shared>,
    slots: &Arc<Semaphore>,
    fetches: &mut tokio::task::JoinSet<Result<(), String>>,
    failures: &Arc<Mutex<Vec<(u64, ItemFailure)>>>,
    stats: &Arc<Mutex<FetchStats>>,
    work: FileWork,
) {
    let Ok(slot) = slots.clone().acquire_owned().await else {
        return;
    };
    let (shared, failures, stats) = (shared.clone(), failures.clone(), stats.clone());
    fetches.spawn(async move {
        let _slot = slot;
        match back_up_file(&shared, &work, &stats).await {
            Ok(()) => Ok(()),
            Err(FileError::Source(reason)) => {
                tracing::warn!(item = %work.graph.id, %reason, "file not backed up this time");
                failures.lock().unwrap_or_else(|p| p.into_inner()).push((
                    work.generation,
                    ItemFailure {
                        item_id: work.graph.id.clone(),
                        name: work
                            .graph
                            .name
                            .clone()
                            .unwrap_or_else(|| work.graph.id.clone()),
                        reason,
                    },
                ));
                Ok(())
            }
            Err(FileError::Target(e)) => Err(e),
            Err(FileError::Cancelled) => Ok(()),
        }
    });
}

/// A file's failure: of Microsoft 365 (the file is retried next run), of the repository (the
/// object fails), or the run was stopped.
enum FileError {
    Source(String),
    Target(String),
    Cancelled,
}

fn target_error(e: &RepoError) -> String {
    format!("the repository failed: {e}")
}

/// One file: carried over when its content is unchanged, else downloaded (and every version
/// with the `All` policy), checked against its quickXorHash, and recorded.
async fn back_up_file(
    shared: &Shared,
    work: &FileWork,
    stats: &Mutex<FetchStats>,
) -> Result<(), FileError> {
    let g = &work.graph;
    let mut item = g.to_item();
    let unchanged = work.previous.as_ref().filter(|p| {
        p.content.is_some()
            && p.size == item.size
            && match (g.quick_xor_hash(), previous_hash(p)) {
                (Some(now), Some(then)) => now == then,
                _ => p.e_tag.is_some() && p.e_tag == item.e_tag,
            }
    });
    match unchanged {
        Some(p) => {
            item.content = p.content.clone();
            item.versions = p.versions.clone();
            item.version_id = p.version_id.clone();
            stats
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .carried_files += 1;
        }
        None => {
            let url = format!("/drives/{}/items/{}/content", shared.drive, g.id);
            let (content, read) = fetch_verified(shared, &url, g.quick_xor_hash()).await?;
            item.content = Some(content);
            let mut s = stats.lock().unwrap_or_else(|e| e.into_inner());
            s.new_files += 1;
            s.bytes += read;
        }
    }
    if shared.options.version_policy == VersionPolicy::All {
        versions(shared, &mut item, work.previous.as_ref(), stats).await?;
    }
    // Sharing is read only for shared items: a permissions read costs 5 resource units.
    if g.shared.is_some() {
        item.permissions = Some(
            read_permissions(shared, &g.id)
                .await
                .map_err(|e| source_error(&e))?,
        );
    }
    let latest = shared.latest.lock().await;
    if !latest.is_current(&g.id, work.generation) {
        // Listed again later in the round, or deleted since: that listing decides.
        return Ok(());
    }
    let writing = Instant::now();
    shared
        .writer
        .put_item(item)
        .await
        .map_err(|e| FileError::Target(target_error(&e)))?;
    add_wait(&shared.counters.target_wait_nanos, writing.elapsed());
    drop(latest);
    shared.counters.files.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// A shared item's permissions as Graph lists them (a read costs 5 resource units).
async fn read_permissions(shared: &Shared, item: &str) -> Result<Value, PoolError> {
    let url = format!("/drives/{}/items/{item}/permissions", shared.drive);
    let page = shared.pool.get_json::<Page<Value>>(&url).await?;
    Ok(Value::Array(page.value))
}

fn previous_hash(item: &Item) -> Option<&str> {
    item.hashes.as_ref()?.get("quickXorHash")?.as_str()
}

fn source_error(e: &PoolError) -> FileError {
    FileError::Source(match e {
        PoolError::M365(M365Error::Graph { status: 404, .. }) => "the file vanished (404)".into(),
        PoolError::M365(M365Error::Graph { status: 423, .. }) => "the file is locked (423)".into(),
        other => other.to_string(),
    })
}

/// Downloads `url` into the repository; the stored content and the bytes read. A content whose
/// quickXorHash differs from the listed one is fetched once more before it is refused.
async fn fetch_verified(
    shared: &Shared,
    url: &str,
    expected: Option<&str>,
) -> Result<(Content, u64), FileError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        if shared.cancel.is_cancelled() {
            return Err(FileError::Cancelled);
        }
        // Asking for the download (the pool's pace and Retry-After included) is the source's.
        let asking = Instant::now();
        let stream = shared
            .pool
            .download_stream(url)
            .await
            .map_err(|e| source_error(&e))?;
        add_wait(&shared.counters.source_wait_nanos, asking.elapsed());
        let hasher = Arc::new(Mutex::new((QuickXorHash::new(), 0u64)));
        let source_failed = Arc::new(AtomicBool::new(false));
        let source_wait = Arc::new(AtomicU64::new(0));
        let stream = SourceTimed {
            inner: Box::pin(observed(
                stream,
                hasher.clone(),
                source_failed.clone(),
                shared.counters.clone(),
            )),
            since: None,
            waited: source_wait.clone(),
        };
        let storing = Instant::now();
        let stored = tokio::select! {
            stored = shared.writer.store_content(stream) => stored,
            _ = shared.cancel.cancelled() => return Err(FileError::Cancelled),
        };
        // The store's time is the source's (waiting for chunks) plus the repository's.
        let source = Duration::from_nanos(source_wait.load(Ordering::Relaxed));
        add_wait(&shared.counters.source_wait_nanos, source);
        add_wait(
            &shared.counters.target_wait_nanos,
            storing.elapsed().saturating_sub(source),
        );
        let content = match stored {
            Ok(c) => c,
            Err(e) if source_failed.load(Ordering::Relaxed) => {
                if attempt < 2 {
                    continue;
                }
                return Err(FileError::Source(format!("the download was cut off: {e}")));
            }
            Err(e) => return Err(FileError::Target(target_error(&e))),
        };
        let (hasher, read) = std::mem::take(&mut *hasher.lock().unwrap_or_else(|p| p.into_inner()));
        let actual = hasher.finalize_base64();
        match expected {
            Some(e) if e != actual => {
                if attempt < 2 {
                    continue;
                }
                return Err(FileError::Source(format!(
                    "the content does not match its quickXorHash ({actual} instead of {e})"
                )));
            }
            _ => return Ok((content, read)),
        }
    }
}

/// A stream that sums the time its consumer waits for each chunk into `waited`: the time the
/// writer spends waiting on Microsoft 365 rather than on the repository.
struct SourceTimed<S> {
    inner: Pin<Box<S>>,
    since: Option<Instant>,
    waited: Arc<AtomicU64>,
}

impl<S: Stream> Stream for SourceTimed<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let since = *self.since.get_or_insert_with(Instant::now);
        let polled = self.inner.as_mut().poll_next(cx);
        if polled.is_ready() {
            self.since = None;
            add_wait(&self.waited, since.elapsed());
        }
        polled
    }
}

/// The download stream, hashed and counted as it passes; a source error is noted.
fn observed(
    stream: impl Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    hasher: Arc<Mutex<(QuickXorHash, u64)>>,
    failed: Arc<AtomicBool>,
    counters: Arc<RunCounters>,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    stream.map(move |chunk| {
        match &chunk {
            Ok(bytes) => {
                let mut h = hasher.lock().unwrap_or_else(|p| p.into_inner());
                h.0.update(bytes);
                h.1 += bytes.len() as u64;
                counters
                    .bytes_read
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
            Err(_) => failed.store(true, Ordering::Relaxed),
        }
        chunk
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_links_are_kept_without_their_host() {
        assert_eq!(
            graph_relative("https://graph.microsoft.com/v1.0/drives/b!x/root/delta?token=abc"),
            "/drives/b!x/root/delta?token=abc"
        );
        assert_eq!(
            graph_relative("/drives/d/root/delta?token=1"),
            "/drives/d/root/delta?token=1"
        );
    }

    mod properties {
        use proptest::prelude::*;
        use serde_json::{json, Map, Value};

        /// A value of any JSON type, some of them odd for where they land.
        fn odd() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                "\\PC{0,10}".prop_map(Value::from),
                "[+-]?[0-9]{4,6}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})"
                    .prop_map(Value::from),
                Just(json!({"hashes": {"quickXorHash": "AAAA"}})),
                Just(json!({"id": "parent"})),
                Just(json!({})),
            ]
        }

        /// A drive item as Graph's delta lists it, each field there or not, right or odd.
        fn graph_item() -> impl Strategy<Value = Value> {
            const FIELDS: [&str; 14] = [
                "name",
                "size",
                "parentReference",
                "file",
                "root",
                "deleted",
                "eTag",
                "cTag",
                "createdDateTime",
                "lastModifiedDateTime",
                "fileSystemInfo",
                "createdBy",
                "lastModifiedBy",
                "shared",
            ];
            (
                prop_oneof![Just(Value::from("item")), Just(Value::from("")), odd()],
                prop::collection::vec((0..FIELDS.len(), odd()), 0..8),
            )
                .prop_map(|(id, fields)| {
                    let mut item = Map::new();
                    item.insert("id".into(), id);
                    for (field, value) in fields {
                        item.insert(FIELDS[field].into(), value);
                    }
                    Value::Object(item)
                })
        }

        proptest! {
            /// Any delta page: an error, or items the repository takes or refuses, never a
            /// panic; links are kept without their host.
            #[test]
            fn any_delta_page_gives_items_or_an_error(
                items in prop::collection::vec(graph_item(), 0..4),
                delta in proptest::option::of(prop_oneof!["\\PC{0,30}", "https?://[a-z./]{0,10}/v1\\.0/\\PC{0,10}"]),
            ) {
                let page = json!({"value": items, "@odata.deltaLink": delta});
                crate::fuzzing::delta_page(page.to_string().as_bytes());
            }
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphVersion {
    id: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    last_modified_date_time: Option<DateTime<Utc>>,
    #[serde(default)]
    last_modified_by: Option<Value>,
}

/// Every earlier version Microsoft keeps, each stored once: versions the last restore point
/// already holds are carried over.
async fn versions(
    shared: &Shared,
    item: &mut Item,
    previous: Option<&Item>,
    stats: &Mutex<FetchStats>,
) -> Result<(), FileError> {
    let url = format!("/drives/{}/items/{}/versions", shared.drive, item.id);
    let listed: Page<GraphVersion> = shared
        .pool
        .get_json(&url)
        .await
        .map_err(|e| source_error(&e))?;
    let known: BTreeMap<&str, &ItemVersion> = previous
        .map(|p| {
            p.versions
                .iter()
                .map(|v| (v.version_id.as_str(), v))
                .collect()
        })
        .unwrap_or_default();
    // Graph lists the current version first; it is the item's own content.
    let mut listed = listed.value;
    if let Some(current) = listed.first() {
        item.version_id = Some(current.id.clone());
    }
    let mut kept = Vec::new();
    for v in listed.drain(..).skip(1) {
        if let Some(k) = known.get(v.id.as_str()) {
            kept.push((*k).clone());
            continue;
        }
        let url = format!(
            "/drives/{}/items/{}/versions/{}/content",
            shared.drive, item.id, v.id
        );
        let (content, read) = fetch_verified(shared, &url, None).await?;
        stats.lock().unwrap_or_else(|e| e.into_inner()).bytes += read;
        kept.push(ItemVersion {
            version_id: v.id,
            size: v.size.unwrap_or(content.size),
            modified: v.last_modified_date_time,
            modified_by: v.last_modified_by,
            content,
        });
    }
    // Oldest first, as the repository keeps them.
    kept.sort_by(|a, b| {
        a.modified
            .cmp(&b.modified)
            .then(a.version_id.cmp(&b.version_id))
    });
    item.versions = kept;
    Ok(())
}
