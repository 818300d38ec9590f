//! `/v5/JobSessions`: the runs of jobs, newest first, and their log items, oldest first.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use m365backup_core::jobs::model::{
    Bottleneck, JobSession, JobSessionId, LogItem, LogItemId, SessionStatus,
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::client::BaseUrl;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::links::{Href, Links};
use crate::paging::{stored_page, Page, PageRequest, QueryParams};
use crate::routes::jobs::parse_job_id;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatisticsView {
    processing_rate_bytes_ps: u64,
    processing_rate_items_ps: u64,
    read_rate_bytes_ps: u64,
    write_rate_bytes_ps: u64,
    transferred_data_bytes: u64,
    processed_objects: u64,
    /// `NA`, `Detecting`, `Source` (Microsoft 365 throttles), `Target` (the repository).
    #[schema(value_type = String)]
    bottleneck: Bottleneck,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobSessionView {
    id: String,
    creation_time: String,
    /// Absent while the session runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<String>,
    retry_count: u32,
    /// 0–100.
    progress: u8,
    /// `Running`, `Success`, `Warning`, `Failed`, `Stopped`.
    #[schema(value_type = String)]
    status: SessionStatus,
    details: String,
    statistics: StatisticsView,
    #[serde(rename = "_links")]
    links: Links,
}

impl JobSessionView {
    pub fn new(s: &JobSession, base: &str) -> Self {
        let st = &s.statistics;
        Self {
            id: s.id.to_string(),
            creation_time: crate::dates::iso8601(s.creation_time),
            end_time: s.end_time.map(crate::dates::iso8601),
            retry_count: s.retry_count,
            progress: s.progress.min(100),
            status: s.status,
            details: s.details.clone(),
            statistics: StatisticsView {
                processing_rate_bytes_ps: st.processing_rate_bytes_ps,
                processing_rate_items_ps: st.processing_rate_items_ps,
                read_rate_bytes_ps: st.read_rate_bytes_ps,
                write_rate_bytes_ps: st.write_rate_bytes_ps,
                transferred_data_bytes: st.transferred_data_bytes,
                processed_objects: st.processed_objects,
                bottleneck: st.bottleneck,
            },
            links: Links::from([
                ("self", Href::job_session(base, s.id).link()),
                ("job", Href::job(base, s.job_id).link()),
                ("log", Href::job_session(base, s.id).at("logitems").link()),
            ]),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogItemView {
    id: String,
    /// Increases across the server.
    usn: i64,
    /// `[Success] …`, `[Warning] …`, `[Failed] …`.
    title: String,
    creation_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<String>,
    #[serde(rename = "_links")]
    links: Links,
}

impl LogItemView {
    fn new(l: &LogItem, base: &str) -> Self {
        Self {
            id: l.id.to_string(),
            usn: l.usn,
            title: l.title.clone(),
            creation_time: crate::dates::iso8601(l.creation_time),
            end_time: l.end_time.map(crate::dates::iso8601),
            links: Links::from([("jobsessions", Href::job_session(base, l.session_id).link())]),
        }
    }
}

fn parse_session_id(raw: &str) -> ApiResult<JobSessionId> {
    raw.parse()
        .map_err(|_| ApiError::NotFound(format!("Job session '{raw}' was not found.")))
}

async fn sessions_page(
    state: &AppState,
    base: &str,
    job: Option<&str>,
    query: HashMap<String, String>,
) -> ApiResult<Json<Page<JobSessionView>>> {
    let req = PageRequest::parse(&QueryParams::new(query))?;
    let job = job.map(parse_job_id).transpose()?;
    let page = state
        .jobs
        .sessions(job, req.offset as u64, req.limit as u64)
        .await?;
    let url = match job {
        Some(j) => Href::job(base, j).at("jobsessions"),
        None => Href::collection(base, "jobsessions"),
    };
    let views = page
        .items
        .iter()
        .map(|s| JobSessionView::new(s, base))
        .collect();
    Ok(Json(stored_page(views, page.total, &req, &url)))
}

/// Every job session, newest first (paged).
#[utoipa::path(
    get,
    path = "/v5/JobSessions",
    tag = "Job sessions",
    security(("bearer" = [])),
    params(("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query)),
    responses(
        (status = 200, description = "A page of sessions", body = Object),
        (status = 400, description = "Bad paging parameters", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn list_job_sessions(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Page<JobSessionView>>> {
    sessions_page(&state, &base, None, query).await
}

/// The sessions of one job, newest first (paged).
#[utoipa::path(
    get,
    path = "/v5/Jobs/{jobId}/JobSessions",
    tag = "Job sessions",
    security(("bearer" = [])),
    params(("jobId" = String, Path), ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query)),
    responses(
        (status = 200, description = "A page of sessions", body = Object),
        (status = 400, description = "Bad paging parameters", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown job", body = ErrorBody),
    )
)]
pub async fn list_sessions_of_job(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(job): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Page<JobSessionView>>> {
    sessions_page(&state, &base, Some(&job), query).await
}

/// One job session.
#[utoipa::path(
    get,
    path = "/v5/JobSessions/{jobSessionId}",
    tag = "Job sessions",
    security(("bearer" = [])),
    params(("jobSessionId" = String, Path)),
    responses(
        (status = 200, description = "The session", body = JobSessionView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown session", body = ErrorBody),
    )
)]
pub async fn get_job_session(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> ApiResult<Json<JobSessionView>> {
    let session = state.jobs.session(parse_session_id(&id)?).await?;
    Ok(Json(JobSessionView::new(&session, &base)))
}

/// A session's log, oldest first (paged).
#[utoipa::path(
    get,
    path = "/v5/JobSessions/{jobSessionId}/LogItems",
    tag = "Job sessions",
    security(("bearer" = [])),
    params(("jobSessionId" = String, Path), ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query)),
    responses(
        (status = 200, description = "A page of log items", body = Object),
        (status = 400, description = "Bad paging parameters", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown session", body = ErrorBody),
    )
)]
pub async fn list_log_items(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Page<LogItemView>>> {
    let req = PageRequest::parse(&QueryParams::new(query))?;
    let session = parse_session_id(&id)?;
    let page = state
        .jobs
        .log_items(session, req.offset as u64, req.limit as u64)
        .await?;
    let views = page
        .items
        .iter()
        .map(|l| LogItemView::new(l, &base))
        .collect();
    let url = Href::job_session(&base, session).at("logitems");
    Ok(Json(stored_page(views, page.total, &req, &url)))
}

/// One log item of a session.
#[utoipa::path(
    get,
    path = "/v5/JobSessions/{jobSessionId}/LogItems/{logItemId}",
    tag = "Job sessions",
    security(("bearer" = [])),
    params(("jobSessionId" = String, Path), ("logItemId" = String, Path)),
    responses(
        (status = 200, description = "The log item", body = LogItemView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown session or log item", body = ErrorBody),
    )
)]
pub async fn get_log_item(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path((session, item)): Path<(String, String)>,
) -> ApiResult<Json<LogItemView>> {
    let session = parse_session_id(&session)?;
    let item: LogItemId = item
        .parse()
        .map_err(|_| ApiError::NotFound(format!("Log item '{item}' was not found.")))?;
    let log = state.jobs.log_item(session, item).await?;
    Ok(Json(LogItemView::new(&log, &base)))
}
