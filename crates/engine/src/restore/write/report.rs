//! How a restore to Microsoft 365 is told: the session event it records (what, from where, to
//! where) and how it ended, naming the items that failed. The API and the command line record
//! restores the same way.

use chrono::{DateTime, Utc};
use m365backup_core::restore::model::EventStatus;
use m365backup_core::restore::service::EventItem;

use crate::restore::selection::Selection;
use crate::restore::write::options::{Destination, RestoreOptions};
use crate::restore::write::stats::{Outcome, RestoreStats};

/// Failures named in a restore's event message.
const NAMED_IN_EVENT: usize = 20;

/// The event's status and message.
pub fn outcome(stats: &RestoreStats) -> (EventStatus, String) {
    let status = match (stats.succeeded(), stats.unsuccessful()) {
        (_, 0) if stats.failed_permissions == 0 => EventStatus::Success,
        (0, n) if n > 0 => EventStatus::Failed,
        _ => EventStatus::Warning,
    };
    let mut text = format!(
        "{} items: {} restored, {} unchanged, {} left out by the options, {} failed, {} not tried after an error",
        stats.total,
        stats.restored,
        stats.skipped_unchanged,
        stats.skipped_by_options,
        stats.failed,
        stats.skipped_by_error
    );
    if stats.failed_permissions > 0 {
        text.push_str(&format!(
            ", {} sharing permission(s) not re-created",
            stats.failed_permissions
        ));
    }
    if !stats.issues.is_empty() {
        let named: Vec<String> = stats
            .issues
            .iter()
            .take(NAMED_IN_EVENT)
            .map(|i| format!("{} ({})", i.item, i.reason))
            .collect();
        text.push_str(&format!(": {}", named.join("; ")));
        let more = stats.issues.len().saturating_sub(NAMED_IN_EVENT);
        if more > 0 {
            text.push_str(&format!("; and {more} more"));
        }
    }
    (status, text)
}

/// `OneDrive of Adele`, `site Marketing`.
pub fn source_of(selections: &[Selection]) -> String {
    let Some(first) = selections.first() else {
        return String::new();
    };
    let point = first.point();
    match point.object().kind {
        m365backup_repo::ObjectKind::OneDrive => format!("OneDrive of {}", point.object().name),
        _ => format!(
            "site {}",
            point
                .attribute("siteTitle")
                .unwrap_or_else(|| point.object().name.clone())
        ),
    }
}

pub fn target_of(options: &RestoreOptions) -> String {
    let folder = if options.folder.is_empty() {
        String::new()
    } else {
        format!(", folder {}", options.folder.join("/"))
    };
    match &options.destination {
        Destination::Original => "original location".into(),
        Destination::OneDrive(id) => format!("OneDrive {id}{folder}"),
        Destination::Site { site, library } => match library {
            Some(l) => format!("site {site}, library {l}{folder}"),
            None => format!("site {site}{folder}"),
        },
    }
}

pub fn event_item(selections: &[Selection], options: &RestoreOptions) -> EventItem {
    let (name, item_type) = match selections {
        [one] => (one.name().to_owned(), one.item_type().to_owned()),
        many => (format!("{} items", many.len()), "Items".to_owned()),
    };
    let size = selections
        .iter()
        .map(|s| match s {
            Selection::Document { item, .. } => item.size,
            _ => 0,
        })
        .sum();
    EventItem {
        title: format!("Restoring {} '{}'", item_type.to_lowercase(), name),
        name,
        item_type,
        size,
        source: source_of(selections),
        target: target_of(options),
    }
}

/// One event per item of a finished restore: what it was, how it ended and when.
pub fn item_events(
    stats: &RestoreStats,
    summary: &EventItem,
) -> Vec<(EventItem, EventStatus, String, DateTime<Utc>)> {
    stats
        .items
        .iter()
        .map(|r| {
            let (status, message) = match (&r.outcome, &r.reason) {
                (Some(Outcome::Restored), _) => (EventStatus::Success, "Restored".to_owned()),
                (Some(Outcome::Unchanged), _) => (
                    EventStatus::Success,
                    "Already as in the backup: left alone".to_owned(),
                ),
                (Some(Outcome::LeftOut), _) => (
                    EventStatus::Success,
                    "Left out by the restore's options".to_owned(),
                ),
                (Some(Outcome::NotTried), _) => (
                    EventStatus::Failed,
                    "Not tried: a folder above it could not be restored".to_owned(),
                ),
                (None, reason) => (
                    EventStatus::Failed,
                    reason.clone().unwrap_or_else(|| "Failed".to_owned()),
                ),
            };
            let item = EventItem {
                title: format!("Restoring {} '{}'", r.kind.to_lowercase(), r.path),
                name: r.path.clone(),
                item_type: r.kind.to_owned(),
                size: r.size,
                source: summary.source.clone(),
                target: summary.target.clone(),
            };
            (item, status, message, r.time)
        })
        .collect()
}
