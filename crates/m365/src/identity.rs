//! Microsoft identity platform: access tokens for Graph, cached and renewed before expiry.
//!
//! The cache is the process's, keyed by the credentials (authority, tenant, application,
//! account, and a digest of the secrets): a job or a restore builds new clients for its
//! backup accounts and the organization every run, and each would otherwise sign in again
//! (a sign-in per account per run, against Microsoft's own limits on them). A token is reused
//! until shortly before it expires and dropped as soon as Graph refuses it (`401`).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use m365backup_core::token::TokenDigest;
use m365backup_core::Secret;
use serde::Deserialize;

use crate::endpoints::Endpoints;
use crate::error::M365Error;
use crate::response::{self, read_capped, MAX_IDENTITY_BODY};

/// How the server signs in to a tenant.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// App-only: client credentials grant with an application secret.
    AppSecret {
        tenant: String,
        client_id: String,
        client_secret: Secret,
    },
    /// Delegated: the password grant (ROPC) for an account, through the organization's app.
    Password {
        tenant: String,
        client_id: String,
        client_secret: Option<Secret>,
        username: String,
        password: Secret,
    },
}

impl Credentials {
    fn tenant(&self) -> &str {
        match self {
            Credentials::AppSecret { tenant, .. } | Credentials::Password { tenant, .. } => tenant,
        }
    }

    /// What identifies these credentials in the token cache: who signs in where, and digests
    /// of the secrets, so changed credentials never get the old ones' token.
    fn cache_key(&self, endpoints: &Endpoints) -> String {
        let (authority, graph) = (&endpoints.authority, &endpoints.graph);
        let digest = |s: &Secret| TokenDigest::of(s).0;
        match self {
            Credentials::AppSecret {
                tenant,
                client_id,
                client_secret,
            } => format!(
                "app|{authority}|{graph}|{tenant}|{client_id}|{}",
                digest(client_secret)
            ),
            Credentials::Password {
                tenant,
                client_id,
                client_secret,
                username,
                password,
            } => format!(
                "user|{authority}|{graph}|{tenant}|{client_id}|{}|{username}|{}",
                client_secret.as_ref().map(digest).unwrap_or_default(),
                digest(password)
            ),
        }
    }

    /// Who signs in, for logs: the account or the application id (never a secret).
    pub fn principal(&self) -> &str {
        match self {
            Credentials::AppSecret { client_id, .. } => client_id,
            Credentials::Password { username, .. } => username,
        }
    }
}

/// Tokens are renewed when less than this is left, so no request carries an expiring token.
const RENEW_MARGIN: Duration = Duration::from_secs(300);

struct Cached {
    token: Secret,
    renew_at: Instant,
}

/// One cached token, shared by every source of the same credentials; its lock also makes
/// them sign in one at a time.
type Slot = Arc<tokio::sync::Mutex<Option<Cached>>>;

/// Distinct credentials above which the slots no source holds any more are dropped.
const CACHE_PRUNE_ABOVE: usize = 256;

/// The process's tokens, by [`Credentials::cache_key`].
static TOKENS: LazyLock<Mutex<HashMap<String, Slot>>> = LazyLock::new(Mutex::default);

/// The cache's slot for `key`, created empty on first use.
fn slot(key: String) -> Slot {
    let mut tokens = TOKENS.lock().unwrap_or_else(|p| p.into_inner());
    if tokens.len() > CACHE_PRUNE_ABOVE && !tokens.contains_key(&key) {
        tokens.retain(|_, slot| Arc::strong_count(slot) > 1);
    }
    tokens.entry(key).or_default().clone()
}

/// Hands out a valid access token for one set of credentials, signing in when needed.
pub struct TokenSource {
    http: reqwest::Client,
    endpoints: Endpoints,
    credentials: Credentials,
    cached: Slot,
}

#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
    pub(crate) expires_in: Option<u64>,
}

#[derive(Deserialize, Default)]
pub(crate) struct AadError {
    #[serde(default)]
    pub(crate) error: String,
    #[serde(default)]
    pub(crate) error_description: String,
    #[serde(default)]
    error_codes: Vec<u64>,
}

impl TokenSource {
    /// Whether these credentials sign in with application permissions (no user).
    pub fn is_app_only(&self) -> bool {
        matches!(self.credentials, Credentials::AppSecret { .. })
    }

    /// A source sharing the process's cached token of these credentials, if there is one.
    pub fn new(http: reqwest::Client, endpoints: Endpoints, credentials: Credentials) -> Self {
        let cached = slot(credentials.cache_key(&endpoints));
        Self {
            http,
            endpoints,
            credentials,
            cached,
        }
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// A token valid for at least a few more minutes (one sign-in at a time per source).
    pub async fn token(&self) -> Result<Secret, M365Error> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| c.renew_at > Instant::now()) {
            return Ok(c.token.clone());
        }
        let (token, lifetime) = self.sign_in().await?;
        let renew_at = Instant::now() + lifetime.saturating_sub(RENEW_MARGIN.min(lifetime / 2));
        *cached = Some(Cached {
            token: token.clone(),
            renew_at,
        });
        Ok(token)
    }

    /// Graph refused `token` (`401`): it is forgotten, unless another request already
    /// replaced it (many requests in flight with one token all come back refused).
    pub async fn refused(&self, token: &Secret) {
        let mut cached = self.cached.lock().await;
        // `Secret`'s equality is constant-time.
        if cached.as_ref().is_some_and(|c| c.token == *token) {
            *cached = None;
        }
    }

    /// The scope for Graph: its origin plus `/.default`.
    fn scope(&self) -> String {
        let graph = &self.endpoints.graph;
        let origin_end = graph
            .find("://")
            .map(|i| i + 3)
            .and_then(|s| graph[s..].find('/').map(|p| s + p))
            .unwrap_or(graph.len());
        format!("{}/.default", &graph[..origin_end])
    }

    /// Signs in now; the token and its lifetime.
    pub async fn sign_in(&self) -> Result<(Secret, Duration), M365Error> {
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            self.endpoints.authority,
            self.credentials.tenant()
        );
        let scope = self.scope();
        let mut form: Vec<(&str, &str)> = vec![("scope", scope.as_str())];
        match &self.credentials {
            Credentials::AppSecret {
                client_id,
                client_secret,
                ..
            } => {
                form.extend([
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    ("client_secret", client_secret.expose()),
                ]);
            }
            Credentials::Password {
                client_id,
                client_secret,
                username,
                password,
                ..
            } => {
                form.extend([
                    ("grant_type", "password"),
                    ("client_id", client_id.as_str()),
                    ("username", username.as_str()),
                    ("password", password.expose()),
                ]);
                if let Some(secret) = client_secret {
                    form.push(("client_secret", secret.expose()));
                }
            }
        }
        let response = self
            .http
            .post(&url)
            .form(&form)
            .send()
            .await
            .map_err(|e| response::unreachable(self.endpoints.is_microsoft(), &url, &e))?;
        let status = response.status();
        let body = read_capped(response, MAX_IDENTITY_BODY, &url).await?;
        if status.is_success() {
            let t: TokenResponse =
                serde_json::from_slice(&body).map_err(|_| M365Error::Unreachable {
                    url: url.clone(),
                    reason: "the sign-in endpoint did not answer with a token".into(),
                })?;
            tracing::debug!(
                principal = self.credentials.principal(),
                "signed in to Microsoft 365"
            );
            return Ok((
                Secret::new(t.access_token),
                response::token_lifetime(t.expires_in),
            ));
        }
        match serde_json::from_slice::<AadError>(&body) {
            Ok(e) if !e.error.is_empty() => Err(self.sign_in_refused(e, status)),
            _ => Err(M365Error::Unreachable {
                url,
                reason: format!("the sign-in endpoint answered HTTP {status}"),
            }),
        }
    }

    /// The identity platform's refusal. Microsoft appends trace and correlation ids; the first
    /// sentence is the reason. From an endpoint that is not Microsoft's, only text with the
    /// identity platform's shape (`AADSTS<n>: …`) is quoted, shortened and without controls.
    fn sign_in_refused(&self, e: AadError, status: reqwest::StatusCode) -> M365Error {
        let first = e
            .error_description
            .split(" Trace ID:")
            .next()
            .unwrap_or_default()
            .trim();
        let description = if self.endpoints.is_microsoft() || response::looks_like_aadsts(first) {
            response::quote(first)
        } else {
            format!("the sign-in endpoint refused the credentials (HTTP {status})")
        };
        M365Error::SignIn {
            error: response::plain_code(&e.error),
            description,
            codes: e.error_codes,
        }
    }
}
