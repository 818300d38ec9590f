//! The rules of backup jobs: creating and editing them (names unique per organization, items
//! resolved against the tenant's directory, a repository that exists), their actions (start,
//! stop, enable, disable) and what they answer while running, and reading their sessions.

use std::sync::Arc;

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::directory::{composite_id, parse_composite_id, DirectoryGroup, DirectoryUser};
use crate::directory_service::DirectoryService;
use crate::error::{CoreError, CoreResult};
use crate::ids::OrganizationId;
use crate::jobs::model::{
    BackupItem, BackupItemId, BackupType, DirectoryRef, ItemScope, Job, JobDefinition, JobId,
    JobSession, JobSessionId, JobState, JobStatus, LogItem, LogItemId, SiteRef, VersionPolicy,
};
use crate::jobs::schedule::{SchedulePatch, SchedulePolicy};
use crate::jobs::store::{ItemList, Paged};
use crate::store::Store;
use crate::StoreError;

/// A backup item as a client sends it (`selectedItems` / `excludedItems` entries).
#[derive(Clone, Debug)]
pub enum ItemInput {
    Site {
        id: Option<String>,
        url: Option<String>,
        title: Option<String>,
        name: Option<String>,
    },
    User {
        /// Composite or bare GUID.
        id: Option<String>,
        /// Principal name.
        name: Option<String>,
        one_drive: bool,
        personal_site: bool,
        mailbox: bool,
        archive_mailbox: bool,
    },
    Group {
        id: Option<String>,
        name: Option<String>,
        members: bool,
        member_one_drive: bool,
        member_site: bool,
        site: bool,
        mailboxes: bool,
    },
    PartialOrganization {
        one_drive: bool,
        site: bool,
        mailboxes: bool,
        teams: bool,
    },
    PersonalSites,
}

/// A job as a client describes it: every field optional, as in a PUT ("fields present are
/// changed"); creation fills defaults and requires a name.
#[derive(Clone, Debug, Default)]
pub struct JobInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub backup_type: Option<BackupType>,
    pub selected_items: Option<Vec<ItemInput>>,
    pub excluded_items: Option<Vec<ItemInput>>,
    pub schedule: Option<SchedulePatch>,
    pub repository_id: Option<Uuid>,
    pub proxy_id: Option<Uuid>,
    pub version_policy: Option<VersionPolicy>,
    pub is_enabled: Option<bool>,
    pub run_now: bool,
}

/// The repositories a job may write to (implemented over the repository registry).
#[async_trait::async_trait]
pub trait RepositoryDirectory: Send + Sync {
    /// The repository used when a job names none.
    async fn default_repository(&self) -> CoreResult<Uuid>;
    async fn repository_exists(&self, id: Uuid) -> CoreResult<bool>;
}

/// The two job actions clients send besides start and stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobAction {
    Start,
    Stop,
    Enable,
    Disable,
}

pub struct JobService {
    store: Arc<dyn Store>,
    directory: Arc<DirectoryService>,
    repositories: Arc<dyn RepositoryDirectory>,
    time_zone: Tz,
    /// Woken when a job was queued, so the scheduler claims it at once.
    wake: Arc<Notify>,
}

const MAX_NAME_LEN: usize = 255;

fn invalid(message: impl Into<String>) -> CoreError {
    CoreError::Invalid(message.into())
}

fn job_not_found(id: JobId) -> CoreError {
    CoreError::NotFound(format!("Job '{id}' was not found."))
}

impl JobService {
    pub fn new(
        store: Arc<dyn Store>,
        directory: Arc<DirectoryService>,
        repositories: Arc<dyn RepositoryDirectory>,
        time_zone: Tz,
    ) -> Self {
        Self {
            store,
            directory,
            repositories,
            time_zone,
            wake: Arc::new(Notify::new()),
        }
    }

    /// What the scheduler waits on between its ticks.
    pub fn wake_signal(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    pub async fn list(&self, organization: Option<OrganizationId>) -> CoreResult<Vec<Job>> {
        if let Some(org) = organization {
            self.require_organization(org).await?;
        }
        Ok(self.store.list_jobs(organization).await?)
    }

    pub async fn get(&self, id: JobId) -> CoreResult<Job> {
        self.store
            .get_job(id)
            .await?
            .ok_or_else(|| job_not_found(id))
    }

    /// Refuses (409) while any job backs up into the repository: it cannot be forgotten then.
    pub async fn require_repository_unused(&self, repository: Uuid) -> CoreResult<()> {
        match self.store.count_jobs_using_repository(repository).await? {
            0 => Ok(()),
            n => Err(CoreError::Conflict(format!(
                "{n} job(s) back up into this repository: point them elsewhere or remove them first."
            ))),
        }
    }

    async fn require_organization(&self, org: OrganizationId) -> CoreResult<()> {
        self.store
            .get_organization(org)
            .await?
            .map(|_| ())
            .ok_or_else(|| CoreError::NotFound(format!("Organization '{org}' was not found.")))
    }

    /// Creates a job (and starts it when `run_now`).
    pub async fn create(&self, org: OrganizationId, input: JobInput) -> CoreResult<Job> {
        self.require_organization(org).await?;
        let name =
            checked_name(input.name.as_deref())?.ok_or_else(|| invalid("name is required"))?;
        let backup_type = input.backup_type.unwrap_or(BackupType::EntireOrganization);
        let selected = self
            .resolve_items(
                org,
                "selectedItems",
                input.selected_items.as_deref().unwrap_or_default(),
            )
            .await?;
        let excluded = self
            .resolve_items(
                org,
                "excludedItems",
                input.excluded_items.as_deref().unwrap_or_default(),
            )
            .await?;
        if backup_type == BackupType::SelectedItems && selected.is_empty() {
            return Err(invalid(
                "selectedItems must name at least one item when backupType is SelectedItems",
            ));
        }
        let repository_id = self.checked_repository(input.repository_id).await?;
        let schedule = input
            .schedule
            .unwrap_or_default()
            .apply(SchedulePolicy::default())
            .map_err(CoreError::Invalid)?;
        let definition = JobDefinition {
            name,
            description: input.description.unwrap_or_default(),
            backup_type,
            schedule,
            repository_id,
            proxy_id: input.proxy_id,
            version_policy: input.version_policy.unwrap_or_default(),
        };
        let now = Utc::now();
        let is_enabled = input.is_enabled.unwrap_or(true);
        let job = Job {
            id: JobId::new_random(),
            organization_id: org,
            next_run: self.next_run(&definition, is_enabled, now),
            definition,
            is_enabled,
            state: JobState::Idle,
            last_status: JobStatus::NotConfigured,
            last_run: None,
            created_at: now,
        };
        self.store
            .insert_job(&job, &selected, &excluded)
            .await
            .map_err(|e| name_conflict(e, &job.definition.name))?;
        tracing::info!(organization = %org, job = %job.id, name = %job.definition.name, "job created");
        if input.run_now {
            self.act(job.id, JobAction::Start).await?;
            return self.get(job.id).await;
        }
        Ok(job)
    }

    /// Changes the fields present in `input`; items given replace the lists.
    pub async fn edit(&self, id: JobId, input: JobInput) -> CoreResult<Job> {
        let mut job = self.get(id).await?;
        let org = job.organization_id;
        let def = &mut job.definition;
        if let Some(name) = checked_name(input.name.as_deref())? {
            def.name = name;
        }
        if let Some(d) = input.description {
            def.description = d;
        }
        if let Some(t) = input.backup_type {
            def.backup_type = t;
        }
        if let Some(patch) = input.schedule {
            def.schedule = patch
                .apply(def.schedule.clone())
                .map_err(CoreError::Invalid)?;
        }
        if let Some(r) = input.repository_id {
            def.repository_id = self.checked_repository(Some(r)).await?;
        }
        if input.proxy_id.is_some() {
            def.proxy_id = input.proxy_id;
        }
        if let Some(v) = input.version_policy {
            def.version_policy = v;
        }
        if let Some(e) = input.is_enabled {
            job.is_enabled = e;
        }
        let selected = match &input.selected_items {
            Some(items) => Some(self.resolve_items(org, "selectedItems", items).await?),
            None => None,
        };
        let excluded = match &input.excluded_items {
            Some(items) => Some(self.resolve_items(org, "excludedItems", items).await?),
            None => None,
        };
        let selected_count = match &selected {
            Some(s) => s.len(),
            None => self.store.job_items(id, ItemList::Selected).await?.len(),
        };
        if job.definition.backup_type == BackupType::SelectedItems && selected_count == 0 {
            return Err(invalid(
                "selectedItems must name at least one item when backupType is SelectedItems",
            ));
        }
        job.next_run = self.next_run(&job.definition, job.is_enabled, Utc::now());
        if !self
            .store
            .update_job(&job)
            .await
            .map_err(|e| name_conflict(e, &job.definition.name))?
        {
            return Err(job_not_found(id));
        }
        for (list, items) in [
            (ItemList::Selected, selected),
            (ItemList::Excluded, excluded),
        ] {
            if let Some(items) = items {
                let current: Vec<BackupItemId> = self
                    .store
                    .job_items(id, list)
                    .await?
                    .iter()
                    .map(|i| i.id)
                    .collect();
                self.store.remove_job_items(id, list, &current).await?;
                self.store.add_job_items(id, list, &items).await?;
            }
        }
        tracing::info!(job = %id, "job edited");
        Ok(job)
    }

    /// Removes an idle job; its backups stay in the repository.
    pub async fn delete(&self, id: JobId) -> CoreResult<()> {
        let job = self.get(id).await?;
        if matches!(job.state, JobState::Running(_)) {
            return Err(CoreError::Conflict(format!(
                "Job '{}' is running: stop it first.",
                job.definition.name
            )));
        }
        if !self.store.delete_job(id).await? {
            return Err(CoreError::Conflict(format!(
                "Job '{}' started running: stop it first.",
                job.definition.name
            )));
        }
        tracing::info!(job = %id, "job removed");
        Ok(())
    }

    /// `POST /v5/Jobs/{id}/Action`.
    pub async fn act(&self, id: JobId, action: JobAction) -> CoreResult<()> {
        let mut job = self.get(id).await?;
        match action {
            JobAction::Start => {
                if !job.is_enabled {
                    return Err(CoreError::Conflict(format!(
                        "Job '{}' is disabled: enable it first.",
                        job.definition.name
                    )));
                }
                if !self.store.queue_job(id).await? {
                    return Err(CoreError::Conflict(format!(
                        "Job '{}' is already running.",
                        job.definition.name
                    )));
                }
                self.wake.notify_one();
                tracing::info!(job = %id, "job start requested");
            }
            JobAction::Stop => {
                if self.store.dequeue_job(id).await? {
                    tracing::info!(job = %id, "queued job stopped before it ran");
                    return Ok(());
                }
                match self.store.request_stop(id).await? {
                    Some(session) => {
                        tracing::info!(job = %id, session = %session, "job stop requested")
                    }
                    None => {
                        return Err(CoreError::Conflict(format!(
                            "Job '{}' is not running.",
                            job.definition.name
                        )))
                    }
                }
            }
            JobAction::Enable | JobAction::Disable => {
                job.is_enabled = action == JobAction::Enable;
                job.next_run = self.next_run(&job.definition, job.is_enabled, Utc::now());
                self.store.update_job(&job).await?;
                if !job.is_enabled {
                    self.store.set_pending_retry(id, None).await?;
                }
            }
        }
        Ok(())
    }

    /// The next scheduled run of a job enabled or not, from `after`.
    pub fn next_run(
        &self,
        definition: &JobDefinition,
        enabled: bool,
        after: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if !enabled {
            return None;
        }
        definition.schedule.next_run(after, self.time_zone)
    }

    pub async fn items(&self, id: JobId, list: ItemList) -> CoreResult<Vec<BackupItem>> {
        self.get(id).await?;
        Ok(self.store.job_items(id, list).await?)
    }

    /// Adds items to one of a job's lists (`POST …/SelectedItems`).
    pub async fn add_items(
        &self,
        id: JobId,
        list: ItemList,
        items: &[ItemInput],
    ) -> CoreResult<Vec<BackupItem>> {
        let job = self.get(id).await?;
        let field = match list {
            ItemList::Selected => "selectedItems",
            ItemList::Excluded => "excludedItems",
        };
        let resolved = self
            .resolve_items(job.organization_id, field, items)
            .await?;
        self.store.add_job_items(id, list, &resolved).await?;
        Ok(resolved)
    }

    /// Removes items by id (`DELETE …/SelectedItems?ids=a,b`); 404 when none matched.
    pub async fn remove_items(
        &self,
        id: JobId,
        list: ItemList,
        ids: &[BackupItemId],
    ) -> CoreResult<()> {
        let job = self.get(id).await?;
        if list == ItemList::Selected && job.definition.backup_type == BackupType::SelectedItems {
            let remaining = self
                .store
                .job_items(id, list)
                .await?
                .iter()
                .filter(|i| !ids.contains(&i.id))
                .count();
            if remaining == 0 {
                return Err(invalid(
                    "a SelectedItems job keeps at least one selected item",
                ));
            }
        }
        if self.store.remove_job_items(id, list, ids).await? == 0 {
            return Err(CoreError::NotFound(
                "None of the given item ids belongs to this job.".into(),
            ));
        }
        Ok(())
    }

    pub async fn sessions(
        &self,
        job: Option<JobId>,
        offset: u64,
        limit: u64,
    ) -> CoreResult<Paged<JobSession>> {
        if let Some(id) = job {
            self.get(id).await?;
        }
        Ok(self.store.list_sessions(job, offset, limit).await?)
    }

    pub async fn session(&self, id: JobSessionId) -> CoreResult<JobSession> {
        self.store
            .get_session(id)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("Job session '{id}' was not found.")))
    }

    pub async fn log_items(
        &self,
        session: JobSessionId,
        offset: u64,
        limit: u64,
    ) -> CoreResult<Paged<LogItem>> {
        self.session(session).await?;
        Ok(self.store.list_log_items(session, offset, limit).await?)
    }

    pub async fn log_item(&self, session: JobSessionId, id: LogItemId) -> CoreResult<LogItem> {
        self.store
            .get_log_item(id)
            .await?
            .filter(|l| l.session_id == session)
            .ok_or_else(|| CoreError::NotFound(format!("Log item '{id}' was not found.")))
    }

    async fn checked_repository(&self, id: Option<Uuid>) -> CoreResult<Uuid> {
        match id {
            None => self.repositories.default_repository().await,
            Some(id) if self.repositories.repository_exists(id).await? => Ok(id),
            Some(id) => Err(invalid(format!(
                "repositoryId: there is no backup repository '{id}'"
            ))),
        }
    }

    /// Items as clients send them, checked and resolved against the organization's directory;
    /// an item listed twice is kept once.
    async fn resolve_items(
        &self,
        org: OrganizationId,
        field: &str,
        inputs: &[ItemInput],
    ) -> CoreResult<Vec<BackupItem>> {
        let mut items = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.iter().enumerate() {
            let at = format!("{field}[{i}]");
            let scope = self.resolve_item(org, &at, input).await?;
            // An item listed twice (by id and by name, say) is one item: kept once.
            if items.iter().any(|b: &BackupItem| b.scope == scope) {
                continue;
            }
            items.push(BackupItem {
                id: BackupItemId::new_random(),
                scope,
            });
        }
        Ok(items)
    }

    async fn resolve_item(
        &self,
        org: OrganizationId,
        at: &str,
        input: &ItemInput,
    ) -> CoreResult<ItemScope> {
        let unsupported = |what: &str| {
            invalid(format!(
                "{at}: {what} backups are not supported by this server (SharePoint and OneDrive only)"
            ))
        };
        match input {
            ItemInput::Site { id, url, .. } => {
                let wanted = id
                    .as_deref()
                    .or(url.as_deref())
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| invalid(format!("{at}.site: give its id or url")))?;
                let site = self
                    .directory
                    .site(org, wanted)
                    .await
                    .map_err(|e| match e {
                        CoreError::NotFound(_) => {
                            invalid(format!("{at}.site: no site '{wanted}' in the organization"))
                        }
                        other => other,
                    })?;
                Ok(ItemScope::Site(SiteRef {
                    id: site.id(),
                    url: site.url,
                    title: site.title,
                    name: site.name,
                    is_cloud: true,
                    is_personal: site.is_personal,
                }))
            }
            ItemInput::User {
                id,
                name,
                one_drive,
                personal_site,
                mailbox,
                archive_mailbox,
            } => {
                if *mailbox || *archive_mailbox {
                    return Err(unsupported("mailbox"));
                }
                if !one_drive && !personal_site {
                    return Err(invalid(format!(
                        "{at}: set oneDrive or site to true (nothing else of a user is backed up)"
                    )));
                }
                let user = self
                    .find_user(org, at, id.as_deref(), name.as_deref())
                    .await?;
                Ok(ItemScope::User {
                    user,
                    one_drive: *one_drive,
                    personal_site: *personal_site,
                })
            }
            ItemInput::Group {
                id,
                name,
                members,
                member_one_drive,
                member_site,
                site,
                mailboxes,
            } => {
                if *mailboxes {
                    return Err(unsupported("mailbox"));
                }
                if !site && !(*members && (*member_one_drive || *member_site)) {
                    return Err(invalid(format!(
                        "{at}: set site, or members with memberOnedrive or memberSite"
                    )));
                }
                let group = self
                    .find_group(org, at, id.as_deref(), name.as_deref())
                    .await?;
                Ok(ItemScope::Group {
                    group,
                    members: *members,
                    member_one_drive: *member_one_drive,
                    member_site: *member_site,
                    site: *site,
                })
            }
            ItemInput::PartialOrganization {
                one_drive,
                site,
                mailboxes,
                teams,
            } => {
                if *mailboxes {
                    return Err(unsupported("mailbox"));
                }
                if *teams {
                    return Err(unsupported("Teams"));
                }
                if !one_drive && !site {
                    return Err(invalid(format!("{at}: set oneDrive or site to true")));
                }
                Ok(ItemScope::PartialOrganization {
                    one_drive: *one_drive,
                    site: *site,
                })
            }
            ItemInput::PersonalSites => Ok(ItemScope::PersonalSites),
        }
    }

    async fn find_user(
        &self,
        org: OrganizationId,
        at: &str,
        id: Option<&str>,
        name: Option<&str>,
    ) -> CoreResult<DirectoryRef> {
        let users = self.directory.users(org, None).await?;
        let by_id = object_id(at, "user", id)?;
        // An id, when given, decides; a name is looked up only without one.
        let found: Option<&DirectoryUser> = users.items.iter().find(|u| match by_id {
            Some(g) => g == u.id,
            None => name.is_some_and(|n| u.principal_name.eq_ignore_ascii_case(n.trim())),
        });
        let u = found.ok_or_else(|| {
            invalid(format!(
                "{at}.user: no user '{}' in the organization",
                id.or(name).unwrap_or("")
            ))
        })?;
        Ok(DirectoryRef {
            id: u.id,
            composite_id: composite_id(u.id, u.on_premises_id),
            display_name: u.display_name.clone(),
            name: u.principal_name.clone(),
        })
    }

    async fn find_group(
        &self,
        org: OrganizationId,
        at: &str,
        id: Option<&str>,
        name: Option<&str>,
    ) -> CoreResult<DirectoryRef> {
        let groups = self.directory.groups(org, None).await?;
        let by_id = object_id(at, "group", id)?;
        let found: Option<&DirectoryGroup> = groups.items.iter().find(|g| match by_id {
            Some(x) => x == g.id,
            None => name.is_some_and(|n| {
                g.name.eq_ignore_ascii_case(n.trim())
                    || g.display_name.eq_ignore_ascii_case(n.trim())
            }),
        });
        let g = found.ok_or_else(|| {
            invalid(format!(
                "{at}.group: no group '{}' in the organization",
                id.or(name).unwrap_or("")
            ))
        })?;
        Ok(DirectoryRef {
            id: g.id,
            composite_id: composite_id(g.id, g.on_premises_id),
            display_name: g.display_name.clone(),
            name: g.name.clone(),
        })
    }
}

/// The object GUID of a composite (or bare) id, when one is given.
fn object_id(at: &str, what: &str, id: Option<&str>) -> CoreResult<Option<Uuid>> {
    match id.map(str::trim).filter(|i| !i.is_empty()) {
        None => Ok(None),
        Some(raw) => parse_composite_id(raw).map(Some).ok_or_else(|| {
            invalid(format!(
                "{at}.{what}.id '{raw}' is not a directory object id"
            ))
        }),
    }
}

/// A name that is present is 1–255 characters after trimming.
fn checked_name(name: Option<&str>) -> CoreResult<Option<String>> {
    match name.map(str::trim) {
        None => Ok(None),
        Some("") => Err(invalid("name must not be empty")),
        Some(n) if n.chars().count() > MAX_NAME_LEN => Err(invalid(format!(
            "name must be at most {MAX_NAME_LEN} characters long"
        ))),
        Some(n) => Ok(Some(n.to_owned())),
    }
}

fn name_conflict(e: StoreError, name: &str) -> CoreError {
    match e {
        StoreError::Conflict(_) => CoreError::Conflict(format!(
            "The organization already has a job named '{name}'."
        )),
        other => other.into(),
    }
}

/// `"HH:mm:ss"` (also `HH:mm`) as the v5 API writes daily times.
pub fn parse_daily_time(raw: &str) -> Option<NaiveTime> {
    let raw = raw.trim();
    NaiveTime::parse_from_str(raw, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(raw, "%H:%M"))
        .ok()
}
