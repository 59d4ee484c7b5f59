//! Keeping orgsync under Scalekit's rate limit: optional client-side spacing of requests,
//! and a client-wide pause after a 429 with `Retry-After`.
//!
//! Spacing waits (the waits are short: one request interval per queued caller). A pause
//! does not wait: calls made during it fail at once with the time left, so the worker
//! stores the next attempt time instead of holding its jobs while sleeping.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Shared by every clone of one client.
#[derive(Debug)]
pub(crate) struct Throttle {
    /// Time between two request starts, when a rate is configured.
    interval: Option<Duration>,
    /// Next free slot and pause; never held across an await.
    state: Mutex<ThrottleState>,
}

#[derive(Debug)]
struct ThrottleState {
    /// The earliest start of the next request under the configured rate.
    next_slot: Instant,
    /// No request starts before this instant (set by a 429 with `Retry-After`).
    paused_until: Option<Instant>,
}

impl Throttle {
    /// A throttle allowing `per_second` request starts per second, or no limit.
    pub(crate) fn new(per_second: Option<NonZeroU32>) -> Self {
        Self {
            interval: per_second.map(|n| Duration::from_secs(1) / n.get()),
            state: Mutex::new(ThrottleState {
                next_slot: Instant::now(),
                paused_until: None,
            }),
        }
    }

    /// Waits for this caller's slot under the configured rate. Fails at once with the time
    /// left when the client is paused.
    pub(crate) async fn acquire(&self) -> Result<(), Duration> {
        let start = self.reserve()?;
        if start <= Instant::now() {
            return Ok(());
        }
        tokio::time::sleep_until(start).await;
        // A 429 seen while we waited for our slot pauses us too.
        match Self::pause_left(&self.lock(), Instant::now()) {
            Some(left) => Err(left),
            None => Ok(()),
        }
    }

    /// Pauses every request of this client for `wait` from now (a longer pause already in
    /// place is kept).
    pub(crate) fn pause_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut state = self.lock();
        if state.paused_until.is_none_or(|current| current < until) {
            state.paused_until = Some(until);
        }
    }

    /// Takes the next slot, or reports the pause.
    fn reserve(&self) -> Result<Instant, Duration> {
        let now = Instant::now();
        let mut state = self.lock();
        if let Some(left) = Self::pause_left(&state, now) {
            return Err(left);
        }
        let Some(interval) = self.interval else {
            return Ok(now);
        };
        let start = state.next_slot.max(now);
        state.next_slot = start + interval;
        Ok(start)
    }

    /// How long the pause still lasts at `now`, if any.
    fn pause_left(state: &ThrottleState, now: Instant) -> Option<Duration> {
        let until = state.paused_until?;
        (until > now).then(|| until - now)
    }

    /// The state, even if a panicking thread poisoned the lock (it holds plain instants).
    fn lock(&self) -> std::sync::MutexGuard<'_, ThrottleState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_are_spaced_to_hold_the_rate() {
        let throttle = Throttle::new(NonZeroU32::new(100));
        let begin = Instant::now();
        for _ in 0..5 {
            throttle.acquire().await.unwrap();
        }
        // Five starts at 100/s: the fifth starts 40 ms after the first.
        let elapsed = begin.elapsed();
        assert!(elapsed >= Duration::from_millis(40), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    }

    #[tokio::test]
    async fn no_rate_means_no_wait() {
        let throttle = Throttle::new(None);
        let begin = Instant::now();
        for _ in 0..100 {
            throttle.acquire().await.unwrap();
        }
        assert!(begin.elapsed() < Duration::from_millis(100));
    }

    #[tokio::test]
    async fn a_pause_fails_calls_fast_and_keeps_the_longest() {
        let throttle = Throttle::new(None);
        throttle.pause_for(Duration::from_secs(10));
        throttle.pause_for(Duration::from_secs(2));
        let left = throttle.acquire().await.unwrap_err();
        assert!(
            left > Duration::from_secs(9) && left <= Duration::from_secs(10),
            "{left:?}"
        );
    }

    #[tokio::test]
    async fn a_pause_ends() {
        let throttle = Throttle::new(None);
        throttle.pause_for(Duration::from_millis(30));
        let left = throttle.acquire().await.unwrap_err();
        tokio::time::sleep(left).await;
        assert_eq!(throttle.acquire().await, Ok(()));
    }
}
