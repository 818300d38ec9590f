//! Text from clients in logs: escaped, so a newline or escape sequence cannot forge a log line,
//! and capped, so a megabyte of user name is not a megabyte of log.

use std::fmt;

/// Longest piece of client text written to a log, in characters.
pub const MAX_LOGGED_CHARS: usize = 64;

/// Displays client text escaped (`\n`, `\u{1b}`) and cut at [`MAX_LOGGED_CHARS`].
pub struct LogText<'a>(pub &'a str);

impl fmt::Display for LogText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.chars();
        for c in chars.by_ref().take(MAX_LOGGED_CHARS) {
            write!(f, "{}", c.escape_debug())?;
        }
        let rest = chars.count();
        if rest > 0 {
            write!(f, "…(+{rest} chars)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_caps() {
        assert_eq!(
            LogText("bob\n2026-01-01 INFO operator signed in").to_string(),
            "bob\\n2026-01-01 INFO operator signed in"
        );
        assert_eq!(LogText("\u{1b}[31m").to_string(), "\\u{1b}[31m");
        let long = "x".repeat(1000);
        assert_eq!(
            LogText(&long).to_string(),
            format!("{}…(+936 chars)", "x".repeat(64))
        );
    }
}
