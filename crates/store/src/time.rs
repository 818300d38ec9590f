//! Times are stored as Unix milliseconds: one portable integer column type in both backends.

use chrono::{DateTime, TimeZone, Utc};

pub(crate) fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}
