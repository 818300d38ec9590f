//! The fast profile: token buckets per second (Microsoft's rates, short memories), so tests and
//! benchmarks see throttling within seconds. A request arriving while its principal is blocked
//! is refused and extends the block by a fixed time.

use std::time::{Duration, Instant};

use super::ThrottleConfig;

#[derive(Debug)]
pub struct Bucket {
    tokens: f64,
    refilled: Instant,
    pub blocked_until: Option<Instant>,
}

impl Bucket {
    pub fn full(capacity: f64, now: Instant) -> Self {
        Self {
            tokens: capacity,
            refilled: now,
            blocked_until: None,
        }
    }

    pub fn refill(&mut self, now: Instant, rate: f64, capacity: f64) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(capacity);
        self.refilled = now;
    }

    /// Refused while blocked; the block is extended by `extension`. The remaining block.
    pub fn check_blocked(&mut self, now: Instant, extension: f64) -> Option<Duration> {
        let until = self.blocked_until.filter(|u| *u > now)?;
        let extended = until + Duration::from_secs_f64(extension.max(0.0));
        self.blocked_until = Some(extended);
        Some(extended - now)
    }

    /// `None` if `cost` fits now, else blocks for as long as the bucket needs to hold it.
    pub fn check_cost(&mut self, now: Instant, cost: f64, rate: f64) -> Option<Duration> {
        if self.tokens >= cost {
            return None;
        }
        let secs = ((cost - self.tokens) / rate.max(1e-9)).ceil().max(1.0);
        let block = Duration::from_secs_f64(secs);
        self.blocked_until = Some(now + block);
        Some(block)
    }

    /// Bytes go out while the bucket is not in debt; the wait until it is not.
    pub fn check_debt(&self, rate: f64) -> Option<Duration> {
        (self.tokens < 0.0).then(|| Duration::from_secs_f64(-self.tokens / rate.max(1e-9)))
    }

    pub fn spend(&mut self, amount: f64) {
        self.tokens -= amount;
    }

    pub fn tokens(&self) -> f64 {
        self.tokens
    }
}

/// (rate per second, capacity) of a user's and of the app's request buckets.
pub fn user_bucket(cfg: &ThrottleConfig) -> (f64, f64) {
    (cfg.user_rate, cfg.user_burst.max(1.0))
}

pub fn app_bucket(cfg: &ThrottleConfig) -> (f64, f64) {
    (cfg.app_rate, cfg.app_burst.max(1.0))
}

/// A user's egress or ingress: Microsoft's hourly budget per second, two seconds of it at once.
pub fn transfer_bucket(bytes_per_hour: f64) -> (f64, f64) {
    let rate = bytes_per_hour / 3600.0;
    (rate, 2.0 * rate)
}
