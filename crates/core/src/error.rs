//! Errors of the domain layer. The API layer maps each variant to an HTTP status in one place.

use std::time::Duration;

/// A failure of the persistence layer, as the core sees it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (e.g. an operator name that already exists).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database failed; the text is for logs, never for clients.
    #[error("database error: {0}")]
    Backend(String),
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The input breaks a rule; the message names the field.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Sign-in refused (wrong user, wrong password, unknown or expired refresh token).
    #[error("{0}")]
    InvalidGrant(String),
    /// Too many failed sign-ins; try again after the given delay.
    #[error("too many failed sign-in attempts; retry in {} s", retry_after.as_secs().max(1))]
    Throttled { retry_after: Duration },
    /// The server is at its limit for this kind of work (e.g. password hashes in progress):
    /// 503, try again after the given delay.
    #[error("the server is busy; retry in {} s", retry_after.as_secs().max(1))]
    Busy { retry_after: Duration },
    /// A service the request depends on (Microsoft 365) is unavailable or throttling: 503.
    #[error("{0}")]
    Unavailable(String),
    /// No valid access token.
    #[error("Authorization has been denied for this request.")]
    Unauthenticated,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A fault of the server itself (not the client's): logged, answered 500.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type CoreResult<T> = Result<T, CoreError>;
