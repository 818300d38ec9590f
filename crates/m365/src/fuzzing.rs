//! Fuzz target of the Microsoft 365 client's readers of answers: whatever a Graph or identity
//! endpoint sends is read as each type the client reads (collection pages of users, groups,
//! sites and organizations, error bodies, token answers, sign-in errors) and as a `Retry-After`
//! value; nothing panics, text passed on is safe and durations are bounded. It takes any bytes
//! and panics only when a promise is broken. The cargo-fuzz target under `fuzz/` calls it
//! (feature `fuzzing`); the property test and the corpus replay call it in `cargo test`; the
//! client against mutated m365sim answers is `tests/m365/mutated_sim.rs`.

// A fuzz target reports a broken promise by panicking: that is its job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::directory::{DirectoryGroup, DirectoryUser, GraphSite, TenantInfo};
use crate::graph::{ErrorEnvelope, Page};
use crate::identity::{AadError, TokenResponse};
use crate::response::{
    looks_like_aadsts, parse_retry_after, plain_code, quote, token_lifetime, MAX_QUOTED,
    MAX_RETRY_AFTER, MAX_TOKEN_LIFETIME, MIN_TOKEN_LIFETIME,
};

/// Any answer body, or header value.
pub fn graph_response(data: &[u8]) {
    if let Ok(page) = serde_json::from_slice::<Page<TenantInfo>>(data) {
        for t in &page.value {
            let _ = t.default_domain();
        }
    }
    let _ = serde_json::from_slice::<Page<DirectoryUser>>(data);
    let _ = serde_json::from_slice::<Page<DirectoryGroup>>(data);
    let _ = serde_json::from_slice::<Page<GraphSite>>(data);
    if let Ok(e) = serde_json::from_slice::<ErrorEnvelope>(data) {
        quoted(&e.error.message);
        let code = plain_code(&e.error.code);
        assert!(code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    }
    if let Ok(t) = serde_json::from_slice::<TokenResponse>(data) {
        let lifetime = token_lifetime(t.expires_in);
        assert!((MIN_TOKEN_LIFETIME..=MAX_TOKEN_LIFETIME).contains(&lifetime));
        let _ = t.access_token;
    }
    if let Ok(e) = serde_json::from_slice::<AadError>(data) {
        let _ = looks_like_aadsts(&e.error_description);
        quoted(&e.error_description);
        quoted(&e.error);
    }
    let text = String::from_utf8_lossy(data);
    if let Some(wait) = parse_retry_after(&text) {
        assert!(wait <= MAX_RETRY_AFTER);
    }
    quoted(&text);
}

/// Remote text as quoted to clients: no control character, a few hundred characters at most.
fn quoted(text: &str) {
    let q = quote(text);
    assert!(q.chars().count() <= MAX_QUOTED + 1);
    assert!(!q.chars().any(char::is_control));
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn corpus_replays() {
        m365backup_core::fuzzing::replay_corpus("graph_response", graph_response);
    }

    proptest! {
        #[test]
        fn any_bytes(data in prop::collection::vec(any::<u8>(), 0..300)) {
            graph_response(&data);
        }

        #[test]
        fn any_retry_after(text in "[ +-]?[0-9.eEinfINFaA]{0,12}") {
            graph_response(text.as_bytes());
        }
    }
}
