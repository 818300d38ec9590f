//! Dates as the vendor writes them: ISO 8601 UTC with fractional seconds (7 digits, .NET style).

use chrono::{DateTime, SecondsFormat, Utc};

pub fn iso8601(t: DateTime<Utc>) -> String {
    let micros = t.to_rfc3339_opts(SecondsFormat::Micros, true);
    // .NET prints 100-ns ticks: seven fractional digits.
    micros.replacen('Z', "0Z", 1)
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
}
