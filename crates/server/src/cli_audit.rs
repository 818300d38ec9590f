//! The audit trail of commands run at a shell on the server machine (`export`, `restore`,
//! `admin`, `job start`, `repository …`): the same items as the API records, by the shell user,
//! `via: Cli`, without a client address.
//!
//! A command that reads tenant data or a secret records before it acts and does not act when it
//! cannot record; a command that changes state records once the change is made, as the API does.

use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use m365backup_core::audit::{Actor, AuditChannel, AuditKind, AuditService, NewAuditItem};
use m365backup_core::store::Store;

/// The name items record for the command line when the shell user is unknown.
pub const UNKNOWN_USER: &str = "cli";

/// Who runs the command: the shell user (`$USER`, else `$LOGNAME`), or [`UNKNOWN_USER`].
pub fn shell_user() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.trim().is_empty()))
        .unwrap_or_else(|| UNKNOWN_USER.to_owned())
}

/// Records what `m365backup <command>` did to `resource` (ids, or a name where there is none).
pub async fn record(
    store: Arc<dyn Store>,
    kind: AuditKind,
    command: &str,
    resource: impl Into<String>,
    details: impl Into<String>,
) -> anyhow::Result<()> {
    AuditService::new(store)
        .record(NewAuditItem {
            time: Utc::now(),
            actor: Actor {
                operator_id: None,
                name: shell_user(),
            },
            kind,
            channel: AuditChannel::Cli,
            client: None,
            action: format!("m365backup {command}"),
            resource: resource.into(),
            details: details.into(),
        })
        .await
        .context("recording the action in the audit trail")?;
    Ok(())
}
