//! Request bodies: content-type checks, size limits and parse errors answered as clear 4xx.
//!
//! JSON property names are matched case-insensitively, as the v5 reference itself mixes
//! `Type`/`type`: see [`crate::ci_json`].

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// Reads the whole body, answering 413 when it is larger than the configured limit.
async fn read_body(req: Request, state: &AppState) -> Result<(HeaderMap, Bytes), ApiError> {
    let limit = state.settings.max_body_bytes;
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(limit))?;
    Ok((parts.headers, bytes))
}

fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// A JSON request body deserialized into `T`, property names matched case-insensitively.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (headers, bytes) = read_body(req, state).await?;
        match media_type(&headers) {
            Some(m) if m == "application/json" || m.ends_with("+json") => {}
            Some(m) => {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "Content-Type '{m}' is not supported: send application/json"
                )))
            }
            None => {
                return Err(ApiError::UnsupportedMediaType(
                    "missing Content-Type: send application/json".into(),
                ))
            }
        }
        crate::ci_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(ApiError::BadRequest)
    }
}

/// An `application/x-www-form-urlencoded` body as name/value pairs (names kept as sent).
pub struct FormBody(pub Vec<(String, String)>);

impl FormBody {
    /// The value of a field, name matched case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl FromRequest<AppState> for FormBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (headers, bytes) = read_body(req, state).await?;
        match media_type(&headers).as_deref() {
            Some("application/x-www-form-urlencoded") => {}
            other => {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "Content-Type '{}' is not supported: send application/x-www-form-urlencoded",
                    other.unwrap_or("")
                )))
            }
        }
        serde_urlencoded::from_bytes(&bytes)
            .map(FormBody)
            .map_err(|e| ApiError::BadRequest(format!("malformed form body: {e}")))
    }
}
