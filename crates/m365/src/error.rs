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
    /// `410 Gone` on a delta token: the client must enumerate afresh, from `location` when given
    /// (Graph's `resyncRequired` family).
    #[error("Microsoft Graph asks for a fresh enumeration ({code})")]
    ResyncRequired {
        code: String,
        location: Option<String>,
    },
    /// The endpoint could not be reached, or answered something that is not Microsoft's shape.
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
}

impl M365Error {
    pub fn is_not_found(&self) -> bool {
        matches!(self, M365Error::Graph { status: 404, .. })
    }

    /// `403`: the credentials may not read the resource (not a throttle, not a broken account).
    pub fn is_access_denied(&self) -> bool {
        matches!(self, M365Error::Graph { status: 403, .. })
    }
}
