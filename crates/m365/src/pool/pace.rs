//! One account's pace: a token bucket at a rate the account learns from its throttles.

use std::time::{Duration, Instant};

use super::PoolConfig;

/// Pace gained per second before an account's first throttle (slow start, as TCP does).
const SLOW_START_GROWTH: f64 = 0.3;
/// Pace regained per second while below [`RECOVERY_SHARE`] of the pace of the last throttle.
const RECOVERY_GROWTH: f64 = 0.05;
const RECOVERY_SHARE: f64 = 0.8;
/// A throttle's measured bound is trusted only over a run at least this many times as long as
/// the pause before it: over a short run, what a sliding window (Microsoft's budgets are
/// windows of minutes) admitted says little.
const MEASURE_OVER_PAUSES: f64 = 4.0;

/// When a token bucket holding `tokens` of `capacity`, refilled at `rate`, can pay for a
/// request of `units`: `None` now, else the instant. A request costing more than the bucket
/// holds waits for a full bucket.
pub(super) fn bucket_ready(
    now: Instant,
    tokens: f64,
    capacity: f64,
    rate: f64,
    units: f64,
) -> Option<Instant> {
    let need = units.min(capacity);
    (tokens < need).then(|| now + Duration::from_secs_f64((need - tokens) / rate.max(1e-3)))
}

/// Whether an account may take a request now.
pub(super) enum Readiness {
    Quarantined,
    /// Yes; `share` is how full its bucket is (the pool picks the fullest).
    Ready {
        share: f64,
    },
    /// Not before this instant (`None`: not until one of its requests is answered).
    Later(Option<Instant>),
}

pub(super) struct Pace {
    /// Requests (resource units) per second the account is allowed.
    pub rate: f64,
    /// Before the first throttle the pace grows by `SLOW_START_GROWTH`; after it, by the
    /// configured additive increase.
    probing: bool,
    tokens: f64,
    refilled: Instant,
    pub in_flight: usize,
    paused_until: Option<Instant>,
    pub quarantined: Option<String>,
    /// Since when the account has been sending without a throttle (the end of its last pause).
    window_start: Instant,
    /// Units admitted since `window_start`.
    window_admitted: f64,
    /// The `Retry-After` of the last pause: how long the budget had to refill.
    last_pause: Option<Duration>,
    /// Smoothed time to an answer, seconds.
    latency: Option<f64>,
    /// The pace when the account was last throttled.
    last_throttle_rate: Option<f64>,
}

impl Pace {
    pub fn new(rate: f64, now: Instant) -> Self {
        Self {
            rate,
            probing: true,
            tokens: rate.max(1.0),
            refilled: now,
            in_flight: 0,
            paused_until: None,
            quarantined: None,
            window_start: now,
            window_admitted: 0.0,
            last_pause: None,
            latency: None,
            last_throttle_rate: None,
        }
    }

    fn capacity(&self) -> f64 {
        self.rate.max(1.0)
    }

    pub fn refill(&mut self, now: Instant, cfg: &PoolConfig) {
        // Nothing accrues during a pause: what Microsoft's budget refilled meanwhile stays
        // there as slack, instead of being spent in a burst the moment the pause ends.
        let from = match self.paused_until {
            Some(until) if until > self.refilled => until,
            _ => self.refilled,
        };
        let elapsed = now.saturating_duration_since(from).as_secs_f64();
        // Grow only while the account is sending and using its pace: an account held back by
        // the app's ceiling learns nothing about its own budget.
        let used = self.tokens < 0.5 * self.capacity();
        if used && self.paused_until.is_none_or(|p| p <= now) {
            let recovering = self
                .last_throttle_rate
                .is_some_and(|r| self.rate < RECOVERY_SHARE * r);
            let growth = if self.probing {
                SLOW_START_GROWTH
            } else if recovering {
                RECOVERY_GROWTH
            } else {
                cfg.increase_per_sec
            };
            self.rate += self.rate * growth * elapsed.min(1.0);
        }
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity());
        self.refilled = now;
    }

    /// How many requests may be in flight: as many as the pace needs given the answer time
    /// (Little's law, with room for jitter), at most `max`. Every request in flight when a
    /// throttle comes lands in the block and, at SharePoint, extends it.
    pub fn in_flight_bound(&self, max: usize) -> usize {
        self.latency.map_or(max, |latency| {
            ((self.rate * latency * 1.5).ceil() as usize).clamp(1, max.max(1))
        })
    }

    /// For benchmark traces.
    pub fn describe(&self, max_in_flight: usize) -> String {
        format!(
            "rate {:.1} tokens {:.1} in flight {}/{} latency {:.1} ms",
            self.rate,
            self.tokens,
            self.in_flight,
            self.in_flight_bound(max_in_flight),
            self.latency.unwrap_or_default() * 1e3
        )
    }

    /// Told to wait, and the wait has not ended.
    pub fn is_paused(&self, now: Instant) -> bool {
        self.paused_until.is_some_and(|u| u > now)
    }

    /// Still in the slow start: no throttle of its own yet.
    pub fn in_slow_start(&self) -> bool {
        self.probing
    }

    pub fn answered_in(&mut self, took: Duration) {
        let took = took.as_secs_f64();
        self.latency = Some(self.latency.map_or(took, |l| 0.8 * l + 0.2 * took));
    }

    /// Refills the bucket and says whether a request of `units` may go now.
    pub fn readiness(&mut self, now: Instant, units: f64, cfg: &PoolConfig) -> Readiness {
        if self.quarantined.is_some() {
            return Readiness::Quarantined;
        }
        self.refill(now, cfg);
        if let Some(until) = self.paused_until.filter(|u| *u > now) {
            return Readiness::Later(Some(until));
        }
        if self.in_flight >= self.in_flight_bound(cfg.max_in_flight) {
            return Readiness::Later(None);
        }
        match bucket_ready(now, self.tokens, self.capacity(), self.rate, units) {
            None => Readiness::Ready {
                share: self.tokens / self.capacity(),
            },
            Some(at) => Readiness::Later(Some(at)),
        }
    }

    /// A request of `units` goes out on this account.
    pub fn take(&mut self, units: f64) {
        self.tokens -= units;
        self.in_flight += 1;
    }

    pub fn admitted(&mut self, units: f64) {
        self.window_admitted += units;
    }

    /// A lower bound of the account's sustainable rate, from the throttle that just came: since
    /// the last pause ended the budget held at most `rate × last_pause` units, and is now empty,
    /// so `admitted ≤ rate × (elapsed + last_pause)`.
    fn measured_rate(&self, now: Instant) -> Option<f64> {
        let pause = self.last_pause?;
        let run = now.saturating_duration_since(self.window_start);
        if run.as_secs_f64() < MEASURE_OVER_PAUSES * pause.as_secs_f64().max(0.5) {
            return None;
        }
        let elapsed = run + pause;
        (self.window_admitted > 0.0).then(|| self.window_admitted / elapsed.as_secs_f64())
    }

    /// Pauses exactly as long as told; when the throttle was the account's own (`learn`),
    /// lowers its pace. The pause added (answers to earlier requests may bring throttles that
    /// end within the pause already counted).
    pub fn throttled(
        &mut self,
        now: Instant,
        retry_after: Duration,
        learn: bool,
        cfg: &PoolConfig,
    ) -> Duration {
        self.refill(now, cfg);
        self.tokens = 0.0;
        let until = now + retry_after;
        if self.paused_until.is_some_and(|p| p >= until) {
            return Duration::ZERO;
        }
        let already = self
            .paused_until
            .map_or(Duration::ZERO, |p| p.saturating_duration_since(now));
        if learn {
            // Learn once per pause.
            if already.is_zero() {
                let learned = match self.measured_rate(now) {
                    Some(measured) => measured.max(self.rate * cfg.throttle_decrease * 0.5),
                    // End of the slow start: back near the last safe pace.
                    None if self.probing => self.rate * 0.6,
                    None => self.rate * cfg.throttle_decrease,
                };
                self.last_throttle_rate = Some(self.rate);
                self.rate = learned.min(self.rate).max(cfg.min_rate);
            }
            self.probing = false;
        }
        self.paused_until = Some(until);
        self.window_start = until;
        self.window_admitted = 0.0;
        self.last_pause = Some(retry_after);
        retry_after - already
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> PoolConfig {
        PoolConfig::default()
    }

    #[test]
    fn nothing_accrues_during_a_pause() {
        let t0 = Instant::now();
        let mut pace = Pace::new(10.0, t0);
        pace.throttled(t0, Duration::from_secs(2), true, &cfg());
        let rate = pace.rate;
        pace.refill(t0 + Duration::from_secs(2), &cfg());
        assert_eq!(
            pace.tokens, 0.0,
            "the budget's refill stays with Microsoft as slack"
        );
        pace.refill(t0 + Duration::from_millis(2500), &cfg());
        // Half a second at the pace (which grew a little meanwhile).
        assert!((pace.tokens - 0.5 * rate).abs() < 0.1, "{}", pace.tokens);
    }

    #[test]
    fn the_pace_grows_only_while_it_is_used() {
        let t0 = Instant::now();
        let mut idle = Pace::new(10.0, t0);
        idle.refill(t0 + Duration::from_secs(5), &cfg());
        assert_eq!(
            idle.rate, 10.0,
            "a full bucket says nothing about the budget"
        );
        let mut busy = Pace::new(10.0, t0);
        busy.tokens = 0.0;
        busy.refill(t0 + Duration::from_secs(1), &cfg());
        assert!(busy.rate > 10.0);
    }

    #[test]
    fn a_throttle_after_a_pause_learns_the_budget_from_what_was_admitted() {
        let t0 = Instant::now();
        let mut pace = Pace::new(20.0, t0);
        // First throttle: end of the slow start.
        pace.throttled(t0, Duration::from_secs(1), true, &cfg());
        assert_eq!(pace.rate, 12.0);
        // 4 s after the pause ended, 50 units were admitted: the budget refills at ≥ 10/s.
        let resumed = t0 + Duration::from_secs(1);
        pace.admitted(50.0);
        pace.throttled(
            resumed + Duration::from_secs(4),
            Duration::from_secs(1),
            true,
            &cfg(),
        );
        assert!((pace.rate - 10.0).abs() < 1e-9, "{}", pace.rate);
        // The app's throttles pause the account but teach it nothing about its own budget.
        let before = pace.rate;
        pace.throttled(
            resumed + Duration::from_secs(9),
            Duration::from_secs(1),
            false,
            &cfg(),
        );
        assert!(pace.rate >= before, "not lowered: {} < {before}", pace.rate);
    }

    #[test]
    fn in_flight_follows_the_answer_time() {
        let t0 = Instant::now();
        let mut pace = Pace::new(10.0, t0);
        assert_eq!(
            pace.in_flight_bound(4),
            4,
            "no answer yet: the configured bound"
        );
        pace.answered_in(Duration::from_millis(2));
        assert_eq!(pace.in_flight_bound(4), 1);
        for _ in 0..50 {
            pace.answered_in(Duration::from_millis(200));
        }
        assert_eq!(pace.in_flight_bound(4), 3, "10/s × 0.2 s × 1.5");
    }
}
