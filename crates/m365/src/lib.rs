//! The Microsoft 365 client of m365backup: the real identity-platform and Graph v1.0 client,
//! used against Microsoft's cloud in production and against m365sim in tests (base URLs only).
//!
//! - [`identity`]: token acquisition (client credentials, password grant) and a token cache
//!   that renews tokens before they expire.
//! - [`graph`]: Graph calls with `@odata.nextLink` paging, `Retry-After` honoured, timeouts, a
//!   descriptive `User-Agent`, and Microsoft's error bodies mapped to [`M365Error`].
//! - [`directory`]: the typed directory calls (organization, users, groups, members).
//! - [`paging`]: the [`paging::Pager`] every loop over `@odata.nextLink` walks through (a page
//!   cap, no link to the same page).

pub mod directory;
pub mod endpoints;
pub mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod graph;
pub mod identity;
pub mod paging;
pub mod pool;
pub mod response;

pub use endpoints::Endpoints;
pub use error::M365Error;
pub use graph::GraphClient;
pub use identity::{Credentials, TokenSource};

/// `User-Agent` of every request ("decorated traffic", as Microsoft asks of ISVs).
pub const USER_AGENT: &str = concat!("ISV|m365backup|m365backup/", env!("CARGO_PKG_VERSION"));
