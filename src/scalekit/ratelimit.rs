//! Keeping orgsync under Scalekit's rate limit: optional client-side spacing of requests,
//! and a client-wide pause after a 429 with `Retry-After`.
//!
//! Spacing waits (the waits are short: one request interval per queued caller). A pause
//! does not wait: calls made during it fail at once with the time left, so the worker
//! stores the next attempt time instead of holding its jobs while sleeping. Times are
//! read from the client's [`Clock`] (as offsets from the unix epoch, so that sub-millisecond
//! intervals add up exactly).

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use crate::clock::Clock;

/// A slot further ahead than this means the wall clock went back; spacing starts afresh.
const CLOCK_JUMP: Duration = Duration::from_secs(60);

/// Shared by every clone of one client.
#[derive(Debug)]
pub(crate) struct Throttle {
    /// Time between two request starts, when a rate is configured.
    interval: Option<Duration>,
    /// Where "now" comes from.
    clock: Clock,
    /// Next free slot and pause; never held across an await.
    state: Mutex<ThrottleState>,
}

#[derive(Debug, Default)]
struct ThrottleState {
    /// The earliest start of the next request under the configured rate (since the epoch).
    next_slot: Duration,
    /// No request starts before this time (set by a 429 with `Retry-After`).
    paused_until: Option<Duration>,
}

impl Throttle {
    /// A throttle allowing `per_second` request starts per second of `clock`, or no limit.
    pub(crate) fn new(per_second: Option<NonZeroU32>, clock: Clock) -> Self {
        Self {
            interval: per_second.map(|n| Duration::from_secs(1) / n.get()),
            clock,
            state: Mutex::new(ThrottleState::default()),
        }
    }

    /// Waits for this caller's slot under the configured rate. Fails at once with the time
    /// left when the client is paused.
    pub(crate) async fn acquire(&self) -> Result<(), Duration> {
        let start = self.reserve()?;
        if start <= self.now() {
            return Ok(());
        }
        let start_ms = start.as_nanos().div_ceil(1_000_000);
        self.clock
            .sleep_until(i64::try_from(start_ms).unwrap_or(i64::MAX))
            .await;
        // A 429 seen while we waited for our slot pauses us too.
        match Self::pause_left(&self.lock(), self.now()) {
            Some(left) => Err(left),
            None => Ok(()),
        }
    }

    /// Pauses every request of this client for `wait` from now (a longer pause already in
    /// place is kept).
    pub(crate) fn pause_for(&self, wait: Duration) {
        let until = self.now() + wait;
        let mut state = self.lock();
        if state.paused_until.is_none_or(|current| current < until) {
            state.paused_until = Some(until);
        }
    }

    /// Takes the next slot, or reports the pause.
    fn reserve(&self) -> Result<Duration, Duration> {
        let now = self.now();
        let mut state = self.lock();
        if let Some(left) = Self::pause_left(&state, now) {
            return Err(left);
        }
        let Some(interval) = self.interval else {
            return Ok(now);
        };
        if state.next_slot > now + CLOCK_JUMP {
            state.next_slot = now;
        }
        let start = state.next_slot.max(now);
        state.next_slot = start + interval;
        Ok(start)
    }

    /// How long the pause still lasts at `now`, if any.
    fn pause_left(state: &ThrottleState, now: Duration) -> Option<Duration> {
        let until = state.paused_until?;
        (until > now).then(|| until - now)
    }

    /// The clock's time as an offset from the unix epoch.
    fn now(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.clock.now_ms()).unwrap_or(0))
    }

    /// The state, even if a panicking thread poisoned the lock (it holds plain times).
    fn lock(&self) -> std::sync::MutexGuard<'_, ThrottleState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    /// Runs `acquire` to completion if it can finish without the clock moving.
    async fn acquire_now(throttle: &Throttle) -> Option<Result<(), Duration>> {
        let acquire = throttle.acquire();
        tokio::pin!(acquire);
        poll_once(&mut acquire).await
    }

    /// Polls a pinned future once; `Some` when it finished.
    async fn poll_once<F: Future + Unpin>(future: &mut F) -> Option<F::Output> {
        tokio::select! {
            biased;
            done = future => Some(done),
            () = std::future::ready(()) => None,
        }
    }

    #[tokio::test]
    async fn requests_are_spaced_to_hold_the_rate() {
        let hand = ManualClock::new(1_000_000);
        let throttle = Throttle::new(NonZeroU32::new(100), hand.clock());
        // The first starts at once; the next waits a whole interval of the clock's time.
        assert_eq!(acquire_now(&throttle).await, Some(Ok(())));
        let second = throttle.acquire();
        tokio::pin!(second);
        assert!(poll_once(&mut second).await.is_none());
        hand.advance(Duration::from_millis(9));
        assert!(poll_once(&mut second).await.is_none(), "9 ms is too early");
        hand.advance(Duration::from_millis(1));
        assert_eq!(second.await, Ok(()));
        // The third caller is due 10 ms after the second, not at once.
        assert!(acquire_now(&throttle).await.is_none());
    }

    #[tokio::test]
    async fn queued_callers_get_successive_slots_and_an_idle_throttle_does_not_bank_them() {
        let hand = ManualClock::new(0);
        let throttle = Throttle::new(NonZeroU32::new(4), hand.clock());
        for _ in 0..3 {
            assert!(throttle.reserve().is_ok());
        }
        // 0, 250, 500 are taken; the next caller gets 750.
        assert_eq!(throttle.reserve(), Ok(Duration::from_millis(750)));
        // A long idle time later, the next start is now, then one interval on.
        hand.advance(Duration::from_secs(10));
        assert_eq!(throttle.reserve(), Ok(Duration::from_millis(10_000)));
        assert_eq!(throttle.reserve(), Ok(Duration::from_millis(10_250)));
    }

    #[tokio::test]
    async fn a_clock_set_back_does_not_stall_the_requests() {
        // The next slot was reserved at 600 s; the clock now reads 0.
        let earlier = Throttle {
            interval: Some(Duration::from_millis(250)),
            clock: ManualClock::new(0).clock(),
            state: Mutex::new(ThrottleState {
                next_slot: Duration::from_secs(600),
                paused_until: None,
            }),
        };
        assert_eq!(earlier.reserve(), Ok(Duration::ZERO));
    }

    #[tokio::test]
    async fn no_rate_means_no_wait() {
        let throttle = Throttle::new(None, ManualClock::new(0).clock());
        for _ in 0..100 {
            assert_eq!(acquire_now(&throttle).await, Some(Ok(())));
        }
    }

    #[tokio::test]
    async fn a_pause_fails_calls_fast_and_keeps_the_longest() {
        let throttle = Throttle::new(None, ManualClock::new(0).clock());
        throttle.pause_for(Duration::from_secs(10));
        throttle.pause_for(Duration::from_secs(2));
        assert_eq!(
            acquire_now(&throttle).await,
            Some(Err(Duration::from_secs(10)))
        );
    }

    #[tokio::test]
    async fn a_pause_ends_when_the_clock_passes_it() {
        let hand = ManualClock::new(0);
        let throttle = Throttle::new(NonZeroU32::new(10), hand.clock());
        throttle.pause_for(Duration::from_millis(30));
        let left = acquire_now(&throttle).await.unwrap().unwrap_err();
        assert_eq!(left, Duration::from_millis(30));
        hand.advance(Duration::from_millis(29));
        assert_eq!(
            acquire_now(&throttle).await,
            Some(Err(Duration::from_millis(1)))
        );
        hand.advance(Duration::from_millis(1));
        assert_eq!(acquire_now(&throttle).await, Some(Ok(())));
    }

    #[tokio::test]
    async fn a_429_seen_while_a_caller_waits_for_its_slot_fails_it_too() {
        let hand = ManualClock::new(0);
        let throttle = Throttle::new(NonZeroU32::new(10), hand.clock());
        assert_eq!(acquire_now(&throttle).await, Some(Ok(())));
        let waiting = throttle.acquire();
        tokio::pin!(waiting);
        assert!(poll_once(&mut waiting).await.is_none());
        throttle.pause_for(Duration::from_secs(5));
        hand.advance(Duration::from_millis(100));
        assert_eq!(waiting.await, Err(Duration::from_millis(4_900)));
    }
}
