//! Recording the audit trail from the API, in one place.
//!
//! [`record_changes`] wraps every protected route: each successful `POST`, `PUT`, `PATCH` or
//! `DELETE` becomes an item with the operator, the client's address, the route template and the
//! resource's path with its ids. Its kind comes from the route ([`route_kind`]); a route whose meaning
//! depends on its body (`…/Action`) names it with an [`AuditNote`] on its answer, which may also
//! name a created resource or add a short description. Sign-ins happen before there is an
//! operator, so `POST /v5/Token` records its own ([`record_sign_in`]).
//!
//! Nothing of a request body is recorded, so no password, token or application secret can be.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use m365backup_core::audit::{Actor, AuditChannel, AuditKind, NewAuditItem};
use m365backup_core::auth::IssuedTokens;
use m365backup_core::error::{CoreError, CoreResult};
use m365backup_core::store::Principal;

use crate::client::ClientAddr;
use crate::state::AppState;

/// What a handler adds to the item its answer produces (put in the answer's extensions).
#[derive(Clone, Debug, Default)]
pub struct AuditNote {
    /// The kind, when the route alone does not tell it.
    pub kind: Option<AuditKind>,
    /// The resource acted on, when it is not the request's path (e.g. what a POST created).
    pub resource: Option<String>,
    /// A short description; never a secret.
    pub details: Option<String>,
}

impl AuditNote {
    pub fn kind(kind: AuditKind) -> Self {
        Self {
            kind: Some(kind),
            ..Self::default()
        }
    }

    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    pub fn details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    /// `answer` carrying this note.
    pub fn on(self, answer: impl IntoResponse) -> Response {
        let mut response = answer.into_response();
        response.extensions_mut().insert(self);
        response
    }

    /// Only the resource: the created object's path (no base URL).
    pub fn created(path: impl Into<String>) -> Self {
        Self::default().resource(path)
    }
}

/// How a change route's kind is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteKind {
    /// The route alone tells it.
    Fixed(AuditKind),
    /// The handler names it from the action in the body ([`AuditNote`]).
    ByAction,
    /// Not a route the trail knows: recorded as [`AuditKind::OtherChange`].
    Unknown,
}

/// The kind of a change through `method` on `route` (the route's template, as in the OpenAPI
/// document). Every change route is listed: a test checks the document against this table.
pub fn route_kind(method: &Method, route: &str) -> RouteKind {
    use AuditKind::*;
    let fixed = match (method.as_str(), route) {
        ("DELETE", "/v5/Token") => SignOut,
        ("POST", "/v5/Organizations") => OrganizationCreated,
        ("PUT", "/v5/Organizations/{organizationId}") => OrganizationChanged,
        ("DELETE", "/v5/Organizations/{organizationId}") => OrganizationRemoved,
        ("PUT", "/v5/Organizations/{organizationId}/BackupAccounts") => BackupAccountsChanged,
        ("DELETE", "/v5/LicensedUsers/{userId}") => LicensedUserRemoved,
        ("POST", "/v5/Organizations/{organizationId}/Jobs") => JobCreated,
        ("PUT", "/v5/Jobs/{jobId}") => JobChanged,
        ("DELETE", "/v5/Jobs/{jobId}") => JobRemoved,
        (
            "POST" | "DELETE",
            "/v5/Jobs/{jobId}/SelectedItems" | "/v5/Jobs/{jobId}/ExcludedItems",
        ) => JobItemsChanged,
        // `explore` is the only organization action.
        ("POST", "/v5/Organizations/{organizationId}/Action") => RestoreSessionStarted,
        // `stop` is the only session action.
        ("POST", "/v5/RestoreSessions/{restoreSessionId}/Action") => RestoreSessionStopped,
        ("POST", "/v5/BackupRepositories") => RepositoryCreated,
        ("PUT", "/v5/BackupRepositories/{repositoryId}") => RepositoryChanged,
        ("DELETE", "/v5/BackupRepositories/{repositoryId}") => RepositoryRemoved,
        ("POST", "/v5/Jobs/{jobId}/Action" | "/v5/BackupRepositories/{repositoryId}/Action") => {
            return RouteKind::ByAction
        }
        ("POST", r) if r.starts_with("/v5/RestoreSessions/") && r.ends_with("/Action") => {
            return RouteKind::ByAction
        }
        _ => return RouteKind::Unknown,
    };
    RouteKind::Fixed(fixed)
}

/// Whether a request of this method changes something (and is recorded when it succeeds).
pub fn is_change(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// Middleware on the protected routes (inside the bearer check): records every successful change.
pub async fn record_changes(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    if !is_change(req.method()) {
        return next.run(req).await;
    }
    let time = Utc::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    // An action's resource is what it acts on (`/v5/Jobs/{id}`, not `…/Action`).
    let path = req.uri().path();
    let path = path.strip_suffix("/Action").unwrap_or(path).to_owned();
    let actor = req.extensions().get::<Principal>().map(|p| Actor {
        operator_id: Some(p.operator_id),
        name: p.operator_name.clone(),
    });
    let (mut parts, body) = req.into_parts();
    let ClientAddr(client) = match ClientAddr::from_request_parts(&mut parts, &state).await {
        Ok(addr) => addr,
        Err(never) => match never {},
    };
    let mut response = next.run(Request::from_parts(parts, body)).await;
    let note = response
        .extensions_mut()
        .remove::<AuditNote>()
        .unwrap_or_default();
    let Some(actor) = actor.filter(|_| response.status().is_success()) else {
        return response;
    };
    let kind = note.kind.unwrap_or(match route_kind(&method, &route) {
        RouteKind::Fixed(kind) => kind,
        RouteKind::ByAction | RouteKind::Unknown => AuditKind::OtherChange,
    });
    record(
        &state,
        NewAuditItem {
            time,
            actor,
            kind,
            channel: AuditChannel::Api,
            client: Some(client),
            action: format!("{method} {route}"),
            resource: note.resource.unwrap_or(path),
            details: note.details.unwrap_or_default(),
        },
    )
    .await;
    response
}

/// Records a password sign-in's outcome: `SignIn` for the operator, or `SignInFailed` with the
/// user name tried (escaped and capped). Refusals before the password is checked (throttled,
/// busy, malformed) are not recorded: they cost an attacker nothing and the trail would fill.
pub async fn record_sign_in(
    state: &AppState,
    user_name: &str,
    client: IpAddr,
    outcome: &CoreResult<IssuedTokens>,
) {
    let (kind, actor, details) = match outcome {
        Ok(tokens) => (
            AuditKind::SignIn,
            Actor {
                operator_id: Some(tokens.operator_id),
                name: tokens.user_name.clone(),
            },
            "password grant",
        ),
        Err(CoreError::InvalidGrant(_)) => (
            AuditKind::SignInFailed,
            Actor {
                operator_id: None,
                name: user_name.to_owned(),
            },
            "wrong user name or password",
        ),
        Err(_) => return,
    };
    record(
        state,
        NewAuditItem {
            time: Utc::now(),
            actor,
            kind,
            channel: AuditChannel::Api,
            client: Some(client),
            action: "POST /v5/Token".to_owned(),
            resource: "/v5/Token".to_owned(),
            details: details.to_owned(),
        },
    )
    .await;
}

/// Appends an item. The action has happened by now, so a store failure cannot undo it or change
/// the answer: it is logged as an error for the administrator.
async fn record(state: &AppState, item: NewAuditItem) {
    let kind = item.kind;
    if let Err(e) = state.audit.record(item).await {
        tracing::error!(error = %e, %kind, "an audit item could not be recorded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_name_their_kinds() {
        assert_eq!(
            route_kind(&Method::PUT, "/v5/Organizations/{organizationId}"),
            RouteKind::Fixed(AuditKind::OrganizationChanged)
        );
        assert_eq!(
            route_kind(&Method::DELETE, "/v5/Jobs/{jobId}/ExcludedItems"),
            RouteKind::Fixed(AuditKind::JobItemsChanged)
        );
        assert_eq!(
            route_kind(
                &Method::POST,
                "/v5/RestoreSessions/{restoreSessionId}/Organization/Sites/{siteId}/Action"
            ),
            RouteKind::ByAction
        );
        assert_eq!(
            route_kind(&Method::GET, "/v5/Organizations"),
            RouteKind::Unknown
        );
        assert!(is_change(&Method::PATCH) && !is_change(&Method::GET));
    }
}
