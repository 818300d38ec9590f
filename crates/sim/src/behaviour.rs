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
    /// How long an upload session lives without a fragment (each fragment extends it); an
    /// expired session answers `404 itemNotFound`.
    pub upload_session_lifetime_secs: u64,
    /// Largest simple upload (`PUT …/content`), bytes: Graph's 250 MB; larger is `413`.
    pub simple_upload_max_bytes: u64,
    /// An upload URL refuses requests that carry an `Authorization` header with `401`, as
    /// Graph documents it may.
    pub upload_url_rejects_authorization: bool,
    /// Every fragment of an upload session but the last must be a multiple of 320 KiB, which
    /// Graph requires ("errors committing some files" otherwise).
    pub strict_fragment_sizes: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            // OneDrive keeps change history for about 30 days.
            delta_token_max_age_secs: 30 * 86_400,
            download_url_lifetime_secs: 15 * 60,
            ignore_range: false,
            upload_session_lifetime_secs: 3600,
            simple_upload_max_bytes: 250 << 20,
            upload_url_rejects_authorization: true,
            strict_fragment_sizes: true,
        }
    }
}
