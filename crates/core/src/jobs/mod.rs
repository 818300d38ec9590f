//! Backup jobs: what a job backs up and when ([`model`], [`schedule`]), and how jobs and their
//! runs are kept ([`store`]).

pub mod model;
pub mod schedule;
pub mod service;
pub mod store;
