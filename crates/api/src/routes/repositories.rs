//! `/v5/BackupRepositories`, `/v5/ObjectStorageRepositories` and
//! `/v5/Organizations/{organizationId}/usedRepositories`: where backups live.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::NaiveTime;
use m365backup_core::audit::AuditKind;
use m365backup_core::error::CoreError;
use m365backup_core::Secret;
use m365backup_repo::check::{CheckReport, ReadData};
use m365backup_repo::progress::Quiet;
use m365backup_repo::registry::{
    DailyType, NewRepository, RepositoryEdit, RepositoryRecord, RepositoryStatus,
    RetentionFrequencyType, RetentionPeriodType, RetentionSettings, S3Flavor, StorageSettings,
    YearlyRetentionPeriod,
};
use m365backup_repo::retention::RetentionType;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::AuditNote;
use crate::body::JsonBody;
use crate::client::BaseUrl;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::links::{Href, Links};
use crate::org_id::OrgId;
use crate::paging::QueryParams;
use crate::state::AppState;

/// A backup repository as the vendor shows it; `path` is the folder or `s3://bucket/prefix`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupRepositoryView {
    id: String,
    name: String,
    description: String,
    path: String,
    proxy_id: String,
    capacity_bytes: u64,
    free_space_bytes: u64,
    is_out_of_sync: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_storage_id: Option<String>,
    /// Always true: every repository is encrypted.
    object_storage_encryption_enabled: bool,
    #[schema(value_type = String)]
    retention_type: RetentionType,
    #[schema(value_type = String)]
    retention_period_type: RetentionPeriodType,
    daily_retention_period: u32,
    monthly_retention_period: u32,
    #[schema(value_type = String)]
    yearly_retention_period: YearlyRetentionPeriod,
    #[schema(value_type = String)]
    retention_frequency_type: RetentionFrequencyType,
    /// `HH:mm:ss`, server time.
    daily_time: String,
    #[schema(value_type = String)]
    daily_type: DailyType,
    #[serde(rename = "_links")]
    links: Links,
}

impl BackupRepositoryView {
    pub fn new(r: RepositoryRecord, status: RepositoryStatus, base: &str) -> Self {
        let mut links = Links::from([
            ("self", Href::backup_repository(base, r.id).link()),
            ("proxy", Href::proxy(base, r.proxy_id).link()),
        ]);
        if let Some(os) = r.object_storage_id {
            links.insert(
                "objectStorage",
                Href::object_storage_repository(base, os).link(),
            );
        }
        let t = &r.retention;
        Self {
            id: r.id.to_string(),
            path: r.storage.display(),
            name: r.name,
            description: r.description,
            proxy_id: r.proxy_id.to_string(),
            capacity_bytes: status.capacity_bytes,
            free_space_bytes: status.free_space_bytes,
            is_out_of_sync: false,
            object_storage_id: r.object_storage_id.map(|id| id.to_string()),
            object_storage_encryption_enabled: true,
            retention_type: t.retention_type,
            retention_period_type: t.retention_period_type,
            daily_retention_period: t.daily_retention_period,
            monthly_retention_period: t.monthly_retention_period,
            yearly_retention_period: t.yearly_retention_period,
            retention_frequency_type: t.retention_frequency_type,
            daily_time: t.daily_time.format("%H:%M:%S").to_string(),
            daily_type: t.daily_type,
            links,
        }
    }
}

pub async fn repository_view(
    state: &AppState,
    r: RepositoryRecord,
    base: &str,
) -> BackupRepositoryView {
    let status = state.repositories.status(&r).await;
    BackupRepositoryView::new(r, status, base)
}

fn not_found(raw: &str) -> ApiError {
    ApiError::NotFound(format!("Backup repository '{raw}' was not found."))
}

fn parse_id(raw: &str) -> ApiResult<uuid::Uuid> {
    raw.parse().map_err(|_| not_found(raw))
}

/// Lists the backup repositories (optionally those of one proxy).
#[utoipa::path(
    get,
    path = "/v5/BackupRepositories",
    tag = "BackupRepositories",
    security(("bearer" = [])),
    params(("proxyId" = Option<String>, Query, description = "Only the repositories of this proxy")),
    responses(
        (status = 200, description = "The repositories", body = Vec<BackupRepositoryView>),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn list_repositories(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Query(raw): Query<HashMap<String, String>>,
) -> ApiResult<Json<Vec<BackupRepositoryView>>> {
    let q = QueryParams::new(raw);
    let proxy = match q.get("proxyId") {
        Some(p) => Some(
            p.parse::<uuid::Uuid>()
                .map_err(|_| ApiError::BadRequest(format!("proxyId '{p}' is not a GUID")))?,
        ),
        None => None,
    };
    let mut out = Vec::new();
    for r in state.repositories.list().await? {
        if proxy.is_none_or(|p| p == r.proxy_id) {
            out.push(repository_view(&state, r, &base).await);
        }
    }
    Ok(Json(out))
}

/// One backup repository.
#[utoipa::path(
    get,
    path = "/v5/BackupRepositories/{repositoryId}",
    tag = "BackupRepositories",
    security(("bearer" = [])),
    params(("repositoryId" = String, Path, description = "Repository GUID")),
    responses(
        (status = 200, description = "The repository", body = BackupRepositoryView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such repository", body = ErrorBody),
    )
)]
pub async fn get_repository(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(repository_id): Path<String>,
) -> ApiResult<Json<BackupRepositoryView>> {
    let r = state.repositories.get(parse_id(&repository_id)?).await?;
    Ok(Json(repository_view(&state, r, &base).await))
}

/// Object storage as a repository body names it (ours).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStorageBody {
    /// `S3Compatible`, `AmazonS3` or `AzureBlob`.
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    kind: ObjectStorageType,
    /// S3: service URL (required for `S3Compatible`); Azure: blob service URL (optional).
    endpoint: Option<String>,
    region: Option<String>,
    bucket: Option<String>,
    /// Folder inside the bucket or container (`folder` is accepted too).
    prefix: Option<String>,
    folder: Option<String>,
    access_key_id: Option<String>,
    #[schema(value_type = Option<String>)]
    secret_access_key: Option<Secret>,
    /// Azure storage account.
    account_name: Option<String>,
    #[schema(value_type = Option<String>)]
    account_key: Option<Secret>,
    container: Option<String>,
    #[serde(default)]
    allow_http: bool,
    /// Path-style S3 requests; default true for `S3Compatible`, false for `AmazonS3`.
    path_style: Option<bool>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum ObjectStorageType {
    S3Compatible,
    AmazonS3,
    AzureBlob,
}

impl RepositoryBody {
    /// `r` with the retention fields of the body applied.
    fn retention(&self, mut r: RetentionSettings) -> ApiResult<RetentionSettings> {
        if let Some(v) = self.retention_type {
            r.retention_type = v;
        }
        if let Some(v) = self.retention_period_type {
            r.retention_period_type = v;
        }
        if let Some(v) = self.daily_retention_period {
            r.daily_retention_period = v;
        }
        if let Some(v) = self.monthly_retention_period {
            r.monthly_retention_period = v;
        }
        if let Some(v) = self.yearly_retention_period {
            r.yearly_retention_period = v;
        }
        if let Some(v) = self.retention_frequency_type {
            r.retention_frequency_type = v;
        }
        if let Some(v) = &self.daily_time {
            r.daily_time = NaiveTime::parse_from_str(v, "%H:%M:%S")
                .or_else(|_| NaiveTime::parse_from_str(v, "%H:%M"))
                .map_err(|_| {
                    ApiError::BadRequest(format!("dailyTime must be HH:mm:ss, not '{v}'"))
                })?;
        }
        if let Some(v) = self.daily_type {
            r.daily_type = v;
        }
        Ok(r)
    }
}

/// Body of `POST /v5/BackupRepositories` (a local `path` or an `objectStorage`) and of `PUT`
/// (name, description, retention). Read-only fields of a GET answer are ignored.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryBody {
    name: Option<String>,
    description: Option<String>,
    /// Absolute folder on the server. On PUT, accepted only unchanged.
    path: Option<String>,
    object_storage: Option<ObjectStorageBody>,
    /// The repository password; random when left out (see `m365backup repository
    /// recovery-password`). Required to attach a location that already holds a repository.
    #[schema(value_type = Option<String>)]
    encryption_password: Option<Secret>,
    /// Accepted; must name a known proxy.
    proxy_id: Option<String>,
    /// `ItemLevel` or `SnapshotBased`.
    #[schema(value_type = Option<String>)]
    retention_type: Option<RetentionType>,
    /// `Daily`, `Monthly` or `Yearly`.
    #[schema(value_type = Option<String>)]
    retention_period_type: Option<RetentionPeriodType>,
    daily_retention_period: Option<u32>,
    monthly_retention_period: Option<u32>,
    /// `Year1` … `Years25` or `Keep`.
    #[schema(value_type = Option<String>)]
    yearly_retention_period: Option<YearlyRetentionPeriod>,
    #[schema(value_type = Option<String>)]
    retention_frequency_type: Option<RetentionFrequencyType>,
    /// `HH:mm:ss` (or `HH:mm`), server time.
    daily_time: Option<String>,
    #[schema(value_type = Option<String>)]
    daily_type: Option<DailyType>,
}

fn storage_from(os: ObjectStorageBody) -> ApiResult<(StorageSettings, Option<Secret>)> {
    let required = |v: Option<String>, name: &str| {
        v.filter(|s| !s.trim().is_empty())
            .ok_or_else(|| ApiError::BadRequest(format!("objectStorage.{name} is required")))
    };
    let prefix = os.prefix.or(os.folder).unwrap_or_default();
    match os.kind {
        ObjectStorageType::S3Compatible | ObjectStorageType::AmazonS3 => {
            let amazon = os.kind == ObjectStorageType::AmazonS3;
            if !amazon && os.endpoint.is_none() {
                return Err(ApiError::BadRequest(
                    "objectStorage.endpoint is required for S3Compatible".into(),
                ));
            }
            Ok((
                StorageSettings::S3 {
                    flavor: if amazon {
                        S3Flavor::AmazonS3
                    } else {
                        S3Flavor::S3Compatible
                    },
                    endpoint: os.endpoint,
                    region: os
                        .region
                        .filter(|r| !r.is_empty())
                        .unwrap_or_else(|| "us-east-1".into()),
                    bucket: required(os.bucket, "bucket")?,
                    prefix,
                    access_key_id: required(os.access_key_id, "accessKeyId")?,
                    allow_http: os.allow_http,
                    path_style: os.path_style.unwrap_or(!amazon),
                },
                os.secret_access_key,
            ))
        }
        ObjectStorageType::AzureBlob => Ok((
            StorageSettings::Azure {
                account: required(os.account_name, "accountName")?,
                container: required(os.container.or(os.bucket), "container")?,
                prefix,
                endpoint: os.endpoint,
                allow_http: os.allow_http,
            },
            os.account_key,
        )),
    }
}

/// Adds a repository: creates it, or attaches the one already at that place.
#[utoipa::path(
    post,
    path = "/v5/BackupRepositories",
    tag = "BackupRepositories",
    security(("bearer" = [])),
    request_body = RepositoryBody,
    responses(
        (status = 201, description = "Added", body = BackupRepositoryView),
        (status = 400, description = "Invalid settings, unreachable storage, refused credentials, wrong password", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 503, description = "The storage cannot be reached", body = ErrorBody),
    )
)]
pub async fn add_repository(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    JsonBody(body): JsonBody<RepositoryBody>,
) -> ApiResult<Response> {
    let retention = body.retention(RetentionSettings::default())?;
    let name = body
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ApiError::BadRequest("name is required".into()))?;
    if let Some(p) = &body.proxy_id {
        let known = state
            .proxies
            .list_proxies()
            .await
            .map_err(CoreError::from)?;
        if !known
            .iter()
            .any(|k| k.id.to_string().eq_ignore_ascii_case(p))
        {
            return Err(ApiError::BadRequest(format!(
                "proxyId '{p}' is not a known proxy"
            )));
        }
    }
    let (storage, storage_secret) = match (body.path, body.object_storage) {
        (Some(path), None) => (StorageSettings::Local { path: path.into() }, None),
        (None, Some(os)) => storage_from(os)?,
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "give either path or objectStorage, not both".into(),
            ))
        }
        (None, None) => {
            return Err(ApiError::BadRequest(
                "path or objectStorage is required".into(),
            ))
        }
    };
    let record = state
        .repositories
        .create(NewRepository {
            name,
            description: body.description.unwrap_or_default(),
            storage,
            storage_secret,
            password: body.encryption_password,
            retention,
        })
        .await?;
    let note = AuditNote::created(format!("/v5/BackupRepositories/{}", record.id))
        .details(format!("repository {}", record.name));
    Ok(note.on((
        StatusCode::CREATED,
        Json(repository_view(&state, record, &base).await),
    )))
}

/// Edits name, description and retention.
#[utoipa::path(
    put,
    path = "/v5/BackupRepositories/{repositoryId}",
    tag = "BackupRepositories",
    security(("bearer" = [])),
    params(("repositoryId" = String, Path, description = "Repository GUID")),
    request_body = RepositoryBody,
    responses(
        (status = 204, description = "Edited"),
        (status = 400, description = "Invalid values", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such repository", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
    )
)]
pub async fn edit_repository(
    State(state): State<AppState>,
    Path(repository_id): Path<String>,
    JsonBody(body): JsonBody<RepositoryBody>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&repository_id)?;
    let current = state.repositories.get(id).await?;
    if let Some(path) = &body.path {
        if *path != current.storage.display() {
            return Err(ApiError::BadRequest(
                "path cannot be changed: add a new repository instead".into(),
            ));
        }
    }
    if body.object_storage.is_some() {
        return Err(ApiError::BadRequest(
            "objectStorage cannot be changed: add a new repository instead".into(),
        ));
    }
    let retention = body.retention(current.retention.clone())?;
    state
        .repositories
        .edit(
            id,
            RepositoryEdit {
                name: body.name,
                description: body.description,
                retention: Some(retention),
            },
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Forgets a repository; its data stays in place and can be attached again.
#[utoipa::path(
    delete,
    path = "/v5/BackupRepositories/{repositoryId}",
    tag = "BackupRepositories",
    security(("bearer" = [])),
    params(("repositoryId" = String, Path, description = "Repository GUID")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such repository", body = ErrorBody),
        (status = 409, description = "The default repository, or one a job or task uses", body = ErrorBody),
    )
)]
pub async fn remove_repository(
    State(state): State<AppState>,
    Path(repository_id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&repository_id)?;
    state.repositories.get(id).await?;
    state.jobs.require_repository_unused(id).await?;
    state.repositories.remove(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"applyRetention": null}`, `{"prune": null}` (unused data only, no retention),
/// `{"check": {"readDataSubset": "10%"}}` or `{"rebuildCatalog": null}`.
#[utoipa::path(
    post,
    path = "/v5/BackupRepositories/{repositoryId}/Action",
    tag = "BackupRepositories",
    security(("bearer" = [])),
    params(("repositoryId" = String, Path, description = "Repository GUID")),
    request_body = serde_json::Value,
    responses(
        (status = 200, description = "Done; the body reports what was done", body = serde_json::Value),
        (status = 400, description = "Unknown action or options", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such repository", body = ErrorBody),
        (status = 409, description = "Writers or another task hold the repository", body = ErrorBody),
    )
)]
pub async fn repository_action(
    State(state): State<AppState>,
    Path(repository_id): Path<String>,
    JsonBody(body): JsonBody<serde_json::Map<String, serde_json::Value>>,
) -> ApiResult<Response> {
    let id = parse_id(&repository_id)?;
    state.repositories.get(id).await?;
    let mut entries = body.into_iter();
    let (verb, options) = match (entries.next(), entries.next()) {
        (Some(one), None) => one,
        _ => {
            return Err(ApiError::BadRequest(
                "the body must name exactly one action".into(),
            ))
        }
    };
    let service = &state.repositories;
    let (kind, answer) = match verb.to_ascii_lowercase().as_str() {
        "applyretention" => (
            AuditKind::RepositoryRetentionApplied,
            serde_json::to_value(service.apply_retention(id, &Quiet).await?),
        ),
        "prune" => (
            AuditKind::RepositoryRetentionApplied,
            serde_json::to_value(service.prune_unused(id, &Quiet).await?),
        ),
        "rebuildcatalog" => {
            let r = service.rebuild_catalog(id, &Quiet).await?;
            (
                AuditKind::RepositoryCatalogRebuilt,
                Ok(serde_json::json!({
                    "indexFiles": r.index_files, "packs": r.packs, "blobs": r.blobs,
                    "restorePoints": r.snapshots, "skipped": r.skipped,
                })),
            )
        }
        "check" => {
            let read = read_data_option(&options)?;
            (
                AuditKind::RepositoryChecked,
                Ok(check_json(&service.check(id, read, &Quiet).await?)),
            )
        }
        _ => {
            return Err(ApiError::BadRequest(format!(
                "unknown action '{verb}': use applyRetention, prune, check or rebuildCatalog"
            )))
        }
    };
    let answer = answer.map_err(ApiError::internal)?;
    Ok(AuditNote::kind(kind).on(Json(answer)))
}

/// `{"readData": true}` or `{"readDataSubset": "10%"}`; nothing reads no content.
fn read_data_option(options: &serde_json::Value) -> ApiResult<ReadData> {
    if !(options.is_null() || options.is_object()) {
        return Err(ApiError::BadRequest(format!(
            "check's options must be an object such as {{\"readDataSubset\": \"10%\"}} or null, not {options}"
        )));
    }
    let field = |name: &str| {
        options.as_object().and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        })
    };
    let read_all = read_all(field("readData"))?;
    if let Some(v) = field("readDataSubset") {
        let text = v
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string());
        return parse_share(&text).map(ReadData::Subset).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "readDataSubset must be a percentage such as \"10%\", not {v}"
            ))
        });
    }
    Ok(if read_all {
        ReadData::All
    } else {
        ReadData::None
    })
}

/// `readData`: a boolean (or its text), false when absent or null.
fn read_all(value: Option<serde_json::Value>) -> ApiResult<bool> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(false),
        Some(serde_json::Value::Bool(b)) => Ok(b),
        Some(serde_json::Value::String(s)) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
        Some(serde_json::Value::String(s)) if s.trim().eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(ApiError::BadRequest(format!(
            "readData must be true or false, not {v}"
        ))),
    }
}

/// `"10%"` or `"0.1"` → 0.1.
pub fn parse_share(text: &str) -> Option<f64> {
    let t = text.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok()? / 100.0,
        None => t.parse::<f64>().ok()?,
    };
    (0.0..=1.0).contains(&v).then_some(v)
}

fn check_json(r: &CheckReport) -> serde_json::Value {
    serde_json::json!({
        "ok": r.is_ok(),
        "restorePoints": r.snapshots,
        "packs": r.packs,
        "blobs": r.blobs,
        "packsRead": r.packs_read,
        "unindexedPacks": r.unindexed_packs.len(),
        "unreferencedPacks": r.unreferenced_packs,
        "unreferencedChunks": r.unreferenced_blobs,
        "errors": r.errors,
        "damaged": r.damaged.iter().map(|d| serde_json::json!({
            "chunk": d.blob.to_hex(),
            "pack": d.pack.to_hex(),
            "reason": d.reason,
            "usedBy": d.used_by.iter().map(|u| serde_json::json!({
                "restorePointId": u.snapshot.to_hex(),
                "object": u.object,
                "time": crate::dates::iso8601(u.time),
                "path": u.path,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// What an object-storage repository points at, as a public monitoring script reads it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStorageView {
    id: String,
    name: String,
    description: String,
    /// `S3Compatible`, `AmazonS3` or `AzureBlob`.
    #[serde(rename = "type")]
    kind: &'static str,
    used_space_bytes: u64,
    bucket: BucketView,
    folder: String,
    #[serde(rename = "_links")]
    links: Links,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BucketView {
    name: String,
    service_point: String,
    custom_region_id: Option<String>,
}

async fn object_storage_view(
    state: &AppState,
    r: RepositoryRecord,
    base: &str,
) -> Option<ObjectStorageView> {
    let id = r.object_storage_id?;
    let status = state.repositories.status(&r).await;
    let (kind, bucket, folder) = match &r.storage {
        StorageSettings::Local { .. } => return None,
        StorageSettings::S3 {
            flavor,
            endpoint,
            region,
            bucket,
            prefix,
            ..
        } => (
            match flavor {
                S3Flavor::AmazonS3 => "AmazonS3",
                S3Flavor::S3Compatible => "S3Compatible",
            },
            BucketView {
                name: bucket.clone(),
                service_point: endpoint
                    .clone()
                    .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com")),
                custom_region_id: Some(region.clone()),
            },
            prefix.clone(),
        ),
        StorageSettings::Azure {
            account,
            container,
            prefix,
            endpoint,
            ..
        } => (
            "AzureBlob",
            BucketView {
                name: container.clone(),
                service_point: endpoint
                    .clone()
                    .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net")),
                custom_region_id: None,
            },
            prefix.clone(),
        ),
    };
    Some(ObjectStorageView {
        id: id.to_string(),
        name: r.name,
        description: r.description,
        kind,
        used_space_bytes: status.used_bytes,
        bucket,
        folder,
        links: Links::from([
            ("self", Href::object_storage_repository(base, id).link()),
            (
                "backupRepository",
                Href::backup_repository(base, r.id).link(),
            ),
        ]),
    })
}

/// The object storage that repositories point at.
#[utoipa::path(
    get,
    path = "/v5/ObjectStorageRepositories",
    tag = "BackupRepositories",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Object storage in use", body = Vec<ObjectStorageView>),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn list_object_storage(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
) -> ApiResult<Json<Vec<ObjectStorageView>>> {
    let mut out = Vec::new();
    for r in state.repositories.list().await? {
        out.extend(object_storage_view(&state, r, &base).await);
    }
    Ok(Json(out))
}

/// One object storage entry.
#[utoipa::path(
    get,
    path = "/v5/ObjectStorageRepositories/{objectStorageId}",
    tag = "BackupRepositories",
    security(("bearer" = [])),
    params(("objectStorageId" = String, Path, description = "Object storage GUID")),
    responses(
        (status = 200, description = "The object storage", body = ObjectStorageView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such object storage", body = ErrorBody),
    )
)]
pub async fn get_object_storage(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(object_storage_id): Path<String>,
) -> ApiResult<Json<ObjectStorageView>> {
    let missing = || {
        ApiError::NotFound(format!(
            "Object storage repository '{object_storage_id}' was not found."
        ))
    };
    let id: uuid::Uuid = object_storage_id.parse().map_err(|_| missing())?;
    for r in state.repositories.list().await? {
        if r.object_storage_id == Some(id) {
            return object_storage_view(&state, r, &base)
                .await
                .map(Json)
                .ok_or_else(missing);
        }
    }
    Err(missing())
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsedRepositoryView {
    /// Bytes the organization's restore points added to the repository.
    used_space_bytes: u64,
    local_cache_used_space_bytes: u64,
    object_storage_used_space_bytes: u64,
    is_available: bool,
    details: String,
    #[serde(rename = "_links")]
    links: Links,
}

/// The repositories that hold backups of an organization.
#[utoipa::path(
    get,
    path = "/v5/Organizations/{organizationId}/usedRepositories",
    tag = "BackupRepositories",
    security(("bearer" = [])),
    params(("organizationId" = String, Path, description = "Organization GUID")),
    responses(
        (status = 200, description = "Repositories in use", body = Vec<UsedRepositoryView>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
    )
)]
pub async fn used_repositories(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    OrgId(org): OrgId,
) -> ApiResult<Json<Vec<UsedRepositoryView>>> {
    state.organizations.get(org).await?;
    let mut out = Vec::new();
    for (r, bytes) in state
        .repositories
        .organization_usage(&org.to_string())
        .await?
    {
        let status = state.repositories.status(&r).await;
        out.push(UsedRepositoryView {
            used_space_bytes: bytes,
            local_cache_used_space_bytes: 0,
            object_storage_used_space_bytes: if r.storage.is_object_storage() {
                bytes
            } else {
                0
            },
            is_available: status.is_available,
            details: if status.is_available {
                String::new()
            } else {
                "The repository cannot be reached.".into()
            },
            links: Links::from([(
                "backupRepository",
                Href::backup_repository(&base, r.id).link(),
            )]),
        });
    }
    Ok(Json(out))
}

#[cfg(test)]
mod tests {
    #[test]
    fn shares() {
        assert_eq!(super::parse_share("10%"), Some(0.1));
        assert_eq!(super::parse_share(" 100 %"), Some(1.0));
        assert_eq!(super::parse_share("0.25"), Some(0.25));
        assert_eq!(super::parse_share("150%"), None);
        assert_eq!(super::parse_share("x"), None);
    }
}
