//! The Microsoft 365 client against m365sim answers mutated at random: a proxy between them
//! changes status codes, `Retry-After` and `Location` headers, JSON values and raw bytes. Every
//! call ends in bounded time with a value or a typed error; nothing panics, nothing hangs. The
//! seed is fixed so a failure replays; `M365_MUTATION_ROUNDS` runs more rounds by hand.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use m365backup_core::Secret;
use m365backup_m365::graph::{http_client, RetryPolicy};
use m365backup_m365::{Credentials, Endpoints, GraphClient, M365Error};
use m365sim::{RunningSim, SimConfig, TenantSpec, ThrottleConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

/// Rounds of calls run by default: about 8 s on a loaded 2-core machine.
const ROUNDS: usize = 20;
/// Longest any one call may take: throttling waits at most a second, twice.
const CALL_BOUND: Duration = Duration::from_secs(30);

struct Mutator {
    sim: String,
    proxy: String,
    http: reqwest::Client,
    rng: Mutex<StdRng>,
}

/// One of the values a hostile answer puts where another was.
fn odd_value(rng: &mut StdRng) -> Value {
    match rng.gen_range(0..12) {
        0 => Value::Null,
        1 => Value::Bool(rng.gen()),
        2 => Value::from(-1),
        3 => Value::from(u64::MAX),
        4 => Value::from(1e308),
        5 => Value::from(""),
        6 => Value::from("\u{0}\u{7}\u{202e}é/../x"),
        7 => Value::from("x".repeat(rng.gen_range(0..5000))),
        8 => Value::Array(vec![]),
        9 => Value::Object(Default::default()),
        10 => {
            // Deeper than serde_json reads (128 levels).
            let mut v = Value::Null;
            for _ in 0..rng.gen_range(100..200) {
                v = Value::Array(vec![v]);
            }
            v
        }
        _ => Value::from("https://evil.example/v1.0/users"),
    }
}

/// Changes one node of `v` at random: replaced, removed from its object, or (for an array) an
/// element doubled.
fn mutate_value(v: &mut Value, rng: &mut StdRng) {
    let descend = rng.gen_bool(0.7);
    match v {
        Value::Object(map) if !map.is_empty() => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = &keys[rng.gen_range(0..keys.len())];
            match rng.gen_range(0..4) {
                0 => {
                    map.remove(key);
                }
                1 if !descend => {
                    map.insert(key.clone(), odd_value(rng));
                }
                _ => mutate_value(map.get_mut(key).expect("listed key"), rng),
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let i = rng.gen_range(0..items.len());
            if rng.gen_bool(0.2) {
                let copy = items[i].clone();
                items.push(copy);
            } else if descend {
                mutate_value(&mut items[i], rng);
            } else {
                items[i] = odd_value(rng);
            }
        }
        other => *other = odd_value(rng),
    }
}

/// A mutated copy of an answer's body.
fn mutate_body(body: &[u8], rng: &mut StdRng) -> Vec<u8> {
    match (serde_json::from_slice::<Value>(body), rng.gen_range(0..10)) {
        (Ok(mut v), 0..=6) => {
            for _ in 0..rng.gen_range(1..4) {
                mutate_value(&mut v, rng);
            }
            serde_json::to_vec(&v).expect("values serialize")
        }
        (_, 7) => body[..rng.gen_range(0..=body.len())].to_vec(),
        (_, 8) => {
            let mut b = body.to_vec();
            for _ in 0..rng.gen_range(1..8) {
                if !b.is_empty() {
                    let i = rng.gen_range(0..b.len());
                    b[i] = rng.gen();
                }
            }
            b
        }
        _ => (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect(),
    }
}

/// Forwards the request to the simulator, then answers as it did, or mutated.
async fn proxy(State(m): State<Arc<Mutator>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut forward = m
        .http
        .request(parts.method.clone(), format!("{}{path}", m.sim))
        .body(body);
    for name in ["authorization", "content-type"] {
        if let Some(v) = parts.headers.get(name) {
            forward = forward.header(name, v);
        }
    }
    let Ok(answer) = forward.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let mut status = answer.status();
    let mut headers = answer.headers().clone();
    headers.remove("content-length");
    headers.remove("transfer-encoding");
    let text = answer.bytes().await.unwrap_or_default();
    // Links the simulator hands out lead back through the proxy.
    let mut body = String::from_utf8_lossy(&text)
        .replace(&m.sim, &m.proxy)
        .into_bytes();
    {
        let mut rng = m.rng.lock().unwrap_or_else(|p| p.into_inner());
        match rng.gen_range(0..10) {
            0..=2 => {}
            3..=7 => body = mutate_body(&body, &mut rng),
            _ => {
                let codes = [200, 302, 400, 401, 403, 404, 410, 429, 500, 503];
                status =
                    StatusCode::from_u16(codes[rng.gen_range(0..codes.len())]).expect("valid code");
                let retry = ["0", "1", "0.5", "-1", "NaN", "inf", "1e300", "soon", ""];
                headers.insert(
                    "retry-after",
                    HeaderValue::from_static(retry[rng.gen_range(0..retry.len())]),
                );
                let location = format!("{}/v1.0/users?$skiptoken=x", m.proxy);
                let location = [location.as_str(), "/v1.0/me", "https://evil.example/", ":"]
                    [rng.gen_range(0..4)]
                .to_owned();
                headers.insert(
                    "location",
                    HeaderValue::from_str(&location).expect("ASCII header"),
                );
                if rng.gen_bool(0.5) {
                    body = mutate_body(&body, &mut rng);
                }
            }
        }
    }
    let mut response = (status, Bytes::from(body)).into_response();
    response.headers_mut().extend(headers);
    response
}

async fn start(sim: &RunningSim, seed: u64) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mutator = Arc::new(Mutator {
        sim: sim.base_url().to_owned(),
        proxy: base.clone(),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        rng: Mutex::new(StdRng::seed_from_u64(seed)),
    });
    let router = Router::new().fallback(proxy).with_state(mutator);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

/// `call`, or `Elapsed` once it has taken [`CALL_BOUND`].
async fn bounded<T>(
    call: impl std::future::Future<Output = Result<T, M365Error>>,
) -> Result<Result<T, M365Error>, tokio::time::error::Elapsed> {
    tokio::time::timeout(CALL_BOUND, call).await
}

/// How one call ended.
#[derive(Default, Debug)]
struct Tally {
    ok: usize,
    errors: usize,
}

impl Tally {
    fn count<T>(
        &mut self,
        what: &str,
        outcome: Result<Result<T, M365Error>, tokio::time::error::Elapsed>,
    ) {
        match outcome {
            Ok(Ok(_)) => self.ok += 1,
            Ok(Err(_)) => self.errors += 1,
            Err(_) => panic!("{what} did not end within {CALL_BOUND:?}"),
        }
    }
}

#[tokio::test]
async fn mutated_answers_end_in_a_value_or_an_error() {
    let sim = m365sim::start(
        SimConfig {
            tenant: TenantSpec {
                seed: 11,
                users: 30,
                sites: 2,
                files_per_drive: 6,
                ..TenantSpec::default()
            },
            throttling: ThrottleConfig {
                enabled: false,
                ..Default::default()
            },
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let proxy = start(&sim, 0x5eed).await;
    let tenant = sim.tenant();
    let group = tenant.groups[0].id.to_string();
    let site = tenant.sites[0].id.clone();
    let drive = tenant.drives[0].id.clone();
    let rounds = std::env::var("M365_MUTATION_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ROUNDS);
    let mut tally = Tally::default();
    for _ in 0..rounds {
        // A new client each round: sign-in answers are mutated too.
        let graph = GraphClient::with_http(
            http_client().unwrap(),
            Endpoints {
                authority: proxy.clone(),
                graph: format!("{proxy}/v1.0"),
            },
            Credentials::AppSecret {
                tenant: tenant.domain.clone(),
                client_id: tenant.app.client_id.to_string(),
                client_secret: Secret::new(tenant.app.client_secret.clone()),
            },
        )
        .with_retry(RetryPolicy {
            throttle_retries: 2,
            max_wait: Duration::from_secs(1),
            network_retries: 1,
        });
        let graph = &graph;
        tally.count(
            "sign-in",
            bounded(async { graph.tokens().sign_in().await.map(|_| ()) }).await,
        );
        tally.count("organization", bounded(graph.tenant_info()).await);
        tally.count("users", bounded(graph.users()).await);
        tally.count("groups", bounded(graph.groups()).await);
        tally.count("group", bounded(graph.group(&group)).await);
        tally.count("members", bounded(graph.group_members(&group)).await);
        tally.count("sites", bounded(graph.all_sites()).await);
        tally.count("subsites", bounded(graph.subsites(&site)).await);
        let delta = format!("/drives/{drive}/root/delta");
        tally.count("delta", bounded(graph.get_all::<Value>(&delta)).await);
        let children = format!("/drives/{drive}/root/children");
        tally.count("children", bounded(graph.get_once(&children)).await);
    }
    eprintln!("{rounds} rounds: {tally:?}");
    // Not vacuous: the mutations let many calls through and stop many others.
    assert!(tally.ok > rounds && tally.errors > rounds, "{tally:?}");
    sim.shutdown().await;
}
