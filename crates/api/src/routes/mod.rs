//! One module per v5 resource.

pub mod audit;
pub mod backup_accounts;
pub mod directory;
pub mod job_sessions;
pub mod jobs;
pub mod organizations;
pub mod protected;
pub mod proxies;
pub mod repositories;
pub mod restore_actions;
pub mod restore_browse;
pub mod restore_sessions;
pub mod restore_writes;
pub mod sites;
pub mod token;
