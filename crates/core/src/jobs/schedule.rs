//! A job's schedule as the v5 API describes it (`schedulePolicy`), and the arithmetic of its
//! next run: daily at a time of the server's time zone on chosen days, or periodically every
//! few minutes or hours, optionally only inside a weekly backup window.
//!
//! Daily times are wall-clock times of the configured time zone: across a daylight-saving
//! change a 02:30 run happens at the first valid instant after the skipped hour, and once (the
//! earlier) when the hour repeats. Periodic runs are aligned to the zone's midnight (every 15
//! minutes: :00, :15, :30, :45). The backup window is 168 hours starting Sunday 00:00 at a fixed
//! `minuteOffset` from UTC, as the vendor defines it.

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScheduleType {
    Periodically,
    Daily,
    ManualOnly,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeriodicInterval {
    Minutes5,
    Minutes10,
    Minutes15,
    Minutes30,
    Hours1,
    Hours2,
    Hours4,
    Hours8,
}

impl PeriodicInterval {
    pub fn minutes(self) -> i64 {
        match self {
            Self::Minutes5 => 5,
            Self::Minutes10 => 10,
            Self::Minutes15 => 15,
            Self::Minutes30 => 30,
            Self::Hours1 => 60,
            Self::Hours2 => 120,
            Self::Hours4 => 240,
            Self::Hours8 => 480,
        }
    }
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

impl DailyType {
    fn includes(self, day: chrono::Weekday) -> bool {
        use chrono::Weekday::*;
        match self {
            Self::Everyday => true,
            Self::Workdays => !matches!(day, Sat | Sun),
            Self::Weekends => matches!(day, Sat | Sun),
            Self::Monday => day == Mon,
            Self::Tuesday => day == Tue,
            Self::Wednesday => day == Wed,
            Self::Thursday => day == Thu,
            Self::Friday => day == Fri,
            Self::Saturday => day == Sat,
            Self::Sunday => day == Sun,
        }
    }
}

/// Hours of the week in which a job may run: 168 flags from Sunday 00:00, at `minute_offset`
/// minutes from UTC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupWindow {
    pub hours: Vec<bool>,
    pub minute_offset: i32,
}

pub const HOURS_PER_WEEK: usize = 168;

impl Default for BackupWindow {
    fn default() -> Self {
        Self {
            hours: vec![true; HOURS_PER_WEEK],
            minute_offset: 0,
        }
    }
}

impl BackupWindow {
    /// Whether the hour holding `at` is allowed.
    pub fn allows(&self, at: DateTime<Utc>) -> bool {
        let local = self.local(at);
        let day = local.weekday().num_days_from_sunday() as usize;
        let index = day * 24 + local.hour() as usize;
        self.hours.get(index).copied().unwrap_or(false)
    }

    /// `at` on the window's clock (UTC shifted by the offset).
    fn local(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        at + Duration::minutes(i64::from(self.minute_offset))
    }

    /// The end of the allowed stretch holding `at` (when a running job must stop), or `None`
    /// when every hour is allowed.
    pub fn closes_after(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.hours.iter().all(|&h| h) {
            return None;
        }
        // The start of the window-clock hour holding `at`.
        let into_hour = self.local(at).timestamp().rem_euclid(3600);
        let mut hour_start = at - Duration::seconds(into_hour);
        for _ in 0..=HOURS_PER_WEEK {
            if !self.allows(hour_start) {
                return Some(hour_start.max(at));
            }
            hour_start += Duration::hours(1);
        }
        None
    }
}

/// The `schedulePolicy` of a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulePolicy {
    pub kind: ScheduleType,
    pub schedule_enabled: bool,
    pub periodically_every: PeriodicInterval,
    pub daily_type: DailyType,
    pub daily_time: NaiveTime,
    pub retry_enabled: bool,
    pub retry_number: u32,
    /// Minutes between a failed run and its retry.
    pub retry_wait_interval: u32,
    pub backup_window_enabled: bool,
    pub backup_window: BackupWindow,
}

impl Default for SchedulePolicy {
    /// The vendor's defaults: daily at 22:00 every day, three retries ten minutes apart.
    fn default() -> Self {
        Self {
            kind: ScheduleType::Daily,
            schedule_enabled: true,
            periodically_every: PeriodicInterval::Hours1,
            daily_type: DailyType::Everyday,
            daily_time: NaiveTime::from_hms_opt(22, 0, 0).unwrap_or_default(),
            retry_enabled: true,
            retry_number: 3,
            retry_wait_interval: 10,
            backup_window_enabled: false,
            backup_window: BackupWindow::default(),
        }
    }
}

/// A schedule as a client sends it: the fields present replace those of a base policy (the
/// defaults for a new job, the current policy when a job is edited).
#[derive(Clone, Debug, Default)]
pub struct SchedulePatch {
    pub kind: Option<ScheduleType>,
    pub schedule_enabled: Option<bool>,
    pub periodically_every: Option<PeriodicInterval>,
    pub daily_type: Option<DailyType>,
    pub daily_time: Option<NaiveTime>,
    pub retry_enabled: Option<bool>,
    pub retry_number: Option<u32>,
    pub retry_wait_interval: Option<u32>,
    pub backup_window_enabled: Option<bool>,
    pub backup_window: Option<BackupWindow>,
}

/// The vendor's bounds: up to 777 retries, up to 999 minutes apart; offsets within ±14 hours.
pub const MAX_RETRIES: u32 = 777;
pub const MAX_RETRY_WAIT: u32 = 999;
pub const MAX_OFFSET_MINUTES: i32 = 14 * 60;

impl SchedulePatch {
    /// `base` with this patch applied, or what is wrong (naming the field). A retry count or
    /// wait that is given must be in its bounds even while retries are off (the document says
    /// so, and a later `retryEnabled: true` alone would otherwise be refused for it).
    pub fn apply(self, base: SchedulePolicy) -> Result<SchedulePolicy, String> {
        if self
            .retry_number
            .is_some_and(|n| !(1..=MAX_RETRIES).contains(&n))
        {
            return Err(format!(
                "schedulePolicy.retryNumber must be between 1 and {MAX_RETRIES}"
            ));
        }
        if self
            .retry_wait_interval
            .is_some_and(|n| !(1..=MAX_RETRY_WAIT).contains(&n))
        {
            return Err(format!(
                "schedulePolicy.retryWaitInterval must be between 1 and {MAX_RETRY_WAIT} minutes"
            ));
        }
        let p = SchedulePolicy {
            kind: self.kind.unwrap_or(base.kind),
            schedule_enabled: self.schedule_enabled.unwrap_or(base.schedule_enabled),
            periodically_every: self.periodically_every.unwrap_or(base.periodically_every),
            daily_type: self.daily_type.unwrap_or(base.daily_type),
            daily_time: self.daily_time.unwrap_or(base.daily_time),
            retry_enabled: self.retry_enabled.unwrap_or(base.retry_enabled),
            retry_number: self.retry_number.unwrap_or(base.retry_number),
            retry_wait_interval: self.retry_wait_interval.unwrap_or(base.retry_wait_interval),
            backup_window_enabled: self
                .backup_window_enabled
                .unwrap_or(base.backup_window_enabled),
            backup_window: self.backup_window.unwrap_or(base.backup_window),
        };
        if p.retry_enabled && !(1..=MAX_RETRIES).contains(&p.retry_number) {
            return Err(format!(
                "schedulePolicy.retryNumber must be between 1 and {MAX_RETRIES}"
            ));
        }
        if p.retry_enabled && !(1..=MAX_RETRY_WAIT).contains(&p.retry_wait_interval) {
            return Err(format!(
                "schedulePolicy.retryWaitInterval must be between 1 and {MAX_RETRY_WAIT} minutes"
            ));
        }
        let w = &p.backup_window;
        if w.hours.len() != HOURS_PER_WEEK {
            return Err(format!(
                "schedulePolicy.backupWindowSettings.backupWindow must hold {HOURS_PER_WEEK} values (one per hour of the week from Sunday 00:00), not {}",
                w.hours.len()
            ));
        }
        if w.minute_offset.abs() > MAX_OFFSET_MINUTES {
            return Err(format!(
                "schedulePolicy.backupWindowSettings.minuteOffset must be within ±{MAX_OFFSET_MINUTES}"
            ));
        }
        if p.backup_window_enabled && !w.hours.iter().any(|&h| h) {
            return Err(
                "schedulePolicy.backupWindowSettings.backupWindow allows no hour at all".into(),
            );
        }
        Ok(p)
    }
}

/// How far ahead a next run is looked for (a window that never opens, a weekday that never
/// comes: nothing).
const LOOKAHEAD_DAYS: i64 = 15;

impl SchedulePolicy {
    /// Whether the policy schedules runs at all.
    pub fn is_scheduled(&self) -> bool {
        self.schedule_enabled && self.kind != ScheduleType::ManualOnly
    }

    fn window_allows(&self, at: DateTime<Utc>) -> bool {
        !self.backup_window_enabled || self.backup_window.allows(at)
    }

    /// When a run may start while the window is closed: the opening of the window, if any.
    pub fn window_closes_after(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.backup_window_enabled {
            self.backup_window.closes_after(at)
        } else {
            None
        }
    }

    /// The first scheduled run strictly after `after`, in time zone `tz`; `None` when the
    /// schedule is off or nothing is due within two weeks.
    pub fn next_run(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        if !self.is_scheduled() {
            return None;
        }
        match self.kind {
            ScheduleType::Daily => self.next_daily(after, tz),
            ScheduleType::Periodically => self.next_periodic(after, tz),
            ScheduleType::ManualOnly => None,
        }
    }

    fn next_daily(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let first_day = after.with_timezone(&tz).date_naive();
        (0..=LOOKAHEAD_DAYS)
            .filter_map(|d| first_day.checked_add_signed(Duration::days(d)))
            .filter(|day| self.daily_type.includes(day.weekday()))
            .filter_map(|day| wall_clock(tz, day, self.daily_time))
            .find(|&at| at > after && self.window_allows(at))
    }

    fn next_periodic(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let step = self.periodically_every.minutes();
        let mut day = after.with_timezone(&tz).date_naive();
        let last_day = day.checked_add_signed(Duration::days(LOOKAHEAD_DAYS))?;
        while day <= last_day {
            let midnight = wall_clock(tz, day, NaiveTime::MIN)?;
            let next_midnight = wall_clock(tz, day.succ_opt()?, NaiveTime::MIN)?;
            // The first slot of this day after `after`, then every `step` minutes.
            let mut slot = if after >= midnight {
                let since = (after - midnight).num_minutes();
                midnight + Duration::minutes((since / step + 1) * step)
            } else {
                midnight
            };
            while slot < next_midnight {
                if slot > after && self.window_allows(slot) {
                    return Some(slot);
                }
                slot += Duration::minutes(step);
            }
            day = day.succ_opt()?;
        }
        None
    }
}

/// The instant at which `tz`'s clocks show `time` on `day`: the earlier of two when the hour
/// repeats, the first instant after the gap when it is skipped.
pub fn wall_clock(tz: Tz, day: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    let naive = day.and_time(time);
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(early, _) => Some(early.with_timezone(&Utc)),
        LocalResult::None => {
            // Inside a skipped hour: the first minute whose clock time exists.
            (1..=180)
                .map(|m| naive + Duration::minutes(m))
                .find_map(|n| tz.from_local_datetime(&n).earliest())
                .map(|t| t.with_timezone(&Utc))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn daily(time: &str, days: DailyType) -> SchedulePolicy {
        SchedulePolicy {
            daily_time: time.parse().unwrap(),
            daily_type: days,
            ..SchedulePolicy::default()
        }
    }

    #[test]
    fn daily_runs_at_the_zones_wall_clock() {
        let p = daily("22:00:00", DailyType::Everyday);
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 2026-01-10 is a Saturday; Berlin is UTC+1 in winter.
        assert_eq!(
            p.next_run(utc("2026-01-10T12:00:00Z"), berlin),
            Some(utc("2026-01-10T21:00:00Z"))
        );
        // Exactly at the run: the next day's.
        assert_eq!(
            p.next_run(utc("2026-01-10T21:00:00Z"), berlin),
            Some(utc("2026-01-11T21:00:00Z"))
        );
        assert_eq!(
            p.next_run(utc("2026-01-10T12:00:00Z"), Tz::UTC),
            Some(utc("2026-01-10T22:00:00Z"))
        );
    }

    #[test]
    fn workdays_weekends_and_single_days() {
        // Saturday noon: the next workday run is Monday.
        let sat = utc("2026-01-10T12:00:00Z");
        assert_eq!(
            daily("08:00:00", DailyType::Workdays).next_run(sat, Tz::UTC),
            Some(utc("2026-01-12T08:00:00Z"))
        );
        assert_eq!(
            daily("08:00:00", DailyType::Weekends).next_run(sat, Tz::UTC),
            Some(utc("2026-01-11T08:00:00Z"))
        );
        assert_eq!(
            daily("08:00:00", DailyType::Wednesday).next_run(sat, Tz::UTC),
            Some(utc("2026-01-14T08:00:00Z"))
        );
    }

    #[test]
    fn daylight_saving_changes() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 2026-03-29: clocks jump from 02:00 to 03:00 CET→CEST. A 02:30 run happens at 03:00
        // CEST, 01:00 UTC.
        let p = daily("02:30:00", DailyType::Everyday);
        assert_eq!(
            p.next_run(utc("2026-03-28T12:00:00Z"), berlin),
            Some(utc("2026-03-29T01:00:00Z"))
        );
        // The day after, 02:30 CEST = 00:30 UTC.
        assert_eq!(
            p.next_run(utc("2026-03-29T02:00:00Z"), berlin),
            Some(utc("2026-03-30T00:30:00Z"))
        );
        // 2026-10-25: 02:30 happens twice; the run is the first (CEST, 00:30 UTC), once.
        assert_eq!(
            p.next_run(utc("2026-10-24T12:00:00Z"), berlin),
            Some(utc("2026-10-25T00:30:00Z"))
        );
        assert_eq!(
            p.next_run(utc("2026-10-25T00:30:00Z"), berlin),
            Some(utc("2026-10-26T01:30:00Z"))
        );
    }

    #[test]
    fn periodic_runs_are_aligned() {
        let p = SchedulePolicy {
            kind: ScheduleType::Periodically,
            periodically_every: PeriodicInterval::Minutes15,
            ..SchedulePolicy::default()
        };
        assert_eq!(
            p.next_run(utc("2026-01-10T12:07:13Z"), Tz::UTC),
            Some(utc("2026-01-10T12:15:00Z"))
        );
        assert_eq!(
            p.next_run(utc("2026-01-10T12:15:00Z"), Tz::UTC),
            Some(utc("2026-01-10T12:30:00Z"))
        );
        let every8 = SchedulePolicy {
            periodically_every: PeriodicInterval::Hours8,
            ..p.clone()
        };
        assert_eq!(
            every8.next_run(utc("2026-01-10T17:00:00Z"), Tz::UTC),
            Some(utc("2026-01-11T00:00:00Z"))
        );
        // Aligned to the zone's midnight: New York is UTC-5 in January.
        let ny: Tz = "America/New_York".parse().unwrap();
        assert_eq!(
            every8.next_run(utc("2026-01-10T06:00:00Z"), ny),
            Some(utc("2026-01-10T13:00:00Z"))
        );
    }

    #[test]
    fn the_backup_window_holds_runs() {
        // Allowed only 20:00–06:00 every day (UTC).
        let mut hours = vec![false; HOURS_PER_WEEK];
        for day in 0..7 {
            for h in (0..6).chain(20..24) {
                hours[day * 24 + h] = true;
            }
        }
        let window = BackupWindow {
            hours,
            minute_offset: 0,
        };
        let p = SchedulePolicy {
            kind: ScheduleType::Periodically,
            periodically_every: PeriodicInterval::Hours1,
            backup_window_enabled: true,
            backup_window: window.clone(),
            ..SchedulePolicy::default()
        };
        assert_eq!(
            p.next_run(utc("2026-01-10T07:30:00Z"), Tz::UTC),
            Some(utc("2026-01-10T20:00:00Z"))
        );
        assert_eq!(
            p.next_run(utc("2026-01-10T21:30:00Z"), Tz::UTC),
            Some(utc("2026-01-10T22:00:00Z"))
        );
        assert_eq!(
            p.window_closes_after(utc("2026-01-11T04:10:00Z")),
            Some(utc("2026-01-11T06:00:00Z"))
        );
        // A daily run outside the window is skipped until one falls inside.
        let d = SchedulePolicy {
            backup_window_enabled: true,
            backup_window: window.clone(),
            ..daily("12:00:00", DailyType::Everyday)
        };
        assert_eq!(d.next_run(utc("2026-01-10T07:30:00Z"), Tz::UTC), None);
        // The offset moves the window: with +60 minutes, local 20:00 is 19:00 UTC.
        let shifted = SchedulePolicy {
            backup_window: BackupWindow {
                minute_offset: 60,
                ..window
            },
            ..p
        };
        assert_eq!(
            shifted.next_run(utc("2026-01-10T07:30:00Z"), Tz::UTC),
            Some(utc("2026-01-10T19:00:00Z"))
        );
    }

    #[test]
    fn patches_apply_over_a_base_and_are_checked() {
        let p = SchedulePatch {
            kind: Some(ScheduleType::Periodically),
            retry_number: Some(5),
            ..SchedulePatch::default()
        }
        .apply(SchedulePolicy::default())
        .unwrap();
        assert_eq!(p.kind, ScheduleType::Periodically);
        assert_eq!(p.retry_number, 5);
        assert_eq!(p.daily_type, DailyType::Everyday);
        let bad_window = SchedulePatch {
            backup_window: Some(BackupWindow {
                hours: vec![true; 24],
                minute_offset: 0,
            }),
            ..SchedulePatch::default()
        };
        assert!(bad_window
            .apply(SchedulePolicy::default())
            .unwrap_err()
            .contains("168"));
        let closed = SchedulePatch {
            backup_window_enabled: Some(true),
            backup_window: Some(BackupWindow {
                hours: vec![false; HOURS_PER_WEEK],
                minute_offset: 0,
            }),
            ..SchedulePatch::default()
        };
        assert!(closed.apply(SchedulePolicy::default()).is_err());
        let retries = SchedulePatch {
            retry_number: Some(0),
            ..SchedulePatch::default()
        };
        assert!(retries.apply(SchedulePolicy::default()).is_err());
        // Given bounds hold while retries are off too.
        let off = SchedulePatch {
            retry_enabled: Some(false),
            retry_wait_interval: Some(1000),
            ..SchedulePatch::default()
        };
        assert!(off.apply(SchedulePolicy::default()).is_err());
    }

    #[test]
    fn manual_and_disabled_schedules_never_run() {
        let manual = SchedulePolicy {
            kind: ScheduleType::ManualOnly,
            ..SchedulePolicy::default()
        };
        assert_eq!(manual.next_run(utc("2026-01-10T07:30:00Z"), Tz::UTC), None);
        let off = SchedulePolicy {
            schedule_enabled: false,
            ..SchedulePolicy::default()
        };
        assert_eq!(off.next_run(utc("2026-01-10T07:30:00Z"), Tz::UTC), None);
    }
}
