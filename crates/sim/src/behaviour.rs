//! How the simulated services behave besides throttling; changed at run time through
//! `/_sim/behaviour`.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Behaviour {
    /// A delta token (a `deltaLink` or a `nextLink`) older than this answers `410 Gone`
    /// (`resyncRequired`); 0: tokens never expire.
    pub delta_token_max_age_secs: u64,
    /// How long a download URL (`@microsoft.graph.downloadUrl`, the 302 of `/content`) works.
    pub download_url_lifetime_secs: u64,
    /// The download service answers `200` with the whole file even when a `Range` is asked,
    /// as it may.
    pub ignore_range: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            // OneDrive keeps change history for about 30 days.
            delta_token_max_age_secs: 30 * 86_400,
            download_url_lifetime_secs: 15 * 60,
            ignore_range: false,
        }
    }
}
