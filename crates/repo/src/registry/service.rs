//! Creating, editing, opening and maintaining registered repositories. Answers in the core's
//! error type, which the API maps to HTTP in one place.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Local, NaiveDateTime, Utc};
use m365backup_core::crypto::SecretSealer;
use m365backup_core::error::{CoreError, CoreResult};
use m365backup_core::{Secret, StoreError};
use rand::RngCore;

use super::{
    RegistryStore, RepositoryRecord, RepositorySecrets, RetentionSettings, StorageSettings,
};
use crate::backend::file_system_space;
use crate::catalog::{Catalog, SnapshotFilter};
use crate::check::{CheckReport, ReadData};
use crate::error::{ErrorClass, RepoError};
use crate::progress::{Progress, Quiet};
use crate::prune::{PruneOptions, PruneReport};
use crate::rebuild::RebuildReport;
use crate::repository::{InitOptions, Repository};

pub const DEFAULT_REPOSITORY_NAME: &str = "Default Backup Repository";

/// A repository as a client asks for it.
#[derive(Clone, Debug)]
pub struct NewRepository {
    pub name: String,
    pub description: String,
    pub storage: StorageSettings,
    /// The object storage's secret key (S3 secret access key, Azure account key).
    pub storage_secret: Option<Secret>,
    /// The repository password; a random one when absent. Needed to attach an existing repository.
    pub password: Option<Secret>,
    pub retention: RetentionSettings,
}

/// What `PUT` may change.
#[derive(Clone, Debug, Default)]
pub struct RepositoryEdit {
    pub name: Option<String>,
    pub description: Option<String>,
    pub retention: Option<RetentionSettings>,
}

/// Capacity and reachability, for the v5 answers.
#[derive(Clone, Copy, Debug, Default)]
pub struct RepositoryStatus {
    pub capacity_bytes: u64,
    pub free_space_bytes: u64,
    pub used_bytes: u64,
    pub is_available: bool,
}

pub struct RepositoryService {
    store: Arc<dyn RegistryStore>,
    catalog: Arc<dyn Catalog>,
    sealer: Arc<SecretSealer>,
    proxy_id: uuid::Uuid,
    init_options: InitOptions,
    open: tokio::sync::Mutex<HashMap<uuid::Uuid, Repository>>,
    /// Repositories with retention, check or a rebuild under way.
    busy: Mutex<HashSet<uuid::Uuid>>,
    /// When opening a repository last failed: listings do not wait on it again for a minute.
    unreachable: Mutex<HashMap<uuid::Uuid, std::time::Instant>>,
    /// Packs younger than this are left alone by prune.
    pub prune_grace: std::time::Duration,
}

fn repo_error(e: RepoError) -> CoreError {
    let message = e.to_string();
    match e.class() {
        ErrorClass::Invalid => CoreError::Invalid(message),
        ErrorClass::NotFound => CoreError::NotFound(message),
        ErrorClass::Conflict => CoreError::Conflict(message),
        ErrorClass::Unavailable => CoreError::unavailable(message),
        ErrorClass::Damaged | ErrorClass::Internal => {
            CoreError::internal("using a backup repository", e)
        }
    }
}

fn name_conflict(e: StoreError, name: &str) -> CoreError {
    match e {
        StoreError::Conflict(_) => CoreError::Conflict(format!(
            "A backup repository named '{name}' already exists."
        )),
        other => CoreError::Store(other),
    }
}

fn secrets_context(id: uuid::Uuid) -> Vec<u8> {
    format!("repository:{id}").into_bytes()
}

/// A random repository password: 32 bytes, base64url.
fn random_password() -> Secret {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Releases a repository's busy mark when dropped.
struct Busy<'a> {
    service: &'a RepositoryService,
    id: uuid::Uuid,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.service
            .busy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

impl RepositoryService {
    pub fn new(
        store: Arc<dyn RegistryStore>,
        catalog: Arc<dyn Catalog>,
        sealer: Arc<SecretSealer>,
        proxy_id: uuid::Uuid,
    ) -> Self {
        Self {
            store,
            catalog,
            sealer,
            proxy_id,
            init_options: InitOptions::default(),
            open: tokio::sync::Mutex::new(HashMap::new()),
            busy: Mutex::new(HashSet::new()),
            unreachable: Mutex::new(HashMap::new()),
            prune_grace: std::time::Duration::from_secs(3600),
        }
    }

    /// Changes how new repositories are made (tests use a cheaper key derivation).
    pub fn with_init_options(mut self, options: InitOptions) -> Self {
        self.init_options = options;
        self
    }

    pub fn proxy_id(&self) -> uuid::Uuid {
        self.proxy_id
    }

    pub async fn list(&self) -> CoreResult<Vec<RepositoryRecord>> {
        Ok(self.store.list_repositories().await?)
    }

    pub async fn get(&self, id: uuid::Uuid) -> CoreResult<RepositoryRecord> {
        self.store
            .get_repository(id)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("Backup repository '{id}' was not found.")))
    }

    /// Finds a repository by id or (case-insensitive) name.
    pub async fn find(&self, id_or_name: &str) -> CoreResult<RepositoryRecord> {
        if let Ok(id) = id_or_name.parse() {
            if let Some(r) = self.store.get_repository(id).await? {
                return Ok(r);
            }
        }
        self.list()
            .await?
            .into_iter()
            .find(|r| r.name.eq_ignore_ascii_case(id_or_name))
            .ok_or_else(|| {
                CoreError::NotFound(format!("Backup repository '{id_or_name}' was not found."))
            })
    }

    fn validate_name(name: &str) -> CoreResult<String> {
        let name = name.trim();
        if name.is_empty() || name.len() > 255 {
            return Err(CoreError::Invalid(
                "name must have 1 to 255 characters".into(),
            ));
        }
        Ok(name.to_owned())
    }

    async fn ensure_name_free(&self, name: &str, except: Option<uuid::Uuid>) -> CoreResult<()> {
        if self
            .list()
            .await?
            .iter()
            .any(|r| r.name.eq_ignore_ascii_case(name) && Some(r.id) != except)
        {
            return Err(CoreError::Conflict(format!(
                "A backup repository named '{name}' already exists."
            )));
        }
        Ok(())
    }

    /// Creates a repository at the given place, or attaches the one already there (which its
    /// password must open; its catalog is then rebuilt).
    pub async fn create(&self, new: NewRepository) -> CoreResult<RepositoryRecord> {
        self.create_record(new, false).await
    }

    async fn create_record(
        &self,
        new: NewRepository,
        is_default: bool,
    ) -> CoreResult<RepositoryRecord> {
        let name = Self::validate_name(&new.name)?;
        validate_storage(&new.storage, new.storage_secret.as_ref())?;
        new.retention.validate().map_err(CoreError::Invalid)?;
        self.ensure_name_free(&name, None).await?;
        if let Some(p) = &new.password {
            if p.expose().chars().count() < 8 {
                return Err(CoreError::Invalid(
                    "encryptionPassword must have at least 8 characters".into(),
                ));
            }
        }
        let id = uuid::Uuid::new_v4();
        let location = new.storage.location(new.storage_secret.as_ref());
        let exists = Repository::exists(&location).await.map_err(repo_error)?;
        let password = match (&new.password, exists) {
            (Some(p), _) => p.clone(),
            (None, false) => random_password(),
            (None, true) => {
                return Err(CoreError::Invalid(format!(
                    "{} already holds a repository: give its encryptionPassword to attach it",
                    location.display()
                )))
            }
        };
        let repo = if exists {
            Repository::open(&location, &password, self.catalog.clone(), id)
                .await
                .map_err(repo_error)?
        } else {
            Repository::init(
                &location,
                &password,
                self.catalog.clone(),
                id,
                &self.init_options,
            )
            .await
            .map_err(repo_error)?
        };
        let record = RepositoryRecord {
            id,
            name,
            description: new.description,
            object_storage_id: new.storage.is_object_storage().then(uuid::Uuid::new_v4),
            storage: new.storage,
            retention: new.retention,
            proxy_id: self.proxy_id,
            is_default,
            created_at: Utc::now(),
            last_retention_at: None,
        };
        let secrets = RepositorySecrets {
            password,
            storage_secret: new.storage_secret,
        };
        let sealed = self.sealer.seal(
            &secrets_context(id),
            &secrets
                .to_plaintext()
                .map_err(|e| CoreError::internal("encoding a repository's secrets", e))?,
        )?;
        self.store
            .insert_repository(&record, &sealed)
            .await
            .map_err(|e| name_conflict(e, &record.name))?;
        if exists {
            repo.rebuild_catalog(&Quiet).await.map_err(repo_error)?;
        }
        self.open.lock().await.insert(id, repo);
        tracing::info!(repository = %id, location = %location.display(), attached = exists, "backup repository added");
        Ok(record)
    }

    pub async fn edit(&self, id: uuid::Uuid, edit: RepositoryEdit) -> CoreResult<RepositoryRecord> {
        let mut record = self.get(id).await?;
        if let Some(name) = edit.name {
            let name = Self::validate_name(&name)?;
            self.ensure_name_free(&name, Some(id)).await?;
            record.name = name;
        }
        if let Some(description) = edit.description {
            record.description = description;
        }
        if let Some(retention) = edit.retention {
            retention.validate().map_err(CoreError::Invalid)?;
            record.retention = retention;
        }
        if !self
            .store
            .update_repository(&record)
            .await
            .map_err(|e| name_conflict(e, &record.name))?
        {
            return Err(CoreError::NotFound(format!(
                "Backup repository '{id}' was not found."
            )));
        }
        Ok(record)
    }

    /// Forgets a repository (its data stays where it is). Refused for the default repository
    /// and while something writes to it.
    pub async fn remove(&self, id: uuid::Uuid) -> CoreResult<()> {
        let record = self.get(id).await?;
        if record.is_default {
            return Err(CoreError::Conflict(
                "The default backup repository cannot be removed.".into(),
            ));
        }
        let mut open = self.open.lock().await;
        if open.get(&id).is_some_and(|r| r.active_writers() > 0)
            || self
                .busy
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&id)
        {
            return Err(CoreError::Conflict(format!(
                "Backup repository '{}' is in use.",
                record.name
            )));
        }
        open.remove(&id);
        self.store.delete_repository(id).await?;
        Ok(())
    }

    async fn secrets(&self, id: uuid::Uuid) -> CoreResult<RepositorySecrets> {
        let sealed = self.store.repository_secrets(id).await?.ok_or_else(|| {
            CoreError::NotFound(format!("Backup repository '{id}' was not found."))
        })?;
        let plain = self.sealer.open(&secrets_context(id), &sealed)?;
        RepositorySecrets::from_plaintext(&plain)
            .map_err(|e| CoreError::internal("reading a repository's sealed secrets", e))
    }

    /// The repository's password, for safekeeping offline (CLI only).
    pub async fn recovery_password(&self, id: uuid::Uuid) -> CoreResult<Secret> {
        Ok(self.secrets(id).await?.password)
    }

    /// The open repository (opened once, then shared by every writer and reader).
    pub async fn open(&self, id: uuid::Uuid) -> CoreResult<Repository> {
        let mut open = self.open.lock().await;
        if let Some(repo) = open.get(&id) {
            return Ok(repo.clone());
        }
        let record = self.get(id).await?;
        let secrets = self.secrets(id).await?;
        let location = record.storage.location(secrets.storage_secret.as_ref());
        let repo = Repository::open(&location, &secrets.password, self.catalog.clone(), id)
            .await
            .map_err(repo_error)?;
        open.insert(id, repo.clone());
        Ok(repo)
    }

    /// Capacity, free space and whether the repository can be reached now.
    pub async fn status(&self, record: &RepositoryRecord) -> RepositoryStatus {
        let used_bytes = self.catalog.stored_bytes(record.id).await.unwrap_or(0);
        let failed_recently = self
            .unreachable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&record.id)
            .is_some_and(|at| at.elapsed() < std::time::Duration::from_secs(60));
        let is_available = !failed_recently && {
            let opened = self.open(record.id).await.is_ok();
            let mut unreachable = self.unreachable.lock().unwrap_or_else(|p| p.into_inner());
            if opened {
                unreachable.remove(&record.id);
            } else {
                unreachable.insert(record.id, std::time::Instant::now());
            }
            opened
        };
        match &record.storage {
            StorageSettings::Local { path } => {
                let (capacity_bytes, free_space_bytes) = file_system_space(path).unwrap_or((0, 0));
                RepositoryStatus {
                    capacity_bytes,
                    free_space_bytes,
                    used_bytes,
                    is_available,
                }
            }
            _ => RepositoryStatus {
                capacity_bytes: used_bytes,
                free_space_bytes: 0,
                used_bytes,
                is_available,
            },
        }
    }

    fn mark_busy(&self, id: uuid::Uuid, what: &str) -> CoreResult<Busy<'_>> {
        if !self
            .busy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id)
        {
            return Err(CoreError::Conflict(format!(
                "Another maintenance task runs on this repository; {what} must wait."
            )));
        }
        Ok(Busy { service: self, id })
    }

    /// Applies the repository's retention now (prune with its policy).
    pub async fn apply_retention(
        &self,
        id: uuid::Uuid,
        progress: &dyn Progress,
    ) -> CoreResult<PruneReport> {
        let record = self.get(id).await?;
        let _busy = self.mark_busy(id, "retention")?;
        let repo = self.open(id).await?;
        let options = PruneOptions {
            retention: Some(record.retention.policy()),
            now: Utc::now(),
            grace: self.prune_grace,
            ..PruneOptions::default()
        };
        let report = repo.prune(&options, progress).await.map_err(repo_error)?;
        self.store.set_last_retention(id, Utc::now()).await?;
        Ok(report)
    }

    /// Prune without retention: no restore point goes; what none uses (an interrupted
    /// writer's packs, chunks whose restore points are gone) is removed and sparse packs are
    /// repacked, past the grace period. Not a retention run: the daily one still comes.
    pub async fn prune_unused(
        &self,
        id: uuid::Uuid,
        progress: &dyn Progress,
    ) -> CoreResult<PruneReport> {
        self.get(id).await?;
        let _busy = self.mark_busy(id, "prune")?;
        let repo = self.open(id).await?;
        let options = PruneOptions {
            retention: None,
            now: Utc::now(),
            grace: self.prune_grace,
            ..PruneOptions::default()
        };
        repo.prune(&options, progress).await.map_err(repo_error)
    }

    pub async fn check(
        &self,
        id: uuid::Uuid,
        read_data: ReadData,
        progress: &dyn Progress,
    ) -> CoreResult<CheckReport> {
        let _busy = self.mark_busy(id, "check")?;
        let repo = self.open(id).await?;
        repo.check(read_data, progress).await.map_err(repo_error)
    }

    pub async fn rebuild_catalog(
        &self,
        id: uuid::Uuid,
        progress: &dyn Progress,
    ) -> CoreResult<RebuildReport> {
        let _busy = self.mark_busy(id, "rebuilding the catalog")?;
        let repo = self.open(id).await?;
        repo.rebuild_catalog(progress).await.map_err(repo_error)
    }

    /// Creates `Default Backup Repository` at `path` unless a default one exists.
    pub async fn ensure_default(
        &self,
        path: &std::path::Path,
    ) -> CoreResult<Option<RepositoryRecord>> {
        if self.list().await?.iter().any(|r| r.is_default) {
            return Ok(None);
        }
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| CoreError::internal("finding the current directory", e))?
                .join(path)
        };
        let record = self
            .create_record(
                NewRepository {
                    name: DEFAULT_REPOSITORY_NAME.into(),
                    description: "Created by m365backup on first start.".into(),
                    storage: StorageSettings::Local { path },
                    storage_secret: None,
                    password: None,
                    retention: RetentionSettings::default(),
                },
                true,
            )
            .await?;
        Ok(Some(record))
    }

    /// Runs retention on every repository whose daily time has come today and that has not run
    /// since (called every minute by the server).
    pub async fn run_due_retention(&self, now: DateTime<Utc>) {
        let local: NaiveDateTime = now.with_timezone(&Local).naive_local();
        let Ok(records) = self.list().await else {
            return;
        };
        for record in records {
            let r = &record.retention;
            if !r.runs_on(local.date()) || local.time() < r.daily_time {
                continue;
            }
            let due_since = local.date().and_time(r.daily_time);
            let ran = record
                .last_retention_at
                .map(|t| t.with_timezone(&Local).naive_local() >= due_since)
                .unwrap_or(false);
            if ran {
                continue;
            }
            match self.apply_retention(record.id, &Quiet).await {
                Ok(report) => {
                    tracing::info!(repository = %record.name, ?report, "retention applied")
                }
                Err(e) => {
                    tracing::warn!(repository = %record.name, error = %m365backup_core::Chain(&e), "retention did not run; retrying later")
                }
            }
        }
    }

    /// Bytes an organization's restore points added to each repository (for `usedRepositories`).
    pub async fn organization_usage(
        &self,
        organization_id: &str,
    ) -> CoreResult<Vec<(RepositoryRecord, u64)>> {
        let mut out = Vec::new();
        for record in self.list().await? {
            let snaps = self
                .catalog
                .snapshots(
                    record.id,
                    &SnapshotFilter {
                        organization_id: Some(organization_id.to_owned()),
                        ..SnapshotFilter::default()
                    },
                )
                .await
                .map_err(|e| CoreError::internal("listing restore points", e))?;
            if !snaps.is_empty() {
                let bytes = snaps.iter().map(|s| s.doc.stats.stored_bytes).sum();
                out.push((record, bytes));
            }
        }
        Ok(out)
    }
}

/// One protected object as the restore points of one repository know it.
#[derive(Clone, Debug)]
pub struct ProtectedSummary {
    pub repository_id: uuid::Uuid,
    /// The object as its latest restore point describes it.
    pub object: crate::ProtectedObject,
    pub first_backup: DateTime<Utc>,
    pub last_backup: DateTime<Utc>,
}

impl RepositoryService {
    /// Every protected object with restore points, in one repository or in all, of one
    /// organization or of all (for the repositories' `UserData`/`SiteData` and the licensing
    /// resources). Read from the catalog, never from the repository itself.
    pub async fn protected_objects(
        &self,
        repository: Option<uuid::Uuid>,
        organization_id: Option<&str>,
    ) -> CoreResult<Vec<ProtectedSummary>> {
        let mut by_key: std::collections::BTreeMap<(uuid::Uuid, String), ProtectedSummary> =
            Default::default();
        for record in self.list().await? {
            if repository.is_some_and(|r| r != record.id) {
                continue;
            }
            let snaps = self
                .catalog
                .snapshots(
                    record.id,
                    &SnapshotFilter {
                        organization_id: organization_id.map(str::to_owned),
                        ..SnapshotFilter::default()
                    },
                )
                .await
                .map_err(|e| CoreError::internal("listing restore points", e))?;
            for s in snaps {
                let entry = by_key
                    .entry((record.id, s.doc.object.key()))
                    .or_insert_with(|| ProtectedSummary {
                        repository_id: record.id,
                        object: s.doc.object.clone(),
                        first_backup: s.doc.time,
                        last_backup: s.doc.time,
                    });
                entry.first_backup = entry.first_backup.min(s.doc.time);
                if s.doc.time >= entry.last_backup {
                    entry.last_backup = s.doc.time;
                    entry.object = s.doc.object;
                }
            }
        }
        Ok(by_key.into_values().collect())
    }
}

fn validate_storage(storage: &StorageSettings, secret: Option<&Secret>) -> CoreResult<()> {
    let invalid = |m: &str| Err(CoreError::Invalid(m.to_owned()));
    match storage {
        StorageSettings::Local { path } => {
            if !path.is_absolute() {
                return invalid("path must be an absolute folder path");
            }
        }
        StorageSettings::S3 {
            endpoint,
            region,
            bucket,
            access_key_id,
            allow_http,
            ..
        } => {
            if let Some(e) = endpoint {
                let http = e.starts_with("http://");
                if !(http || e.starts_with("https://")) || e.len() < 10 {
                    return invalid("objectStorage.endpoint must be an http(s) URL");
                }
                if http && !allow_http {
                    return invalid(
                        "objectStorage.endpoint is plain HTTP: set allowHttp to true to use it",
                    );
                }
            }
            if region.trim().is_empty() {
                return invalid("objectStorage.region must not be empty");
            }
            let valid_bucket = (3..=63).contains(&bucket.len())
                && bucket
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
            if !valid_bucket {
                return invalid(
                    "objectStorage.bucket must be 3 to 63 lower-case letters, digits, '-' or '.'",
                );
            }
            if access_key_id.trim().is_empty() || secret.is_none_or(|s| s.is_empty()) {
                return invalid(
                    "objectStorage.accessKeyId and objectStorage.secretAccessKey are required",
                );
            }
        }
        StorageSettings::Azure {
            account,
            container,
            endpoint,
            allow_http,
            ..
        } => {
            if account.trim().is_empty() || container.trim().is_empty() {
                return invalid(
                    "objectStorage.accountName and objectStorage.container are required",
                );
            }
            if secret.is_none_or(|s| s.is_empty()) {
                return invalid("objectStorage.accountKey is required");
            }
            if let Some(e) = endpoint {
                if e.starts_with("http://") && !allow_http {
                    return invalid(
                        "objectStorage.endpoint is plain HTTP: set allowHttp to true to use it",
                    );
                }
            }
        }
    }
    Ok(())
}
