//! Dates as the vendor writes them: ISO 8601 UTC with fractional seconds (7 digits, .NET style).

use chrono::{DateTime, SecondsFormat, Utc};

pub fn iso8601(t: DateTime<Utc>) -> String {
    let micros = t.to_rfc3339_opts(SecondsFormat::Micros, true);
    // .NET prints 100-ns ticks: seven fractional digits.
    micros.replacen('Z', "0Z", 1)
}

/// Years a v5 date may fall in: .NET's `DateTime` range, which every store and client of the
/// vendor's API can hold (chrono's own range reaches years PostgreSQL refuses).
const YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

/// A point in time as v5 clients write it: ISO 8601 (with `Z` or an offset, or without one),
/// `yyyy-MM-dd HH:mm:ss[.SSS]`, `yyyy.MM.dd HH:mm[:ss]`, or a date alone; times without an
/// offset are read in `tz` (the server's time zone). `None` for anything else: years outside
/// 1–9999, and leap seconds (`:60`), which .NET's `DateTime` cannot hold either.
pub fn parse_v5_datetime(raw: &str, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    use chrono::{Datelike, Timelike};
    parse_any_year(raw, tz).filter(|t| YEARS.contains(&t.year()) && t.nanosecond() < 1_000_000_000)
}

fn parse_any_year(raw: &str, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    use chrono::{NaiveDateTime, TimeZone};
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    const NAIVE: [&str; 8] = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y.%m.%d %H:%M:%S%.f",
        "%Y.%m.%d %H:%M",
        "%m/%d/%Y %H:%M:%S",
        "%m/%d/%Y %H:%M",
    ];
    let naive = NAIVE
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok())
        .or_else(|| parse_v5_day(raw).and_then(|d| d.and_hms_opt(23, 59, 59)))?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// A date alone, as v5 clients write it: `yyyy-MM-dd`, `yyyy.MM.dd` or `MM/dd/yyyy`.
pub fn parse_v5_day(raw: &str) -> Option<chrono::NaiveDate> {
    ["%Y-%m-%d", "%Y.%m.%d", "%m/%d/%Y"]
        .iter()
        .find_map(|f| chrono::NaiveDate::parse_from_str(raw.trim(), f).ok())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    #[test]
    fn seven_digits() {
        let t = chrono::Utc
            .with_ymd_and_hms(2017, 5, 26, 22, 7, 39)
            .unwrap()
            + chrono::Duration::microseconds(436119);
        assert_eq!(super::iso8601(t), "2017-05-26T22:07:39.4361190Z");
    }

    #[test]
    fn v5_date_forms() {
        use super::parse_v5_datetime as p;
        let utc = chrono_tz::Tz::UTC;
        let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        assert_eq!(
            p("2026-03-01T10:20:30.5Z", utc),
            Some(at("2026-03-01T10:20:30.5Z"))
        );
        assert_eq!(
            p("2026-03-01T10:20:30+02:00", utc),
            Some(at("2026-03-01T08:20:30Z"))
        );
        assert_eq!(
            p("2026-03-01 10:20:30.123", utc),
            Some(at("2026-03-01T10:20:30.123Z"))
        );
        assert_eq!(p("2026.03.01 10:20", utc), Some(at("2026-03-01T10:20:00Z")));
        assert_eq!(
            p("2026.03.01 10:20:05", utc),
            Some(at("2026-03-01T10:20:05Z"))
        );
        let berlin: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(
            p("2026-03-01 10:20:30", berlin),
            Some(at("2026-03-01T09:20:30Z"))
        );
        assert_eq!(p("yesterday", utc), None);
        assert_eq!(p("2026-13-01 10:00", utc), None);
    }

    /// Found by the property tests (`1/1/-0`): chrono reads years 0, negative ones and ones up
    /// to ±262143 (`%Y` takes a sign and any number of digits), which PostgreSQL cannot always
    /// store, .NET clients cannot read, and the API wrote back in a form it did not read.
    #[test]
    fn years_outside_dotnet_range_and_leap_seconds_are_refused() {
        use super::parse_v5_datetime as p;
        let utc = chrono_tz::Tz::UTC;
        assert_eq!(p("1/1/-0", utc), None);
        assert_eq!(p("-262143-01-01 00:00", utc), None);
        assert_eq!(p("+262142-12-31 23:59:59", utc), None);
        assert_eq!(p("10000-01-01", utc), None);
        assert_eq!(p("0000-01-01T00:00:00Z", utc), None);
        assert!(p("0001-01-01T00:00:00Z", utc).is_some());
        // Found by the fuzzer: a leap second read in a zone whose offset has seconds (Louisville's
        // local mean time, -5:43:02) fell at a UTC second other than :59, written back as a
        // different instant.
        let louisville: chrono_tz::Tz = "America/Louisville".parse().unwrap();
        assert_eq!(p("02-03-01 20:20:60.123", louisville), None);
        assert_eq!(p("2016-12-31T23:59:60Z", utc), None);
        assert!(p("9999-12-31T23:59:59.9999999Z", utc).is_some());
    }

    mod properties {
        use chrono::{DateTime, Datelike, TimeZone, Utc};
        use proptest::prelude::*;

        use super::super::{iso8601, parse_v5_datetime};

        fn time_zone() -> impl Strategy<Value = chrono_tz::Tz> {
            (0..chrono_tz::TZ_VARIANTS.len()).prop_map(|i| chrono_tz::TZ_VARIANTS[i])
        }

        /// Text shaped like the forms the parser tries, with out-of-range fields, signs, long
        /// years, offsets and stray characters, so the search reaches past the first `%Y`.
        fn date_like() -> impl Strategy<Value = String> {
            prop_oneof![
                "[+-]?[0-9]{1,7}[-./][0-9]{1,3}[-./][0-9]{1,3}([T ][0-9]{1,3}:[0-9]{1,3}(:[0-9]{1,3}(\\.[0-9]{0,12})?)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?",
                "[0-9]{1,3}/[0-9]{1,3}/[+-]?[0-9]{1,7}( [0-9]{1,2}:[0-9]{1,2}(:[0-9]{1,2})?)?",
                "\\PC{0,40}",
            ]
        }

        proptest! {
            /// Any text: no panic, and a date only within .NET's range that reads back.
            #[test]
            fn any_text_is_a_date_in_range_or_none(raw in date_like(), tz in time_zone()) {
                crate::fuzzing::v5_datetime_in(&raw, tz);
            }

            /// Every instant the server writes is read back as itself, in any time zone.
            #[test]
            fn written_dates_read_back(micros in DateTime::<Utc>::MIN_UTC.timestamp_micros()..=DateTime::<Utc>::MAX_UTC.timestamp_micros(), tz in time_zone()) {
                let t = Utc.timestamp_micros(micros).single().expect("in chrono's range");
                let read = parse_v5_datetime(&iso8601(t), tz);
                if (1..=9999).contains(&t.year()) {
                    prop_assert_eq!(read, Some(t));
                } else {
                    prop_assert_eq!(read, None);
                }
            }
        }
    }
}
