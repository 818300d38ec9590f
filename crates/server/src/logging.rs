//! Structured logs with tracing. Secrets never reach here: they travel as `Secret`, which
//! prints `***`.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// `RUST_LOG` filters (default `info`); output goes to stderr so stdout stays for the CLI.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: a log file or journal gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
