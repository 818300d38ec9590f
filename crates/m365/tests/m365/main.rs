//! The Microsoft 365 client's integration tests, one test binary: against m365sim, against an
//! endpoint that lies, and against m365sim answers mutated at random.

// Test code panics on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client;
mod hostile_endpoint;
mod mutated_sim;
