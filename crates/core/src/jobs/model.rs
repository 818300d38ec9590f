//! What a backup job is: its definition (name, what it backs up, where, when), its state
//! (enabled, queued or running, last and next run), and its runs (job sessions and their log).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::OrganizationId;
use crate::jobs::schedule::SchedulePolicy;

crate::ids::guid_id!(
    /// A backup job.
    JobId
);
crate::ids::guid_id!(
    /// One run of a job (a v5 job session).
    JobSessionId
);
crate::ids::guid_id!(
    /// One entry of a job's selected or excluded items.
    BackupItemId
);
crate::ids::guid_id!(
    /// One line of a job session's log.
    LogItemId
);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackupType {
    EntireOrganization,
    SelectedItems,
}

/// Which versions of a file a job keeps: the current one, or every version Microsoft keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersionPolicy {
    #[default]
    Latest,
    All,
}

/// A job's `lastStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobStatus {
    Stopped,
    Running,
    Success,
    Failed,
    Warning,
    NotConfigured,
    Queued,
}

/// A SharePoint site as a job item names it (a site of `GET …/Sites`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteRef {
    /// Our site id: the site collection GUID followed by the web GUID (72 characters).
    pub id: String,
    pub url: String,
    pub title: String,
    pub name: String,
    pub is_cloud: bool,
    pub is_personal: bool,
}

/// A user or group of the directory as a job item names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryRef {
    /// Entra ID object id.
    pub id: Uuid,
    /// The vendor's composite id (object GUID + on-premises GUID).
    pub composite_id: String,
    pub display_name: String,
    /// Principal name or mail.
    pub name: String,
}

/// What one selected or excluded entry covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemScope {
    Site(SiteRef),
    /// A user's OneDrive and/or personal site.
    User {
        user: DirectoryRef,
        one_drive: bool,
        personal_site: bool,
    },
    /// A group's site, and/or its members' OneDrives and personal sites.
    Group {
        group: DirectoryRef,
        members: bool,
        member_one_drive: bool,
        member_site: bool,
        site: bool,
    },
    /// Every OneDrive and/or every site of the organization.
    PartialOrganization {
        one_drive: bool,
        site: bool,
    },
    /// Every user's personal site.
    PersonalSites,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupItem {
    pub id: BackupItemId,
    pub scope: ItemScope,
}

/// Everything an operator sets on a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobDefinition {
    pub name: String,
    pub description: String,
    pub backup_type: BackupType,
    pub schedule: SchedulePolicy,
    pub repository_id: Uuid,
    pub proxy_id: Option<Uuid>,
    pub version_policy: VersionPolicy,
}

/// Where a job is in its life: waiting for its schedule, asked to run, or running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    Idle,
    Queued,
    Running(JobSessionId),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: JobId,
    pub organization_id: OrganizationId,
    pub definition: JobDefinition,
    pub is_enabled: bool,
    pub state: JobState,
    pub last_status: JobStatus,
    pub last_run: Option<DateTime<Utc>>,
    pub next_run: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl Job {
    /// `lastStatus` as clients read it: a running or queued job says so.
    pub fn shown_status(&self) -> JobStatus {
        match self.state {
            JobState::Running(_) => JobStatus::Running,
            JobState::Queued => JobStatus::Queued,
            JobState::Idle => self.last_status,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionStatus {
    Running,
    Success,
    Warning,
    Failed,
    Stopped,
}

impl SessionStatus {
    pub fn is_final(self) -> bool {
        self != SessionStatus::Running
    }
}

/// Where a run waits: on Microsoft 365 (throttling), on the repository, or nowhere yet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Bottleneck {
    #[default]
    NA,
    Detecting,
    Source,
    Target,
}

/// A session's `statistics`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionStatistics {
    pub processing_rate_bytes_ps: u64,
    pub processing_rate_items_ps: u64,
    pub read_rate_bytes_ps: u64,
    pub write_rate_bytes_ps: u64,
    pub transferred_data_bytes: u64,
    pub processed_objects: u64,
    pub bottleneck: Bottleneck,
}

/// One run of a job.
#[derive(Clone, Debug, PartialEq)]
pub struct JobSession {
    pub id: JobSessionId,
    pub job_id: JobId,
    pub organization_id: OrganizationId,
    pub creation_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
    pub retry_count: u32,
    pub progress: u8,
    pub status: SessionStatus,
    pub details: String,
    pub statistics: SessionStatistics,
}

/// One line of a session's log: a title such as `[Success] Job started at …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogItem {
    pub id: LogItemId,
    pub session_id: JobSessionId,
    /// Increasing across the server: clients page and sort by it.
    pub usn: i64,
    pub title: String,
    pub creation_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
}
