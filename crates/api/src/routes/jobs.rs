//! `/v5/Jobs`, `/v5/Organizations/{organizationId}/Jobs`: backup jobs, their selected and
//! excluded items, and their actions (`start`, `stop`, `enable`, `disable`).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use m365backup_core::audit::AuditKind;
use m365backup_core::jobs::model::{
    BackupItem, BackupItemId, BackupType, ItemScope, Job, JobId, JobStatus, VersionPolicy,
};
use m365backup_core::jobs::schedule::{
    BackupWindow, DailyType, PeriodicInterval, SchedulePatch, SchedulePolicy, ScheduleType,
};
use m365backup_core::jobs::service::{parse_daily_time, ItemInput, JobAction, JobInput};
use m365backup_core::jobs::store::ItemList;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::AuditNote;
use crate::bearer::Operator;
use crate::body::JsonBody;
use crate::client::BaseUrl;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::links::{Href, Link, Links};
use crate::org_id::OrgId;
use crate::paging::QueryParams;
use crate::routes::restore_sessions::{explore, single_action};
use crate::state::AppState;

// ---- views ---------------------------------------------------------------------------------

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupWindowView {
    /// 168 values, one per hour of the week from Sunday 00:00.
    backup_window: Vec<bool>,
    /// Minutes from UTC of the window's clock.
    minute_offset: i32,
}

/// `schedulePolicy`: every field is always present.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchedulePolicyView {
    /// `Periodically`, `Daily` or `ManualOnly`.
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    kind: ScheduleType,
    schedule_enabled: bool,
    /// `Minutes5` … `Hours8`.
    #[schema(value_type = String)]
    periodically_every: PeriodicInterval,
    /// `Everyday`, `Workdays`, `Weekends`, `Monday` … `Sunday`.
    #[schema(value_type = String)]
    daily_type: DailyType,
    /// `HH:mm:ss` in the server's time zone.
    daily_time: String,
    retry_enabled: bool,
    retry_number: u32,
    /// Minutes.
    retry_wait_interval: u32,
    backup_window_enabled: bool,
    backup_window_settings: BackupWindowView,
}

impl From<&SchedulePolicy> for SchedulePolicyView {
    fn from(p: &SchedulePolicy) -> Self {
        Self {
            kind: p.kind,
            schedule_enabled: p.schedule_enabled,
            periodically_every: p.periodically_every,
            daily_type: p.daily_type,
            daily_time: p.daily_time.format("%H:%M:%S").to_string(),
            retry_enabled: p.retry_enabled,
            retry_number: p.retry_number,
            retry_wait_interval: p.retry_wait_interval,
            backup_window_enabled: p.backup_window_enabled,
            backup_window_settings: BackupWindowView {
                backup_window: p.backup_window.hours.clone(),
                minute_offset: p.backup_window.minute_offset,
            },
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    id: String,
    name: String,
    description: String,
    /// `EntireOrganization` or `SelectedItems`.
    #[schema(value_type = String)]
    backup_type: BackupType,
    is_enabled: bool,
    /// `Stopped`, `Running`, `Success`, `Failed`, `Warning`, `NotConfigured`, `Queued`.
    #[schema(value_type = String)]
    last_status: JobStatus,
    /// Absent before the first run.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_run: Option<String>,
    /// Absent when nothing is scheduled.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_run: Option<String>,
    repository_id: String,
    proxy_id: String,
    schedule_policy: SchedulePolicyView,
    /// `Latest` or `All` (ours): which file versions are backed up.
    #[schema(value_type = String)]
    version_policy: VersionPolicy,
    #[serde(rename = "_links")]
    links: Links,
}

impl JobView {
    pub fn new(job: &Job, proxy_id: Uuid, base: &str) -> Self {
        let own = Href::job(base, job.id);
        let href = |suffix: &str| Link::new(format!("{own}{suffix}"));
        let d = &job.definition;
        Self {
            id: job.id.to_string(),
            name: d.name.clone(),
            description: d.description.clone(),
            backup_type: d.backup_type,
            is_enabled: job.is_enabled,
            last_status: job.shown_status(),
            last_run: job.last_run.map(crate::dates::iso8601),
            next_run: job.next_run.map(crate::dates::iso8601),
            repository_id: d.repository_id.to_string(),
            proxy_id: d.proxy_id.unwrap_or(proxy_id).to_string(),
            schedule_policy: (&d.schedule).into(),
            version_policy: d.version_policy,
            links: Links::from([
                ("self", href("")),
                (
                    "organization",
                    Href::organization(base, job.organization_id).link(),
                ),
                (
                    "backupRepository",
                    Href::backup_repository(base, d.repository_id).link(),
                ),
                ("jobsessions", href("/jobsessions")),
                ("selectedItems", href("/selecteditems")),
                ("excludedItems", href("/excludeditems")),
            ]),
        }
    }
}

/// A selected or excluded item, in the shape a client sent it (`type` decides the rest).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupItemView {
    id: String,
    /// `Site`, `User`, `Group`, `PartialOrganization`, `PersonalSites`.
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    fields: serde_json::Map<String, Value>,
    #[serde(rename = "_links")]
    links: Links,
}

impl BackupItemView {
    fn new(item: &BackupItem, job: JobId, list: ItemList, base: &str) -> Self {
        use serde_json::json;
        let directory = |r: &m365backup_core::jobs::model::DirectoryRef| json!({"id": r.composite_id, "displayName": r.display_name, "name": r.name});
        let (kind, fields) = match &item.scope {
            ItemScope::Site(s) => (
                "Site",
                json!({"site": {"id": s.id, "url": s.url, "title": s.title, "name": s.name,
                                "isCloud": s.is_cloud, "isPersonal": s.is_personal}}),
            ),
            ItemScope::User {
                user,
                one_drive,
                personal_site,
            } => (
                "User",
                json!({"user": directory(user), "oneDrive": one_drive, "site": personal_site,
                       "mailbox": false, "archiveMailbox": false}),
            ),
            ItemScope::Group {
                group,
                members,
                member_one_drive,
                member_site,
                site,
            } => (
                "Group",
                json!({"group": directory(group), "members": members,
                       "memberOnedrive": member_one_drive, "memberSite": member_site,
                       "site": site, "memberMailbox": false, "memberArchiveMailbox": false,
                       "groupMailbox": false}),
            ),
            ItemScope::PartialOrganization { one_drive, site } => (
                "PartialOrganization",
                json!({"oneDrive": one_drive, "site": site, "mailbox": false,
                       "archiveMailbox": false, "teams": false}),
            ),
            ItemScope::PersonalSites => ("PersonalSites", json!({})),
        };
        let list_path = match list {
            ItemList::Selected => "selecteditems",
            ItemList::Excluded => "excludeditems",
        };
        Self {
            id: item.id.to_string(),
            kind,
            fields: match fields {
                Value::Object(map) => map,
                _ => Default::default(),
            },
            links: Links::from([
                ("job", Href::job(base, job).link()),
                ("list", Href::job(base, job).at(list_path).link()),
            ]),
        }
    }
}

// ---- request bodies --------------------------------------------------------------------------

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct BackupWindowBody {
    #[schema(value_type = Option<Vec<bool>>)]
    backup_window: Option<Vec<bool>>,
    minute_offset: Option<i32>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct SchedulePolicyBody {
    #[serde(rename = "type")]
    #[schema(value_type = Option<String>)]
    kind: Option<ScheduleType>,
    schedule_enabled: Option<bool>,
    /// Also accepted as `periodicInterval` (the v5 reference's spelling).
    #[serde(alias = "periodicInterval")]
    #[schema(value_type = Option<String>)]
    periodically_every: Option<PeriodicInterval>,
    #[schema(value_type = Option<String>)]
    daily_type: Option<DailyType>,
    /// `HH:mm:ss`.
    daily_time: Option<String>,
    retry_enabled: Option<bool>,
    retry_number: Option<u32>,
    retry_wait_interval: Option<u32>,
    backup_window_enabled: Option<bool>,
    backup_window_settings: Option<BackupWindowBody>,
}

impl SchedulePolicyBody {
    fn into_patch(self) -> ApiResult<SchedulePatch> {
        let daily_time = match self.daily_time {
            None => None,
            Some(t) => Some(parse_daily_time(&t).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "schedulePolicy.dailyTime must be HH:mm:ss, not '{t}'"
                ))
            })?),
        };
        let backup_window = self.backup_window_settings.map(|w| BackupWindow {
            hours: w
                .backup_window
                .unwrap_or_else(|| BackupWindow::default().hours),
            minute_offset: w.minute_offset.unwrap_or(0),
        });
        Ok(SchedulePatch {
            kind: self.kind,
            schedule_enabled: self.schedule_enabled,
            periodically_every: self.periodically_every,
            daily_type: self.daily_type,
            daily_time,
            retry_enabled: self.retry_enabled,
            retry_number: self.retry_number,
            retry_wait_interval: self.retry_wait_interval,
            backup_window_enabled: self.backup_window_enabled,
            backup_window,
        })
    }
}

/// A user or group as an item names it.
#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryObjectBody {
    id: Option<String>,
    name: Option<String>,
    display_name: Option<String>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct SiteBody {
    id: Option<String>,
    url: Option<String>,
    title: Option<String>,
    name: Option<String>,
}

/// A `selectedItems`/`excludedItems` entry: `type` says which fields count. `site` is an
/// object for type `Site` and a boolean (the personal site) for `User`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupItemBody {
    /// `Site`, `User`, `Group`, `PartialOrganization`, `PersonalSites`.
    #[serde(rename = "type")]
    kind: ItemKind,
    #[schema(value_type = Option<Object>)]
    site: Option<Value>,
    user: Option<DirectoryObjectBody>,
    group: Option<DirectoryObjectBody>,
    one_drive: Option<bool>,
    mailbox: Option<bool>,
    archive_mailbox: Option<bool>,
    members: Option<bool>,
    member_onedrive: Option<bool>,
    member_site: Option<bool>,
    member_mailbox: Option<bool>,
    member_archive_mailbox: Option<bool>,
    group_mailbox: Option<bool>,
    group_site: Option<bool>,
    teams: Option<bool>,
}

#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
pub enum ItemKind {
    Site,
    User,
    Group,
    PartialOrganization,
    PersonalSites,
}

/// `true`, `false`, `"True"`… as a boolean.
fn flag(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

impl BackupItemBody {
    fn into_input(self, at: &str) -> ApiResult<ItemInput> {
        let yes = |v: Option<bool>| v.unwrap_or(false);
        Ok(match self.kind {
            ItemKind::Site => {
                let site: SiteBody = match self.site {
                    Some(v @ Value::Object(_)) => crate::ci_json::from_value(v)
                        .map_err(|e| ApiError::BadRequest(format!("{at}.site: {e}")))?,
                    _ => {
                        return Err(ApiError::BadRequest(format!(
                            "{at}.site must be an object with the site's id or url"
                        )))
                    }
                };
                ItemInput::Site {
                    id: site.id,
                    url: site.url,
                    title: site.title,
                    name: site.name,
                }
            }
            ItemKind::User => {
                let user = self.user.ok_or_else(|| {
                    ApiError::BadRequest(format!("{at}.user is required for type User"))
                })?;
                let personal_site = match &self.site {
                    None | Some(Value::Null) => false,
                    Some(v) => flag(v).ok_or_else(|| {
                        ApiError::BadRequest(format!("{at}.site must be true or false"))
                    })?,
                };
                ItemInput::User {
                    id: user.id,
                    name: user.name,
                    // A user item with no flag at all means its OneDrive, as portals send it.
                    one_drive: self.one_drive.unwrap_or(!personal_site),
                    personal_site,
                    mailbox: yes(self.mailbox),
                    archive_mailbox: yes(self.archive_mailbox),
                }
            }
            ItemKind::Group => {
                let group = self.group.ok_or_else(|| {
                    ApiError::BadRequest(format!("{at}.group is required for type Group"))
                })?;
                let site = match &self.site {
                    None | Some(Value::Null) => yes(self.group_site),
                    Some(v) => flag(v).ok_or_else(|| {
                        ApiError::BadRequest(format!("{at}.site must be true or false"))
                    })?,
                };
                ItemInput::Group {
                    id: group.id,
                    name: group.name.or(group.display_name),
                    members: yes(self.members),
                    member_one_drive: yes(self.member_onedrive),
                    member_site: yes(self.member_site),
                    site,
                    mailboxes: yes(self.member_mailbox)
                        || yes(self.member_archive_mailbox)
                        || yes(self.group_mailbox),
                }
            }
            ItemKind::PartialOrganization => ItemInput::PartialOrganization {
                one_drive: yes(self.one_drive),
                site: match &self.site {
                    None | Some(Value::Null) => false,
                    Some(v) => flag(v).ok_or_else(|| {
                        ApiError::BadRequest(format!("{at}.site must be true or false"))
                    })?,
                },
                mailboxes: yes(self.mailbox) || yes(self.archive_mailbox),
                teams: yes(self.teams),
            },
            ItemKind::PersonalSites => ItemInput::PersonalSites,
        })
    }
}

fn item_inputs(items: Vec<BackupItemBody>, field: &str) -> ApiResult<Vec<ItemInput>> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, b)| b.into_input(&format!("{field}[{i}]")))
        .collect()
}

/// A job as clients send it to create or edit it. Read-only fields of a fetched job (`id`,
/// `lastRun`, `_links`…) are ignored, so a GET result can be sent back.
#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct JobBody {
    name: Option<String>,
    description: Option<String>,
    #[schema(value_type = Option<String>)]
    backup_type: Option<BackupType>,
    selected_items: Option<Vec<BackupItemBody>>,
    excluded_items: Option<Vec<BackupItemBody>>,
    schedule_policy: Option<SchedulePolicyBody>,
    repository_id: Option<String>,
    proxy_id: Option<String>,
    /// Start the job right after it is created.
    run_now: Option<bool>,
    #[schema(value_type = Option<String>)]
    version_policy: Option<VersionPolicy>,
    is_enabled: Option<bool>,
}

fn guid_field(raw: Option<String>, field: &str) -> ApiResult<Option<Uuid>> {
    match raw.filter(|r| !r.trim().is_empty()) {
        None => Ok(None),
        Some(r) => r
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("{field} must be a GUID, not '{r}'"))),
    }
}

impl JobBody {
    fn into_input(self) -> ApiResult<JobInput> {
        Ok(JobInput {
            name: self.name,
            description: self.description,
            backup_type: self.backup_type,
            selected_items: self
                .selected_items
                .map(|i| item_inputs(i, "selectedItems"))
                .transpose()?,
            excluded_items: self
                .excluded_items
                .map(|i| item_inputs(i, "excludedItems"))
                .transpose()?,
            schedule: self
                .schedule_policy
                .map(SchedulePolicyBody::into_patch)
                .transpose()?,
            repository_id: guid_field(self.repository_id, "repositoryId")?,
            proxy_id: guid_field(self.proxy_id, "proxyId")?,
            version_policy: self.version_policy,
            is_enabled: self.is_enabled,
            run_now: self.run_now.unwrap_or(false),
        })
    }
}

pub fn parse_job_id(raw: &str) -> ApiResult<JobId> {
    raw.parse()
        .map_err(|_| ApiError::NotFound(format!("Job '{raw}' was not found.")))
}

// ---- handlers ----------------------------------------------------------------------------------

/// Every job of every organization.
#[utoipa::path(
    get,
    path = "/v5/Jobs",
    tag = "Jobs",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "All jobs", body = Vec<JobView>),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn list_jobs(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
) -> ApiResult<Json<Vec<JobView>>> {
    let jobs = state.jobs.list(None).await?;
    Ok(Json(
        jobs.iter()
            .map(|j| JobView::new(j, state.proxy_id, &base))
            .collect(),
    ))
}

/// The jobs of one organization.
#[utoipa::path(
    get,
    path = "/v5/Organizations/{organizationId}/Jobs",
    tag = "Jobs",
    security(("bearer" = [])),
    params(("organizationId" = String, Path)),
    responses(
        (status = 200, description = "The organization's jobs", body = Vec<JobView>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown organization", body = ErrorBody),
    )
)]
pub async fn list_organization_jobs(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    OrgId(org): OrgId,
) -> ApiResult<Json<Vec<JobView>>> {
    let jobs = state.jobs.list(Some(org)).await?;
    Ok(Json(
        jobs.iter()
            .map(|j| JobView::new(j, state.proxy_id, &base))
            .collect(),
    ))
}

/// Creates a job for the organization (201); `runNow` starts it at once.
#[utoipa::path(
    post,
    path = "/v5/Organizations/{organizationId}/Jobs",
    tag = "Jobs",
    security(("bearer" = [])),
    params(("organizationId" = String, Path)),
    request_body = JobBody,
    responses(
        (status = 201, description = "Created", body = JobView),
        (status = 400, description = "Invalid job (the message names the field)", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown organization", body = ErrorBody),
        (status = 409, description = "A job of that name exists", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 503, description = "The tenant's directory cannot be read", body = ErrorBody),
    )
)]
pub async fn create_job(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    OrgId(org): OrgId,
    JsonBody(body): JsonBody<JobBody>,
) -> ApiResult<Response> {
    let job = state.jobs.create(org, body.into_input()?).await?;
    let note = AuditNote::created(format!("/v5/Jobs/{}", job.id))
        .details(format!("job {}", job.definition.name));
    Ok(note.on((
        StatusCode::CREATED,
        Json(JobView::new(&job, state.proxy_id, &base)),
    )))
}

/// One job.
#[utoipa::path(
    get,
    path = "/v5/Jobs/{jobId}",
    tag = "Jobs",
    security(("bearer" = [])),
    params(("jobId" = String, Path)),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown job", body = ErrorBody),
    )
)]
pub async fn get_job(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> ApiResult<Json<JobView>> {
    let job = state.jobs.get(parse_job_id(&id)?).await?;
    Ok(Json(JobView::new(&job, state.proxy_id, &base)))
}

/// Edits a job: the fields present are changed (204).
#[utoipa::path(
    put,
    path = "/v5/Jobs/{jobId}",
    tag = "Jobs",
    security(("bearer" = [])),
    params(("jobId" = String, Path)),
    request_body = JobBody,
    responses(
        (status = 204, description = "Edited"),
        (status = 400, description = "Invalid job (the message names the field)", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown job", body = ErrorBody),
        (status = 409, description = "A job of that name exists", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn edit_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<JobBody>,
) -> ApiResult<StatusCode> {
    state
        .jobs
        .edit(parse_job_id(&id)?, body.into_input()?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a job (204); its backups stay in the repository. 409 while it runs.
#[utoipa::path(
    delete,
    path = "/v5/Jobs/{jobId}",
    tag = "Jobs",
    security(("bearer" = [])),
    params(("jobId" = String, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown job", body = ErrorBody),
        (status = 409, description = "The job is running", body = ErrorBody),
    )
)]
pub async fn delete_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.jobs.delete(parse_job_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"start":null}`, `{"stop":null}`, `{"enable":null}` or `{"disable":null}`: 200 with an empty
/// body (starting a running job or stopping an idle one is 409); `{"explore":{...}}` opens a
/// restore session on the job's backups: 201 with the session.
#[utoipa::path(
    post,
    path = "/v5/Jobs/{jobId}/Action",
    tag = "Jobs",
    security(("bearer" = [])),
    params(("jobId" = String, Path)),
    request_body(content = Object, description = "One key: start, stop, enable, disable or explore"),
    responses(
        (status = 200, description = "Done (empty body)"),
        (status = 201, description = "explore: the restore session", body = crate::routes::restore_sessions::RestoreSessionView),
        (status = 400, description = "Not one of the actions, or bad explore options", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown job", body = ErrorBody),
        (status = 409, description = "Already running, not running, or disabled", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn job_action(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Operator(principal): Operator,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let id = parse_job_id(&id)?;
    let (name, options) = single_action(body)?;
    let (action, kind) = match name.as_str() {
        "start" => (JobAction::Start, AuditKind::JobStarted),
        "stop" => (JobAction::Stop, AuditKind::JobStopped),
        "enable" => (JobAction::Enable, AuditKind::JobEnabled),
        "disable" => (JobAction::Disable, AuditKind::JobDisabled),
        "explore" => {
            let job = state.jobs.get(id).await?;
            return explore(
                &state,
                &base,
                job.organization_id,
                Some(id),
                options,
                &principal.operator_name,
            )
            .await;
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "'{other}' is not a job action: use start, stop, enable, disable or explore"
            )))
        }
    };
    state.jobs.act(id, action).await?;
    Ok(AuditNote::kind(kind).on(StatusCode::OK))
}

// ---- selected and excluded items ----------------------------------------------------------------

async fn list_items(
    state: &AppState,
    base: &str,
    id: &str,
    list: ItemList,
) -> ApiResult<Json<Vec<BackupItemView>>> {
    let id = parse_job_id(id)?;
    let items = state.jobs.items(id, list).await?;
    Ok(Json(
        items
            .iter()
            .map(|i| BackupItemView::new(i, id, list, base))
            .collect(),
    ))
}

async fn add_items(
    state: &AppState,
    id: &str,
    list: ItemList,
    body: Vec<BackupItemBody>,
) -> ApiResult<StatusCode> {
    let field = match list {
        ItemList::Selected => "selectedItems",
        ItemList::Excluded => "excludedItems",
    };
    let inputs = item_inputs(body, field)?;
    if inputs.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "{field}: give at least one item"
        )));
    }
    state
        .jobs
        .add_items(parse_job_id(id)?, list, &inputs)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_items(
    state: &AppState,
    id: &str,
    list: ItemList,
    query: &QueryParams,
) -> ApiResult<StatusCode> {
    let ids = query
        .get("ids")
        .ok_or_else(|| ApiError::BadRequest("ids is required (ids=a,b)".into()))?;
    let ids = ids
        .split(',')
        .map(|i| {
            i.trim()
                .parse::<BackupItemId>()
                .map_err(|_| ApiError::BadRequest(format!("ids: '{i}' is not a GUID")))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    state
        .jobs
        .remove_items(parse_job_id(id)?, list, &ids)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The items a job backs up.
#[utoipa::path(
    get,
    path = "/v5/Jobs/{jobId}/SelectedItems",
    tag = "Jobs",
    security(("bearer" = [])),
    params(("jobId" = String, Path)),
    responses(
        (status = 200, description = "Selected items", body = Vec<BackupItemView>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown job", body = ErrorBody),
    )
)]
pub async fn list_selected_items(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<BackupItemView>>> {
    list_items(&state, &base, &id, ItemList::Selected).await
}

/// Adds items to the job's selection (204).
#[utoipa::path(
    post,
    path = "/v5/Jobs/{jobId}/SelectedItems",
    tag = "Jobs",
    security(("bearer" = [])),
    params(("jobId" = String, Path)),
    request_body = Vec<BackupItemBody>,
    responses(
        (status = 204, description = "Added"),
        (status = 400, description = "Invalid item", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown job", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn add_selected_items(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Vec<BackupItemBody>>,
) -> ApiResult<StatusCode> {
    add_items(&state, &id, ItemList::Selected, body).await
}

/// Removes selected items by id: `?ids=a,b` (204).
#[utoipa::path(
    delete,
    path = "/v5/Jobs/{jobId}/SelectedItems",
    tag = "Jobs",
    security(("bearer" = [])),
    params(("jobId" = String, Path), ("ids" = String, Query, description = "Comma-separated item ids")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Bad ids, or the last item of a SelectedItems job", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown job or items", body = ErrorBody),
    )
)]
pub async fn remove_selected_items(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> ApiResult<StatusCode> {
    remove_items(&state, &id, ItemList::Selected, &QueryParams::new(query)).await
}

/// The items a job leaves out.
#[utoipa::path(
    get,
    path = "/v5/Jobs/{jobId}/ExcludedItems",
    tag = "Jobs",
    security(("bearer" = [])),
    params(("jobId" = String, Path)),
    responses(
        (status = 200, description = "Excluded items", body = Vec<BackupItemView>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown job", body = ErrorBody),
    )
)]
pub async fn list_excluded_items(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<BackupItemView>>> {
    list_items(&state, &base, &id, ItemList::Excluded).await
}

/// Adds items to the job's exclusions (204).
#[utoipa::path(
    post,
    path = "/v5/Jobs/{jobId}/ExcludedItems",
    tag = "Jobs",
    security(("bearer" = [])),
    params(("jobId" = String, Path)),
    request_body = Vec<BackupItemBody>,
    responses(
        (status = 204, description = "Added"),
        (status = 400, description = "Invalid item", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown job", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
pub async fn add_excluded_items(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Vec<BackupItemBody>>,
) -> ApiResult<StatusCode> {
    add_items(&state, &id, ItemList::Excluded, body).await
}

/// Removes excluded items by id: `?ids=a,b` (204).
#[utoipa::path(
    delete,
    path = "/v5/Jobs/{jobId}/ExcludedItems",
    tag = "Jobs",
    security(("bearer" = [])),
    params(("jobId" = String, Path), ("ids" = String, Query, description = "Comma-separated item ids")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Bad ids", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown job or items", body = ErrorBody),
    )
)]
pub async fn remove_excluded_items(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> ApiResult<StatusCode> {
    remove_items(&state, &id, ItemList::Excluded, &QueryParams::new(query)).await
}
