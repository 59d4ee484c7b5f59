//! When to try again: exponential backoff with jitter, the Retry-After clamp, and the
//! point where a job is given up. Whether a failure is retryable is the Scalekit client's
//! call ([`crate::scalekit::FailureClass`]); this module only owns the schedule.

use std::time::Duration;

use rand::{Rng, RngExt};

use crate::config::WorkerSettings;
use crate::scalekit::FailureClass;
use crate::store::{ClaimedJob, JobVerdict};

/// The retry schedule.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Delay after the first failure.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Give up on a job this long after its retry window began.
    pub max_age: Duration,
    /// Give up after this many failed attempts (`None`: only the age counts).
    pub max_attempts: Option<u32>,
}

/// Why a pass failed, as the retry policy schedules it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryKind {
    /// Scalekit (or a missing prerequisite) failed; the client's classification decides.
    Failure(FailureClass),
    /// A create was refused as a duplicate and the existing object was adopted: the next
    /// pass merges into it, so it runs again at once, using up no attempt and no throttle.
    Adopted,
}

impl RetryPolicy {
    /// How a job ends after a failed pass of kind `kind` at `now_ms`.
    pub fn schedule(
        &self,
        job: &ClaimedJob,
        kind: &RetryKind,
        error: &str,
        now_ms: i64,
        rng: &mut impl Rng,
    ) -> JobVerdict {
        match kind {
            RetryKind::Adopted => JobVerdict::RunAgain(error.to_owned()),
            RetryKind::Failure(class) => self.after_failure(job, class, error, now_ms, rng),
        }
    }

    /// The policy from `[worker]`.
    pub fn from_settings(worker: &WorkerSettings) -> Self {
        Self {
            initial: Duration::from_secs(worker.retry_initial_seconds),
            max: Duration::from_secs(worker.retry_max_seconds),
            max_age: Duration::from_secs(worker.max_age_hours * 3600),
            max_attempts: (worker.max_attempts > 0).then_some(worker.max_attempts),
        }
    }

    /// The delay before attempt `attempts + 1`: `initial · 2^attempts`, capped at `max`,
    /// then jittered uniformly into its upper half so that failed jobs spread out.
    pub fn backoff(&self, attempts: i64, rng: &mut impl Rng) -> Duration {
        let exponent = u32::try_from(attempts.clamp(0, 30)).unwrap_or(30);
        let full = self
            .initial
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.max);
        let half = full / 2;
        half + full.mul_f64(rng.random::<f64>() * 0.5)
    }

    /// How a job ends after a failure of class `class` at `now_ms`.
    pub fn after_failure(
        &self,
        job: &ClaimedJob,
        class: &FailureClass,
        error: &str,
        now_ms: i64,
        rng: &mut impl Rng,
    ) -> JobVerdict {
        let was_due = job.run_at_ms <= now_ms;
        let (delay, count_attempt) = match class {
            FailureClass::Permanent | FailureClass::Conflict => {
                return JobVerdict::Dead(error.to_owned());
            }
            FailureClass::RateLimited { retry_after } => (
                retry_after.unwrap_or_else(|| self.backoff(job.throttles, rng)),
                false,
            ),
            FailureClass::Transient | FailureClass::NotFound => {
                (self.backoff(job.attempts, rng), was_due)
            }
        };
        let attempts = job.attempts + i64::from(count_attempt);
        if let Some(max) = self.max_attempts.filter(|m| attempts >= i64::from(*m)) {
            return JobVerdict::Dead(format!(
                "gave up after {max} failed attempts; last error: {error}"
            ));
        }
        self.retry_or_expire(job, delay, count_attempt, error, now_ms)
    }

    /// Retries after `delay`, unless that would pass the job's maximum age.
    pub fn retry_or_expire(
        &self,
        job: &ClaimedJob,
        delay: Duration,
        count_attempt: bool,
        error: &str,
        now_ms: i64,
    ) -> JobVerdict {
        let deadline = job.window_start_ms.saturating_add(millis(self.max_age));
        if now_ms >= deadline {
            let hours = self.max_age.as_secs() / 3600;
            return JobVerdict::Dead(format!(
                "still failing after the maximum age of {hours} h; last error: {error}"
            ));
        }
        JobVerdict::Retry {
            run_at_ms: now_ms.saturating_add(millis(delay)).min(deadline),
            error: error.to_owned(),
            count_attempt,
        }
    }
}

/// A duration in whole milliseconds, saturating.
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn policy() -> RetryPolicy {
        RetryPolicy::from_settings(&WorkerSettings::default())
    }

    fn job(attempts: i64) -> ClaimedJob {
        serde_json::from_value::<crate::model::Change>(serde_json::json!({
            "rule": "r", "target": {"by": "external", "kind": "organization", "external_id": "E"}
        }))
        .map(|change| ClaimedJob {
            id: crate::model::JobId(1),
            event_id: crate::model::EventId(1),
            change,
            version: crate::model::Version { at_ms: 0, seq: 1 },
            attempts,
            throttles: 0,
            run_at_ms: 0,
            window_start_ms: 0,
        })
        .unwrap()
    }

    #[test]
    fn an_adoption_runs_again_at_once_whatever_the_job_used_up() {
        let mut used = job(4);
        used.throttles = 3;
        let mut rng = StdRng::seed_from_u64(5);
        let verdict = policy().schedule(&used, &RetryKind::Adopted, "adopted", 0, &mut rng);
        assert_eq!(verdict, JobVerdict::RunAgain("adopted".into()));
        let limited = RetryKind::Failure(FailureClass::RateLimited { retry_after: None });
        let verdict = policy().schedule(&used, &limited, "429", 0, &mut rng);
        assert!(
            matches!(
                verdict,
                JobVerdict::Retry {
                    count_attempt: false,
                    ..
                }
            ),
            "{verdict:?}"
        );
    }

    #[test]
    fn backoff_doubles_from_two_seconds_to_the_cap_with_jitter() {
        let mut rng = StdRng::seed_from_u64(7);
        let p = policy();
        for attempts in 0..20 {
            let full =
                Duration::from_secs(2 * 2u64.pow(attempts as u32)).min(Duration::from_secs(900));
            let d = p.backoff(attempts, &mut rng);
            assert!(
                d >= full / 2 && d <= full,
                "attempt {attempts}: {d:?} vs {full:?}"
            );
        }
    }

    #[test]
    fn rate_limits_honour_retry_after_and_do_not_count() {
        let p = policy();
        let class = FailureClass::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
        };
        let out = p.after_failure(&job(3), &class, "429", 1000, &mut StdRng::seed_from_u64(1));
        assert_eq!(
            out,
            JobVerdict::Retry {
                run_at_ms: 8000,
                error: "429".into(),
                count_attempt: false
            }
        );
    }

    #[test]
    fn permanent_failures_die_and_old_jobs_expire() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(1);
        assert!(matches!(
            p.after_failure(&job(0), &FailureClass::Permanent, "400", 0, &mut rng),
            JobVerdict::Dead(_)
        ));
        let late = 72 * 3600 * 1000;
        match p.after_failure(&job(0), &FailureClass::Transient, "500", late, &mut rng) {
            JobVerdict::Dead(reason) => assert!(reason.contains("72 h") && reason.contains("500")),
            other => panic!("{other:?}"),
        }
        let limited = RetryPolicy {
            max_attempts: Some(2),
            ..p
        };
        assert!(matches!(
            limited.after_failure(&job(1), &FailureClass::Transient, "x", 0, &mut rng),
            JobVerdict::Dead(_)
        ));
    }

    #[test]
    fn repeated_rate_limits_without_retry_after_back_off_further() {
        let p = policy();
        let mut throttled = job(0);
        throttled.throttles = 3;
        let class = FailureClass::RateLimited { retry_after: None };
        match p.after_failure(&throttled, &class, "429", 0, &mut StdRng::seed_from_u64(3)) {
            JobVerdict::Retry {
                run_at_ms,
                count_attempt,
                ..
            } => {
                assert!(!count_attempt);
                assert!((8_000..=16_000).contains(&run_at_ms), "{run_at_ms}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_job_claimed_before_it_was_due_does_not_count_an_attempt() {
        let mut early = job(0);
        early.run_at_ms = 5_000;
        let out = policy().after_failure(
            &early,
            &FailureClass::Transient,
            "500",
            1_000,
            &mut StdRng::seed_from_u64(1),
        );
        assert!(
            matches!(
                out,
                JobVerdict::Retry {
                    count_attempt: false,
                    ..
                }
            ),
            "{out:?}"
        );
    }
}
