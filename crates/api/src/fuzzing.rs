//! Fuzz targets of the API's readers of client input: the lenient JSON reader with the v5 bodies
//! it fills, the v5 date parser, and paging parameters. Each takes any bytes and panics only
//! when a promise is broken. The cargo-fuzz targets under `fuzz/` call them (feature
//! `fuzzing`); the property tests and the corpus replay below call them in `cargo test`.

// A fuzz target reports a broken promise by panicking: that is its job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use chrono::{Datelike, SubsecRound};
use serde_json::Value;
use uuid::Uuid;

use crate::ci_json;
use crate::dates::{iso8601, parse_v5_datetime};
use crate::error::ApiError;
use crate::paging::{
    page, stored_page, wildcard_match, PageRequest, QueryParams, MAX_LIMIT, MAX_OFFSET,
};
use crate::routes;

/// A request body: strict JSON reads as itself, and every v5 body type reads it or refuses it.
pub fn ci_json(data: &[u8]) {
    let lenient = ci_json::from_slice::<Value>(data);
    if let Ok(strict) = serde_json::from_slice::<Value>(data) {
        assert_eq!(lenient.as_ref(), Ok(&strict), "strict JSON reads as itself");
    }
    assert!(ci_json::without_trailing_commas(data).len() <= data.len());
    if let Ok(v) = lenient {
        let _ = ci_json::from_value::<routes::jobs::JobBody>(v.clone());
        let _ = ci_json::from_value::<Vec<routes::backup_accounts::BackupAccountBody>>(v.clone());
        let _ = ci_json::from_value::<routes::organizations::OrganizationBody>(v.clone());
        let _ = ci_json::from_value::<routes::repositories::RepositoryBody>(v.clone());
        let _ = ci_json::from_value::<routes::restore_sessions::ExploreBody>(v);
    }
}

/// A date as a client writes it, read in the time zone the first two bytes pick.
pub fn v5_datetime(data: &[u8]) {
    let (zone, text) = match data {
        [a, b, text @ ..] => (u16::from_le_bytes([*a, *b]), text),
        _ => (0, data),
    };
    let zones = chrono_tz::TZ_VARIANTS;
    v5_datetime_in(
        &String::from_utf8_lossy(text),
        zones[zone as usize % zones.len()],
    );
}

/// A date in `tz`: none, or one in .NET's range that reads back as itself once written.
pub fn v5_datetime_in(text: &str, tz: chrono_tz::Tz) {
    if let Some(t) = parse_v5_datetime(text, tz) {
        assert!((1..=9999).contains(&t.year()), "{text:?} -> {t}");
        // What the API writes back (to the microsecond) reads as that instant.
        let written = t.trunc_subsecs(6);
        assert_eq!(parse_v5_datetime(&iso8601(written), tz), Some(written));
    }
}

/// A query string: a 400, or a page request whose every page and link of a list of any
/// length can be built; its values as name filters behave as globs.
pub fn paging(data: &[u8]) {
    let Ok(raw) = serde_urlencoded::from_bytes::<HashMap<String, String>>(data) else {
        return;
    };
    let listed = data.len() % 64;
    let total = data
        .iter()
        .fold(0u64, |t, b| t.rotate_left(5) ^ u64::from(*b));
    paging_query(raw, listed, total);
}

/// [`paging`] of parsed parameters, over a cached list of `listed` items and a stored list of
/// `total`.
pub fn paging_query(raw: HashMap<String, String>, listed: usize, total: u64) {
    // Filters match names with the same globs: `*` matches anything, a name matches itself.
    for v in raw.values() {
        assert!(wildcard_match("*", v), "{v:?}");
        assert!(wildcard_match(v, v), "{v:?}");
    }
    let req = match PageRequest::parse(&QueryParams::new(raw)) {
        Ok(req) => req,
        Err(ApiError::BadRequest(_)) => return,
        Err(other) => panic!("not a 400: {other:?}"),
    };
    assert!((1..=MAX_LIMIT).contains(&req.limit));
    assert!(req.offset <= MAX_OFFSET);
    let url = "https://h/v5/x";
    let stored = stored_page(Vec::<u8>::new(), total, &req, url);
    let items: Vec<usize> = (0..listed).collect();
    let cached = page(&items, &req, Uuid::nil(), url, &[("name", "a&b")], |i| *i);
    assert_eq!(
        cached.results.len(),
        listed.saturating_sub(req.offset).min(req.limit)
    );
    for links in [&stored.links, &cached.links] {
        assert!(links
            .values()
            .all(|l| l.href.starts_with("https://h/v5/x?offset=")));
        assert_eq!(links.contains_key("prev"), req.offset > 0);
    }
    assert_eq!(
        cached.links.contains_key("next"),
        req.offset + req.limit < listed
    );
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn corpus_replays() {
        use m365backup_core::fuzzing::replay_corpus;
        replay_corpus("ci_json", ci_json);
        replay_corpus("v5_datetime", v5_datetime);
        replay_corpus("paging", paging);
    }

    proptest! {
        #[test]
        fn any_body(data in prop::collection::vec(any::<u8>(), 0..300)) {
            ci_json(&data);
        }

        #[test]
        fn any_query(data in "[a-zA-Z=&%0-9+ -]{0,60}") {
            paging(data.as_bytes());
        }
    }
}
