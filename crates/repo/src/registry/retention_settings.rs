//! A repository's retention as the v5 API describes it, and the policy it means.

use chrono::{Datelike, NaiveTime, Weekday};
use serde::{Deserialize, Serialize};

use crate::retention::{RetentionPeriod, RetentionPolicy, RetentionType};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetentionPeriodType {
    Daily,
    Monthly,
    Yearly,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum YearlyRetentionPeriod {
    Year1,
    Years2,
    Years3,
    Years5,
    Years7,
    Years10,
    Years25,
    Keep,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetentionFrequencyType {
    Daily,
    Monthly,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DailyType {
    Everyday,
    Workdays,
    Weekends,
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionSettings {
    pub retention_type: RetentionType,
    pub retention_period_type: RetentionPeriodType,
    /// Days, for `Daily`.
    pub daily_retention_period: u32,
    /// Months, for `Monthly`.
    pub monthly_retention_period: u32,
    pub yearly_retention_period: YearlyRetentionPeriod,
    pub retention_frequency_type: RetentionFrequencyType,
    /// When retention runs (server time).
    pub daily_time: NaiveTime,
    pub daily_type: DailyType,
}

/// 18:00 (checked at compile time).
const DAILY_TIME: NaiveTime = NaiveTime::from_hms_opt(18, 0, 0).expect("a valid time");

impl Default for RetentionSettings {
    /// The vendor's defaults: snapshot-based, three years, applied every day at 18:00.
    fn default() -> Self {
        Self {
            retention_type: RetentionType::SnapshotBased,
            retention_period_type: RetentionPeriodType::Yearly,
            daily_retention_period: 7,
            monthly_retention_period: 1,
            yearly_retention_period: YearlyRetentionPeriod::Years3,
            retention_frequency_type: RetentionFrequencyType::Daily,
            daily_time: DAILY_TIME,
            daily_type: DailyType::Everyday,
        }
    }
}

impl RetentionSettings {
    pub fn policy(&self) -> RetentionPolicy {
        let period = match self.retention_period_type {
            RetentionPeriodType::Daily => RetentionPeriod::Days(self.daily_retention_period),
            RetentionPeriodType::Monthly => RetentionPeriod::Months(self.monthly_retention_period),
            RetentionPeriodType::Yearly => match self.yearly_retention_period {
                YearlyRetentionPeriod::Year1 => RetentionPeriod::Years(1),
                YearlyRetentionPeriod::Years2 => RetentionPeriod::Years(2),
                YearlyRetentionPeriod::Years3 => RetentionPeriod::Years(3),
                YearlyRetentionPeriod::Years5 => RetentionPeriod::Years(5),
                YearlyRetentionPeriod::Years7 => RetentionPeriod::Years(7),
                YearlyRetentionPeriod::Years10 => RetentionPeriod::Years(10),
                YearlyRetentionPeriod::Years25 => RetentionPeriod::Years(25),
                YearlyRetentionPeriod::Keep => RetentionPeriod::Keep,
            },
        };
        RetentionPolicy {
            kind: self.retention_type,
            period,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(1..=36500).contains(&self.daily_retention_period) {
            return Err("dailyRetentionPeriod must be between 1 and 36500 days".into());
        }
        if !(1..=1200).contains(&self.monthly_retention_period) {
            return Err("monthlyRetentionPeriod must be between 1 and 1200 months".into());
        }
        Ok(())
    }

    /// Whether retention is due on this day (by `dailyType`; monthly frequency: the first day).
    pub fn runs_on(&self, day: chrono::NaiveDate) -> bool {
        if self.retention_frequency_type == RetentionFrequencyType::Monthly {
            return day.day() == 1;
        }
        let wd = day.weekday();
        match self.daily_type {
            DailyType::Everyday => true,
            DailyType::Workdays => !matches!(wd, Weekday::Sat | Weekday::Sun),
            DailyType::Weekends => matches!(wd, Weekday::Sat | Weekday::Sun),
            DailyType::Monday => wd == Weekday::Mon,
            DailyType::Tuesday => wd == Weekday::Tue,
            DailyType::Wednesday => wd == Weekday::Wed,
            DailyType::Thursday => wd == Weekday::Thu,
            DailyType::Friday => wd == Weekday::Fri,
            DailyType::Saturday => wd == Weekday::Sat,
            DailyType::Sunday => wd == Weekday::Sun,
        }
    }
}
