//! Progress of long operations (check, prune, rebuild), for the CLI's progress bars and logs.

/// Told what is going on; every method has a default that ignores it.
pub trait Progress: Send + Sync {
    /// A new phase begins, with the amount of work in it when known.
    fn phase(&self, _name: &str, _total: Option<u64>) {}
    /// `n` more units of the current phase are done.
    fn advance(&self, _n: u64) {}
}

/// Progress nobody watches.
pub struct Quiet;

impl Progress for Quiet {}
