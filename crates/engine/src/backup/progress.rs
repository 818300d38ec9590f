//! A run's live figures: counters the backup bumps as it goes, and the session statistics and
//! `details` line made from them every few seconds (rates, bytes, objects, and where the run
//! waits: on Microsoft 365's throttling or on the repository).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use m365backup_core::jobs::model::{Bottleneck, SessionStatistics};
use m365backup_m365::pool::AccountReport;

#[derive(Debug, Default)]
pub struct RunCounters {
    pub objects_total: AtomicU64,
    pub objects_done: AtomicU64,
    /// Delta entries read (files, folders, deletions).
    pub items: AtomicU64,
    /// Files recorded (downloaded or carried over).
    pub files: AtomicU64,
    /// Content bytes downloaded.
    pub bytes_read: AtomicU64,
    /// Bytes the repository stored anew (compressed and sealed).
    pub bytes_stored: AtomicU64,
    /// Files that could not be backed up this run.
    pub failures: AtomicU64,
    /// Nanoseconds the file workers waited for Microsoft 365 to send content, summed.
    pub source_wait_nanos: AtomicU64,
    /// Nanoseconds the file workers waited on the repository (storing content, recording
    /// items) while not waiting for the source, summed.
    pub target_wait_nanos: AtomicU64,
}

/// Adds `d` to a nanosecond counter.
pub fn add_wait(counter: &AtomicU64, d: Duration) {
    counter.fetch_add(
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

/// Turns counters into statistics, remembering the previous reading for the rates' window.
pub struct StatisticsMaker {
    started: Instant,
    paused_before: Duration,
}

impl StatisticsMaker {
    pub fn new(accounts: &[AccountReport]) -> Self {
        Self {
            started: Instant::now(),
            paused_before: paused(accounts),
        }
    }

    /// The session's statistics now, and its progress in percent (objects done).
    pub fn reading(&self, c: &RunCounters, accounts: &[AccountReport]) -> (SessionStatistics, u8) {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let read = c.bytes_read.load(Ordering::Relaxed);
        let stored = c.bytes_stored.load(Ordering::Relaxed);
        let files = c.files.load(Ordering::Relaxed);
        let done = c.objects_done.load(Ordering::Relaxed);
        let total = c.objects_total.load(Ordering::Relaxed);
        let waited = paused(accounts).saturating_sub(self.paused_before);
        let bottleneck = bottleneck(
            secs,
            waited.as_secs_f64() / accounts.len().max(1) as f64,
            Duration::from_nanos(c.source_wait_nanos.load(Ordering::Relaxed)),
            Duration::from_nanos(c.target_wait_nanos.load(Ordering::Relaxed)),
        );
        let progress = (done * 100).checked_div(total).unwrap_or(0).min(99) as u8;
        (
            SessionStatistics {
                processing_rate_bytes_ps: (read as f64 / secs) as u64,
                processing_rate_items_ps: (files as f64 / secs) as u64,
                read_rate_bytes_ps: (read as f64 / secs) as u64,
                write_rate_bytes_ps: (stored as f64 / secs) as u64,
                transferred_data_bytes: read,
                processed_objects: done,
                bottleneck,
            },
            progress,
        )
    }
}

/// Where a run of `secs` seconds waits. Throttled accounts' pauses (per account) against the
/// run's time: when the accounts spend more than a tenth of the time paused, Microsoft 365 sets
/// the pace. Otherwise the workers' measured waits decide: on the download (`Source`) or on
/// the repository (`Target`).
fn bottleneck(
    secs: f64,
    paused_per_account: f64,
    source: Duration,
    target: Duration,
) -> Bottleneck {
    if secs < 5.0 {
        Bottleneck::Detecting
    } else if paused_per_account > secs * 0.1 {
        Bottleneck::Source
    } else if source.is_zero() && target.is_zero() {
        Bottleneck::NA
    } else if target > source {
        Bottleneck::Target
    } else {
        Bottleneck::Source
    }
}

fn paused(accounts: &[AccountReport]) -> Duration {
    accounts.iter().map(|a| a.paused).sum()
}

/// The running session's `details`: what a progress bar shows.
pub fn details_line(c: &RunCounters, accounts: &[AccountReport]) -> String {
    let throttled: u64 = accounts
        .iter()
        .map(|a| a.throttled_429 + a.throttled_503)
        .sum();
    format!(
        "{} of {} objects, {} items, {} files, {} read, {} throttled",
        c.objects_done.load(Ordering::Relaxed),
        c.objects_total.load(Ordering::Relaxed),
        c.items.load(Ordering::Relaxed),
        c.files.load(Ordering::Relaxed),
        human_bytes(c.bytes_read.load(Ordering::Relaxed)),
        throttled
    )
}

/// `1.5 MiB`, as logs and details print sizes.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slower_side_is_the_bottleneck() {
        let s = Duration::from_secs;
        assert_eq!(bottleneck(2.0, 0.0, s(1), s(9)), Bottleneck::Detecting);
        // Paused for throttling a fifth of the run: Microsoft 365, whatever the writer did.
        assert_eq!(bottleneck(60.0, 12.0, s(1), s(100)), Bottleneck::Source);
        // Unthrottled: the side the workers waited on longer.
        assert_eq!(bottleneck(60.0, 1.0, s(10), s(100)), Bottleneck::Target);
        assert_eq!(bottleneck(60.0, 1.0, s(100), s(10)), Bottleneck::Source);
        assert_eq!(bottleneck(60.0, 0.0, s(0), s(0)), Bottleneck::NA);
    }

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
