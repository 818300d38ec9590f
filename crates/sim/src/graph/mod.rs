//! Microsoft Graph v1.0, the subset m365backup uses: bearer tokens checked, every call charged to
//! the throttling budgets, Microsoft's paging and error shapes.

mod directory;
mod drives;

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, IntoResponseParts, Response, ResponseParts};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::identity::TokenInfo;
use crate::throttle::{Admission, Principal};
use crate::SharedSim;

pub fn routes() -> Router<SharedSim> {
    Router::new()
        .merge(directory::routes())
        .merge(drives::routes())
        .fallback(not_found_route)
}

async fn not_found_route(req: Request) -> GraphError {
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        format!("Resource not found for the segment '{}'.", req.uri().path()),
    )
}

/// Graph's error body: `{"error":{"code","message","innerError":{...}}}`.
#[derive(Debug)]
pub struct GraphError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl GraphError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "itemNotFound",
            format!("The resource '{what}' could not be found."),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalidRequest", message)
    }

    fn unauthenticated(message: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        )
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
        let body = json!({"error": {
            "code": self.code,
            "message": self.message,
            "innerError": {"date": now, "request-id": uuid::Uuid::new_v4(), "client-request-id": uuid::Uuid::new_v4()}
        }});
        let mut r = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        r
    }
}

/// The caller of a Graph request, from its bearer token.
pub struct Caller {
    pub token: TokenInfo,
}

impl Caller {
    /// The budgets this caller's requests draw from: its user's (delegated) and the app's.
    pub fn principals(&self, sim: &SharedSim) -> Vec<Principal> {
        let mut p = Vec::with_capacity(2);
        if let Some(u) = self.token.user {
            p.push(Principal::User(sim.tenant.users[u].id));
        }
        p.push(Principal::App(self.token.app));
        p
    }
}

impl FromRequestParts<SharedSim> for Caller {
    type Rejection = GraphError;

    async fn from_request_parts(
        parts: &mut Parts,
        sim: &SharedSim,
    ) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| GraphError::unauthenticated("Access token is empty."))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| GraphError::unauthenticated("Access token is empty."))?;
        let token = sim.tokens.resolve(token.trim()).ok_or_else(|| {
            GraphError::unauthenticated("Lifetime validation failed, the token is expired.")
        })?;
        Ok(Caller { token })
    }
}

/// The cost class of a Graph call (Microsoft's resource units).
#[derive(Clone, Copy)]
pub enum Cost {
    Single,
    Multi,
}

/// `RateLimit-*` headers for an admitted request, when the app's budget is 80 % used.
pub struct RateHeaders(Option<crate::throttle::RateLimitInfo>);

impl IntoResponseParts for RateHeaders {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        if let Some(r) = self.0 {
            let h = res.headers_mut();
            h.insert("RateLimit-Limit", HeaderValue::from(r.limit));
            h.insert("RateLimit-Remaining", HeaderValue::from(r.remaining));
            h.insert("RateLimit-Reset", HeaderValue::from(r.reset_secs));
        }
        Ok(res)
    }
}

/// Charges the call to the caller's budgets (after the configured latency), or refuses it.
pub async fn charge(
    sim: &SharedSim,
    caller: &Caller,
    cost: Cost,
) -> Result<RateHeaders, GraphError> {
    let cfg = sim.throttler.config();
    if cfg.latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(cfg.latency_ms)).await;
    }
    let units = match cost {
        Cost::Single => cfg.cost_single,
        Cost::Multi => cfg.cost_multi,
    };
    match sim.throttler.admit(&caller.principals(sim), units) {
        Admission::Admitted { rate_limit } => Ok(RateHeaders(rate_limit)),
        Admission::Throttled {
            retry_after_secs,
            service_unavailable,
        } => {
            let mut e = if service_unavailable {
                GraphError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "serviceNotAvailable",
                    "The service is temporarily unavailable. Please retry later.",
                )
            } else {
                GraphError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "activityLimitReached",
                    "The request has been throttled: the application or user has made too many requests.",
                )
            };
            e.retry_after = Some(retry_after_secs);
            Err(e)
        }
    }
}

/// `$top` (default and maximum given) and `$skiptoken` (an offset) of a collection request.
pub fn page_window(
    query: &HashMap<String, String>,
    default_top: usize,
    max_top: usize,
) -> Result<(usize, usize), GraphError> {
    let top = match query.get("$top") {
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| GraphError::bad_request(format!("Invalid value '{t}' for $top.")))?,
        None => default_top,
    };
    if top == 0 || top > max_top {
        return Err(GraphError::bad_request(format!(
            "Invalid page size specified: '{top}'. Must be between 1 and {max_top} inclusive."
        )));
    }
    let skip = match query.get("$skiptoken") {
        Some(t) => t
            .strip_prefix("X'")
            .and_then(|s| s.strip_suffix('\''))
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .ok_or_else(|| GraphError::bad_request("Invalid $skiptoken."))?,
        None => 0,
    };
    Ok((top, skip))
}

/// A page of `items` with `@odata.nextLink` when more remain (other query parameters kept).
pub fn collection(
    sim: &SharedSim,
    path: &str,
    context: &str,
    query: &HashMap<String, String>,
    items: Vec<Value>,
    top: usize,
    skip: usize,
) -> Value {
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(skip).take(top).collect();
    let mut body = json!({ "@odata.context": format!("{}/v1.0/$metadata#{context}", sim.base_url), "value": page });
    if skip + top < total {
        let mut params: Vec<(String, String)> = query
            .iter()
            .filter(|(k, _)| k.as_str() != "$skiptoken" && k.as_str() != "$top")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        params.sort();
        params.push(("$top".into(), top.to_string()));
        params.push(("$skiptoken".into(), format!("X'{:X}'", skip + top)));
        // Keys stay literal (`$top`, `$skiptoken`) as in Microsoft's links; values are encoded.
        let qs = params
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    serde_urlencoded::to_string([("", v)])
                        .unwrap_or_default()
                        .trim_start_matches('=')
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        body["@odata.nextLink"] = json!(format!("{}/v1.0{path}?{qs}", sim.base_url));
    }
    body
}

/// ISO 8601 as Graph writes it.
pub fn iso(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn json_response(headers: RateHeaders, body: Value) -> Response {
    (headers, Json(body)).into_response()
}
