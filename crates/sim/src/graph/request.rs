//! What write requests carry: JSON bodies (refused in Graph's error shape), the
//! `@microsoft.graph.conflictBehavior` parameter, `fileSystemInfo` and `If-Match`.

use std::collections::HashMap;

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::shapes::{ctag, etag};
use super::GraphError;
use crate::tenant::{Conflict, Item, Times};

/// JSON bodies of write requests are small; content goes through other routes.
const MAX_JSON_BODY: usize = 1 << 20;

/// A JSON request body; an empty body reads as `{}`.
pub struct GraphBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for GraphBody<T> {
    type Rejection = GraphError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::to_bytes(req.into_body(), MAX_JSON_BODY)
            .await
            .map_err(|_| {
                GraphError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "invalidRequest",
                    "The request body is too large.",
                )
            })?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(text)
            .map(GraphBody)
            .map_err(|e| GraphError::bad_request(format!("Invalid request body: {e}")))
    }
}

/// The query of a write request.
pub type WriteQuery = HashMap<String, String>;

/// `@microsoft.graph.conflictBehavior` from the body, else from the query, else `default`.
pub fn conflict(
    body: Option<Conflict>,
    query: &WriteQuery,
    default: Conflict,
) -> Result<Conflict, GraphError> {
    if let Some(c) = body {
        return Ok(c);
    }
    match query.get("@microsoft.graph.conflictBehavior").map(String::as_str) {
        None => Ok(default),
        Some("fail") => Ok(Conflict::Fail),
        Some("replace") => Ok(Conflict::Replace),
        Some("rename") => Ok(Conflict::Rename),
        Some(other) => Err(GraphError::bad_request(format!(
            "Invalid value '{other}' for @microsoft.graph.conflictBehavior: fail, replace or rename."
        ))),
    }
}

/// A driveItem's `fileSystemInfo` as a client sends it.
#[derive(Debug, Default, Deserialize)]
pub struct FileSystemInfo {
    #[serde(rename = "createdDateTime")]
    pub created: Option<DateTime<Utc>>,
    #[serde(rename = "lastModifiedDateTime")]
    pub modified: Option<DateTime<Utc>>,
}

impl From<Option<FileSystemInfo>> for Times {
    fn from(f: Option<FileSystemInfo>) -> Self {
        let f = f.unwrap_or_default();
        Times {
            created: f.created,
            modified: f.modified,
        }
    }
}

/// Refuses a change whose `If-Match` names neither the item's current eTag nor its cTag.
pub fn check_if_match(headers: &HeaderMap, item: &Item) -> Result<(), GraphError> {
    let Some(value) = headers.get("if-match").and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    // An eTag holds a comma itself (`"{ID},3"`), so the header is one tag.
    let tag = value.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    if tag == "*" || tag == etag(item) || ctag(item).is_some_and(|c| c == tag) {
        Ok(())
    } else {
        Err(GraphError::precondition_failed())
    }
}
