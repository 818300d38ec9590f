//! The v5 REST API: routes, authentication, error mapping and the OpenAPI document.
//!
//! [`build`] assembles the complete HTTP service; the server binary only adds TLS and a listener.
//! Every route lives in [`routes`], one module per resource.

pub mod audit;
pub mod bearer;
pub mod body;
pub mod ci_json;
pub mod client;
pub mod dates;
pub mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod job_metrics;
pub mod links;
pub mod openapi;
pub mod org_id;
pub mod paging;
pub mod paths;
pub mod range;
pub mod request_span;
pub mod routes;
pub mod state;
pub mod unread_body;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use m365backup_core::Secret;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{message, ApiError};
use crate::openapi::{ApiDoc, SWAGGER_PATH};
use crate::paths::PathCanonicalizer;
pub use crate::state::{ApiSettings, AppState};

pub const JSON_UTF8: &str = "application/json; charset=utf-8";
/// Prometheus scrape endpoint: an operator's bearer token, or the configured scrape token (its
/// labels name backup accounts).
pub const METRICS_PATH: &str = "/metrics";
/// `Strict-Transport-Security` when the server itself serves HTTPS: one year.
const HSTS: &str = "max-age=31536000";

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer::parse_bearer)
        .ok_or(ApiError::Unauthorized)?;
    let scraper = state
        .settings
        .metrics_token
        .as_ref()
        .is_some_and(|expected| *expected == Secret::new(token));
    if !scraper {
        state.auth.authenticate(token).await?;
    }
    let mut text = (state.metrics)();
    text.push_str(&job_metrics::render(&state).await);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// The routes and the OpenAPI document describing exactly them.
pub fn routes_and_openapi(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let protected = OpenApiRouter::new()
        .routes(routes!(routes::token::revoke_token))
        .routes(routes!(
            routes::organizations::list_organizations,
            routes::organizations::add_organization
        ))
        .routes(routes!(
            routes::organizations::get_organization,
            routes::organizations::edit_organization,
            routes::organizations::remove_organization
        ))
        .routes(routes!(
            routes::backup_accounts::list_backup_accounts,
            routes::backup_accounts::set_backup_accounts
        ))
        .routes(routes!(routes::directory::list_groups))
        .routes(routes!(routes::directory::get_group))
        .routes(routes!(routes::directory::list_members))
        .routes(routes!(routes::directory::list_users))
        .routes(routes!(routes::directory::get_user))
        .routes(routes!(routes::protected::organization_data))
        .routes(routes!(routes::protected::site_data))
        .routes(routes!(routes::protected::user_data))
        .routes(routes!(routes::protected::licensing_information))
        .routes(routes!(routes::protected::licensed_users))
        .routes(routes!(routes::protected::remove_licensed_user))
        .routes(routes!(routes::sites::list_sites))
        .routes(routes!(routes::sites::get_site))
        .routes(routes!(routes::jobs::list_jobs))
        .routes(routes!(
            routes::jobs::list_organization_jobs,
            routes::jobs::create_job
        ))
        .routes(routes!(
            routes::jobs::get_job,
            routes::jobs::edit_job,
            routes::jobs::delete_job
        ))
        .routes(routes!(routes::jobs::job_action))
        .routes(routes!(
            routes::jobs::list_selected_items,
            routes::jobs::add_selected_items,
            routes::jobs::remove_selected_items
        ))
        .routes(routes!(
            routes::jobs::list_excluded_items,
            routes::jobs::add_excluded_items,
            routes::jobs::remove_excluded_items
        ))
        .routes(routes!(routes::job_sessions::list_job_sessions))
        .routes(routes!(routes::job_sessions::list_sessions_of_job))
        .routes(routes!(routes::job_sessions::get_job_session))
        .routes(routes!(routes::job_sessions::list_log_items))
        .routes(routes!(routes::job_sessions::get_log_item))
        .routes(routes!(routes::restore_sessions::organization_action))
        .routes(routes!(routes::restore_sessions::list_restore_sessions))
        .routes(routes!(routes::restore_sessions::get_restore_session))
        .routes(routes!(routes::restore_sessions::restore_session_action))
        .routes(routes!(routes::restore_sessions::session_organization))
        .routes(routes!(routes::restore_sessions::list_restore_events))
        .routes(routes!(routes::restore_sessions::get_restore_event))
        .routes(routes!(routes::restore_browse::list_onedrives))
        .routes(routes!(routes::restore_browse::get_onedrive))
        .routes(routes!(routes::restore_browse::onedrive_folders))
        .routes(routes!(routes::restore_browse::onedrive_documents))
        .routes(routes!(routes::restore_browse::onedrive_folder))
        .routes(routes!(routes::restore_browse::onedrive_document))
        .routes(routes!(routes::restore_browse::onedrive_document_versions))
        .routes(routes!(routes::restore_browse::list_sites))
        .routes(routes!(routes::restore_browse::get_site))
        .routes(routes!(routes::restore_browse::list_libraries))
        .routes(routes!(routes::restore_browse::get_library))
        .routes(routes!(routes::restore_browse::list_lists))
        .routes(routes!(routes::restore_browse::site_folders))
        .routes(routes!(routes::restore_browse::site_documents))
        .routes(routes!(routes::restore_browse::site_folder))
        .routes(routes!(routes::restore_browse::site_document))
        .routes(routes!(routes::restore_actions::onedrive_action))
        .routes(routes!(routes::restore_actions::onedrive_folder_action))
        .routes(routes!(routes::restore_actions::onedrive_document_action))
        .routes(routes!(routes::restore_actions::onedrive_folders_action))
        .routes(routes!(routes::restore_actions::onedrive_documents_action))
        .routes(routes!(routes::restore_actions::site_action))
        .routes(routes!(routes::restore_actions::library_action))
        .routes(routes!(routes::restore_actions::site_folder_action))
        .routes(routes!(routes::restore_actions::site_document_action))
        .routes(routes!(routes::restore_actions::site_folders_action))
        .routes(routes!(routes::restore_actions::site_documents_action))
        .routes(routes!(routes::proxies::list_proxies))
        .routes(routes!(routes::proxies::get_proxy))
        .routes(routes!(routes::proxies::proxy_repositories))
        .routes(routes!(
            routes::repositories::list_repositories,
            routes::repositories::add_repository
        ))
        .routes(routes!(
            routes::repositories::get_repository,
            routes::repositories::edit_repository,
            routes::repositories::remove_repository
        ))
        .routes(routes!(routes::repositories::repository_action))
        .routes(routes!(routes::repositories::list_object_storage))
        .routes(routes!(routes::repositories::get_object_storage))
        .routes(routes!(routes::repositories::used_repositories))
        .routes(routes!(routes::audit::list_audit_items))
        // Layers added later run first: the bearer check, then the audit trail's record.
        // Its state is shared, not cloned per request: most requests only pass through it.
        .route_layer(from_fn_with_state(
            std::sync::Arc::new(state.clone()),
            audit::record_changes,
        ))
        .route_layer(from_fn_with_state(state.clone(), bearer::require_bearer));
    let public = OpenApiRouter::new().routes(routes!(routes::token::issue_token));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(protected)
        .merge(public)
        .split_for_parts()
}

/// Answers 408 to a request not answered within the configured time, except a restore to
/// Microsoft 365 (`POST …/Organization/…/Action`), which answers when it has written everything
/// however long that takes (its events show progress meanwhile). Downloads answer at once and
/// then stream.
async fn request_deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if is_restore_action(&req) {
        return next.run(req).await;
    }
    match tokio::time::timeout(state.settings.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => message(
            StatusCode::REQUEST_TIMEOUT,
            "The request took too long to be answered.",
        ),
    }
}

/// `POST /v5/RestoreSessions/{id}/Organization/…/Action` (paths are canonical by now).
fn is_restore_action(req: &Request) -> bool {
    let path = req.uri().path();
    req.method() == axum::http::Method::POST
        && path.starts_with("/v5/RestoreSessions/")
        && path.contains("/Organization/")
        && path.ends_with("/Action")
}

/// The complete HTTP service, ready to be served.
pub fn build(state: AppState) -> Router {
    let (routes, openapi) = routes_and_openapi(&state);
    let openapi_json = serde_json::to_string_pretty(&openapi::served(&openapi))
        .unwrap_or_else(|_| "{}".to_owned());
    let canonicalizer = PathCanonicalizer::new(
        openapi
            .paths
            .paths
            .keys()
            .map(String::as_str)
            .chain([SWAGGER_PATH, METRICS_PATH]),
    );
    let limit = state.settings.max_body_bytes;

    let app = routes
        .route(
            SWAGGER_PATH,
            get(move || async move { ([(header::CONTENT_TYPE, JSON_UTF8)], openapi_json) }),
        )
        .route(METRICS_PATH, get(metrics))
        .fallback(|| async { ApiError::NotFound("No route matches the request.".into()) })
        // A request (its body and its answer) may take this long, restores to Microsoft 365
        // excepted; slow headers are the listener's concern.
        .layer(from_fn_with_state(state.clone(), request_deadline))
        .layer(
            ServiceBuilder::new()
                .layer(TraceLayer::new_for_http().make_span_with(request_span::request_span))
                // Outside the body limit, so a 413 for an over-long body closes too.
                .layer(axum::middleware::from_fn(
                    unread_body::close_when_body_unread,
                ))
                .layer(from_fn_with_state(state.clone(), response_conventions))
                .layer(CatchPanicLayer::new())
                .layer(RequestBodyLimitLayer::new(limit)),
        )
        .with_state(state);

    // Canonicalize the path before routing: an outer router whose only service is the app.
    Router::new().fallback_service(
        ServiceBuilder::new()
            .map_request(move |r: Request| canonicalizer.apply(r))
            .service(app),
    )
}

/// JSON as the vendor sends it: `Content-Type: application/json; charset=utf-8`, and every
/// error as `{"message": ...}`, including the ones produced by layers and by axum itself (405,
/// 413 from the body limit, 500 from a caught panic), which come with plain or empty bodies.
/// Every answer also carries the security headers: never cached (answers hold tenant data and
/// tokens), never content-sniffed, and HSTS when this server speaks TLS itself.
async fn response_conventions(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let mut response =
        if is_json(&response) || !(status.is_client_error() || status.is_server_error()) {
            response
        } else {
            let mut fresh = match status {
                StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::PayloadTooLarge(state.settings.max_body_bytes).into_response()
                }
                StatusCode::METHOD_NOT_ALLOWED => message(
                    status,
                    "The requested method is not allowed for this resource.",
                ),
                StatusCode::INTERNAL_SERVER_ERROR => {
                    message(status, "The server failed to process the request.")
                }
                other => message(other, other.canonical_reason().unwrap_or("Request failed.")),
            };
            let (mut parts, _) = response.into_parts();
            for keep in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
                if let Some(v) = parts.headers.remove(&keep) {
                    fresh.headers_mut().insert(keep, v);
                }
            }
            fresh
        };
    if is_json(&response) {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    }
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if state.settings.scheme == "https" {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    response
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}
