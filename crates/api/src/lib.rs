//! The v5 REST API: routes, authentication, error mapping and the OpenAPI document.
//!
//! [`build`] assembles the complete HTTP service; the server binary only adds TLS and a listener.
//! Every route lives in [`routes`], one module per resource.

pub mod bearer;
pub mod body;
pub mod ci_json;
pub mod client;
pub mod dates;
pub mod error;
pub mod links;
pub mod openapi;
pub mod paging;
pub mod paths;
pub mod routes;
pub mod state;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
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
/// Prometheus scrape endpoint (no sign-in, as scrapers expect; it holds figures, not secrets).
pub const METRICS_PATH: &str = "/metrics";

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        (state.metrics)(),
    )
        .into_response()
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
        .route_layer(from_fn_with_state(state.clone(), bearer::require_bearer));
    let public = OpenApiRouter::new().routes(routes!(routes::token::issue_token));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(protected)
        .merge(public)
        .split_for_parts()
}

/// The complete HTTP service, ready to be served.
pub fn build(state: AppState) -> Router {
    let (routes, openapi) = routes_and_openapi(&state);
    let openapi_json = openapi.to_pretty_json().unwrap_or_else(|_| "{}".to_owned());
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
        .layer(
            ServiceBuilder::new()
                .layer(TraceLayer::new_for_http())
                .layer(from_fn_with_state(state.clone(), json_conventions))
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
async fn json_conventions(State(state): State<AppState>, req: Request, next: Next) -> Response {
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
    response
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}
