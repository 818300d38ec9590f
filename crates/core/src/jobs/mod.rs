//! Backup jobs: what a job backs up and when ([`model`], [`schedule`]).

pub mod model;
pub mod schedule;
