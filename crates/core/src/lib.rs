//! The domain core of m365backup: validated types and the services that apply the rules.
//!
//! This crate knows nothing about HTTP or SQL. Persistence is reached through the traits in
//! [`store`], implemented by the `m365backup-store` crate; the HTTP layer lives in `m365backup-api`.

pub mod audit;
pub mod auth;
pub mod backup_accounts;
pub mod crypto;
pub mod directory;
pub mod directory_service;
pub mod endpoint_policy;
pub mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod ids;
pub mod jobs;
pub mod licensing;
pub mod log_text;
pub mod operators;
pub mod organization_service;
pub mod organizations;
pub mod password;
pub mod proxies;
pub mod restore;
pub mod secret;
pub mod signin_guard;
pub mod store;
pub mod token;
pub mod token_cache;

pub use error::{BoxError, Chain, CoreError, StoreError};
pub use secret::Secret;
