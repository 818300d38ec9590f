//! Fuzz target of the core's parser of client input: composite ids (a directory object's
//! GUID and its on-premises GUID, as URL paths carry them). It takes any bytes and panics only
//! when a promise is broken. The cargo-fuzz target under `fuzz/` calls it (feature `fuzzing`);
//! the property tests and the corpus replay in `cargo test` call it too.

// A fuzz target reports a broken promise by panicking: that is its job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::directory::{composite_id as compose, parse_composite_id};

/// Any text: an id only for 36 or 72 characters, and the same id written back reads as itself.
pub fn composite_id(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Some(id) = parse_composite_id(&text) {
        assert!(matches!(text.len(), 36 | 72), "{text:?}");
        assert_eq!(parse_composite_id(&compose(id, None)), Some(id));
        assert_eq!(parse_composite_id(&id.to_string()), Some(id));
    }
}

/// Runs `check` on every input of `fuzz/corpus/<target>/` (what the fuzzers kept, and every
/// crash they found): the regression tests of each crate's fuzz targets.
pub fn replay_corpus(target: &str, check: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let files = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut replayed = 0;
    for f in files {
        check(&std::fs::read(f.unwrap().path()).unwrap());
        replayed += 1;
    }
    assert!(replayed > 0, "{} is empty", dir.display());
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    #[test]
    fn corpus_replays() {
        super::replay_corpus("composite_id", super::composite_id);
    }

    proptest! {
        #[test]
        fn any_bytes(data in prop::collection::vec(any::<u8>(), 0..80)) {
            super::composite_id(&data);
        }
    }
}
