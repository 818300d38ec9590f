//! A sliding window of usage: how much was spent over the last `length`, kept in 20 slots.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

const SLOTS: u32 = 20;

#[derive(Debug)]
pub struct SlidingWindow {
    length: Duration,
    slot: Duration,
    /// (slot start, amount spent in it), oldest first.
    slots: VecDeque<(Instant, f64)>,
    total: f64,
}

impl SlidingWindow {
    pub fn new(length: Duration) -> Self {
        let length = length.max(Duration::from_millis(20));
        Self {
            length,
            slot: length / SLOTS,
            slots: VecDeque::new(),
            total: 0.0,
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(start, amount)) = self.slots.front() {
            if start + self.length > now {
                break;
            }
            self.total -= amount;
            self.slots.pop_front();
        }
        if self.slots.is_empty() {
            self.total = 0.0; // no drift from float sums
        }
    }

    /// What was spent over the last `length`.
    pub fn used(&mut self, now: Instant) -> f64 {
        self.expire(now);
        self.total
    }

    pub fn add(&mut self, now: Instant, amount: f64) {
        self.expire(now);
        match self.slots.back_mut() {
            Some((start, spent)) if *start + self.slot > now => *spent += amount,
            _ => self.slots.push_back((now, amount)),
        }
        self.total += amount;
    }

    /// How long until no more than `target` is spent (zero if that is already so; the window's
    /// length if not even an empty window would do).
    pub fn time_until_at_most(&mut self, now: Instant, target: f64) -> Duration {
        let mut used = self.used(now);
        if used <= target {
            return Duration::ZERO;
        }
        if target < 0.0 {
            return self.length;
        }
        for &(start, amount) in &self.slots {
            used -= amount;
            if used <= target + 1e-9 {
                return (start + self.length).saturating_duration_since(now);
            }
        }
        self.length
    }

    /// How long until everything spent so far has left the window.
    pub fn time_until_empty(&mut self, now: Instant) -> Duration {
        self.expire(now);
        self.slots.back().map_or(Duration::ZERO, |&(start, _)| {
            (start + self.length).saturating_duration_since(now)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_slides_out() {
        let t0 = Instant::now();
        let mut w = SlidingWindow::new(Duration::from_secs(10));
        w.add(t0, 5.0);
        w.add(t0 + Duration::from_secs(4), 3.0);
        assert_eq!(w.used(t0 + Duration::from_secs(5)), 8.0);
        assert_eq!(
            w.time_until_at_most(t0 + Duration::from_secs(5), 3.0),
            Duration::from_secs(5)
        );
        assert_eq!(w.used(t0 + Duration::from_secs(10)), 3.0);
        assert_eq!(w.used(t0 + Duration::from_secs(14)), 0.0);
        assert_eq!(
            w.time_until_at_most(t0, -1.0),
            Duration::from_secs(10),
            "never fits"
        );
    }
}
