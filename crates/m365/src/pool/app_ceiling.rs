//! The app's budget in a tenant, as the pool sees it. Microsoft throttles an app per tenant
//! across all its users, so past some number of backup accounts the app's budget, not the
//! accounts', caps a backup.
//!
//! The budget shows itself in `RateLimit-*` headers once 80 % of it is used (`Remaining` is what
//! is left). The pool then holds that remainder near the middle of the visible band: it learns
//! the rate at which the budget refills from two readings and the units it spent in between, and
//! paces itself at that rate, faster while the remainder is above the target and slower below
//! it. While answers come without headers there is room, and the pace climbs. An app-level
//! throttle pauses the whole pool: every request sent into the block would extend it.
//!
//! Microsoft sends the headers only to app-only calls: backup accounts' delegated calls never
//! see them, so an answer without headers says nothing about the budget unless calls of its
//! kind have shown headers before. Without any headers the pool is *blind*: it learns the
//! budget from app throttles alone. The pace the pool had when the app was throttled is a
//! ceiling's upper bound; the pool drops to 90 % of it, recovers towards 97 % within seconds
//! and then probes upwards, slowly at first (so app throttles stay rare) and faster as time
//! passes without one (so a ceiling learned by mistake lets go). Each app throttle that finds
//! the ceiling where the last one did doubles the quiet time before the probing starts: a
//! probe that overshoots costs a pause of the whole pool (and the refused calls count against
//! the budget too), so a ceiling confirmed again and again is probed more and more rarely.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One `RateLimit-Limit` / `-Remaining` / `-Reset` reading.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimitReading {
    pub limit: f64,
    pub remaining: f64,
    pub reset_secs: Option<f64>,
}

/// Where the pool holds the remainder, as a share of the limit (headers come at ≤ 20 %).
const TARGET_SHARE: f64 = 0.1;
/// A remainder off target is brought back in about this long.
const CORRECTION_SECS: f64 = 1.0;
/// Pace gained per second while answers show room (no headers), as a share of the estimate.
const CLIMB_PER_SEC: f64 = 0.05;
/// The pool-wide bucket holds this much of a second's pace: bursts stay small against the band.
const BURST_SECS: f64 = 0.1;
/// Two readings measure the refill rate when they are this far apart...
const FLOW_SPAN: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(4);
/// ...and both leave at most this share of the budget (far from full, so none of the refill
/// was lost to the budget's cap in between).
const FLOW_MAX_SHARE: f64 = 0.5;
/// Weight of a new flow measurement in the estimate.
const FLOW_WEIGHT: f64 = 0.3;
/// A throttle is the app's when the last reading left less than this share of its budget.
const EXHAUSTED_SHARE: f64 = 0.05;
/// Blind: after an app throttle, the pace drops to this share of the pace that was too much...
const BLIND_DROP: f64 = 0.9;
/// ...recovers towards this share of it (time constant [`BLIND_RECOVERY_SECS`])...
const BLIND_PLATEAU: f64 = 0.97;
const BLIND_RECOVERY_SECS: f64 = 2.0;
/// ...and after [`BLIND_PROBE_AFTER_SECS`] probes upwards, slowly at first and faster the
/// longer no app throttle comes (this share of it, times the seconds squared), so a ceiling
/// that was too low does not hold the pool for long.
const BLIND_PROBE: f64 = 0.0005;
const BLIND_PROBE_AFTER_SECS: f64 = 10.0;
/// An app throttle at a pace within these shares of the last one's peak found the same
/// ceiling...
const BLIND_SAME_CEILING: std::ops::RangeInclusive<f64> = 0.9..=1.1;
/// ...and doubles the quiet time before probing, up to this many times (160 s).
const BLIND_MAX_CONFIRMED: u32 = 4;

/// What an app throttle taught a pool that has never seen `RateLimit-*` headers.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Blind {
    /// The pool's pace when the app was throttled (units/s).
    peak: f64,
    /// When the pause that followed ended.
    since: Instant,
    /// App throttles in a row that found the ceiling where the one before had it.
    confirmed: u32,
}

impl Blind {
    /// What an app throttle at a pace of `measured` units/s teaches, after `last` (if any);
    /// `full`: the pace was measured over a whole span without a pause. A pace measured right
    /// after a pause may be low for other reasons: then the peak falls by 5 % at most. A whole
    /// span's pace is the bound: the first peak, measured on a budget that starts full, is
    /// often far too high, and coming down from it 5 % a throttle cost a pause every few
    /// seconds for half a minute.
    fn after(last: Option<Blind>, measured: f64, full: bool, since: Instant) -> Self {
        let Some(last) = last else {
            return Self {
                peak: measured,
                since,
                confirmed: 0,
            };
        };
        let confirmed = if BLIND_SAME_CEILING.contains(&(measured / last.peak)) {
            (last.confirmed + 1).min(BLIND_MAX_CONFIRMED)
        } else {
            0
        };
        Self {
            peak: if full {
                measured
            } else {
                measured.max(0.95 * last.peak)
            },
            since,
            confirmed,
        }
    }

    /// How long the pace stays at its plateau before probing upwards.
    fn quiet_secs(&self) -> f64 {
        BLIND_PROBE_AFTER_SECS * f64::from(1u32 << self.confirmed)
    }

    fn pace(&self, now: Instant) -> f64 {
        let t = now.saturating_duration_since(self.since).as_secs_f64();
        let plateau = BLIND_PLATEAU * self.peak;
        let gap = plateau - BLIND_DROP * self.peak;
        let probing = (t - self.quiet_secs()).max(0.0);
        plateau - gap * (-t / BLIND_RECOVERY_SECS).exp()
            + self.peak * BLIND_PROBE * probing * probing
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Level {
    /// No word yet (or just after a pause).
    Unknown,
    /// The last answer's reading.
    Read {
        remaining: f64,
        limit: f64,
        at: Instant,
    },
    /// Answers have come without headers since then: more than 20 % left.
    Room { since: Instant },
}

pub(super) struct AppCeiling {
    /// The rate at which the app's budget refills, units/s; `None` until it has shown itself.
    estimate: Option<f64>,
    /// Whether `estimate` comes from a flow measurement (not only a bound from one reading).
    measured: bool,
    level: Level,
    tokens: f64,
    refilled: Instant,
    paused_until: Option<Instant>,
    /// After an app throttle, one request at a time until one is admitted.
    pub probe_only: bool,
    pub in_flight: usize,
    /// Units handed out minus the ones refused: what the app's budget was charged, the pool
    /// being its main spender.
    charged: f64,
    /// The reading a flow measurement starts from: when, remaining, `charged` by then.
    flow_from: Option<(Instant, f64, f64)>,
    /// Recent throttles (when, which account), to tell app throttling from user throttling
    /// without a fresh reading.
    recent_throttles: Vec<(Instant, usize)>,
    /// Units sent over the last two seconds: the pool's actual pace.
    sent: VecDeque<(Instant, f64)>,
    /// Whether answers to delegated (`[0]`) and app-only (`[1]`) calls have carried headers:
    /// only then does an answer of that kind without headers mean there is room.
    headers_seen: [bool; 2],
    /// Set while the pool has never seen headers and the app has throttled it.
    blind: Option<Blind>,
    created: Instant,
    /// With no word of the budget, this many accounts throttled within a second mean the app.
    pub quorum: usize,
}

impl AppCeiling {
    pub fn new(now: Instant) -> Self {
        Self {
            estimate: None,
            measured: false,
            level: Level::Unknown,
            tokens: 0.0,
            refilled: now,
            paused_until: None,
            probe_only: false,
            in_flight: 0,
            charged: 0.0,
            flow_from: None,
            recent_throttles: Vec::new(),
            sent: VecDeque::new(),
            headers_seen: [false; 2],
            blind: None,
            created: now,
            quorum: 3,
        }
    }

    /// The app budget's refill rate as learned; blind, the ceiling the pool holds now.
    pub fn estimate(&self) -> Option<f64> {
        match self.blind {
            Some(blind) => Some(blind.pace(Instant::now())),
            None => self.estimate,
        }
    }

    /// The pool-wide pace, units/s, or `None` while the app's budget has not pushed back.
    pub fn pace(&self, now: Instant) -> Option<f64> {
        if let Some(blind) = self.blind {
            return Some(blind.pace(now));
        }
        let estimate = self.estimate?;
        Some(match self.level {
            Level::Unknown => estimate,
            Level::Read {
                remaining, limit, ..
            } => (estimate + (remaining - TARGET_SHARE * limit) / CORRECTION_SECS)
                .max(0.5 * estimate),
            Level::Room { since } => {
                let secs = now.saturating_duration_since(since).as_secs_f64();
                estimate * (1.0 + CLIMB_PER_SEC * (1.0 + secs))
            }
        })
    }

    /// `None` when a request of `units` may go now, else the instant to look again.
    pub fn wait(&mut self, now: Instant, units: f64) -> Option<Instant> {
        if let Some(until) = self.paused_until.filter(|u| *u > now) {
            return Some(until);
        }
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        let pace = self.pace(now)?;
        let cap = (pace * BURST_SECS).max(1.0);
        self.tokens = (self.tokens + elapsed * pace).min(cap);
        super::pace::bucket_ready(now, self.tokens, cap, pace, units)
    }

    /// Hands out `units`; what the budget was charged by then, this request included.
    pub fn take(&mut self, now: Instant, units: f64) -> f64 {
        if self.estimate.is_some() {
            self.tokens -= units;
        }
        while self
            .sent
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > Duration::from_secs(2))
        {
            self.sent.pop_front();
        }
        self.sent.push_back((now, units));
        self.charged += units;
        self.in_flight += 1;
        self.charged
    }

    /// The pool's pace over the last two seconds (or since its last pause ended), units/s.
    fn recent_rate(&self, now: Instant) -> f64 {
        self.recent_rate_span(now).0
    }

    /// [`Self::recent_rate`], and whether it was measured over the whole two seconds (no
    /// pause ended within them, the pool is that old).
    fn recent_rate_span(&self, now: Instant) -> (f64, bool) {
        let two = Duration::from_secs(2);
        let from = match self.paused_until {
            Some(p) if now.saturating_duration_since(p) < two => p,
            _ => now - two.min(now.saturating_duration_since(self.created)),
        };
        let measured = now.saturating_duration_since(from);
        let rate = self
            .sent
            .iter()
            .filter(|(t, _)| *t >= from)
            .map(|(_, u)| u)
            .sum::<f64>()
            / measured.as_secs_f64().max(0.5);
        (rate, measured >= two)
    }

    /// An admitted answer to an app-only or a delegated call, with its reading if it carried
    /// one, and what the budget had been charged when its request was handed out.
    pub fn admitted(
        &mut self,
        now: Instant,
        reading: Option<RateLimitReading>,
        charged: f64,
        app_only: bool,
    ) {
        self.probe_only = false;
        let Some(r) = reading.filter(|r| r.limit > 0.0) else {
            // No headers: room, if answers of this kind show them once the budget runs low.
            if self.headers_seen[usize::from(app_only)] && !matches!(self.level, Level::Room { .. })
            {
                self.level = Level::Room { since: now };
            }
            // The budget may fill to its cap out of sight: measure afresh from the next reading.
            self.flow_from = None;
            return;
        };
        self.headers_seen[usize::from(app_only)] = true;
        self.blind = None;
        self.level = Level::Read {
            remaining: r.remaining,
            limit: r.limit,
            at: now,
        };
        if !self.measured {
            // Until a flow is measured: what was used over what is left to refill is a lower
            // bound of the refill rate.
            if let Some(reset) = r.reset_secs.filter(|s| *s >= 1.0) {
                let bound = (r.limit - r.remaining) / reset;
                self.estimate = Some(self.estimate.map_or(bound, |e| e.max(bound)));
            }
        }
        if r.remaining > FLOW_MAX_SHARE * r.limit {
            self.flow_from = None;
            return;
        }
        match self.flow_from {
            Some((at, remaining, charged_then)) if now.duration_since(at) >= *FLOW_SPAN.start() => {
                let span = now.duration_since(at);
                if span <= *FLOW_SPAN.end() {
                    let flow =
                        (r.remaining - remaining + (charged - charged_then)) / span.as_secs_f64();
                    if flow > 0.0 {
                        self.estimate = Some(match (self.measured, self.estimate) {
                            (true, Some(e)) => (1.0 - FLOW_WEIGHT) * e + FLOW_WEIGHT * flow,
                            _ => flow,
                        });
                        self.measured = true;
                    }
                }
                self.flow_from = Some((now, r.remaining, charged));
            }
            Some(_) => {}
            None => self.flow_from = Some((now, r.remaining, charged)),
        }
    }

    /// A request of `units` was refused: the budget was not charged for it (and the pool's
    /// pace is what got through).
    pub fn refused(&mut self, units: f64) {
        self.charged -= units;
        if let Some(&(at, _)) = self.sent.back() {
            self.sent.push_back((at, -units));
        }
    }

    /// A throttle on account `index`. When it is the app's (a reading of the last second left
    /// almost nothing, or, with no word of the budget, a quorum of accounts was throttled within a
    /// second — [`AppCeiling::quorum`]), pauses the pool for `retry_after` and switches to one
    /// request at a time; true then.
    ///
    /// `settled`: the account has left its slow start. Accounts that start together run out of
    /// their own budgets together, so their first throttles say nothing about the app's.
    pub fn throttled(
        &mut self,
        now: Instant,
        index: usize,
        retry_after: Duration,
        settled: bool,
    ) -> bool {
        self.recent_throttles
            .retain(|(t, _)| now.saturating_duration_since(*t) < Duration::from_secs(1));
        if settled {
            self.recent_throttles.push((now, index));
        }
        let app = match self.level {
            // A fresh reading says how much was left.
            Level::Read {
                remaining,
                limit,
                at,
            } if now.saturating_duration_since(at) < Duration::from_secs(1) => {
                remaining < EXHAUSTED_SHARE * limit
            }
            // The last answers came without headers: more than 20 % of the app's budget was left.
            Level::Room { .. } => false,
            // No word of the budget: accounts rarely run out of their own within the same second.
            _ => {
                let mut accounts: Vec<usize> =
                    self.recent_throttles.iter().map(|(_, i)| *i).collect();
                accounts.sort_unstable();
                accounts.dedup();
                accounts.len() >= self.quorum
            }
        };
        if !app {
            return false;
        }
        let until = now + retry_after;
        if self.headers_seen.iter().any(|&seen| seen) {
            self.estimate = Some(match self.estimate {
                // Readings were there: the estimate was a little high, or a burst emptied the band.
                Some(e) => 0.95 * e,
                None => 0.8 * self.recent_rate(now),
            });
        } else if self.paused_until.is_none_or(|p| p <= now) {
            // Blind: the pace that was too much bounds the budget from above (see
            // `Blind::after`). During a pause the answers of requests sent before it teach
            // nothing more.
            let (measured, full) = self.recent_rate_span(now);
            let since = self.paused_until.map_or(until, |p| p.max(until));
            let blind = Blind::after(self.blind, measured.max(1.0), full, since);
            self.estimate = Some(BLIND_DROP * blind.peak);
            self.blind = Some(blind);
        }
        if let Some(blind) = self.blind.as_mut() {
            // The plateau starts when the pause ends, however long a later answer made it.
            blind.since = blind.since.max(until);
        }
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
        self.probe_only = true;
        self.level = Level::Unknown;
        self.flow_from = None;
        // Nothing accrues during the pause (the budget keeps what it refills as slack).
        self.tokens = 0.0;
        self.refilled = self.refilled.max(until);
        true
    }

    /// For benchmark traces.
    pub fn describe(&self, now: Instant) -> String {
        format!(
            "app pace {:?} estimate {:?} level {:?} probe_only {} in_flight {} paused {:?} recent {:.1}",
            self.pace(now).map(|r| r.round()),
            self.estimate.map(|r| r.round()),
            match self.level {
                Level::Unknown => "unknown".to_owned(),
                Level::Read { remaining, .. } => format!("{remaining}"),
                Level::Room { .. } => "room".to_owned(),
            },
            self.probe_only,
            self.in_flight,
            self.paused_until
                .map(|p| p.saturating_duration_since(now)),
            self.recent_rate(now)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(remaining: f64) -> Option<RateLimitReading> {
        Some(RateLimitReading {
            limit: 200.0,
            remaining,
            reset_secs: Some(2.0),
        })
    }

    #[test]
    fn no_ceiling_until_the_budget_shows_itself() {
        let t0 = Instant::now();
        let mut app = AppCeiling::new(t0);
        assert_eq!(app.wait(t0, 1.0), None);
        let charged = app.take(t0, 1.0);
        app.admitted(t0, None, charged, false);
        assert_eq!(app.pace(t0), None);
    }

    #[test]
    fn the_refill_rate_is_measured_from_two_readings_and_the_units_spent() {
        let t0 = Instant::now();
        let mut app = AppCeiling::new(t0);
        // The budget refills at 100/s; the pool spends 110/s, so the remainder falls 10/s.
        let mut charged = 0.0;
        for tick in 0..=30 {
            let now = t0 + Duration::from_millis(100 * tick);
            charged += 11.0;
            app.admitted(now, reading(40.0 - tick as f64), charged, true);
        }
        let estimate = app.estimate.unwrap();
        assert!((estimate - 100.0).abs() < 0.5, "{estimate}");
    }

    #[test]
    fn the_pace_holds_the_remainder_near_the_target() {
        let t0 = Instant::now();
        let mut app = AppCeiling::new(t0);
        app.estimate = Some(100.0);
        app.measured = true;
        app.admitted(t0, reading(40.0), 0.0, true);
        let high = app.pace(t0).unwrap();
        app.admitted(t0, reading(20.0), 0.0, true);
        let on_target = app.pace(t0).unwrap();
        app.admitted(t0, reading(2.0), 0.0, true);
        let low = app.pace(t0).unwrap();
        assert!(
            high > on_target && on_target > low,
            "{high} {on_target} {low}"
        );
        assert_eq!(on_target, 100.0);
        // Answers without headers: room, and the pace climbs with time.
        app.admitted(t0, None, 0.0, true);
        let later = t0 + Duration::from_secs(4);
        assert!(app.pace(later).unwrap() > app.pace(t0).unwrap());
    }

    #[test]
    fn a_throttle_is_the_apps_only_when_its_budget_was_nearly_spent() {
        let t0 = Instant::now();
        let mut app = AppCeiling::new(t0);
        app.admitted(t0, reading(20.0), 1.0, true);
        assert!(!app.throttled(t0, 0, Duration::from_secs(1), true));
        app.admitted(t0, reading(3.0), 2.0, true);
        assert!(app.throttled(t0, 1, Duration::from_secs(2), true));
        assert!(app.probe_only);
        assert_eq!(app.wait(t0, 1.0), Some(t0 + Duration::from_secs(2)));
    }

    #[test]
    fn without_headers_three_accounts_throttled_at_once_mean_the_app() {
        let created = Instant::now();
        let mut app = AppCeiling::new(created);
        let t0 = created + Duration::from_secs(2);
        for _ in 0..50 {
            app.take(t0, 2.0);
        }
        assert!(!app.throttled(t0, 0, Duration::from_secs(1), true));
        assert!(!app.throttled(t0, 0, Duration::from_secs(1), true));
        assert!(!app.throttled(t0, 1, Duration::from_secs(1), true));
        assert!(
            !app.throttled(t0, 3, Duration::from_secs(1), false),
            "still in its slow start"
        );
        assert!(app.throttled(t0, 2, Duration::from_secs(1), true));
        // Blind: 100 units in 2 s were too much; 90 % of that pace at first...
        assert_eq!(app.pace(t0), Some(45.0));
        let resumed = t0 + Duration::from_secs(1);
        // ...recovering towards 97 % within seconds, then probing slowly upwards.
        let later = app.pace(resumed + Duration::from_secs(8)).unwrap();
        assert!((later - 48.5).abs() < 0.1, "{later}");
        let probing = app.pace(resumed + Duration::from_secs(15)).unwrap();
        assert!(probing > 48.5 && probing < 49.5, "{probing}");
        let letting_go = app.pace(resumed + Duration::from_secs(60)).unwrap();
        assert!(letting_go > 100.0, "{letting_go}");
        // Another app throttle right after the pause, at a low pace: the bound falls by 5 %.
        app.take(resumed, 2.0);
        for i in [0, 1, 2] {
            app.throttled(resumed, i, Duration::from_secs(1), true);
        }
        assert!((app.pace(resumed).unwrap() - 0.9 * 47.5).abs() < 1e-9);
    }

    /// An app throttle of a blind pool that has sent `rate` units/s over the last 2 s, at `at`.
    fn blind_throttle(app: &mut AppCeiling, at: Instant, rate: f64) {
        for _ in 0..4 {
            app.take(at, rate / 2.0);
        }
        let retry = Duration::from_secs(1);
        let throttled = [0, 1, 2].map(|i| app.throttled(at, i, retry, true));
        assert_eq!(throttled, [false, false, true], "a quorum of 3");
    }

    #[test]
    fn a_ceiling_found_again_is_probed_more_and_more_rarely() {
        let created = Instant::now();
        let mut app = AppCeiling::new(created);
        let t0 = created + Duration::from_secs(2);
        blind_throttle(&mut app, t0, 100.0);
        let quiet = |app: &AppCeiling| {
            let b = app.blind.unwrap();
            let plateau = b.pace(b.since + Duration::from_secs(9));
            // The first second past the plateau's end where the pace has grown 1 %.
            (10..400)
                .find(|&s| b.pace(b.since + Duration::from_secs(s)) > 1.01 * plateau)
                .unwrap()
        };
        let first = quiet(&app);
        assert!((14..20).contains(&first), "{first}");
        // Answers to requests sent before the pause teach nothing more.
        app.throttled(
            t0 + Duration::from_millis(10),
            3,
            Duration::from_secs(1),
            true,
        );
        assert_eq!(app.blind.unwrap().confirmed, 0);
        assert_eq!(app.blind.unwrap().peak, 100.0);
        // Throttled again at about the same pace: the same ceiling, twice the quiet time.
        let t1 = t0 + Duration::from_secs(30);
        blind_throttle(&mut app, t1, 104.0);
        assert_eq!(app.blind.unwrap().confirmed, 1);
        assert_eq!(app.blind.unwrap().since, t1 + Duration::from_secs(1));
        let second = quiet(&app);
        assert!(second >= first + 10, "{first} {second}");
        for k in 2..8 {
            blind_throttle(&mut app, t1 + Duration::from_secs(200 * k), 100.0);
        }
        assert_eq!(app.blind.unwrap().confirmed, BLIND_MAX_CONFIRMED);
        assert!(quiet(&app) >= 160, "{}", quiet(&app));
        // A throttle over a whole span at a pace well below the peak: that pace is the bound
        // (not 5 % less than the last one), and not the same ceiling.
        let t2 = t1 + Duration::from_secs(1600);
        blind_throttle(&mut app, t2, 60.0);
        assert_eq!(app.blind.unwrap().peak, 60.0);
        assert_eq!(app.blind.unwrap().confirmed, 0);
        blind_throttle(&mut app, t2 + Duration::from_secs(200), 100.0);
        // A throttle well above the last peak: the ceiling moved; probing starts early again.
        blind_throttle(&mut app, t1 + Duration::from_secs(2000), 150.0);
        assert_eq!(app.blind.unwrap().confirmed, 0);
        assert!(quiet(&app) < 20, "{}", quiet(&app));
    }

    #[test]
    fn delegated_answers_without_headers_say_nothing_when_only_app_only_ones_carry_them() {
        let t0 = Instant::now();
        let mut app = AppCeiling::new(t0);
        app.estimate = Some(100.0);
        app.admitted(t0, reading(3.0), 1.0, true);
        // A delegated answer without headers: no word on the budget, not "room".
        app.admitted(t0, None, 2.0, false);
        assert!(
            app.throttled(t0, 0, Duration::from_secs(1), true),
            "the fresh reading said 3 of 200 left"
        );
    }
}
