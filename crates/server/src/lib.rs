//! The `m365backup` server binary as a library, so integration tests start the real server.

pub mod admin;
pub mod cli_audit;
pub mod config;
pub mod demo;
pub mod fsutil;
pub mod job_cli;
pub mod listener;
pub mod logging;
pub mod options_doc;
pub mod probe;
pub mod progress_style;
pub mod repositories;
pub mod repository_cli;
pub mod restore_cli;
pub mod server;
pub mod server_key;
pub mod services;
pub mod tls;
