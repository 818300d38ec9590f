//! The repository test suite, run on every backend: a local folder, an S3-compatible server
//! (s3s-fs) and Azure Blob Storage (Azurite), each a real process.

// Test and benchmark code panics on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod concurrency;
mod corruption;
mod crash;
mod faults;
mod outage;
mod restore_points;
mod retention;
mod round_trip;
