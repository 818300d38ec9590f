//! Restore sessions as the v5 API shows them: a point in time of an organization's (or a job's)
//! backups, opened for browsing, saving and restoring, and the events of what was done in it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::OrganizationId;
use crate::jobs::model::JobId;

crate::ids::guid_id!(
    /// A restore session.
    RestoreSessionId
);
crate::ids::guid_id!(
    /// One event of a restore session (an item saved, restored or viewed).
    RestoreEventId
);

/// OneDrive for Business (`Veod`) or SharePoint Online (`Vesp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestoreKind {
    Veod,
    Vesp,
}

impl RestoreKind {
    /// How the session's name calls it.
    pub fn label(self) -> &'static str {
        match self {
            RestoreKind::Veod => "OneDrive",
            RestoreKind::Vesp => "SharePoint",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestoreState {
    Working,
    Stopped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestoreResult {
    Success,
    Warning,
    Failed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RestoreSession {
    pub id: RestoreSessionId,
    pub organization_id: OrganizationId,
    pub organization_name: String,
    /// Limited to this job's backups (explore from `/v5/Jobs/{id}/Action`).
    pub job_id: Option<JobId>,
    pub job_name: Option<String>,
    pub kind: RestoreKind,
    /// The time asked for: each object shows its latest restore point at or before it.
    pub point_in_time: DateTime<Utc>,
    pub show_deleted: bool,
    pub show_all_versions: bool,
    pub creation_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
    pub state: RestoreState,
    pub result: RestoreResult,
    /// The operator who opened it.
    pub initiated_by: String,
    pub processed: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Its idle time counts from here.
    pub last_activity: DateTime<Utc>,
}

impl RestoreSession {
    /// `"<Type> restore: <job or organization> - <creation time>"`: a public monitoring script
    /// splits it on `": "` and `" - "`, so the time holds neither.
    pub fn name(&self) -> String {
        format!(
            "{} restore: {} - {}",
            self.kind.label(),
            self.job_name.as_deref().unwrap_or(&self.organization_name),
            self.creation_time.format("%Y-%m-%d %H:%M:%S")
        )
    }

    /// `"<processed> items processed (<succeeded> success, <failed> failed)"`: a script takes
    /// its first and fourth words as counts.
    pub fn details(&self) -> String {
        format!(
            "{} items processed ({} success, {} failed)",
            self.processed, self.succeeded, self.failed
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    Save,
    Restore,
    View,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventStatus {
    Running,
    Success,
    Warning,
    Failed,
}

/// One thing done in a session: an item saved, restored or viewed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreEvent {
    pub id: RestoreEventId,
    pub session_id: RestoreSessionId,
    /// Its place among the session's events (assigned when stored).
    pub order: i64,
    pub kind: EventType,
    pub status: EventStatus,
    pub start_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
    pub title: String,
    pub message: String,
    pub item_name: String,
    pub item_type: String,
    pub item_size: u64,
    pub source: String,
    pub target: String,
}
