//! One module per v5 resource.

pub mod backup_accounts;
pub mod directory;
pub mod organizations;
pub mod token;
