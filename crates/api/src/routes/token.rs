//! `POST /v5/Token` (sign-in and refresh) and `DELETE /v5/Token` (sign-out).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use m365backup_core::auth::{IssuedTokens, MAX_USERNAME_BYTES};
use m365backup_core::Secret;
use serde::Serialize;
use utoipa::ToSchema;

use crate::bearer::Operator;
use crate::body::FormBody;
use crate::client::ClientAddr;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// The form fields of `POST /v5/Token` (`application/x-www-form-urlencoded`).
#[allow(dead_code)] // documents the form for OpenAPI; the handler reads fields by name
#[derive(ToSchema)]
pub struct TokenRequest {
    /// `password` or `refresh_token`.
    grant_type: String,
    /// Operator user name (password grant).
    username: Option<String>,
    /// Operator password (password grant).
    password: Option<String>,
    /// A refresh token from an earlier response (refresh_token grant).
    refresh_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    access_token: String,
    /// Always `bearer`.
    token_type: &'static str,
    /// Seconds the access token lives.
    expires_in: u64,
    refresh_token: String,
    #[serde(rename = "userName")]
    user_name: String,
    /// RFC 1123 date.
    #[serde(rename = ".issued")]
    issued: String,
    /// RFC 1123 date; typed clients sign in again when it has passed.
    #[serde(rename = ".expires")]
    expires: String,
}

/// The OAuth 2.0 error body of the token endpoint.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct OAuthError {
    /// `invalid_grant`, `invalid_request` or `unsupported_grant_type`.
    error: String,
    error_description: String,
}

fn rfc1123(t: DateTime<Utc>) -> String {
    httpdate::fmt_http_date(t.into())
}

impl From<IssuedTokens> for TokenResponse {
    fn from(t: IssuedTokens) -> Self {
        TokenResponse {
            access_token: t.access_token.expose().to_owned(),
            token_type: "bearer",
            expires_in: t.expires_in.as_secs(),
            refresh_token: t.refresh_token.expose().to_owned(),
            user_name: t.user_name,
            issued: rfc1123(t.issued_at),
            expires: rfc1123(t.expires_at),
        }
    }
}

fn invalid_request(description: &str) -> ApiError {
    ApiError::OAuth {
        error: "invalid_request",
        description: description.to_owned(),
    }
}

/// Sign in with an operator's user name and password, or renew with a refresh token.
#[utoipa::path(
    post,
    path = "/v5/Token",
    tag = "Token",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 400, description = "Wrong credentials, bad or spent refresh token, unsupported grant", body = OAuthError),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not a form body", body = ErrorBody),
        (status = 429, description = "Too many failed attempts; see Retry-After", body = ErrorBody),
        (status = 503, description = "Too many sign-ins being verified at once; see Retry-After", body = ErrorBody),
    )
)]
pub async fn issue_token(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    form: FormBody,
) -> ApiResult<Response> {
    let grant = form
        .get("grant_type")
        .ok_or_else(|| invalid_request("grant_type is required"))?;
    let tokens = match grant {
        "password" => {
            let username = form
                .get("username")
                .ok_or_else(|| invalid_request("username is required"))?;
            if username.len() > MAX_USERNAME_BYTES {
                return Err(invalid_request(&format!(
                    "username must be at most {MAX_USERNAME_BYTES} bytes long"
                )));
            }
            let password = Secret::new(
                form.get("password")
                    .ok_or_else(|| invalid_request("password is required"))?,
            );
            let outcome = state.auth.sign_in(username, &password, client).await;
            crate::audit::record_sign_in(&state, username, client, &outcome).await;
            outcome?
        }
        "refresh_token" => {
            let token = form
                .get("refresh_token")
                .filter(|t| !t.is_empty())
                .ok_or_else(|| invalid_request("refresh_token is required"))?;
            state.auth.refresh(&Secret::new(token), client).await?
        }
        other => {
            return Err(ApiError::OAuth {
                error: "unsupported_grant_type",
                description: format!(
                    "grant_type '{other}' is not supported: use password or refresh_token"
                ),
            })
        }
    };
    // Tokens must not be cached by anything between us and the client (RFC 6749, 5.1).
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(TokenResponse::from(tokens)),
    )
        .into_response())
}

/// Sign out: the access token and its refresh token stop working at once.
#[utoipa::path(
    delete,
    path = "/v5/Token",
    tag = "Token",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn revoke_token(
    State(state): State<AppState>,
    Operator(principal): Operator,
) -> ApiResult<StatusCode> {
    state.auth.sign_out(&principal).await?;
    Ok(StatusCode::NO_CONTENT)
}
