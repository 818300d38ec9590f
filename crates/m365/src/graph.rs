//! Graph v1.0 calls: bearer token from a [`TokenSource`], `@odata.nextLink` paging,
//! `Retry-After` honoured on 429/503, one renewal on 401, timeouts.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::endpoints::{origin_of, Endpoints};
use crate::error::M365Error;
use crate::identity::{Credentials, TokenSource};
use crate::paging::{strip_query, Pager};
use crate::response::{self, json_capped, read_capped, MAX_ERROR_BODY, MAX_GRAPH_BODY};

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// How many times a throttled request is retried after waiting `Retry-After`.
    pub throttle_retries: u32,
    /// Longest `Retry-After` waited before giving up (the caller can reschedule).
    pub max_wait: Duration,
    /// Retries of a request that failed on the network.
    pub network_retries: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            throttle_retries: 5,
            max_wait: Duration::from_secs(120),
            network_retries: 2,
        }
    }
}

/// The HTTP client every Microsoft 365 call goes through: timeouts and the decorated User-Agent.
/// Fails when TLS cannot be set up (no CA certificates on the system, for one).
pub fn http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(crate::USER_AGENT)
        // Redirects are followed by hand: `/content` answers 302 to a pre-authenticated URL
        // that must get no bearer token, and the 302 carries the throttling headers.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .build()
}

/// A short reason for a transport failure. Never the URL: download URLs carry credentials.
pub(crate) fn reason(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_decode() {
        "the response could not be decoded"
    } else if e.is_body() {
        "the response body was cut off"
    } else {
        "the request failed"
    };
    // The innermost cause (e.g. "Connection refused") helps an administrator; it has no URL.
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut innermost = None;
    while let Some(s) = source {
        innermost = Some(s.to_string());
        source = s.source();
    }
    match innermost {
        Some(cause) => format!("{kind} ({cause})"),
        None => kind.to_owned(),
    }
}

#[derive(Deserialize)]
pub(crate) struct Page<T> {
    pub(crate) value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    pub(crate) next_link: Option<String>,
}

#[derive(Deserialize, Default)]
pub(crate) struct ErrorEnvelope {
    #[serde(default)]
    pub(crate) error: ErrorBody,
}

#[derive(Deserialize, Default)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) message: String,
}

#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    endpoints: Endpoints,
    tokens: Arc<TokenSource>,
    retry: RetryPolicy,
}

impl GraphClient {
    pub fn new(endpoints: Endpoints, credentials: Credentials) -> reqwest::Result<Self> {
        Ok(Self::with_http(http_client()?, endpoints, credentials))
    }

    /// A client sharing `http`'s connection pool (one pool for many accounts of a tenant).
    pub fn with_http(
        http: reqwest::Client,
        endpoints: Endpoints,
        credentials: Credentials,
    ) -> Self {
        let tokens = Arc::new(TokenSource::new(
            http.clone(),
            endpoints.clone(),
            credentials,
        ));
        Self {
            http,
            endpoints,
            tokens,
            retry: RetryPolicy::default(),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn tokens(&self) -> &TokenSource {
        &self.tokens
    }

    /// The absolute URL of a path under the Graph endpoint, or of a link Graph returned. Links
    /// are followed only on the organization's own Graph host: the bearer token goes with them.
    fn url(&self, path_or_url: &str) -> Result<String, M365Error> {
        if !(path_or_url.starts_with("http://") || path_or_url.starts_with("https://")) {
            return Ok(format!("{}{path_or_url}", self.endpoints.graph));
        }
        if origin_of(path_or_url).eq_ignore_ascii_case(self.endpoints.graph_origin()) {
            Ok(path_or_url.to_owned())
        } else {
            Err(M365Error::Unreachable {
                url: self.endpoints.graph.clone(),
                reason: "Graph answered with a link to another host; it was not followed".into(),
            })
        }
    }

    /// Graph's error body of a failed answer, read up to a cap; from a non-Microsoft endpoint
    /// only a plain error code is kept, never its text.
    async fn graph_error(&self, status: u16, response: reqwest::Response) -> M365Error {
        let url = strip_query(response.url().as_str());
        let body: ErrorEnvelope = read_capped(response, MAX_ERROR_BODY, &url)
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if self.endpoints.is_microsoft() {
            M365Error::Graph {
                status,
                code: body.error.code,
                message: response::quote(&body.error.message),
            }
        } else {
            M365Error::Graph {
                status,
                code: response::plain_code(&body.error.code),
                message: format!("the Graph endpoint answered HTTP {status}"),
            }
        }
    }

    /// GETs a Graph resource (a path under `/v1.0`, or an absolute link Graph returned).
    pub async fn get_json<T: DeserializeOwned>(&self, path_or_url: &str) -> Result<T, M365Error> {
        let url = self.url(path_or_url)?;
        let (mut throttled, mut network, mut renewed) = (0, 0, false);
        loop {
            let token = self.tokens.token().await?;
            let sent = self.http.get(&url).bearer_auth(token.expose()).send().await;
            let response = match sent {
                Ok(r) => r,
                Err(e) if network < self.retry.network_retries => {
                    network += 1;
                    tracing::debug!(error = %reason(&e), "Graph request failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 << network)).await;
                    continue;
                }
                Err(e) => {
                    return Err(response::unreachable(
                        self.endpoints.is_microsoft(),
                        &strip_query(&url),
                        &e,
                    ))
                }
            };
            let status = response.status().as_u16();
            if (200..300).contains(&status) {
                return json_capped(response, MAX_GRAPH_BODY, &strip_query(&url)).await;
            }
            if status == 429 || status == 503 {
                let wait =
                    retry_after(&response).unwrap_or(Duration::from_secs(1 << throttled.min(5)));
                if throttled < self.retry.throttle_retries && wait <= self.retry.max_wait {
                    throttled += 1;
                    tracing::debug!(
                        status,
                        wait_secs = wait.as_secs_f64(),
                        "throttled by Graph; waiting as told"
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
                return Err(M365Error::Throttled {
                    retry_after: wait,
                    status,
                });
            }
            if status == 401 && !renewed {
                renewed = true;
                self.tokens.refused(&token).await;
                continue;
            }
            return Err(self.graph_error(status, response).await);
        }
    }

    /// One GET, no retries: the raw response of a success or redirect, else the typed error
    /// (throttling included, with its `Retry-After`). The caller schedules any retry.
    pub async fn get_once(&self, path_or_url: &str) -> Result<reqwest::Response, M365Error> {
        self.send_once(reqwest::Method::GET, path_or_url, RequestBody::None)
            .await
    }

    /// One request of any method, no retries (but one renewal of a refused token); the answer
    /// as [`Self::get_once`] gives it.
    pub async fn send_once(
        &self,
        method: reqwest::Method,
        path_or_url: &str,
        body: RequestBody,
    ) -> Result<reqwest::Response, M365Error> {
        let url = self.url(path_or_url)?;
        let mut renewed = false;
        let (response, status) = loop {
            let token = self.tokens.token().await?;
            let request = body.clone().attach(self.http.request(method.clone(), &url));
            let response = request
                .bearer_auth(token.expose())
                // Lets Microsoft's support trace a request; Graph echoes it.
                .header("client-request-id", uuid::Uuid::new_v4().to_string())
                .send()
                .await
                .map_err(|e| {
                    response::unreachable(self.endpoints.is_microsoft(), &strip_query(&url), &e)
                })?;
            let status = response.status().as_u16();
            if status == 401 {
                // The token (perhaps cached from an earlier run) was refused: forget it, and
                // send once more with a new one. Refused then too, the credentials are.
                self.tokens.refused(&token).await;
                if !renewed {
                    renewed = true;
                    continue;
                }
            }
            break (response, status);
        };
        if status < 400 {
            return Ok(response);
        }
        if status == 429 || status == 503 {
            let retry_after = retry_after(&response).unwrap_or(Duration::from_secs(1));
            return Err(M365Error::Throttled {
                retry_after,
                status,
            });
        }
        if status == 410 {
            return Err(resync_required(response).await);
        }
        Err(self.graph_error(status, response).await)
    }

    /// Every item of a collection, following `@odata.nextLink` to the end (on the Graph host
    /// only, through a [`Pager`]: at most [`crate::paging::MAX_PAGES`] pages, never the same
    /// page twice in a row).
    pub async fn get_all<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, M365Error> {
        let mut items = Vec::new();
        let mut pager = Pager::new(path);
        while let Some(link) = pager.next_page()? {
            let page: Page<T> = self.get_json(&link).await?;
            items.extend(page.value);
            pager.follow(page.next_link)?;
        }
        Ok(items)
    }
}

/// The body of a request: none, JSON, or raw bytes (file content).
#[derive(Clone, Debug)]
pub enum RequestBody {
    None,
    Json(serde_json::Value),
    Bytes(bytes::Bytes),
}

impl RequestBody {
    fn attach(self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            RequestBody::None => request,
            RequestBody::Json(v) => request.json(&v),
            RequestBody::Bytes(b) => request
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(b),
        }
    }
}

/// A `410 Gone` answer: its `Location` (a fresh enumeration, followed only on the Graph host
/// like any link) and its code.
async fn resync_required(response: reqwest::Response) -> M365Error {
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let url = strip_query(response.url().as_str());
    let body: ErrorEnvelope = read_capped(response, MAX_ERROR_BODY, &url)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    M365Error::ResyncRequired {
        code: response::plain_code(&body.error.code),
        location,
    }
}

/// `Retry-After` in seconds (Graph never sends the HTTP-date form), clamped to an hour.
pub fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response::parse_retry_after(response.headers().get("retry-after")?.to_str().ok()?)
}
