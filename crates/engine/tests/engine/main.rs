//! The engine's integration tests, one test binary (one link for the whole suite), against
//! in-process simulated tenants: `cargo test -p m365backup-engine --test engine <module>::` runs
//! one module.

// Test code panics on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod backup_rounds;
mod export_archive;
mod pool_probe;
mod support;
