//! Microsoft Graph v1.0, the subset m365backup uses: bearer tokens checked, every call charged to
//! the throttling budgets, Microsoft's paging and error shapes. A `client-request-id` sent by the
//! client is echoed in the answer's headers and in error bodies, as Graph does.
//!
//! Reads: `directory.rs`, `sites.rs`, `drives.rs` (items, delta, content), `versions.rs`.
//! Writes: `writes.rs` (folders, `PATCH`, `DELETE`), `uploads.rs` (simple uploads, upload
//! sessions), `sharing.rs` (permissions), path addressing (`root:/a/b:`) in `paths.rs`; the
//! upload URLs themselves in [`crate::upload`].

mod directory;
mod drives;
mod paths;
mod request;
pub(crate) mod shapes;
mod sharing;
mod sites;
mod uploads;
mod versions;
mod writes;

pub use request::{GraphBody, WriteQuery};

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, IntoResponseParts, Response, ResponseParts};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::identity::TokenInfo;
use crate::throttle::{Admission, Call};
use crate::SharedSim;

pub fn routes() -> Router<SharedSim> {
    Router::new()
        .merge(directory::routes())
        .merge(drives::routes())
        .merge(sites::routes())
        .merge(versions::routes())
        .merge(writes::routes())
        .merge(uploads::routes())
        .merge(sharing::routes())
        .merge(paths::routes())
        .fallback(not_found_route)
        .layer(axum::middleware::from_fn(request_ids))
}

tokio::task_local! {
    /// The `client-request-id` of the request being answered, for error bodies.
    static CLIENT_REQUEST_ID: String;
}

/// Every answer carries a `request-id` and the client's `client-request-id` (or a new one).
async fn request_ids(req: Request, next: Next) -> Response {
    let client_id = req
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut response = CLIENT_REQUEST_ID
        .scope(client_id.clone(), next.run(req))
        .await;
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&client_id) {
        h.insert("client-request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        h.insert("request-id", v);
    }
    response
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
    /// The detailed code in `innerError.code` (e.g. `throttledRequest`).
    inner_code: Option<&'static str>,
    retry_after: Option<u64>,
    location: Option<String>,
}

impl GraphError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            inner_code: None,
            retry_after: None,
            location: None,
        }
    }

    /// `403 accessDenied`: the signed-in user may not read this.
    pub fn access_denied() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "accessDenied",
            "Access denied. You do not have permission to perform this action or access this resource.",
        )
    }

    /// `410 Gone` for a delta token that can no longer be used; `location` starts afresh.
    pub fn resync_required(location: String) -> Self {
        let mut e = Self::new(
            StatusCode::GONE,
            "resyncRequired",
            "Resync required. Replace any local items with the server's version (including deletes) if you're sure that the service was up to date with your local changes when you last sync'd. Upload any local changes that the server doesn't know about.",
        );
        e.inner_code = Some("resyncChangesApplyDifferences");
        e.location = Some(location);
        e
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

    /// The detailed code in `innerError.code`.
    pub fn inner(mut self, code: &'static str) -> Self {
        self.inner_code = Some(code);
        self
    }

    /// `423 Locked`: the file is checked out or locked by someone else.
    pub fn locked() -> Self {
        Self::new(
            StatusCode::LOCKED,
            "resourceLocked",
            "The resource you are attempting to access is locked.",
        )
        .inner("lockMismatch")
    }

    /// `409 Conflict`: the name is taken (`conflictBehavior: fail`).
    pub fn name_exists() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "nameAlreadyExists",
            "The specified item name already exists.",
        )
    }

    /// `412`: an `If-Match` that no longer matches.
    pub fn precondition_failed() -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "resourceModified",
            "ETag does not match current item's value",
        )
        .inner("entityTagDoesNotMatch")
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    /// A refused change to a drive, in Graph's words.
    pub fn from_change(e: crate::tenant::ChangeError, what: &str) -> Self {
        use crate::tenant::ChangeError as C;
        match e {
            C::NotFound | C::NoSuchVersion | C::NoSuchPermission => Self::not_found(what),
            C::NameTaken => Self::name_exists(),
            C::InvalidName(name) => Self::bad_request(format!(
                "The name '{name}' contains characters or a form OneDrive does not allow."
            ))
            .inner("invalidPath"),
            C::PathTooLong => Self::bad_request(format!(
                "The item's full path would exceed {} characters.",
                crate::tenant::MAX_PATH_CHARS
            ))
            .inner("pathIsTooLong"),
            C::InvalidParent => Self::bad_request(
                "The parent is not a folder of this drive, or lies inside the item.",
            ),
            C::Root => Self::bad_request("The root folder cannot be renamed, moved or deleted."),
            C::NotAFile => Self::bad_request("The item is a folder and has no content."),
        }
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
        let client_id = CLIENT_REQUEST_ID
            .try_with(String::clone)
            .unwrap_or_else(|_| uuid::Uuid::new_v4().to_string());
        let mut inner = json!({"date": now, "request-id": uuid::Uuid::new_v4(), "client-request-id": client_id});
        if let Some(code) = self.inner_code {
            inner["code"] = json!(code);
        }
        let body =
            json!({"error": {"code": self.code, "message": self.message, "innerError": inner}});
        let mut r = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(v) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r
    }
}

/// The caller of a Graph request, from its bearer token.
pub struct Caller {
    pub token: TokenInfo,
}

impl Caller {
    /// The call as the throttler charges it: the user of a delegated token, the app.
    pub fn call(&self, sim: &SharedSim, units: f64) -> Call {
        Call {
            user: self.token.user.map(|u| sim.tenant.users[u].id),
            app: self.token.app,
            units,
        }
    }

    /// Refuses a delegated caller that may not read the drive (app-only tokens read all).
    pub fn may_read_drive(
        &self,
        sim: &SharedSim,
        drive: &crate::tenant::Drive,
    ) -> Result<(), GraphError> {
        match self.token.user {
            Some(u) if !sim.tenant.can_read_drive(u, drive) => Err(GraphError::access_denied()),
            _ => Ok(()),
        }
    }

    /// Refuses a delegated caller that may not change the drive: it needs to be an owner or a
    /// member of the site, or a site-collection administrator.
    pub fn may_write_drive(
        &self,
        sim: &SharedSim,
        drive: &crate::tenant::Drive,
    ) -> Result<(), GraphError> {
        self.may_read_drive(sim, drive)?;
        match self.token.user {
            Some(u) if !sim.tenant.can_write_drive(u, drive) => Err(GraphError::access_denied()),
            _ => Ok(()),
        }
    }

    /// The user (tenant index) a change is made by: a delegated token's; none for the app.
    pub fn by(&self) -> Option<usize> {
        self.token.user
    }

    /// The object id of a delegated token's user.
    pub fn user_id(&self, sim: &SharedSim) -> Option<uuid::Uuid> {
        self.token.user.map(|u| sim.tenant.users[u].id)
    }

    /// Refuses a delegated caller that may not read the site.
    pub fn may_read_site(
        &self,
        sim: &SharedSim,
        site: crate::tenant::SiteRef,
    ) -> Result<(), GraphError> {
        match self.token.user {
            Some(u) if !sim.tenant.can_read_site(u, site) => Err(GraphError::access_denied()),
            _ => Ok(()),
        }
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
    Write,
    Permissions,
}

/// `RateLimit-*` headers for an admitted request, when the app's budget is 80 % used.
#[derive(Default)]
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
        Cost::Write => cfg.cost_write,
        Cost::Permissions => cfg.cost_permissions,
    };
    match sim.throttler.admit(&caller.call(sim, units)) {
        Admission::Admitted { rate_limit } => Ok(RateHeaders(rate_limit)),
        Admission::Throttled {
            retry_after_secs,
            service_unavailable,
        } => Err(GraphError::throttled(retry_after_secs, service_unavailable)),
    }
}

impl GraphError {
    /// 429 (or 503) with `Retry-After`, as SharePoint answers through Graph.
    pub fn throttled(retry_after_secs: u64, service_unavailable: bool) -> Self {
        let mut e = if service_unavailable {
            GraphError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "serviceNotAvailable",
                "The service is temporarily unavailable. Please retry later.",
            )
        } else {
            let mut e = GraphError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "activityLimitReached",
                "The request has been throttled",
            );
            e.inner_code = Some("throttledRequest");
            e
        };
        e.retry_after = Some(retry_after_secs);
        e
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
