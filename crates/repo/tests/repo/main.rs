//! The repository test suite, run on every backend: a local folder, an S3-compatible server
//! (s3s-fs) and Azure Blob Storage (Azurite), each a real process.

mod support;

mod concurrency;
mod corruption;
mod crash;
mod faults;
mod restore_points;
mod retention;
mod round_trip;
