//! The server's integration tests, one test binary (one link for the whole suite): the real
//! server on 127.0.0.1:0 with a temporary data dir, over HTTPS, on SQLite and PostgreSQL, against
//! an in-process simulated tenant. One module per area; `cargo test -p m365backup --test api
//! <module>::` runs one of them.

// Test code panics on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

mod admin_cli;
mod audit;
mod backup_accounts;
mod backup_crash;
mod backups;
mod demo;
mod foundation;
mod job_cli;
mod jobs;
mod organizations;
mod probe_cli;
mod repositories;
mod repository_cli;
mod restore;
mod restore_demo;
mod restore_writes;
mod security;
mod token_revocation;
