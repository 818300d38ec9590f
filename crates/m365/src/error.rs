//! Failures of calls to Microsoft 365, typed from Microsoft's error bodies.

use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum M365Error {
    /// The identity platform refused the sign-in; `description` is its own text (AADSTS…).
    #[error("{description}")]
    SignIn {
        error: String,
        description: String,
        codes: Vec<u64>,
    },
    /// Graph answered 429/503 and retries were exhausted (or not allowed).
    #[error("throttled by Microsoft 365 (retry after {} s)", retry_after.as_secs())]
    Throttled { retry_after: Duration, status: u16 },
    /// Graph answered an error other than throttling.
    #[error("Microsoft Graph answered {status} {code}: {message}")]
    Graph {
        status: u16,
        code: String,
        message: String,
    },
    /// The endpoint could not be reached, or answered something that is not Microsoft's shape.
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
}

impl M365Error {
    pub fn is_not_found(&self) -> bool {
        matches!(self, M365Error::Graph { status: 404, .. })
    }
}
