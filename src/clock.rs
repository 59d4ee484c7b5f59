//! Time as a dependency. [`Clock`] is the one source of "now" (unix milliseconds, what the
//! store records) and of timed waits for everything that schedules, leases, retries, paces
//! or prunes. The daemon runs on [`Clock::system`]; tests run on a [`ManualClock`], which
//! moves only when the test advances it, so a retry due in a second runs as soon as the
//! test says a second has passed, not after a real one.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// Where "now" comes from; cheap to clone (clones share the source).
#[derive(Debug, Clone)]
pub struct Clock {
    /// The source every clone shares.
    source: Arc<Source>,
}

#[derive(Debug)]
enum Source {
    /// The system's wall clock, with tokio's timers for the waits.
    System,
    /// Unix milliseconds that change only through [`ManualClock::advance`]; sleepers
    /// watch it.
    Manual(watch::Sender<i64>),
}

impl Clock {
    /// The wall clock: what the daemon and the command line use.
    pub fn system() -> Self {
        Self {
            source: Arc::new(Source::System),
        }
    }

    /// Now, in unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        match &*self.source {
            Source::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Source::Manual(time) => *time.borrow(),
        }
    }

    /// Now, as a [`SystemTime`] (for parsing HTTP dates against it).
    pub fn now(&self) -> SystemTime {
        let ms = u64::try_from(self.now_ms()).unwrap_or(0);
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    /// Waits for `duration` of this clock's time.
    pub async fn sleep(&self, duration: Duration) {
        match &*self.source {
            Source::System => tokio::time::sleep(duration).await,
            Source::Manual(time) => {
                let start = *time.borrow();
                wait_until(time, start.saturating_add(ceil_ms(duration))).await;
            }
        }
    }

    /// Waits until this clock reads `at_ms` (unix milliseconds) or later.
    pub async fn sleep_until(&self, at_ms: i64) {
        match &*self.source {
            Source::System => {
                let left = at_ms.saturating_sub(self.now_ms());
                if left > 0 {
                    tokio::time::sleep(Duration::from_millis(left.unsigned_abs())).await;
                }
            }
            Source::Manual(time) => wait_until(time, at_ms).await,
        }
    }
}

/// A clock that stands still until its holder moves it: the tests' clock. Hand
/// [`ManualClock::clock`] to the code under test and keep this to turn the hands.
#[derive(Debug, Clone)]
pub struct ManualClock {
    /// The clock the code under test reads.
    clock: Clock,
}

impl ManualClock {
    /// A clock reading `start_ms` (unix milliseconds).
    pub fn new(start_ms: i64) -> Self {
        Self {
            clock: Clock {
                source: Arc::new(Source::Manual(watch::Sender::new(start_ms))),
            },
        }
    }

    /// A clock reading the wall clock's time now (so signatures made now are in date).
    pub fn at_system_now() -> Self {
        Self::new(Clock::system().now_ms())
    }

    /// The clock to hand to the code under test.
    pub fn clock(&self) -> Clock {
        self.clock.clone()
    }

    /// What the clock reads, in unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Moves the clock forward by `by` and wakes every sleeper whose time has come;
    /// returns the new reading.
    pub fn advance(&self, by: Duration) -> i64 {
        if let Source::Manual(time) = &*self.clock.source {
            time.send_modify(|t| *t = t.saturating_add(ceil_ms(by)));
        }
        self.now_ms()
    }
}

/// Waits until the manual time reaches `at_ms`.
async fn wait_until(time: &watch::Sender<i64>, at_ms: i64) {
    let mut reading = time.subscribe();
    // The sender lives as long as `time` is borrowed, so this cannot fail.
    let _ = reading.wait_for(|now| *now >= at_ms).await;
}

/// `duration` in whole milliseconds, rounded up (a wait never ends early).
fn ceil_ms(duration: Duration) -> i64 {
    let ms = duration.as_nanos().div_ceil(1_000_000);
    i64::try_from(ms).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_reads_the_wall_clock() {
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let read = Clock::system().now_ms();
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        assert!(i64::try_from(before.as_millis()).unwrap() <= read);
        assert!(read <= i64::try_from(after.as_millis()).unwrap());
    }

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_clones_share_it() {
        let hand = ManualClock::new(1_000);
        let clock = hand.clock();
        assert_eq!(clock.clone().now_ms(), 1_000);
        assert_eq!(hand.advance(Duration::from_micros(1_500)), 1_002);
        assert_eq!(clock.now_ms(), 1_002);
        assert_eq!(
            clock.now(),
            UNIX_EPOCH + Duration::from_millis(1_002),
            "the SystemTime view agrees"
        );
    }

    #[tokio::test]
    async fn a_manual_sleep_ends_when_the_clock_reaches_its_time_not_before() {
        let hand = ManualClock::new(0);
        let clock = hand.clock();
        let sleeper = tokio::spawn(async move { clock.sleep(Duration::from_secs(2)).await });
        let until = hand.clock();
        let until = tokio::spawn(async move { until.sleep_until(3_000).await });
        tokio::task::yield_now().await; // both read the clock before it moves
        hand.advance(Duration::from_millis(1_999));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished() && !until.is_finished());
        hand.advance(Duration::from_millis(1));
        sleeper.await.unwrap();
        assert!(!until.is_finished());
        hand.advance(Duration::from_secs(5));
        until.await.unwrap();
    }

    #[tokio::test]
    async fn a_time_already_past_does_not_wait() {
        let hand = ManualClock::new(5_000);
        hand.clock().sleep_until(4_000).await;
        hand.clock().sleep(Duration::ZERO).await;
        Clock::system().sleep_until(0).await;
    }
}
