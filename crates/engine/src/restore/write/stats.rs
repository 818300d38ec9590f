//! What a restore did, item by item: restored, skipped (unchanged, left out by the options, or
//! under a folder that failed), failed (with the reasons, named), and sharing that could not be
//! re-created. Each item lands in exactly one count.

use std::sync::Mutex;

/// At most this many failures are kept with their names (the counts go on).
const MAX_ISSUES: usize = 1000;

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
}

impl RestoreStats {
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

    pub fn count(&self, outcome: Outcome) {
        self.with(|s| {
            s.total += 1;
            match outcome {
                Outcome::Restored => s.restored += 1,
                Outcome::Unchanged => s.skipped_unchanged += 1,
                Outcome::LeftOut => s.skipped_by_options += 1,
                Outcome::NotTried => s.skipped_by_error += 1,
            }
        })
    }

    pub fn fail(&self, item: &str, reason: impl Into<String>) {
        let reason = reason.into();
        tracing::debug!(item, reason = %reason, "an item was not restored");
        self.with(|s| {
            s.total += 1;
            s.failed += 1;
            if s.issues.len() < MAX_ISSUES {
                s.issues.push(ItemIssue {
                    item: item.to_owned(),
                    reason,
                });
            }
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
}
