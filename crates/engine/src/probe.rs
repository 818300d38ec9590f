//! The probe: the traffic of a full backup without the writing. Every drive (users' OneDrives,
//! sites' document libraries) is found (`/sites/getAllSites` with the organization's
//! application permissions, personal sites included; else through users and site search),
//! enumerated with `root/delta` as OneDrive for Business serves it (an item may come more than
//! once: the last one wins; tombstones; a `410` restarts from its `Location`), and every file's
//! content is streamed through the pool, its quickXorHash checked against the listing's and its
//! SHA-256 computed; memory stays flat whatever the file sizes. Drives no credential may read
//! are reported, not fatal.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use m365backup_m365::paging::Pager;
use m365backup_m365::pool::{AccessReport, AccountPool, AccountReport, PoolError};
use m365backup_m365::M365Error;
use quickxorhash::QuickXorHash;
use serde::Deserialize;

use crate::discovery::{self, Site};
use sha2::{Digest, Sha256};

#[derive(Deserialize, Default)]
struct Hashes {
    #[serde(rename = "quickXorHash")]
    quick_xor_hash: Option<String>,
}

#[derive(Deserialize, Default)]
struct FileFacet {
    #[serde(default)]
    hashes: Hashes,
}

#[derive(Deserialize)]
struct DriveItem {
    id: String,
    #[serde(default)]
    size: u64,
    file: Option<FileFacet>,
    deleted: Option<serde::de::IgnoredAny>,
}

/// Live counters, for a progress bar.
#[derive(Default, Debug)]
pub struct ProbeProgress {
    pub drives: AtomicU64,
    pub items: AtomicU64,
    pub files_found: AtomicU64,
    pub bytes_found: AtomicU64,
    pub files_fetched: AtomicU64,
    pub bytes_fetched: AtomicU64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedFile {
    pub drive_id: String,
    pub item_id: String,
    pub size: u64,
    pub sha256: String,
    /// The content's quickXorHash (base64), as verified against the listing.
    pub quick_xor_hash: String,
}

#[derive(Debug)]
pub struct ProbeReport {
    pub drives: u64,
    pub items: u64,
    pub files: u64,
    pub bytes: u64,
    /// Files whose quickXorHash matched the one Graph listed.
    pub verified: u64,
    /// Files whose content did not match the listed quickXorHash, even when fetched again.
    pub hash_mismatches: Vec<String>,
    /// Files listed but gone (deleted) before they were fetched.
    pub vanished: u64,
    pub elapsed: Duration,
    pub accounts: Vec<AccountReport>,
    /// Sites and drives read with the organization's credentials, and those none could read.
    pub access: AccessReport,
    /// Every fetched file, when asked for (tests check content against the tenant).
    pub fetched: Vec<FetchedFile>,
}

#[derive(Clone, Debug)]
pub struct ProbeOptions {
    /// Downloads in flight at once.
    pub workers: usize,
    /// Keep the list of fetched files in the report.
    pub keep_file_list: bool,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            workers: 16,
            keep_file_list: false,
        }
    }
}

/// Ids of every OneDrive and document library of the tenant: the libraries of every site
/// `getAllSites` lists (personal sites included) with application permissions; without them,
/// the users' OneDrives and the libraries of the sites a search finds.
async fn drive_ids(pool: &AccountPool, concurrency: usize) -> Result<Vec<String>, PoolError> {
    let app_sites = match discovery::all::<Site>(pool, "/sites/getAllSites?$top=999", true).await {
        Ok(sites) => Some(sites),
        Err(PoolError::AccessDenied(_) | PoolError::NoUsableAccount(_)) => None,
        Err(PoolError::M365(e)) if e.is_access_denied() => None,
        Err(e) => return Err(e),
    };
    let (mut ids, sites) = match app_sites {
        Some(sites) => (Vec::new(), sites),
        None => {
            let users = discovery::users(pool).await?;
            let onedrives = discovery::onedrives(pool, users, concurrency).await?;
            let sites = discovery::all::<Site>(pool, "/sites?search=*", false).await?;
            (onedrives.into_iter().map(|(_, d)| d.id).collect(), sites)
        }
    };
    let libraries = discovery::libraries_of(
        pool,
        sites.into_iter().map(|s| (s, ())).collect(),
        concurrency,
    )
    .await?;
    ids.extend(libraries.into_iter().map(|(_, _, d)| d.id));
    ids.sort();
    ids.dedup();
    Ok(ids)
}

struct FileJob {
    drive_id: String,
    item_id: String,
    size: u64,
    quick_xor_hash: Option<String>,
}

/// The files of a drive after one full delta round: the last occurrence of each item wins, and
/// deleted items are dropped. `None` when no credential may read the drive.
async fn enumerate(
    pool: &AccountPool,
    drive: &str,
    progress: &ProbeProgress,
) -> Result<Option<Vec<FileJob>>, PoolError> {
    let first = format!("/drives/{drive}/root/delta");
    let mut files: HashMap<String, DriveItem> = HashMap::new();
    let mut pager = Pager::new(first.clone());
    let mut resyncs = 0;
    while let Some(url) = pager.next_page()? {
        let page: discovery::Page<DriveItem> = match pool.get_json(&url).await {
            Ok(page) => page,
            Err(PoolError::M365(M365Error::ResyncRequired { location, .. })) if resyncs < 3 => {
                // The round is void: start again where Graph says.
                resyncs += 1;
                files.clear();
                pager.restart(location.unwrap_or_else(|| first.clone()));
                continue;
            }
            Err(e) => return discovery::readable::<()>(Err(e)).map(|_| None),
        };
        for item in page.value {
            progress.items.fetch_add(1, Ordering::Relaxed);
            if item.deleted.is_some() {
                files.remove(&item.id);
            } else if item.file.is_some() {
                files.insert(item.id.clone(), item);
            }
        }
        pager.follow(page.next_link)?;
        let _ = page.delta_link; // the next backup starts from here
    }
    Ok(Some(
        files
            .into_values()
            .map(|item| FileJob {
                drive_id: drive.to_owned(),
                quick_xor_hash: item.file.and_then(|f| f.hashes.quick_xor_hash),
                item_id: item.id,
                size: item.size,
            })
            .collect(),
    ))
}

/// What a download produced.
struct Fetched {
    bytes: u64,
    sha256: String,
    quick_xor_hash: String,
}

async fn fetch(
    pool: &AccountPool,
    job: &FileJob,
    progress: &ProbeProgress,
) -> Result<Fetched, PoolError> {
    let mut sha = Sha256::new();
    let mut qx = QuickXorHash::new();
    let url = format!("/drives/{}/items/{}/content", job.drive_id, job.item_id);
    let bytes = pool
        .download(&url, |chunk| {
            sha.update(chunk);
            qx.update(chunk);
            progress
                .bytes_fetched
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        })
        .await?;
    Ok(Fetched {
        bytes,
        sha256: sha.finalize().iter().map(|b| format!("{b:02x}")).collect(),
        quick_xor_hash: qx.finalize_base64(),
    })
}

/// Shared by the download workers.
#[derive(Default)]
struct Outcome {
    fetched: Vec<FetchedFile>,
    verified: u64,
    mismatches: Vec<String>,
    vanished: u64,
}

/// Runs the probe over the whole organization.
pub async fn probe(
    pool: Arc<AccountPool>,
    options: ProbeOptions,
    progress: Arc<ProbeProgress>,
) -> Result<ProbeReport, PoolError> {
    let started = Instant::now();
    let workers = options.workers.max(1);
    let drives = drive_ids(&pool, workers).await?;
    progress
        .drives
        .store(drives.len() as u64, Ordering::Relaxed);

    // Enumerators feed a bounded queue; download workers drain it, so listing and fetching overlap
    // and memory holds only a queue's worth of work (and one drive's listing per enumerator).
    let (tx, rx) = tokio::sync::mpsc::channel::<FileJob>(workers * 8);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (pool, rx, progress, outcome, keep) = (
            pool.clone(),
            rx.clone(),
            progress.clone(),
            outcome.clone(),
            options.keep_file_list,
        );
        tasks.spawn(async move {
            loop {
                let job = { rx.lock().await.recv().await };
                let Some(job) = job else { return Ok::<(), PoolError>(()) };
                let mut attempt = fetch(&pool, &job, &progress).await;
                // A mismatch may be a torn transfer: fetch once more before calling it one.
                if matches!(&attempt, Ok(f) if job.quick_xor_hash.as_ref().is_some_and(|h| *h != f.quick_xor_hash)) {
                    attempt = fetch(&pool, &job, &progress).await;
                }
                let f = match attempt {
                    Ok(f) => f,
                    Err(PoolError::M365(e)) if e.is_not_found() => {
                        outcome.lock().unwrap_or_else(|p| p.into_inner()).vanished += 1;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                progress.files_fetched.fetch_add(1, Ordering::Relaxed);
                if f.bytes != job.size {
                    tracing::warn!(item = %job.item_id, expected = job.size, got = f.bytes, "downloaded size differs from the listed size");
                }
                let mut out = outcome.lock().unwrap_or_else(|p| p.into_inner());
                match &job.quick_xor_hash {
                    Some(listed) if *listed != f.quick_xor_hash => {
                        tracing::warn!(drive = %job.drive_id, item = %job.item_id, "content does not match its quickXorHash");
                        out.mismatches.push(format!("{}/{}", job.drive_id, job.item_id));
                    }
                    Some(_) => out.verified += 1,
                    None => {}
                }
                if keep {
                    out.fetched.push(FetchedFile { drive_id: job.drive_id, item_id: job.item_id, size: f.bytes, sha256: f.sha256, quick_xor_hash: f.quick_xor_hash });
                }
            }
        });
    }
    let enumerate_all = {
        let (pool, progress) = (pool.clone(), progress.clone());
        async move {
            stream::iter(drives)
                .map(|drive| {
                    let (pool, progress, tx) = (pool.clone(), progress.clone(), tx.clone());
                    async move {
                        let Some(files) = enumerate(&pool, &drive, &progress).await? else {
                            return Ok(());
                        };
                        for job in files {
                            progress.files_found.fetch_add(1, Ordering::Relaxed);
                            progress.bytes_found.fetch_add(job.size, Ordering::Relaxed);
                            if tx.send(job).await.is_err() {
                                return Ok(());
                            }
                        }
                        Ok::<(), PoolError>(())
                    }
                })
                .buffer_unordered(4)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<Vec<()>, _>>()
        }
    };
    let enumerated = enumerate_all.await;
    // The queue's sender is gone once enumeration ends: workers finish the rest and stop.
    let mut result = enumerated.map(|_| ());
    while let Some(joined) = tasks.join_next().await {
        if let Ok(Err(e)) = joined {
            if result.is_ok() {
                result = Err(e);
            }
        }
    }
    result?;
    let outcome = std::mem::take(&mut *outcome.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(ProbeReport {
        drives: progress.drives.load(Ordering::Relaxed),
        items: progress.items.load(Ordering::Relaxed),
        files: progress.files_fetched.load(Ordering::Relaxed),
        bytes: progress.bytes_fetched.load(Ordering::Relaxed),
        verified: outcome.verified,
        hash_mismatches: outcome.mismatches,
        vanished: outcome.vanished,
        elapsed: started.elapsed(),
        accounts: pool.report(),
        access: pool.access_report(),
        fetched: outcome.fetched,
    })
}
