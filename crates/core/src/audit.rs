//! The audit trail: who did what, when and from where, for every operator action that changes
//! the server's state or reads tenant data (sign-ins, organization, job and repository changes,
//! restore sessions, saves and restores). Items are appended and listed, never changed: the store
//! has no way to edit one, and only the retention purge removes old ones.
//!
//! An item never holds a secret: it is built from the operator, the route or command, the ids
//! of the resource and a short description written by the server, never from a request body.
//! Every text in it is escaped and capped ([`bounded`]), so client text cannot forge or flood it.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::CoreResult;
use crate::ids::OperatorId;
use crate::jobs::store::Paged;
use crate::store::{Store, StoreResult};

crate::ids::guid_id!(
    /// One item of the audit trail.
    AuditItemId
);

/// Declares [`AuditKind`] with the list of all its values, so names and parsing cannot drift.
macro_rules! audit_kinds {
    ($($(#[$doc:meta])* $kind:ident,)*) => {
        /// What an operator did.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum AuditKind {
            $($(#[$doc])* $kind,)*
        }

        impl AuditKind {
            pub const ALL: &'static [AuditKind] = &[$(AuditKind::$kind,)*];

            /// The name clients see and filter on (`SignIn`, `JobStarted`…).
            pub fn name(self) -> &'static str {
                match self {
                    $(AuditKind::$kind => stringify!($kind),)*
                }
            }
        }
    };
}

audit_kinds! {
    /// A successful password sign-in (`POST /v5/Token`).
    SignIn,
    /// A refused password sign-in: the user name tried, escaped and capped.
    SignInFailed,
    SignOut,
    OrganizationCreated,
    OrganizationChanged,
    OrganizationRemoved,
    BackupAccountsChanged,
    /// A user removed from the protected users' count.
    LicensedUserRemoved,
    JobCreated,
    JobChanged,
    JobRemoved,
    /// Selected or excluded items added or removed.
    JobItemsChanged,
    JobStarted,
    JobStopped,
    JobEnabled,
    JobDisabled,
    RepositoryCreated,
    RepositoryChanged,
    RepositoryRemoved,
    RepositoryRetentionApplied,
    RepositoryChecked,
    RepositoryCatalogRebuilt,
    /// A repository's password shown (`m365backup repository recovery-password`).
    RepositoryPasswordShown,
    /// A restore session opened (`explore`): the backups become browsable.
    RestoreSessionStarted,
    RestoreSessionStopped,
    /// Backed-up items read out: a download through the API or an export to a file.
    ItemsSaved,
    /// Backed-up items written back to where they were.
    ItemsRestored,
    /// Backed-up items copied into another OneDrive or library.
    ItemsCopied,
    OperatorAdded,
    OperatorPasswordChanged,
    OperatorRemoved,
    /// A change through a route the trail has no name for (named by its `action`).
    OtherChange,
}

impl std::fmt::Display for AuditKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for AuditKind {
    type Err = String;

    /// A kind's name in any letter case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        AuditKind::ALL
            .iter()
            .copied()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = AuditKind::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "'{}' is not an audit kind: use one of {}",
                    bounded(s, MAX_NAME_CHARS),
                    names.join(", ")
                )
            })
    }
}

/// How the operator reached the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditChannel {
    /// The REST API, from the item's client address.
    Api,
    /// A command at a shell on the server machine (`m365backup export`, `admin`…).
    Cli,
}

/// Who acted: an operator account, or (for the command line and refused sign-ins) just a name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub operator_id: Option<OperatorId>,
    pub name: String,
}

/// An item of the audit trail as stored and listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditItem {
    pub id: AuditItemId,
    /// When the action was asked for.
    pub time: DateTime<Utc>,
    pub actor: Actor,
    pub kind: AuditKind,
    pub channel: AuditChannel,
    /// The client's address (API only).
    pub client: Option<IpAddr>,
    /// The route (`PUT /v5/Jobs/{jobId}`) or command (`m365backup export`).
    pub action: String,
    /// What it acted on: the resource's path with its ids, or the command's target.
    pub resource: String,
    /// A short description written by the server (never a request body).
    pub details: String,
}

/// An action to record; the service gives it an id and bounds its texts.
#[derive(Clone, Debug)]
pub struct NewAuditItem {
    pub time: DateTime<Utc>,
    pub actor: Actor,
    pub kind: AuditKind,
    pub channel: AuditChannel,
    pub client: Option<IpAddr>,
    pub action: String,
    pub resource: String,
    pub details: String,
}

/// Which items a listing shows; every condition given must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub operator_id: Option<OperatorId>,
    /// The operator's (or tried) name, ignoring letter case.
    pub operator_name: Option<String>,
    /// From this time on (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// Up to this time (inclusive).
    pub to: Option<DateTime<Utc>>,
    /// Any of these kinds; all kinds when empty.
    pub kinds: Vec<AuditKind>,
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit_item(&self, item: &AuditItem) -> StoreResult<()>;
    /// Newest first.
    async fn list_audit_items(
        &self,
        filter: &AuditFilter,
        offset: u64,
        limit: u64,
    ) -> StoreResult<Paged<AuditItem>>;
    /// Removes items older than `before`; how many.
    async fn purge_audit_items(&self, before: DateTime<Utc>) -> StoreResult<u64>;
}

/// Longest operator name kept (operator names are at most 64 characters; a refused sign-in's
/// name is cut here, as the log does).
pub const MAX_NAME_CHARS: usize = crate::log_text::MAX_LOGGED_CHARS;
/// Longest `action` and `resource` kept.
const MAX_PATH_CHARS: usize = 512;
/// Longest `details` kept.
const MAX_DETAILS_CHARS: usize = 512;

/// Client or tenant text made safe to keep: control characters escaped (`\n`, `\u{1b}`), and
/// cut at `max` characters with a note of how many were left out.
pub fn bounded(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    for c in chars.by_ref().take(max) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    let rest = chars.count();
    if rest > 0 {
        out.push_str(&format!("…(+{rest} chars)"));
    }
    out
}

/// Records and lists the audit trail.
pub struct AuditService {
    store: Arc<dyn Store>,
}

impl AuditService {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Appends an item, its texts escaped and capped.
    pub async fn record(&self, item: NewAuditItem) -> CoreResult<AuditItem> {
        let item = AuditItem {
            id: AuditItemId::new_random(),
            time: item.time,
            actor: Actor {
                operator_id: item.actor.operator_id,
                name: bounded(&item.actor.name, MAX_NAME_CHARS),
            },
            kind: item.kind,
            channel: item.channel,
            client: item.client,
            action: bounded(&item.action, MAX_PATH_CHARS),
            resource: bounded(&item.resource, MAX_PATH_CHARS),
            details: bounded(&item.details, MAX_DETAILS_CHARS),
        };
        self.store.append_audit_item(&item).await?;
        Ok(item)
    }

    /// One page of the items the filter selects, newest first.
    pub async fn list(
        &self,
        filter: &AuditFilter,
        offset: u64,
        limit: u64,
    ) -> CoreResult<Paged<AuditItem>> {
        Ok(self.store.list_audit_items(filter, offset, limit).await?)
    }

    /// Forgets items older than `keep`; how many.
    pub async fn purge_older_than(&self, keep: std::time::Duration) -> CoreResult<u64> {
        let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        let before = Utc::now()
            .checked_sub_signed(keep)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        Ok(self.store.purge_audit_items(before).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_in_any_case_and_list_themselves() {
        assert_eq!("jobstarted".parse::<AuditKind>(), Ok(AuditKind::JobStarted));
        assert_eq!(" SignIn ".parse::<AuditKind>(), Ok(AuditKind::SignIn));
        let err = "No\npe".parse::<AuditKind>().unwrap_err();
        assert!(
            err.contains("'No\\npe'") && err.contains("ItemsSaved"),
            "{err}"
        );
        for kind in AuditKind::ALL {
            assert_eq!(kind.name().parse::<AuditKind>(), Ok(*kind));
            // The stored text (serde) is the listed name.
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::String(kind.name().to_owned())
            );
        }
    }

    #[test]
    fn texts_are_escaped_and_capped() {
        assert_eq!(bounded("a\nb\u{1b}[31m", 64), "a\\nb\\u{1b}[31m");
        assert_eq!(bounded("Über 'x'.pdf", 64), "Über 'x'.pdf");
        assert_eq!(
            bounded(&"x".repeat(70), 64),
            format!("{}…(+6 chars)", "x".repeat(64))
        );
    }
}
