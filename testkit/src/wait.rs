//! Waiting on a condition: check it every [`POLL`] until it holds, and fail after a
//! deadline with what was awaited and, for [`wait_for_ok`], why the last check said no.
//! The deadline only bounds a hung test; nothing here measures how fast anything was.

use std::fmt::Display;
use std::time::{Duration, Instant};

/// How often a condition is checked.
pub const POLL: Duration = Duration::from_millis(20);

/// Checks `done` until it returns true; panics with `what` once `limit` has passed.
pub async fn wait_for(limit: Duration, what: &str, mut done: impl AsyncFnMut() -> bool) {
    wait_for_ok(limit, what, async || {
        if done().await {
            Ok(())
        } else {
            Err("the condition still does not hold")
        }
    })
    .await
}

/// Checks `check` until it returns `Ok` and gives the value back; panics once `limit` has
/// passed with `what` and the last `Err` (say, the state seen), so a failure shows why.
pub async fn wait_for_ok<T, E: Display>(
    limit: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(why) if Instant::now() >= deadline => {
                panic!("{what} not reached within {limit:?}; last check: {why}")
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// [`wait_for`] for a synchronous test: the thread sleeps between checks.
pub fn wait_for_blocking(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what} not reached within {limit:?}"
        );
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_until_the_condition_holds() {
        let mut checks = 0;
        wait_for(Duration::from_secs(30), "three checks", async || {
            checks += 1;
            checks == 3
        })
        .await;
        assert_eq!(checks, 3);
    }

    #[tokio::test]
    async fn gives_back_the_value_of_the_first_ok() {
        let mut checks = 0;
        let value = wait_for_ok(Duration::from_secs(30), "a value", async || {
            checks += 1;
            if checks < 2 {
                Err("not yet")
            } else {
                Ok(checks * 10)
            }
        })
        .await;
        assert_eq!(value, 20);
    }

    #[tokio::test]
    #[should_panic(expected = "the answer not reached within 0ns; last check: seen 41")]
    async fn a_condition_that_never_holds_fails_with_the_last_reason() {
        wait_for_ok(Duration::ZERO, "the answer", async || {
            Err::<(), _>("seen 41")
        })
        .await;
    }

    #[test]
    fn the_blocking_form_checks_until_true_and_fails_after_the_limit() {
        let mut checks = 0;
        wait_for_blocking(Duration::from_secs(30), "two checks", || {
            checks += 1;
            checks == 2
        });
        assert_eq!(checks, 2);
        let failed = std::panic::catch_unwind(|| {
            wait_for_blocking(Duration::ZERO, "never", || false);
        });
        assert!(failed.is_err());
    }
}
