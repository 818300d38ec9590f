//! Retention policies of a repository, as the v5 API names them:
//! - `SnapshotBased`: every item as it was at each restore point younger than the period;
//!   older restore points are removed.
//! - `ItemLevel`: an item version is kept while its last modification is younger than the
//!   period, in every restore point; folders stay while they hold something kept.

use chrono::{DateTime, Months, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetentionType {
    ItemLevel,
    SnapshotBased,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetentionPeriod {
    Days(u32),
    Months(u32),
    Years(u32),
    /// Keep forever.
    Keep,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    pub kind: RetentionType,
    pub period: RetentionPeriod,
}

impl RetentionPolicy {
    /// What is older than this goes; `None` when nothing ever does.
    pub fn cutoff(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.period {
            RetentionPeriod::Keep => None,
            RetentionPeriod::Days(d) => now.checked_sub_signed(TimeDelta::days(d.into())),
            RetentionPeriod::Months(m) => now.checked_sub_months(Months::new(m)),
            RetentionPeriod::Years(y) => now.checked_sub_months(Months::new(y.saturating_mul(12))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn cutoffs() {
        let now = Utc.with_ymd_and_hms(2026, 3, 31, 12, 0, 0).unwrap();
        let p = |period| RetentionPolicy {
            kind: RetentionType::SnapshotBased,
            period,
        };
        assert_eq!(
            p(RetentionPeriod::Days(31)).cutoff(now),
            Some(Utc.with_ymd_and_hms(2026, 2, 28, 12, 0, 0).unwrap())
        );
        assert_eq!(
            p(RetentionPeriod::Months(1)).cutoff(now),
            Some(Utc.with_ymd_and_hms(2026, 2, 28, 12, 0, 0).unwrap())
        );
        assert_eq!(
            p(RetentionPeriod::Years(3)).cutoff(now),
            Some(Utc.with_ymd_and_hms(2023, 3, 31, 12, 0, 0).unwrap())
        );
        assert_eq!(p(RetentionPeriod::Keep).cutoff(now), None);
    }
}
