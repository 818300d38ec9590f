//! The Microsoft 365 client against an endpoint that lies: absurd token lifetimes and
//! `Retry-After` values, next links to other hosts, to themselves or on without end, bodies
//! without end, and error text that is not Microsoft's. Nothing panics, nothing is followed off
//! the Graph host, nothing unbounded is read, and foreign text is not passed on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use m365backup_core::Secret;
use m365backup_m365::graph::{http_client, RetryPolicy};
use m365backup_m365::paging::MAX_PAGES;
use m365backup_m365::{Credentials, Endpoints, GraphClient, M365Error};
use serde_json::{json, Value};

#[derive(Clone)]
struct Hostile {
    /// Where `/elsewhere` sends its next link.
    other: String,
    hits: Arc<AtomicUsize>,
}

async fn token(Path(tenant): Path<String>) -> Response {
    if tenant == "refuse" {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_client",
                        "error_description": "<h1>Internal wiki</h1> root password: hunter2"})),
        )
            .into_response();
    }
    Json(json!({"access_token": "t", "token_type": "Bearer", "expires_in": u64::MAX}))
        .into_response()
}

async fn graph(
    State(h): State<Hostile>,
    Path(what): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Response {
    h.hits.fetch_add(1, Ordering::SeqCst);
    let throttled = |retry_after: &'static str| {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after)],
            Json(json!({"error": {"code": "TooManyRequests", "message": "slow down"}})),
        )
            .into_response()
    };
    match what.as_str() {
        "inf" => throttled("inf"),
        "forever" => throttled("1e300"),
        "elsewhere" => {
            Json(json!({"value": [1], "@odata.nextLink": format!("{}/v1.0/steal", h.other)}))
                .into_response()
        }
        "endless" => {
            // A fresh next link on every page: `?n=N+1`, forever.
            let host = headers[header::HOST].to_str().unwrap_or_default();
            let n: u64 = query.get("n").and_then(|n| n.parse().ok()).unwrap_or(0);
            let next = format!("http://{host}/v1.0/endless?n={}", n + 1);
            Json(json!({"value": [n], "@odata.nextLink": next})).into_response()
        }
        "loop" => {
            let host = headers[header::HOST].to_str().unwrap_or_default();
            let me = format!("http://{host}/v1.0/loop");
            Json(json!({"value": [1], "@odata.nextLink": me})).into_response()
        }
        "huge" => {
            // 40 MiB of a JSON array, more than any Graph page.
            let body = format!("{{\"value\":[{}0]}}", "0,".repeat(20 * 1024 * 1024));
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        "private" => (
            StatusCode::FORBIDDEN,
            Json(json!({"error": {"code": "<b>x</b>", "message": "Internal wiki page: hunter2"}})),
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// The hostile endpoint, and a counter of requests reaching a second host.
async fn hostile() -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let stolen = Arc::new(AtomicUsize::new(0));
    let counter = stolen.clone();
    let other = serve(Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { StatusCode::OK }
    }))
    .await;
    let hits = Arc::new(AtomicUsize::new(0));
    let state = Hostile {
        other,
        hits: hits.clone(),
    };
    let base = serve(
        Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .route("/v1.0/{what}", get(graph))
            .with_state(state),
    )
    .await;
    (base, hits, stolen)
}

fn client(base: &str, tenant: &str) -> GraphClient {
    let endpoints = Endpoints {
        authority: base.to_owned(),
        graph: format!("{base}/v1.0"),
    };
    let credentials = Credentials::AppSecret {
        tenant: tenant.into(),
        client_id: "app".into(),
        client_secret: Secret::new("s3cret"),
    };
    GraphClient::with_http(http_client().unwrap(), endpoints, credentials).with_retry(RetryPolicy {
        throttle_retries: 1,
        max_wait: Duration::from_secs(5),
        network_retries: 0,
    })
}

#[tokio::test]
async fn absurd_lifetimes_and_retry_afters_do_not_panic() {
    let (base, hits, _) = hostile().await;
    let graph = client(&base, "contoso");
    // expires_in = u64::MAX: the token is used, not overflowed.
    graph.tokens().token().await.unwrap();
    // Retry-After: inf is ignored (a short backoff instead); 1e300 is clamped to an hour,
    // longer than the client waits, so it gives up at once with the clamped value.
    let err = graph.get_json::<Value>("/inf").await.unwrap_err();
    assert!(
        matches!(err, M365Error::Throttled { status: 429, .. }),
        "{err:?}"
    );
    let err = graph.get_json::<Value>("/forever").await.unwrap_err();
    match err {
        M365Error::Throttled { retry_after, .. } => {
            assert_eq!(retry_after, Duration::from_secs(3600))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn next_links_stay_on_the_graph_host() {
    let (base, _, stolen) = hostile().await;
    let graph = client(&base, "contoso");
    let err = graph.get_all::<Value>("/elsewhere").await.unwrap_err();
    assert!(err.to_string().contains("another host"), "{err}");
    assert_eq!(
        stolen.load(Ordering::SeqCst),
        0,
        "the token went nowhere else"
    );
    let err = graph.get_all::<Value>("/loop").await.unwrap_err();
    assert!(err.to_string().contains("same page"), "{err}");
}

#[tokio::test]
async fn a_collection_without_end_stops_at_the_page_cap() {
    let (base, hits, _) = hostile().await;
    let graph = client(&base, "contoso");
    let err = graph.get_all::<Value>("/endless").await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("did not end after {MAX_PAGES} pages")),
        "{text}"
    );
    assert!(!text.contains("n="), "no query in the error: {text}");
    assert_eq!(hits.load(Ordering::SeqCst), MAX_PAGES, "not one page more");
}

#[tokio::test]
async fn oversized_answers_are_refused() {
    let (base, _, _) = hostile().await;
    let graph = client(&base, "contoso");
    let err = graph.get_json::<Value>("/huge").await.unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");
}

#[tokio::test]
async fn foreign_error_text_is_not_passed_on() {
    let (base, _, _) = hostile().await;
    let err = client(&base, "refuse")
        .tokens()
        .sign_in()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        !text.contains("hunter2") && !text.contains("Internal"),
        "{text}"
    );
    assert!(text.contains("refused the credentials"), "{text}");

    let err = client(&base, "contoso")
        .get_json::<Value>("/private")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("hunter2") && !text.contains("<b>"), "{text}");
    assert!(matches!(err, M365Error::Graph { status: 403, .. }));
}
