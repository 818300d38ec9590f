//! OneDrive and SharePoint naming rules, and the name `conflictBehavior: rename` picks.
//!
//! A name may not contain `" * : < > ? / \ |`, begin or end with a space, end with a period,
//! be one of the reserved names (`.lock`, `CON`, `PRN`, `AUX`, `NUL`, `COM0`–`COM9`,
//! `LPT0`–`LPT9`, `desktop.ini`), contain `_vti_` or begin with `~$`. The whole decoded path of
//! an item (the site-relative path of its library, its folders and its name) may not exceed 400
//! characters.

use super::writes::ChangeError;

/// Characters in a full decoded path, at most.
pub const MAX_PATH_CHARS: usize = 400;

const RESERVED: [&str; 6] = [".lock", "con", "prn", "aux", "nul", "desktop.ini"];

/// Refuses a name OneDrive for Business refuses.
pub fn check_name(name: &str) -> Result<(), ChangeError> {
    let lower = name.to_lowercase();
    let numbered_device = |prefix: &str| {
        lower
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.len() == 1 && rest.as_bytes()[0].is_ascii_digit())
    };
    let bad = name.is_empty()
        || name.contains(['"', '*', ':', '<', '>', '?', '/', '\\', '|'])
        || name.chars().any(char::is_control)
        || name.starts_with(' ')
        || name.ends_with([' ', '.'])
        || RESERVED.contains(&lower.as_str())
        || numbered_device("com")
        || numbered_device("lpt")
        || lower.contains("_vti_")
        || name.starts_with("~$");
    if bad {
        Err(ChangeError::InvalidName(name.to_owned()))
    } else if name.chars().count() > MAX_PATH_CHARS {
        Err(ChangeError::PathTooLong)
    } else {
        Ok(())
    }
}

/// The `n`-th name tried for `name` when it is taken: `report 1.docx`, `Folder 2`.
pub fn numbered(name: &str, n: u32) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem} {n}.{ext}"),
        _ => format!("{name} {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onedrive_refuses_these_names() {
        for bad in [
            "",
            "a:b",
            "what?",
            "x|y",
            "dir/file",
            "back\\slash",
            "quote\"d",
            "trailing.",
            "trailing ",
            " leading",
            "CON",
            "com1",
            "LPT9",
            ".lock",
            "Desktop.ini",
            "a_vti_b",
            "~$owner.docx",
            "tab\there",
        ] {
            assert!(
                matches!(check_name(bad), Err(ChangeError::InvalidName(_))),
                "{bad:?}"
            );
        }
        for good in [
            "Résumé – Zoë #1.docx",
            "Budget 100% final.xlsx",
            "会議メモ.txt",
            "Notes & ideas 🎉.md",
            "com10",
            "console",
            ".gitignore",
            "a.b.c",
        ] {
            assert_eq!(check_name(good), Ok(()), "{good:?}");
        }
        assert_eq!(check_name(&"x".repeat(401)), Err(ChangeError::PathTooLong));
    }

    #[test]
    fn renamed_names_keep_the_extension() {
        assert_eq!(numbered("report.docx", 1), "report 1.docx");
        assert_eq!(numbered("archive.tar.gz", 2), "archive.tar 2.gz");
        assert_eq!(numbered("Folder", 1), "Folder 1");
        assert_eq!(numbered(".gitignore", 1), ".gitignore 1");
    }
}
