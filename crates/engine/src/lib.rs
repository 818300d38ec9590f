//! The backup engine. For now its first half: [`probe`] enumerates every OneDrive and
//! SharePoint document library of an organization with delta queries and streams every file's
//! content through the account pool, hashing and counting it (storage is the next step).

pub mod backup;
pub mod discovery;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod pool_builder;
pub mod probe;
pub mod restore;
pub mod scheduler;
