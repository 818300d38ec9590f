//! What a restore did, item by item: restored, skipped (unchanged, left out by the options, or
//! under a folder that failed), failed (with the reasons, named), and sharing that could not be
//! re-created. Each item lands in exactly one count.

use std::sync::Mutex;

/// At most this many failures are kept with their names (the counts go on).
const MAX_ISSUES: usize = 1000;
/// At most this many items of one restore are kept for their own events (the counts go on).
pub const MAX_RECORDED_ITEMS: usize = 100_000;

/// An item as a restore met it: its path in the backup, `Document` or `Folder`, its size.
#[derive(Clone, Copy, Debug)]
pub struct ItemRef<'a> {
    pub path: &'a str,
    pub kind: &'static str,
    pub size: u64,
}

/// How one item of a restore ended, for its own event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemRecord {
    pub path: String,
    pub kind: &'static str,
    pub size: u64,
    /// `None` when it failed (then `reason` says why).
    pub outcome: Option<Outcome>,
    pub reason: Option<String>,
    pub time: chrono::DateTime<chrono::Utc>,
}

/// One item that could not be restored, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemIssue {
    /// The item's path in the backup (`Folder/file.docx`).
    pub item: String,
    pub reason: String,
}

/// The statistics of one restore.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreStats {
    pub total: u64,
    pub restored: u64,
    pub failed: u64,
    /// Sharing permissions that could not be re-created.
    pub failed_permissions: u64,
    /// Items not tried because a folder above them could not be restored.
    pub skipped_by_error: u64,
    /// Items whose content in the target already equals the backup.
    pub skipped_unchanged: u64,
    /// Items the options leave out (changed or deleted items not asked for).
    pub skipped_by_options: u64,
    /// Documents written (each version counts once in `versions_written`).
    pub bytes_written: u64,
    pub versions_written: u64,
    pub issues: Vec<ItemIssue>,
    /// Each item and how it ended, in order (at most [`MAX_RECORDED_ITEMS`]).
    pub items: Vec<ItemRecord>,
}

impl RestoreStats {
    /// The counts alone.
    fn clone_counts(&self) -> RestoreStats {
        RestoreStats {
            issues: Vec::new(),
            items: Vec::new(),
            ..*self
        }
    }

    /// Items that ended well (restored or rightly skipped).
    pub fn succeeded(&self) -> u64 {
        self.restored + self.skipped_unchanged + self.skipped_by_options
    }

    /// Items that ended badly.
    pub fn unsuccessful(&self) -> u64 {
        self.failed + self.skipped_by_error
    }
}

/// How one item ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Restored,
    Unchanged,
    LeftOut,
    /// Not tried: a folder above it failed.
    NotTried,
}

/// The statistics of a restore in progress, shared by its workers.
#[derive(Default)]
pub struct Tally {
    stats: Mutex<RestoreStats>,
}

impl Tally {
    fn with<T>(&self, f: impl FnOnce(&mut RestoreStats) -> T) -> T {
        f(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn count(&self, item: ItemRef<'_>, outcome: Outcome) {
        self.with(|s| {
            s.total += 1;
            match outcome {
                Outcome::Restored => s.restored += 1,
                Outcome::Unchanged => s.skipped_unchanged += 1,
                Outcome::LeftOut => s.skipped_by_options += 1,
                Outcome::NotTried => s.skipped_by_error += 1,
            }
            record(s, item, Some(outcome), None);
        })
    }

    pub fn fail(&self, item: ItemRef<'_>, reason: impl Into<String>) {
        let reason = reason.into();
        tracing::debug!(item = item.path, reason = %reason, "an item was not restored");
        self.with(|s| {
            s.total += 1;
            s.failed += 1;
            if s.issues.len() < MAX_ISSUES {
                s.issues.push(ItemIssue {
                    item: item.path.to_owned(),
                    reason: reason.clone(),
                });
            }
            record(s, item, None, Some(reason));
        })
    }

    pub fn permission_failed(&self, item: &str, reason: impl Into<String>) {
        let reason = format!("sharing not re-created: {}", reason.into());
        self.with(|s| {
            s.failed_permissions += 1;
            if s.issues.len() < MAX_ISSUES {
                s.issues.push(ItemIssue {
                    item: item.to_owned(),
                    reason,
                });
            }
        })
    }

    pub fn written(&self, bytes: u64) {
        self.with(|s| {
            s.bytes_written += bytes;
            s.versions_written += 1;
        })
    }

    pub fn snapshot(&self) -> RestoreStats {
        self.with(|s| s.clone())
    }

    /// The counts so far, without the item records (cheap enough for a progress bar).
    pub fn counts(&self) -> RestoreStats {
        self.with(|s| s.clone_counts())
    }
}

fn record(
    s: &mut RestoreStats,
    item: ItemRef<'_>,
    outcome: Option<Outcome>,
    reason: Option<String>,
) {
    if s.items.len() < MAX_RECORDED_ITEMS {
        s.items.push(ItemRecord {
            path: item.path.to_owned(),
            kind: item.kind,
            size: item.size,
            outcome,
            reason,
            time: chrono::Utc::now(),
        });
    }
}
