//! Dates as the vendor writes them: ISO 8601 UTC with fractional seconds (7 digits, .NET style).

use chrono::{DateTime, SecondsFormat, Utc};

pub fn iso8601(t: DateTime<Utc>) -> String {
    let micros = t.to_rfc3339_opts(SecondsFormat::Micros, true);
    // .NET prints 100-ns ticks: seven fractional digits.
    micros.replacen('Z', "0Z", 1)
}

/// A point in time as v5 clients write it: ISO 8601 (with `Z` or an offset, or without one),
/// `yyyy-MM-dd HH:mm:ss[.SSS]`, `yyyy.MM.dd HH:mm[:ss]`, or a date alone; times without an
/// offset are read in `tz` (the server's time zone).
pub fn parse_v5_datetime(raw: &str, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
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
}
