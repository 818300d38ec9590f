//! The probe: the traffic of a full backup without the writing. Every drive (users' OneDrives,
//! sites' document libraries) is enumerated with `root/delta`, every file's content streamed
//! through the pool into SHA-256; memory stays flat whatever the file sizes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use m365backup_m365::pool::{AccountPool, AccountReport, PoolError};
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Deserialize)]
struct Page<T> {
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    delta_link: Option<String>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

#[derive(Deserialize)]
struct DriveItem {
    id: String,
    #[serde(default)]
    size: u64,
    file: Option<serde::de::IgnoredAny>,
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
}

#[derive(Debug)]
pub struct ProbeReport {
    pub drives: u64,
    pub items: u64,
    pub files: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    pub accounts: Vec<AccountReport>,
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

/// Every item of a collection through the pool, following `@odata.nextLink`.
async fn all<T: serde::de::DeserializeOwned>(
    pool: &AccountPool,
    first: &str,
) -> Result<Vec<T>, PoolError> {
    let mut items = Vec::new();
    let mut next = Some(first.to_owned());
    while let Some(url) = next {
        let page: Page<T> = pool.get_json(&url).await?;
        items.extend(page.value);
        next = page.next_link;
    }
    Ok(items)
}

/// Ids of every OneDrive and document library of the tenant.
async fn drive_ids(pool: &AccountPool, concurrency: usize) -> Result<Vec<String>, PoolError> {
    let users: Vec<IdOnly> = all(pool, "/users?$top=999").await?;
    let onedrives: Vec<Option<String>> = stream::iter(users)
        .map(|u| async move {
            match pool
                .get_json::<IdOnly>(&format!("/users/{}/drive", u.id))
                .await
            {
                Ok(d) => Ok(Some(d.id)),
                // A user without a OneDrive (no licence) is not an error.
                Err(PoolError::M365(e)) if e.is_not_found() => Ok(None),
                Err(e) => Err(e),
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let sites: Vec<IdOnly> = all(pool, "/sites?search=*").await?;
    let libraries: Vec<Vec<IdOnly>> = stream::iter(sites)
        .map(|s| async move { all::<IdOnly>(pool, &format!("/sites/{}/drives", s.id)).await })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let mut ids: Vec<String> = onedrives.into_iter().flatten().collect();
    ids.extend(libraries.into_iter().flatten().map(|d| d.id));
    Ok(ids)
}

struct FileJob {
    drive_id: String,
    item_id: String,
    size: u64,
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
    // and memory holds only a queue's worth of work.
    let (tx, rx) = tokio::sync::mpsc::channel::<FileJob>(workers * 8);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let fetched = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (pool, rx, progress, fetched, keep) = (
            pool.clone(),
            rx.clone(),
            progress.clone(),
            fetched.clone(),
            options.keep_file_list,
        );
        tasks.spawn(async move {
            loop {
                let job = { rx.lock().await.recv().await };
                let Some(job) = job else { return Ok::<(), PoolError>(()) };
                let mut hasher = Sha256::new();
                let url = format!("/drives/{}/items/{}/content", job.drive_id, job.item_id);
                let progress_bytes = &progress.bytes_fetched;
                let n = pool
                    .download(&url, |chunk| {
                        hasher.update(chunk);
                        progress_bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    })
                    .await?;
                progress.files_fetched.fetch_add(1, Ordering::Relaxed);
                if n != job.size {
                    tracing::warn!(item = %job.item_id, expected = job.size, got = n, "downloaded size differs from the listed size");
                }
                if keep {
                    let sha256 = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
                    fetched.lock().unwrap_or_else(|p| p.into_inner()).push(FetchedFile { drive_id: job.drive_id, item_id: job.item_id, size: n, sha256 });
                }
            }
        });
    }
    let enumerate = {
        let (pool, progress) = (pool.clone(), progress.clone());
        async move {
            stream::iter(drives)
                .map(|drive| {
                    let (pool, progress, tx) = (pool.clone(), progress.clone(), tx.clone());
                    async move {
                        let mut next = Some(format!("/drives/{drive}/root/delta"));
                        while let Some(url) = next {
                            let page: Page<DriveItem> = pool.get_json(&url).await?;
                            for item in page.value {
                                progress.items.fetch_add(1, Ordering::Relaxed);
                                if item.file.is_some() && item.deleted.is_none() {
                                    progress.files_found.fetch_add(1, Ordering::Relaxed);
                                    progress.bytes_found.fetch_add(item.size, Ordering::Relaxed);
                                    let job = FileJob {
                                        drive_id: drive.clone(),
                                        item_id: item.id,
                                        size: item.size,
                                    };
                                    if tx.send(job).await.is_err() {
                                        return Ok(());
                                    }
                                }
                            }
                            next = page.next_link;
                            let _ = page.delta_link; // the next backup starts from here
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
    let enumerated = enumerate.await;
    // The queue's sender is gone once enumeration ends: workers finish the rest and stop.
    let mut outcome = enumerated.map(|_| ());
    while let Some(joined) = tasks.join_next().await {
        if let Ok(Err(e)) = joined {
            if outcome.is_ok() {
                outcome = Err(e);
            }
        }
    }
    outcome?;
    let fetched = std::mem::take(&mut *fetched.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(ProbeReport {
        drives: progress.drives.load(Ordering::Relaxed),
        items: progress.items.load(Ordering::Relaxed),
        files: progress.files_fetched.load(Ordering::Relaxed),
        bytes: progress.bytes_fetched.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        accounts: pool.report(),
        fetched,
    })
}
