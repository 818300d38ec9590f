//! `/v5/RestoreSessions`: opening a restore session on an organization's or a job's backups at a
//! point in time (`explore`), listing, stopping, and the events of what was done in it.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use m365backup_core::audit::AuditKind;
use m365backup_core::ids::OrganizationId;
use m365backup_core::jobs::model::JobId;
use m365backup_core::restore::model::{
    EventStatus, EventType, RestoreEvent, RestoreEventId, RestoreKind, RestoreResult,
    RestoreSession, RestoreSessionId, RestoreState,
};
use m365backup_core::restore::service::ExploreInput;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::audit::AuditNote;
use crate::bearer::Operator;
use crate::body::JsonBody;
use crate::client::BaseUrl;
use crate::dates::{iso8601, parse_v5_datetime};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::links::{Href, Link, Links};
use crate::org_id::OrgId;
use crate::paging::{stored_page, Page, PageRequest, QueryParams};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSessionView {
    id: String,
    /// `"<Type> restore: <job or organization> - <creation time>"`.
    name: String,
    /// The organization's name.
    organization: String,
    /// `Veod` or `Vesp`.
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    kind: RestoreKind,
    creation_time: String,
    /// Absent while the session works.
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<String>,
    /// `Working` or `Stopped`.
    #[schema(value_type = String)]
    state: RestoreState,
    /// `Success`, `Warning` or `Failed`.
    #[schema(value_type = String)]
    result: RestoreResult,
    initiated_by: String,
    /// `"<processed> items processed (<succeeded> success, <failed> failed)"`.
    details: String,
    #[serde(rename = "_links")]
    links: Links,
}

impl RestoreSessionView {
    pub fn new(s: &RestoreSession, base: &str) -> Self {
        let own = Href::restore_session(base, s.id);
        Self {
            id: s.id.to_string(),
            name: s.name(),
            organization: s.organization_name.clone(),
            kind: s.kind,
            creation_time: iso8601(s.creation_time),
            end_time: s.end_time.map(iso8601),
            state: s.state,
            result: s.result,
            initiated_by: s.initiated_by.clone(),
            details: s.details(),
            links: Links::from([
                ("self", Link::new(own.clone())),
                ("organization", Link::new(format!("{own}/organization"))),
                ("restoreSessionEvents", Link::new(format!("{own}/events"))),
            ]),
        }
    }
}

/// `explore` options: `datetime` (ISO 8601, `yyyy-MM-dd HH:mm:ss.SSS`, `yyyy.MM.dd HH:mm[:ss]`;
/// now when absent), `type` (`veod` or `vesp`, any case), `showDeleted`, `showAllVersions`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExploreBody {
    datetime: Option<String>,
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    kind: RestoreKind,
    show_deleted: Option<bool>,
    show_all_versions: Option<bool>,
}

/// The one action of a body like `{"explore": {...}}`: its name (lower case) and options.
pub fn single_action(body: Value) -> ApiResult<(String, Value)> {
    if let Value::Object(map) = body {
        let mut entries = map.into_iter();
        if let (Some((k, v)), None) = (entries.next(), entries.next()) {
            return Ok((k.to_ascii_lowercase(), v));
        }
    }
    Err(ApiError::BadRequest(
        "the body must be one action, e.g. {\"explore\":{...}}".into(),
    ))
}

/// Reads `explore` options.
pub fn explore_input(options: Value, state: &AppState) -> ApiResult<ExploreInput> {
    let body: ExploreBody = crate::ci_json::from_value(options).map_err(ApiError::BadRequest)?;
    let datetime = match body.datetime.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(parse_v5_datetime(raw, state.jobs.time_zone()).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "explore.datetime '{raw}' is not a date (ISO 8601, yyyy-MM-dd HH:mm:ss.SSS or yyyy.MM.dd HH:mm)"
            ))
        })?),
    };
    Ok(ExploreInput {
        datetime,
        kind: body.kind,
        show_deleted: body.show_deleted.unwrap_or(false),
        show_all_versions: body.show_all_versions.unwrap_or(false),
    })
}

/// Opens a restore session (`{"explore":{...}}`) on the organization's backups: 201.
#[utoipa::path(
    post,
    path = "/v5/Organizations/{organizationId}/Action",
    tag = "Restore sessions",
    security(("bearer" = [])),
    params(("organizationId" = String, Path)),
    request_body(content = Object, description = "{\"explore\":{\"datetime\",\"type\":\"veod\"|\"vesp\",\"showDeleted\",\"showAllVersions\"}}"),
    responses(
        (status = 201, description = "The restore session", body = RestoreSessionView),
        (status = 400, description = "Not an explore action, or bad options", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown organization", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn organization_action(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Operator(principal): Operator,
    OrgId(org): OrgId,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let (action, options) = single_action(body)?;
    if action != "explore" {
        return Err(ApiError::BadRequest(format!(
            "'{action}' is not an organization action: use explore"
        )));
    }
    explore(&state, &base, org, None, options, &principal.operator_name).await
}

/// Opens a session and answers 201 with it.
pub async fn explore(
    state: &AppState,
    base: &str,
    org: OrganizationId,
    job: Option<JobId>,
    options: Value,
    operator: &str,
) -> ApiResult<Response> {
    let input = explore_input(options, state)?;
    let session = state.restore.explore(org, job, input, operator).await?;
    let note = AuditNote::kind(AuditKind::RestoreSessionStarted)
        .resource(format!("/v5/RestoreSessions/{}", session.id))
        .details(format!(
            "{} at {}",
            session.name(),
            iso8601(session.point_in_time)
        ));
    Ok(note.on((
        StatusCode::CREATED,
        Json(RestoreSessionView::new(&session, base)),
    )))
}

pub fn parse_session_id(raw: &str) -> ApiResult<RestoreSessionId> {
    raw.parse()
        .map_err(|_| ApiError::NotFound(format!("Restore session '{raw}' was not found.")))
}

/// Restore sessions, newest first (paged).
#[utoipa::path(
    get,
    path = "/v5/RestoreSessions",
    tag = "Restore sessions",
    security(("bearer" = [])),
    params(("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query)),
    responses(
        (status = 200, description = "A page of sessions", body = inline(Object)),
        (status = 400, description = "Bad paging parameters", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn list_restore_sessions(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Query(raw): Query<HashMap<String, String>>,
) -> ApiResult<Json<Page<RestoreSessionView>>> {
    let req = PageRequest::parse(&QueryParams::new(raw))?;
    let page = state
        .restore
        .list(req.offset as u64, req.limit as u64)
        .await?;
    let views = page
        .items
        .iter()
        .map(|s| RestoreSessionView::new(s, &base))
        .collect();
    Ok(Json(stored_page(
        views,
        page.total,
        &req,
        Href::collection(&base, "restoresessions").as_str(),
    )))
}

/// One restore session (working or stopped).
#[utoipa::path(
    get,
    path = "/v5/RestoreSessions/{restoreSessionId}",
    tag = "Restore sessions",
    security(("bearer" = [])),
    params(("restoreSessionId" = String, Path)),
    responses(
        (status = 200, description = "The session", body = RestoreSessionView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown session", body = ErrorBody),
    )
)]
pub async fn get_restore_session(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> ApiResult<Json<RestoreSessionView>> {
    let s = state.restore.get(parse_session_id(&id)?).await?;
    Ok(Json(RestoreSessionView::new(&s, &base)))
}

/// `{"stop":null}`: stops the session (200, empty body); 404 when it has stopped already.
#[utoipa::path(
    post,
    path = "/v5/RestoreSessions/{restoreSessionId}/Action",
    tag = "Restore sessions",
    security(("bearer" = [])),
    params(("restoreSessionId" = String, Path)),
    request_body(content = Object, description = "{\"stop\":null}"),
    responses(
        (status = 200, description = "Stopped (empty body)"),
        (status = 400, description = "Not a stop action", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown or stopped session", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn restore_session_action(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<StatusCode> {
    let id = parse_session_id(&id)?;
    let (action, _) = single_action(body)?;
    if action != "stop" {
        return Err(ApiError::BadRequest(format!(
            "'{action}' is not a restore session action: use stop"
        )));
    }
    state.restore.stop(id).await?;
    state.browser.forget(id);
    Ok(StatusCode::OK)
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionOrganizationView {
    id: String,
    name: String,
    #[serde(rename = "_links")]
    links: Links,
}

/// The organization a session explores.
#[utoipa::path(
    get,
    path = "/v5/RestoreSessions/{restoreSessionId}/Organization",
    tag = "Restore sessions",
    security(("bearer" = [])),
    params(("restoreSessionId" = String, Path)),
    responses(
        (status = 200, description = "The organization", body = SessionOrganizationView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown or stopped session", body = ErrorBody),
    )
)]
pub async fn session_organization(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionOrganizationView>> {
    let s = state.restore.working(parse_session_id(&id)?).await?;
    let rs = Href::restore_session(&base, s.id).at("organization");
    let links = match s.kind {
        RestoreKind::Veod => Links::from([
            ("self", Link::new(rs.clone())),
            ("oneDrives", Link::new(format!("{rs}/onedrives"))),
        ]),
        RestoreKind::Vesp => Links::from([
            ("self", Link::new(rs.clone())),
            ("sites", Link::new(format!("{rs}/sites"))),
        ]),
    };
    Ok(Json(SessionOrganizationView {
        id: s.organization_id.to_string(),
        name: s.organization_name,
        links,
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreEventView {
    id: String,
    /// `Save`, `Restore` or `View`.
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    kind: EventType,
    /// `Running`, `Success`, `Warning` or `Failed`.
    #[schema(value_type = String)]
    status: EventStatus,
    start_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<String>,
    /// `hh:mm:ss`.
    duration: String,
    title: String,
    message: String,
    order: i64,
    item_name: String,
    item_type: String,
    item_size_bytes: u64,
    source: String,
    target: String,
    #[serde(rename = "_links")]
    links: Links,
}

impl RestoreEventView {
    fn new(e: &RestoreEvent, base: &str) -> Self {
        let end = e.end_time.unwrap_or_else(chrono::Utc::now);
        let secs = (end - e.start_time).num_seconds().max(0);
        Self {
            id: e.id.to_string(),
            kind: e.kind,
            status: e.status,
            start_time: iso8601(e.start_time),
            end_time: e.end_time.map(iso8601),
            duration: format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60),
            title: e.title.clone(),
            message: e.message.clone(),
            order: e.order,
            item_name: e.item_name.clone(),
            item_type: e.item_type.clone(),
            item_size_bytes: e.item_size,
            source: e.source.clone(),
            target: e.target.clone(),
            links: Links::from([(
                "restoreSession",
                Href::restore_session(base, e.session_id).link(),
            )]),
        }
    }
}

/// A session's events, in order (paged).
#[utoipa::path(
    get,
    path = "/v5/RestoreSessions/{restoreSessionId}/Events",
    tag = "Restore sessions",
    security(("bearer" = [])),
    params(("restoreSessionId" = String, Path), ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query)),
    responses(
        (status = 200, description = "A page of events", body = inline(Object)),
        (status = 400, description = "Bad paging parameters", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown or stopped session", body = ErrorBody),
    )
)]
pub async fn list_restore_events(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    Query(raw): Query<HashMap<String, String>>,
) -> ApiResult<Json<Page<RestoreEventView>>> {
    let req = PageRequest::parse(&QueryParams::new(raw))?;
    let id = parse_session_id(&id)?;
    let page = state
        .restore
        .events(id, req.offset as u64, req.limit as u64)
        .await?;
    let views = page
        .items
        .iter()
        .map(|e| RestoreEventView::new(e, &base))
        .collect();
    Ok(Json(stored_page(
        views,
        page.total,
        &req,
        Href::restore_session(&base, id).at("events").as_str(),
    )))
}

/// One event of a session.
#[utoipa::path(
    get,
    path = "/v5/RestoreSessions/{restoreSessionId}/Events/{eventId}",
    tag = "Restore sessions",
    security(("bearer" = [])),
    params(("restoreSessionId" = String, Path), ("eventId" = String, Path)),
    responses(
        (status = 200, description = "The event", body = RestoreEventView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown or stopped session, or unknown event", body = ErrorBody),
    )
)]
pub async fn get_restore_event(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path((id, event)): Path<(String, String)>,
) -> ApiResult<Json<RestoreEventView>> {
    let id = parse_session_id(&id)?;
    let event: RestoreEventId = event
        .parse()
        .map_err(|_| ApiError::NotFound(format!("Restore event '{event}' was not found.")))?;
    let e = state.restore.event(id, event).await?;
    Ok(Json(RestoreEventView::new(&e, &base)))
}
