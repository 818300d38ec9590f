//! One module per v5 resource.

pub mod backup_accounts;
pub mod directory;
pub mod job_sessions;
pub mod jobs;
pub mod organizations;
pub mod protected;
pub mod proxies;
pub mod repositories;
pub mod sites;
pub mod token;
