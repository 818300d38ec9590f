//! The API's one error type, and the single place where domain errors become HTTP responses.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use m365backup_core::{BoxError, Chain, CoreError};
use serde::Serialize;

/// The vendor's `RESTExceptionInfo`: every error body is `{"message": "..."}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub message: String,
}

pub const DENIED: &str = "Authorization has been denied for this request.";

#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    Unauthorized,
    NotFound(String),
    Conflict(String),
    PayloadTooLarge(usize),
    UnsupportedMediaType(String),
    TooManyRequests(Duration),
    /// The server is at a limit of its own (e.g. password hashes in progress); retry later.
    Busy(Duration),
    /// Microsoft 365 is unavailable or throttling; the client may retry later (after the wait
    /// Microsoft asked for, when it throttled).
    ServiceUnavailable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// OAuth-style token endpoint error (`invalid_grant`, `unsupported_grant_type`, ...).
    OAuth {
        error: &'static str,
        description: String,
    },
    /// A fault of the server, kept whole for the log (the client learns only that it was ours).
    Internal(BoxError),
}

impl ApiError {
    /// A fault of the server, from any error (kept with its sources) or a message.
    pub fn internal(e: impl Into<BoxError>) -> Self {
        ApiError::Internal(e.into())
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Invalid(m) => ApiError::BadRequest(m),
            CoreError::NotFound(m) => ApiError::NotFound(m),
            CoreError::Conflict(m) => ApiError::Conflict(m),
            CoreError::InvalidGrant(m) => ApiError::OAuth {
                error: "invalid_grant",
                description: m,
            },
            CoreError::Throttled { retry_after } => ApiError::TooManyRequests(retry_after),
            CoreError::Unauthenticated => ApiError::Unauthorized,
            e @ CoreError::Unavailable { retry_after, .. } => ApiError::ServiceUnavailable {
                message: m365backup_core::error::Chain(&e).to_string(),
                retry_after,
            },
            CoreError::Busy { retry_after } => ApiError::Busy(retry_after),
            e @ CoreError::Store(_) => ApiError::internal(e),
            e @ CoreError::Internal { .. } => ApiError::internal(e),
        }
    }
}

pub fn message(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(ErrorBody {
            message: message.into(),
        }),
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::BadRequest(m) => message(StatusCode::BAD_REQUEST, m),
            ApiError::Unauthorized => {
                let mut r = message(StatusCode::UNAUTHORIZED, DENIED);
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                r
            }
            ApiError::NotFound(m) => message(StatusCode::NOT_FOUND, m),
            ApiError::Conflict(m) => message(StatusCode::CONFLICT, m),
            ApiError::PayloadTooLarge(limit) => message(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body is larger than the limit of {limit} bytes"),
            ),
            ApiError::UnsupportedMediaType(m) => message(StatusCode::UNSUPPORTED_MEDIA_TYPE, m),
            ApiError::TooManyRequests(wait) => {
                let secs = whole_secs(wait);
                with_retry_after(
                    message(
                        StatusCode::TOO_MANY_REQUESTS,
                        format!("Too many sign-in attempts. Try again in {secs} seconds."),
                    ),
                    secs,
                )
            }
            ApiError::Busy(wait) => {
                let secs = whole_secs(wait);
                with_retry_after(
                    message(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("The server is busy. Try again in {secs} seconds."),
                    ),
                    secs,
                )
            }
            ApiError::ServiceUnavailable {
                message: m,
                retry_after,
            } => {
                let answer = message(StatusCode::SERVICE_UNAVAILABLE, m);
                match retry_after {
                    Some(wait) => with_retry_after(answer, whole_secs(wait)),
                    None => answer,
                }
            }
            ApiError::OAuth { error, description } => (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({ "error": error, "error_description": description })),
            )
                .into_response(),
            ApiError::Internal(e) => {
                // The detail is for the log; the client learns only that it was not its fault.
                tracing::error!(error = %Chain(&*e), "internal error");
                message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The server failed to process the request.",
                )
            }
        }
    }
}

/// A wait in whole seconds, rounded up, at least one.
fn whole_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

fn with_retry_after(mut response: Response, secs: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

pub type ApiResult<T> = Result<T, ApiError>;
