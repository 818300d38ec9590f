//! The identity platform's token endpoint: `POST /{tenant}/oauth2/v2.0/token` with the password
//! (ROPC) and client-credentials grants, answering errors as Microsoft does (AADSTS codes).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use base64::Engine;
use rand::RngCore;
use serde_json::json;
use uuid::Uuid;

use crate::SharedSim;

/// Who a Graph access token stands for.
#[derive(Clone, Debug)]
pub struct TokenInfo {
    /// Index into the tenant's users for a delegated (password grant) token.
    pub user: Option<usize>,
    pub app: Uuid,
    pub expires: Instant,
}

#[derive(Default)]
pub struct TokenRegistry {
    tokens: RwLock<HashMap<String, TokenInfo>>,
    /// Tokens issued since the start: successful sign-ins.
    issued: AtomicU64,
}

impl TokenRegistry {
    /// Successful sign-ins since the start (every grant), for tests counting them.
    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::Relaxed)
    }

    /// Forgets every token issued: Graph answers `401` to them from now on (as when tokens
    /// are revoked).
    pub fn revoke_all(&self) {
        self.tokens
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub fn issue(&self, info: TokenInfo) -> String {
        self.issued.fetch_add(1, Ordering::Relaxed);
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let token = format!(
            "sim.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        );
        let mut map = self.tokens.write().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            let now = Instant::now();
            map.retain(|_, t| t.expires > now);
        }
        map.insert(token.clone(), info);
        token
    }

    /// The token's holder, if the token exists and has not expired.
    pub fn resolve(&self, token: &str) -> Option<TokenInfo> {
        let map = self.tokens.read().unwrap_or_else(|p| p.into_inner());
        map.get(token)
            .filter(|t| t.expires > Instant::now())
            .cloned()
    }
}

pub fn routes() -> Router<SharedSim> {
    Router::new().route("/{tenant}/oauth2/v2.0/token", post(token))
}

/// Microsoft's error body: `error`, `error_description` starting with the AADSTS code, codes,
/// trace and correlation ids.
pub fn aad_error(status: StatusCode, error: &str, code: u32, text: &str) -> Response {
    let trace = Uuid::new_v4();
    let correlation = Uuid::new_v4();
    let timestamp = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {timestamp}"),
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    (status, Json(body)).into_response()
}

async fn token(
    State(sim): State<SharedSim>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let t = &sim.tenant;
    let known_tenant = tenant.eq_ignore_ascii_case(&t.id.to_string())
        || tenant.eq_ignore_ascii_case(&t.domain)
        || tenant.eq_ignore_ascii_case("organizations")
        || tenant.eq_ignore_ascii_case("common");
    if !known_tenant {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
        );
    }
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let client_id = field("client_id");
    if client_id.is_empty() {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    }
    if !client_id.eq_ignore_ascii_case(&t.app.client_id.to_string()) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'.",
                t.display_name
            ),
        );
    }
    if field("scope").is_empty() {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        );
    }
    let lifetime = Duration::from_secs(sim.config.token_lifetime_secs);
    let user = match field("grant_type") {
        "client_credentials" => {
            let secret = field("client_secret");
            if !constant_time_eq(secret.as_bytes(), t.app.client_secret.as_bytes()) {
                return aad_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app.",
                );
            }
            None
        }
        "password" => {
            let Some((idx, u)) = t.user(field("username")) else {
                return aad_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    50034,
                    &format!("The user account {{EUII Hidden}} does not exist in the {} directory. To sign into this application, the account must be added to the directory.", t.id),
                );
            };
            if !u.account_enabled {
                return aad_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    50057,
                    "The user account is disabled.",
                );
            }
            if !constant_time_eq(field("password").as_bytes(), u.password.as_bytes()) {
                return aad_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    50126,
                    "Error validating credentials due to invalid username or password.",
                );
            }
            Some(idx)
        }
        "" => {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            )
        }
        other => {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                &format!("The app requested an unsupported grant type '{other}'."),
            )
        }
    };
    let access_token = sim.tokens.issue(TokenInfo {
        user,
        app: t.app.client_id,
        expires: Instant::now() + lifetime,
    });
    Json(json!({
        "token_type": "Bearer",
        "scope": "https://graph.microsoft.com/.default",
        "expires_in": lifetime.as_secs(),
        "ext_expires_in": lifetime.as_secs(),
        "access_token": access_token,
    }))
    .into_response()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
