//! The realistic profile: Microsoft's published SharePoint/OneDrive limits as sliding windows.
//!
//! - per user: 3,000 requests per 5 minutes, 100 GB of downloads and 50 GB of uploads per hour;
//! - per app in the tenant: resource units per minute and per day, by the tenant's licences
//!   (1,250/min and 1.2 M/day up to 1,000 licences … 6,250/min and 6 M/day above 50,000);
//! - per tenant: resource units per 5 minutes (18,750 … 93,750).
//!
//! A request is refused when any window it draws from has no room; refused requests count as
//! usage too. The caller (the user of a delegated token, else the app) is told a `Retry-After`;
//! one request more during that time is forgiven (it may have been in flight), further ones
//! double the wait, up to minutes. `time_scale` shortens every window (and the waits) while
//! keeping the rates: 0.05 turns 5 minutes into 15 s holding 1/20 of the budget.

use std::time::{Duration, Instant};

use super::window::SlidingWindow;
use super::ThrottleConfig;

/// The windows a principal draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    UserRequests,
    UserEgress,
    UserIngress,
    AppMinute,
    AppDay,
    TenantFiveMinutes,
}

/// Microsoft's app and tenant budgets by licence count: (per minute, per day, tenant per 5 min).
pub fn tier(licenses: u64) -> (f64, f64, f64) {
    match licenses {
        0..=1_000 => (1_250.0, 1_200_000.0, 18_750.0),
        1_001..=5_000 => (2_500.0, 2_400_000.0, 37_500.0),
        5_001..=15_000 => (3_750.0, 3_600_000.0, 56_250.0),
        15_001..=50_000 => (5_000.0, 4_800_000.0, 75_000.0),
        _ => (6_250.0, 6_000_000.0, 93_750.0),
    }
}

impl Budget {
    /// The window's unscaled length and its unscaled limit.
    fn unscaled(self, cfg: &ThrottleConfig, licenses: u64) -> (f64, f64) {
        let (minute, day, tenant) = tier(licenses);
        match self {
            Budget::UserRequests => (300.0, cfg.user_requests_per_5min),
            Budget::UserEgress => (3_600.0, cfg.user_egress_bytes_per_hour),
            Budget::UserIngress => (3_600.0, cfg.user_ingress_bytes_per_hour),
            Budget::AppMinute => (60.0, cfg.app_units_per_minute.unwrap_or(minute)),
            Budget::AppDay => (86_400.0, cfg.app_units_per_day.unwrap_or(day)),
            Budget::TenantFiveMinutes => (300.0, cfg.tenant_units_per_5min.unwrap_or(tenant)),
        }
    }

    /// The window's length and limit under `time_scale`.
    pub fn scaled(self, cfg: &ThrottleConfig, licenses: u64) -> (Duration, f64) {
        let (secs, limit) = self.unscaled(cfg, licenses);
        let scale = cfg.time_scale.clamp(1e-4, 1.0);
        (Duration::from_secs_f64(secs * scale), limit * scale)
    }
}

/// One window with its limit.
#[derive(Debug)]
pub struct Meter {
    pub budget: Budget,
    pub window: SlidingWindow,
}

impl Meter {
    pub fn new(budget: Budget, cfg: &ThrottleConfig, licenses: u64) -> Self {
        let (length, _) = budget.scaled(cfg, licenses);
        Self {
            budget,
            window: SlidingWindow::new(length),
        }
    }

    /// `None` if `amount` fits, else how long until it does.
    pub fn wait_for(
        &mut self,
        now: Instant,
        amount: f64,
        cfg: &ThrottleConfig,
        licenses: u64,
    ) -> Option<Duration> {
        let (_, limit) = self.budget.scaled(cfg, licenses);
        let used = self.window.used(now);
        // One transfer larger than the whole budget still goes through an empty window.
        let transfer = matches!(self.budget, Budget::UserEgress | Budget::UserIngress);
        if used + amount <= limit || (used == 0.0 && transfer) {
            return None;
        }
        let wait = self.window.time_until_at_most(now, limit - amount);
        Some(wait.max(Duration::from_millis(1)))
    }
}

/// What a caller was told, to recognise one that keeps sending.
#[derive(Debug, Default)]
pub struct Told {
    pub until: Option<Instant>,
    /// Requests sent during the current wait.
    pub strikes: u32,
}

impl Told {
    /// A request arrives: `Some(remaining wait)` when the caller should still be waiting (the
    /// wait grows after the first such request), else `None`.
    pub fn arrive(&mut self, now: Instant, cfg: &ThrottleConfig) -> Option<Duration> {
        let Some(until) = self.until.filter(|u| *u > now) else {
            self.strikes = 0;
            return None;
        };
        self.strikes += 1;
        let mut remaining = until - now;
        if self.strikes > 1 {
            let cap =
                Duration::from_secs_f64(cfg.max_retry_after_secs * cfg.time_scale.clamp(1e-4, 1.0))
                    .max(Duration::from_secs(1));
            remaining = (remaining * 2)
                .max(remaining + Duration::from_secs(1))
                .min(cap);
            self.until = Some(now + remaining);
        }
        Some(remaining)
    }

    /// Tells the caller to wait `secs` whole seconds.
    pub fn tell(&mut self, now: Instant, secs: u64) {
        self.until = Some(now + Duration::from_secs(secs));
        self.strikes = 0;
    }
}
