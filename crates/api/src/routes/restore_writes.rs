//! Restores to Microsoft 365 from a restore session (`restoretoOriginallocation`, `restoreTo`,
//! `copyTo`): their options, and the statistics body they answer with.
//!
//! The options are read leniently (any-case names, `"true"` strings) and checked before
//! anything is written: a bad value, a copy target that does not exist or an account that
//! cannot sign in is a 400 and the tenant is not touched. The restore itself runs in a task of
//! its own, so a client that goes away does not cut it short; its event records how it ended,
//! naming the items that failed.

use axum::response::{IntoResponse, Response};
use axum::Json;
use m365backup_core::restore::model::{EventType, RestoreKind, RestoreSession};
use m365backup_core::Secret;
use m365backup_engine::restore::selection::Selection;
use m365backup_engine::restore::write::options::{
    folder_path, ChangedAction, Destination, RestoreOptions, VersionChoice,
};
use m365backup_engine::restore::write::report::{event_item, item_events, outcome};
use m365backup_engine::restore::write::stats::RestoreStats;
use m365backup_engine::restore::write::RestoreRequest;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::Instrument;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Failures listed in the answer's `restoreIssues`.
const LISTED_ISSUES: usize = 500;

/// Where a restore writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteAction {
    /// Back where the items were (`restoretoOriginallocation`, `restoreTo`).
    OriginalLocation,
    /// Into another OneDrive or site (`copyTo`).
    CopyTo,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum DocumentVersion {
    Last,
    All,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum DocumentAction {
    Overwrite,
    Keep,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum LastVersionAction {
    Overwrite,
    Merge,
}

/// The options of the three restore actions, as clients send them.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WriteOptions {
    user_name: Option<String>,
    user_password: Option<String>,
    document_version: Option<DocumentVersion>,
    document_action: Option<DocumentAction>,
    document_last_version_action: Option<LastVersionAction>,
    changed_items: Option<bool>,
    deleted_items: Option<bool>,
    restore_permissions: Option<bool>,
    /// `copyTo`: `{"id": "…"}` (or the id alone).
    one_drive: Option<Value>,
    site: Option<Value>,
    /// `copyTo` into a site: a library by name (the default library otherwise).
    library: Option<String>,
    folder: Option<String>,
}

/// `{"id": "…"}`, `{"Id": "…"}` or `"…"`.
fn target_id(field: &str, value: &Value) -> ApiResult<String> {
    let id = match value {
        Value::String(s) => Some(s.as_str()),
        Value::Object(map) => map
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("id"))
            .and_then(|(_, v)| v.as_str()),
        _ => None,
    };
    match id.map(str::trim) {
        Some(id) if !id.is_empty() && id.len() <= 512 => Ok(id.to_owned()),
        _ => Err(ApiError::BadRequest(format!(
            "copyTo.{field} must be {{\"id\": \"…\"}}"
        ))),
    }
}

fn destination(action: WriteAction, o: &WriteOptions) -> ApiResult<(Destination, Vec<String>)> {
    if action == WriteAction::OriginalLocation {
        if o.one_drive.is_some() || o.site.is_some() || o.folder.is_some() {
            return Err(ApiError::BadRequest(
                "oneDrive, site and folder belong to copyTo; a restore to the original location writes where the items were".into(),
            ));
        }
        return Ok((Destination::Original, Vec::new()));
    }
    let folder = folder_path(o.folder.as_deref().unwrap_or(""))?;
    let target = match (&o.one_drive, &o.site) {
        (Some(d), None) => Destination::OneDrive(target_id("oneDrive", d)?),
        (None, Some(s)) => Destination::Site {
            site: target_id("site", s)?,
            library: o.library.clone().filter(|l| !l.trim().is_empty()),
        },
        _ => {
            return Err(ApiError::BadRequest(
                "copyTo needs one target: oneDrive: {\"id\"} or site: {\"id\"}".into(),
            ))
        }
    };
    Ok((target, folder))
}

/// The checked options of a restore.
fn restore_options(action: WriteAction, raw: Value) -> ApiResult<RestoreOptions> {
    let o: WriteOptions = match raw {
        Value::Null => WriteOptions::default(),
        Value::Object(_) => crate::ci_json::from_value(raw).map_err(ApiError::BadRequest)?,
        _ => {
            return Err(ApiError::BadRequest(
                "the restore's options must be an object".into(),
            ))
        }
    };
    let account = match (&o.user_name, &o.user_password) {
        (Some(u), Some(p)) if !u.trim().is_empty() => {
            Some((u.trim().to_owned(), Secret::new(p.clone())))
        }
        (None, None) => None,
        _ => {
            return Err(ApiError::BadRequest(
                "userName and userPassword go together".into(),
            ))
        }
    };
    let (destination, folder) = destination(action, &o)?;
    let changed = match (o.document_action, o.document_last_version_action) {
        (Some(DocumentAction::Keep), _) => ChangedAction::Keep,
        _ => ChangedAction::Overwrite,
    };
    Ok(RestoreOptions {
        destination,
        folder,
        versions: match o.document_version {
            Some(DocumentVersion::All) => VersionChoice::All,
            _ => VersionChoice::Last,
        },
        changed,
        changed_items: o.changed_items.unwrap_or(true),
        deleted_items: o.deleted_items.unwrap_or(true),
        permissions: o.restore_permissions.unwrap_or(false),
        account,
    })
}

/// `{itemName, message}` of `restoreIssues`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RestoreIssue {
    item_name: String,
    message: String,
}

/// The statistics a restore answers with.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RestoreStatistics {
    total_items_count: u64,
    restored_items_count: u64,
    failed_items_count: u64,
    failed_restrictions_count: u64,
    skipped_items_by_error_count: u64,
    skipped_items_by_no_changes_count: u64,
    /// (ours) Changed or deleted items the options left out.
    skipped_items_by_options_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    restored_lists_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_lists_count: Option<u64>,
    restore_issues: Vec<RestoreIssue>,
}

fn statistics(stats: &RestoreStats, with_lists: bool) -> RestoreStatistics {
    RestoreStatistics {
        total_items_count: stats.total,
        restored_items_count: stats.restored,
        failed_items_count: stats.failed,
        failed_restrictions_count: stats.failed_permissions,
        skipped_items_by_error_count: stats.skipped_by_error,
        skipped_items_by_no_changes_count: stats.skipped_unchanged,
        skipped_items_by_options_count: stats.skipped_by_options,
        restored_lists_count: with_lists.then_some(0),
        failed_lists_count: with_lists.then_some(0),
        restore_issues: stats
            .issues
            .iter()
            .take(LISTED_ISSUES)
            .map(|i| RestoreIssue {
                item_name: i.item.clone(),
                message: i.reason.clone(),
            })
            .collect(),
    }
}

/// Runs a restore and answers with its statistics.
pub async fn restore(
    state: &AppState,
    session: &RestoreSession,
    selections: Vec<Selection>,
    action: WriteAction,
    options: Value,
    operator: &str,
) -> ApiResult<Response> {
    let options = restore_options(action, options)?;
    let item = event_item(&selections, &options);
    let with_lists = session.kind == RestoreKind::Vesp
        && selections
            .iter()
            .any(|s| matches!(s, Selection::Object { .. }));
    let prepared = state
        .restorer
        .prepare(RestoreRequest {
            organization: session.organization_id,
            selections,
            options,
        })
        .await?;
    let summary = item.clone();
    let event = state
        .restore
        .begin_event(session.id, EventType::Restore, item)
        .await?;
    tracing::info!(session = %session.id, operator, target = %event.target, "restore to Microsoft 365 started");
    let events = state.restore.clone();
    // A task of its own: the restore ends, and its event with it, even if the client leaves.
    let running = tokio::spawn(async move {
        let stats = prepared.run().await;
        let items = item_events(&stats, &summary);
        if let Err(e) = events
            .record_item_events(event.session_id, EventType::Restore, items)
            .await
        {
            tracing::warn!(error = %m365backup_core::Chain(&e), "the restored items' events could not be recorded");
        }
        let (status, text) = outcome(&stats);
        if let Err(e) = events
            .finish_event(event, status, text, stats.succeeded(), stats.unsuccessful())
            .await
        {
            tracing::warn!(error = %m365backup_core::Chain(&e), "a restore's event could not be finished");
        }
        stats
    }
    // Inside the request's span (the restore session), naming the organization too.
    .instrument(tracing::info_span!("restore", organization = %session.organization_id)));
    let stats = running.await.map_err(ApiError::internal)?;
    Ok(Json(statistics(&stats, with_lists)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn options_are_read_leniently_and_checked() {
        let o = restore_options(
            WriteAction::OriginalLocation,
            json!({"DocumentVersion": "ALL", "documentaction": "Keep", "changedItems": "false",
                   "restorePermissions": "true"}),
        )
        .unwrap();
        assert_eq!(o.versions, VersionChoice::All);
        assert_eq!(o.changed, ChangedAction::Keep);
        assert!(!o.changed_items && o.deleted_items && o.permissions);
        assert!(restore_options(WriteAction::OriginalLocation, Value::Null).is_ok());
        for bad in [
            json!({"documentVersion": "some"}),
            json!({"documentAction": "merge"}),
            json!({"userName": "a@b.c"}),
            json!({"folder": "x"}),
            json!("text"),
        ] {
            assert!(
                restore_options(WriteAction::OriginalLocation, bad.clone()).is_err(),
                "{bad}"
            );
        }
        let copy = restore_options(
            WriteAction::CopyTo,
            json!({"oneDrive": {"ID": "u@x.com"}, "folder": "Restored/2024"}),
        )
        .unwrap();
        assert_eq!(copy.destination, Destination::OneDrive("u@x.com".into()));
        assert_eq!(copy.folder, ["Restored", "2024"]);
        for bad in [
            json!({}),
            json!({"oneDrive": {"id": "a"}, "site": {"id": "b"}}),
            json!({"site": {"id": "b"}, "folder": "../up"}),
            json!({"oneDrive": {}}),
        ] {
            assert!(
                restore_options(WriteAction::CopyTo, bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
