//! Rate limiting of the WARN line a refused delivery writes: anyone can send refused
//! deliveries, and one log line each would let them flood the log. Per refusal kind, at
//! most one line per [`REFUSAL_LOG_INTERVAL`] is written; the next line written says how
//! many were left out. Metrics still count every refusal.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The shortest time between two WARN lines of one source and refusal kind.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The state of one refusal kind.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// When the last line was written.
    logged_at: Instant,
    /// Refusals not logged since.
    left_out: u64,
}

/// The limiter of one source, keyed by refusal kind (a fixed, small set).
#[derive(Debug)]
pub(crate) struct RefusalLog {
    /// The shortest time between two lines of one kind.
    interval: Duration,
    /// Per refusal kind.
    slots: Mutex<HashMap<&'static str, Slot>>,
}

impl Default for RefusalLog {
    fn default() -> Self {
        Self::new(REFUSAL_LOG_INTERVAL)
    }
}

impl RefusalLog {
    /// A limiter writing at most one line per kind per `interval`.
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a refusal of `kind` at `now` gets a log line: `Some(n)` with the number of
    /// refusals of that kind left out since the previous line, or `None` to stay quiet.
    pub(crate) fn admit(&self, kind: &'static str, now: Instant) -> Option<u64> {
        // A poisoned lock only means another thread panicked while counting; the counts
        // are still usable.
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        match slots.get_mut(kind) {
            Some(slot) if now.saturating_duration_since(slot.logged_at) < self.interval => {
                slot.left_out += 1;
                None
            }
            Some(slot) => {
                let left_out = slot.left_out;
                *slot = Slot {
                    logged_at: now,
                    left_out: 0,
                };
                Some(left_out)
            }
            None => {
                slots.insert(
                    kind,
                    Slot {
                        logged_at: now,
                        left_out: 0,
                    },
                );
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_kind_and_interval_then_the_count_left_out() {
        let log = RefusalLog::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_millis(s);
        assert_eq!(log.admit("WrongToken", at(0)), Some(0));
        for i in 1..=999 {
            assert_eq!(log.admit("WrongToken", at(i)), None);
        }
        assert_eq!(log.admit("MalformedXml", at(1_000)), Some(0));
        assert_eq!(log.admit("WrongToken", at(9_999)), None);
        assert_eq!(log.admit("WrongToken", at(10_000)), Some(1000));
        assert_eq!(log.admit("WrongToken", at(10_001)), None);
        assert_eq!(log.admit("WrongToken", at(25_000)), Some(1));
        assert_eq!(log.admit("MalformedXml", at(25_000)), Some(0));
    }

    #[test]
    fn a_clock_going_backwards_stays_quiet() {
        let log = RefusalLog::new(Duration::from_secs(10));
        let t0 = Instant::now() + Duration::from_secs(100);
        assert_eq!(log.admit("k", t0), Some(0));
        assert_eq!(log.admit("k", t0 - Duration::from_secs(50)), None);
    }
}
