//! What a restore to Microsoft 365 is asked to do: where it writes, which versions, what happens
//! to items changed or deleted since the backup, whether sharing is re-created, and whose
//! credentials write. The API reads these from the v5 options and checks them; names that
//! cannot be written safely are refused here.

use m365backup_core::error::{CoreError, CoreResult};
use m365backup_core::Secret;

/// Which versions of a document are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionChoice {
    /// The version of the restore point only (`last`).
    Last,
    /// Every backed-up version, oldest first, so the history is rebuilt in order (`all`).
    All,
}

/// What happens to a document that exists in the target with other content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangedAction {
    /// The backed-up content becomes the current version (`overwrite`, SharePoint's `merge`:
    /// Graph keeps the replaced content as an earlier version either way).
    Overwrite,
    /// The current file stays; the backup is written beside it as
    /// `name (restored <date>).ext` (`keep`).
    Keep,
}

/// Where the items go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Back where they were, at their original paths.
    Original,
    /// Into a user's OneDrive (by principal name, user id or drive id).
    OneDrive(String),
    /// Into a site's library (our site id, its URL or Graph's site id; the default library
    /// unless one is named).
    Site {
        site: String,
        library: Option<String>,
    },
}

#[derive(Clone, Debug)]
pub struct RestoreOptions {
    pub destination: Destination,
    /// A folder path in the target (copies only): its segments, created when missing.
    pub folder: Vec<String>,
    pub versions: VersionChoice,
    pub changed: ChangedAction,
    /// Restore items whose content changed since the backup.
    pub changed_items: bool,
    /// Restore items deleted since the backup.
    pub deleted_items: bool,
    /// Re-create the sharing the backup recorded.
    pub permissions: bool,
    /// An account to write with instead of the organization's own credentials and backup
    /// accounts.
    pub account: Option<(String, Secret)>,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        Self {
            destination: Destination::Original,
            folder: Vec::new(),
            versions: VersionChoice::Last,
            changed: ChangedAction::Overwrite,
            changed_items: true,
            deleted_items: true,
            permissions: false,
            account: None,
        }
    }
}

/// Whether `name` can be written as one item name: not empty, not `.` or `..`, no path
/// separators, no control characters.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("an empty name".into());
    }
    if name == "." || name == ".." {
        return Err(format!("the name '{name}' is not an item name"));
    }
    if name.contains(['/', '\\']) || name.chars().any(char::is_control) {
        return Err(format!(
            "the name '{name}' holds a path separator or a control character"
        ));
    }
    Ok(())
}

/// The segments of a folder path in the target (`a/b`, `/a/b/`); `..`, `.`, backslashes and
/// control characters are refused.
pub fn folder_path(path: &str) -> CoreResult<Vec<String>> {
    let mut segments = Vec::new();
    for segment in path.split('/') {
        if segment.is_empty() {
            continue;
        }
        check_name(segment)
            .map_err(|e| CoreError::Invalid(format!("copyTo.folder '{path}': {e}")))?;
        segments.push(segment.to_owned());
    }
    if segments.len() > 64 {
        return Err(CoreError::Invalid(format!(
            "copyTo.folder '{path}' is deeper than 64 folders"
        )));
    }
    Ok(segments)
}

/// The name of a copy kept beside a changed file: `report (restored 2024-05-01).docx`.
pub fn kept_name(name: &str, date: chrono::NaiveDate) -> String {
    let tag = format!("restored {}", date.format("%Y-%m-%d"));
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !ext.is_empty() => {
            format!("{stem} ({tag}).{ext}")
        }
        _ => format!("{name} ({tag})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert!(check_name("a.docx").is_ok());
        assert!(check_name("..").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name("a\\b").is_err());
        assert!(check_name(" ").is_err());
        assert_eq!(
            folder_path("/Restored/2024/").unwrap(),
            ["Restored", "2024"]
        );
        assert!(folder_path("a/../b").is_err());
        assert!(folder_path("a/./b").is_err());
        assert!(folder_path("").unwrap().is_empty());
    }

    #[test]
    fn kept_copies_are_named_by_date() {
        let d = chrono::NaiveDate::from_ymd_opt(2024, 5, 1).unwrap();
        assert_eq!(kept_name("plan.docx", d), "plan (restored 2024-05-01).docx");
        assert_eq!(kept_name("README", d), "README (restored 2024-05-01)");
        assert_eq!(kept_name(".env", d), ".env (restored 2024-05-01)");
    }
}
