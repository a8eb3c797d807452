//! The `Retry-After` of a rejected request (upstream's `droppedRequestsTracker`): per priority
//! level it doubles, up to 32 s, while the level keeps dropping at least three requests a second
//! of the current value, and shrinks by one each second it drops fewer than that value.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Upstream's `maxRetryAfter`.
const MAX_RETRY_AFTER: i64 = 32;

#[derive(Debug)]
struct Stats {
    /// (second, drops) of past seconds, oldest first.
    history: Vec<(i64, i64)>,
    current: (i64, i64),
    retry_after: i64,
    last_increase: i64,
}

impl Stats {
    fn record(&mut self, now: i64) {
        if self.current.0 == now {
            self.current.1 += 1;
            return;
        }
        self.history.push(self.current);
        let keep = (2 * self.retry_after).min(MAX_RETRY_AFTER);
        self.history.retain(|(t, _)| now - t <= keep);
        self.current = (now, 1);
        let dropped: i64 = self
            .history
            .iter()
            .filter(|(t, _)| now - t <= self.retry_after && *t < now)
            .map(|(_, n)| n)
            .sum();
        if now - self.last_increase >= self.retry_after && dropped >= 3 * self.retry_after {
            self.retry_after = (self.retry_after * 2).min(MAX_RETRY_AFTER);
            self.last_increase = now;
        } else if dropped < self.retry_after && self.retry_after > 1 {
            self.retry_after -= 1;
        }
    }
}

/// Dropped requests per priority level, and the `Retry-After` each suggests.
#[derive(Debug, Default)]
pub struct DroppedRequests {
    levels: Mutex<HashMap<String, Stats>>,
}

impl DroppedRequests {
    /// Records a request of `level` dropped now; the seconds it should be told to wait.
    pub fn record(&self, level: &str) -> i64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.record_at(level, now)
    }

    fn record_at(&self, level: &str, now: i64) -> i64 {
        let mut levels = self.levels.lock().unwrap_or_else(|e| e.into_inner());
        let stats = levels.entry(level.to_string()).or_insert(Stats {
            history: Vec::new(),
            current: (0, 0),
            retry_after: 1,
            last_increase: 0,
        });
        stats.record(now);
        stats.retry_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_doubles_under_sustained_drops_and_decays_after() {
        let d = DroppedRequests::default();
        assert_eq!(d.record_at("pl", 100), 1);
        for _ in 0..5 {
            d.record_at("pl", 100);
        }
        // Six drops in the previous second ≥ 3 × 1: doubled.
        assert_eq!(d.record_at("pl", 101), 2);
        // A quiet stretch: the second after, fewer than 2 drops in the last 2 seconds.
        assert_eq!(d.record_at("pl", 110), 1);
        assert_eq!(d.record_at("other", 110), 1);
    }
}
