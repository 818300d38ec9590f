//! One document restored: compared with what the target holds (size and quickXorHash), left
//! alone, overwritten or kept beside, then written — every version oldest first when asked —
//! small files in one request, larger ones through an upload session in fragments of
//! 10 × 320 KiB read from the repository as they are sent (a session that expires starts
//! again), the backed-up times set, and the sharing re-created.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use m365backup_m365::pool::writes::{
    ConflictBehavior, DriveItem, FileTimes, FragmentAnswer, UploadTarget, FRAGMENT_UNIT,
    SIMPLE_UPLOAD_MAX,
};
use m365backup_m365::pool::PoolError;
use m365backup_repo::{Content, Item};

use super::options::{check_name, kept_name, ChangedAction, VersionChoice};
use super::stats::Outcome;
use super::tree::{Job, TargetFolder};
use super::{failure_reason, Failure};

/// Bytes sent per upload-session fragment.
const FRAGMENT_BYTES: u64 = 10 * FRAGMENT_UNIT;
/// Upload sessions tried for one version before the file fails.
const SESSION_ATTEMPTS: u32 = 3;

/// What to do with one document.
enum Plan {
    Skip(Outcome),
    Write {
        name: String,
        conflict: ConflictBehavior,
    },
}

/// Restores one document into `parent`; how it ended.
pub async fn restore_document(
    job: &Job,
    item: &Item,
    parent: &TargetFolder,
    path: &str,
) -> Result<Outcome, Failure> {
    check_name(&item.name).map_err(Failure::new)?;
    let content = item
        .content
        .as_ref()
        .ok_or_else(|| Failure::new("the backup holds no content for it"))?;
    let plan = plan(job, item, content, parent).await?;
    let (name, conflict) = match plan {
        Plan::Skip(outcome) => return Ok(outcome),
        Plan::Write { name, conflict } => (name, conflict),
    };
    let written = write_versions(job, item, parent, &name, conflict).await?;
    if job.ctx.options.permissions {
        super::sharing::restore_sharing(job, item, &written.id, path).await;
    }
    Ok(Outcome::Restored)
}

/// Compares the backup with the target and decides.
async fn plan(
    job: &Job,
    item: &Item,
    content: &Content,
    parent: &TargetFolder,
) -> Result<Plan, Failure> {
    let options = &job.ctx.options;
    let write = |name: String, conflict| Ok(Plan::Write { name, conflict });
    if parent.fresh {
        return write(item.name.clone(), ConflictBehavior::Replace);
    }
    let existing = job
        .ctx
        .pool
        .child(&job.drive, &parent.id, &item.name)
        .await
        .map_err(|e| Failure::new(failure_reason(&e)))?;
    let Some(existing) = existing else {
        if !options.deleted_items {
            return Ok(Plan::Skip(Outcome::LeftOut));
        }
        return write(item.name.clone(), ConflictBehavior::Replace);
    };
    if existing.is_folder() {
        return Err(Failure::new(
            "a folder of the same name is in its place in the target",
        ));
    }
    if same_content(job, item, content, &existing).await? {
        return Ok(Plan::Skip(Outcome::Unchanged));
    }
    if !options.changed_items {
        return Ok(Plan::Skip(Outcome::LeftOut));
    }
    match options.changed {
        ChangedAction::Overwrite => write(item.name.clone(), ConflictBehavior::Replace),
        ChangedAction::Keep => write(
            kept_name(&item.name, chrono::Utc::now().date_naive()),
            ConflictBehavior::Rename,
        ),
    }
}

/// Whether the target's file already holds the backed-up content: same size and the same
/// quickXorHash (computed from the backup when it did not record one).
async fn same_content(
    job: &Job,
    item: &Item,
    content: &Content,
    existing: &DriveItem,
) -> Result<bool, Failure> {
    if existing.size != content.size {
        return Ok(false);
    }
    let Some(theirs) = existing.quick_xor_hash() else {
        return Ok(false);
    };
    let ours = match recorded_hash(item) {
        Some(h) => h,
        None => hash_of(job, content).await?,
    };
    Ok(ours == theirs)
}

fn recorded_hash(item: &Item) -> Option<String> {
    item.hashes
        .as_ref()?
        .get("quickXorHash")?
        .as_str()
        .map(str::to_owned)
}

async fn hash_of(job: &Job, content: &Content) -> Result<String, Failure> {
    let mut hasher = quickxorhash::QuickXorHash::new();
    let mut stream = job
        .point
        .repo
        .read_content(content, None)
        .map_err(unreadable)?;
    while let Some(chunk) = stream.next().await {
        hasher.update(&chunk.map_err(unreadable)?);
    }
    Ok(hasher.finalize_base64())
}

fn unreadable(e: impl std::fmt::Display) -> Failure {
    Failure::new(format!("the backup cannot be read: {e}"))
}

/// One version to write: its content and times.
struct Version<'a> {
    content: &'a Content,
    times: FileTimes,
}

fn versions_of(item: &Item, choice: VersionChoice) -> Vec<Version<'_>> {
    let mut out = Vec::new();
    if choice == VersionChoice::All {
        for v in &item.versions {
            out.push(Version {
                content: &v.content,
                times: FileTimes {
                    created: item.created,
                    modified: v.modified,
                },
            });
        }
    }
    if let Some(content) = &item.content {
        out.push(Version {
            content,
            times: FileTimes {
                created: item.created,
                modified: item.modified,
            },
        });
    }
    out
}

/// Writes the versions, oldest first: the first where the plan says, the others onto the
/// file it made. Times end as the backup's.
async fn write_versions(
    job: &Job,
    item: &Item,
    parent: &TargetFolder,
    name: &str,
    conflict: ConflictBehavior,
) -> Result<DriveItem, Failure> {
    let versions = versions_of(item, job.ctx.options.versions);
    let mut written: Option<DriveItem> = None;
    let mut times_set = false;
    for version in &versions {
        let target = match &written {
            None => UploadTarget::Child {
                drive: &job.drive,
                parent: &parent.id,
                name,
            },
            Some(file) => UploadTarget::Existing {
                drive: &job.drive,
                item: &file.id,
            },
        };
        let conflict = if written.is_none() {
            conflict
        } else {
            ConflictBehavior::Replace
        };
        let (file, with_times) = write_one(job, &target, version, conflict).await?;
        job.ctx.tally.written(version.content.size);
        times_set = with_times;
        written = Some(file);
    }
    let file = written.ok_or_else(|| Failure::new("the backup holds no content for it"))?;
    let last = versions.last().map(|v| v.times).unwrap_or_default();
    if !times_set && !last.is_empty() {
        job.ctx
            .pool
            .set_times(&job.drive, &file.id, last)
            .await
            .map_err(|e| Failure::new(failure_reason(&e)))?;
    }
    Ok(file)
}

/// Writes one version; the file and whether its times were set with it.
async fn write_one(
    job: &Job,
    target: &UploadTarget<'_>,
    version: &Version<'_>,
    conflict: ConflictBehavior,
) -> Result<(DriveItem, bool), Failure> {
    let pool = &job.ctx.pool;
    if version.content.size <= SIMPLE_UPLOAD_MAX {
        let bytes = read_whole(job, version.content).await?;
        let file = pool
            .upload_small(target, bytes, conflict)
            .await
            .map_err(|e| Failure::new(failure_reason(&e)))?;
        return Ok((file, false));
    }
    let mut last_error = None;
    for _ in 0..SESSION_ATTEMPTS {
        match upload_in_session(job, target, version, conflict).await {
            Ok(file) => return Ok((file, true)),
            Err(SessionError::Expired) => {
                tracing::debug!("an upload session expired midway; starting again");
                last_error = Some(PoolError::UploadSessionExpired);
            }
            Err(SessionError::Failed(f)) => return Err(f),
        }
    }
    Err(Failure::new(failure_reason(
        &last_error.unwrap_or(PoolError::UploadSessionExpired),
    )))
}

/// A small file's bytes (at most [`SIMPLE_UPLOAD_MAX`]), verified by the repository.
async fn read_whole(job: &Job, content: &Content) -> Result<Bytes, Failure> {
    let mut buf = BytesMut::with_capacity(content.size as usize);
    let mut stream = job
        .point
        .repo
        .read_content(content, None)
        .map_err(unreadable)?;
    while let Some(chunk) = stream.next().await {
        buf.extend_from_slice(&chunk.map_err(unreadable)?);
    }
    Ok(buf.freeze())
}

enum SessionError {
    /// The session expired: another one may finish the file.
    Expired,
    Failed(Failure),
}

/// One upload session: fragments cut from the repository's stream as they are sent.
async fn upload_in_session(
    job: &Job,
    target: &UploadTarget<'_>,
    version: &Version<'_>,
    conflict: ConflictBehavior,
) -> Result<DriveItem, SessionError> {
    let pool = &job.ctx.pool;
    let total = version.content.size;
    let failed = |e: PoolError| match e {
        PoolError::UploadSessionExpired => SessionError::Expired,
        e => SessionError::Failed(Failure::new(failure_reason(&e))),
    };
    let session = pool
        .create_upload_session(target, total, version.times, conflict)
        .await
        .map_err(failed)?;
    let mut stream = job
        .point
        .repo
        .read_content(version.content, None)
        .map_err(|e| SessionError::Failed(unreadable(e)))?;
    let mut buf = BytesMut::with_capacity(FRAGMENT_BYTES as usize);
    let mut offset = 0u64;
    loop {
        let next = stream.next().await;
        if let Some(chunk) = &next {
            let chunk = chunk
                .as_ref()
                .map_err(|e| SessionError::Failed(unreadable(e)))?;
            buf.extend_from_slice(chunk);
        }
        let last = next.is_none();
        while buf.len() as u64 >= FRAGMENT_BYTES || (last && !buf.is_empty()) {
            let take = (buf.len() as u64).min(FRAGMENT_BYTES) as usize;
            let fragment = buf.split_to(take).freeze();
            let len = fragment.len() as u64;
            let answer = pool
                .upload_fragment(&session, offset, total, fragment)
                .await;
            match answer {
                Ok(FragmentAnswer::More) => offset += len,
                Ok(FragmentAnswer::Done(file)) if offset + len == total => return Ok(file),
                Ok(FragmentAnswer::Done(_)) => {
                    return Err(SessionError::Failed(Failure::new(
                        "the upload session ended before the last byte",
                    )))
                }
                Err(e) => {
                    if !matches!(e, PoolError::UploadSessionExpired) {
                        pool.cancel_upload(&session).await;
                    }
                    return Err(failed(e));
                }
            }
        }
        if last {
            return Err(SessionError::Failed(Failure::new(
                "the backup's content ended before its recorded size",
            )));
        }
    }
}
