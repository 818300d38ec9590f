//! Errors of the domain layer. The API layer maps each variant to an HTTP status in one place.

use std::time::Duration;

/// Any error, kept whole (with its own sources) where a layer wraps another's.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failure of the persistence layer, as the core sees it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (e.g. an operator name that already exists).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database failed in `doing` (the store function or step; its driver's error is the
    /// source); for logs, never for clients.
    #[error("database error in {doing}")]
    Backend {
        doing: &'static str,
        #[source]
        source: BoxError,
    },
    /// A stored value does not read back (the source says why); for logs, never for clients.
    #[error("corrupt {what} in the database")]
    Corrupt {
        what: String,
        #[source]
        source: BoxError,
    },
    /// The configured database URL names no database this server speaks (redacted).
    #[error("unsupported database URL scheme in '{0}': use sqlite:// or postgres://")]
    UnsupportedUrl(String),
    /// A database file (or one of its journal files) is a symbolic link: whoever planted it
    /// would redirect the database, so it is not opened.
    #[error("{0} is a symbolic link; refusing to open the database through it (replace it with the file itself)")]
    SymbolicLink(String),
}

impl StoreError {
    /// The database failed while `doing` something.
    pub fn backend(doing: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Backend {
            doing,
            source: source.into(),
        }
    }

    /// The stored `what` does not read back.
    pub fn corrupt(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Corrupt {
            what: what.into(),
            source: source.into(),
        }
    }
}

/// An error and every source below it, `: `-separated, for a log line.
pub struct Chain<'a>(pub &'a dyn std::error::Error);

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
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
    /// A service the request depends on (Microsoft 365, the backup repository) is unavailable or
    /// throttling: 503. The message says what could not be done; the failure behind it, when
    /// there is one, is kept as the source (the answer's text is the whole chain, see [`Chain`]).
    #[error("{message}")]
    Unavailable {
        message: String,
        #[source]
        source: Option<BoxError>,
        /// How long the service asked to wait when it throttled (answered as `Retry-After`).
        retry_after: Option<Duration>,
    },
    /// No valid access token.
    #[error("Authorization has been denied for this request.")]
    Unauthenticated,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A fault of the server itself (not the client's): logged with its sources, answered 500.
    #[error("internal error while {doing}")]
    Internal {
        doing: &'static str,
        #[source]
        source: BoxError,
    },
}

impl CoreError {
    /// A service the request depends on is unavailable; `message` says what could not be done.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable {
            message: message.into(),
            source: None,
            retry_after: None,
        }
    }

    /// A service the request depends on failed with `source` while the server tried `message`.
    pub fn unavailable_because(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            message: message.into(),
            source: Some(source.into()),
            retry_after: None,
        }
    }

    /// The service throttled: it asked to wait `wait` (an [`Self::Unavailable`] only).
    pub fn retry_after(self, wait: Duration) -> Self {
        match self {
            Self::Unavailable {
                message, source, ..
            } => Self::Unavailable {
                message,
                source,
                retry_after: Some(wait),
            },
            other => other,
        }
    }

    /// A fault of the server while `doing` something; `source` is an error or a message.
    pub fn internal(doing: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Internal {
            doing,
            source: source.into(),
        }
    }
}

pub type CoreResult<T> = Result<T, CoreError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_keep_their_source_and_chain_prints_it() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "peer went away");
        let e = CoreError::from(StoreError::backend("list_jobs", io));
        let kept = std::error::Error::source(&e).expect("the driver's error is kept");
        assert!(kept.downcast_ref::<std::io::Error>().is_some());
        assert_eq!(
            Chain(&e).to_string(),
            "database error in list_jobs: peer went away"
        );
    }

    #[test]
    fn internal_errors_name_what_failed_and_keep_why() {
        let e = CoreError::internal("opening a sealed secret", "unknown format");
        assert_eq!(
            Chain(&e).to_string(),
            "internal error while opening a sealed secret: unknown format"
        );
    }
}
