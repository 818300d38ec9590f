//! The `Range` header of a download (RFC 9110 §14): one byte range, `bytes=a-b`, `bytes=a-` or
//! `bytes=-n`. Several ranges or another unit are ignored (the whole content is sent), as the
//! RFC allows; a range wholly outside the content is 416.

use std::ops::Range;

use axum::http::{header, HeaderMap};

#[derive(Debug, PartialEq, Eq)]
pub enum ByteRange {
    Whole,
    /// `start..end` (end exclusive).
    Part(Range<u64>),
    Unsatisfiable,
}

pub fn parse_range(headers: &HeaderMap, size: u64) -> ByteRange {
    let Some(raw) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return ByteRange::Whole;
    };
    let Some(spec) = raw.trim().strip_prefix("bytes=") else {
        return ByteRange::Whole;
    };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let range = match (first.parse::<u64>().ok(), last.parse::<u64>().ok()) {
        // `bytes=-n`: the last n bytes.
        (None, Some(n)) if first.is_empty() => {
            if n == 0 || size == 0 {
                return ByteRange::Unsatisfiable;
            }
            size.saturating_sub(n)..size
        }
        (Some(a), None) if last.is_empty() => a..size,
        (Some(a), Some(b)) if a <= b => a..b.saturating_add(1).min(size),
        _ => return ByteRange::Whole,
    };
    if range.start >= size {
        ByteRange::Unsatisfiable
    } else {
        ByteRange::Part(range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &str, size: u64) -> ByteRange {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, v.parse().unwrap());
        parse_range(&h, size)
    }

    #[test]
    fn the_forms_of_one_range() {
        assert_eq!(parse_range(&HeaderMap::new(), 10), ByteRange::Whole);
        assert_eq!(range("bytes=0-3", 10), ByteRange::Part(0..4));
        assert_eq!(range("bytes=5-", 10), ByteRange::Part(5..10));
        assert_eq!(range("bytes=-3", 10), ByteRange::Part(7..10));
        assert_eq!(range("bytes=-30", 10), ByteRange::Part(0..10));
        assert_eq!(range("bytes=8-100", 10), ByteRange::Part(8..10));
        assert_eq!(range("bytes=10-", 10), ByteRange::Unsatisfiable);
        assert_eq!(range("bytes=-0", 10), ByteRange::Unsatisfiable);
        assert_eq!(range("bytes=0-", 0), ByteRange::Unsatisfiable);
        // Ignored: several ranges, other units, nonsense, reversed.
        assert_eq!(range("bytes=0-1,4-5", 10), ByteRange::Whole);
        assert_eq!(range("items=0-1", 10), ByteRange::Whole);
        assert_eq!(range("bytes=x-y", 10), ByteRange::Whole);
        assert_eq!(range("bytes=5-2", 10), ByteRange::Whole);
    }
}
