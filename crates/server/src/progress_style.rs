//! Styles of the command line's progress bars: the template given, or indicatif's default look
//! should it not parse (how a bar looks is never a reason to fail a command).

use indicatif::ProgressStyle;

/// A bar drawn with `template`, filled with `=> `.
pub fn bar(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A spinner drawn with `template`.
pub fn spinner(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}
