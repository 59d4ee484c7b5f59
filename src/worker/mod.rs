//! The apply queue's worker: [`Worker::process_next`] claims one target's jobs, applies
//! them and records what happened; [`run`] is the trivial loop around it.

mod adopt;
mod apply;
mod create;
mod merge;
mod retry;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use merge::{MergePlan, merge};
pub use retry::{RetryKind, RetryPolicy, millis};

use crate::clock::Clock;
use crate::config::WorkerSettings;
use crate::model::{JobId, TargetKey, TargetRef};
use crate::scalekit::ScalekitClient;
use crate::store::{ClaimedBatch, ClaimedJob, JobVerdict, Store, StoreError};
use crate::telemetry::Metrics;

/// A worker failure that is not about one job (the store is unreachable).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The store failed; the claimed jobs go back to the queue when their lease ends.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one call of [`Worker::process_next`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassOutcome {
    /// Nothing was runnable.
    Idle,
    /// One target's batch was processed.
    Processed(BatchReport),
}

/// The tally of one processed batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchReport {
    /// The target key.
    pub target_key: TargetKey,
    /// Jobs applied (or already in effect).
    pub done: usize,
    /// Jobs scheduled again.
    pub retried: usize,
    /// Jobs that failed for good.
    pub dead: usize,
    /// Jobs skipped on purpose.
    pub skipped: usize,
    /// Jobs whose link resolved, moved to their real target.
    pub relinked: usize,
    /// Whether Scalekit was written to (PATCH or create).
    pub wrote: bool,
    /// The lease ran out mid-pass; nothing was recorded (another worker redoes it).
    pub lease_lost: bool,
}

impl BatchReport {
    /// A report of nothing done yet for one target.
    fn empty(target_key: TargetKey) -> Self {
        Self {
            target_key,
            done: 0,
            retried: 0,
            dead: 0,
            skipped: 0,
            relinked: 0,
            wrote: false,
            lease_lost: false,
        }
    }
}

/// What operators should know about the workers beyond "running" (shown by `/readyz`):
/// today, that Scalekit refuses the credentials. Shared by the worker tasks.
#[derive(Debug, Default)]
pub struct WorkerHealth {
    problem: Mutex<Option<String>>,
}

impl WorkerHealth {
    /// Records the current problem, or that there is none.
    pub fn report(&self, problem: Option<String>) {
        let mut current = self.problem.lock().unwrap_or_else(|e| e.into_inner());
        if problem.is_some() && *current != problem {
            tracing::error!(
                problem = problem.as_deref().unwrap_or_default(),
                "workers cannot apply changes"
            );
        }
        *current = problem;
    }

    /// The current problem, if any.
    pub fn problem(&self) -> Option<String> {
        self.problem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// One worker task's state: its own lease owner id, and what all tasks share.
pub struct Worker {
    store: Store,
    client: ScalekitClient,
    policy: RetryPolicy,
    owner: String,
    lease: Duration,
    batch_size: i64,
    merge_warned: AtomicBool,
    health: Arc<WorkerHealth>,
    clock: Clock,
    metrics: Arc<Metrics>,
}

impl Worker {
    /// A worker identified by `owner` in leases (unique per task and process), reading
    /// the time from `clock`.
    pub fn new(
        store: Store,
        client: ScalekitClient,
        settings: &WorkerSettings,
        owner: String,
        health: Arc<WorkerHealth>,
        clock: Clock,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            client,
            policy: RetryPolicy::from_settings(settings),
            owner,
            lease: Duration::from_secs(settings.lease_seconds),
            batch_size: settings.batch_size,
            merge_warned: AtomicBool::new(false),
            health,
            clock,
            metrics,
        }
    }

    /// Hands back every job this worker still holds (after a shutdown deadline), so another
    /// process can take them at once instead of after the lease.
    pub async fn release(&self) -> Result<u64, WorkerError> {
        Ok(self
            .store
            .release_leases(&self.owner, self.clock.now_ms())
            .await?)
    }

    /// Claims the next runnable target, applies its jobs, and records the outcome.
    pub async fn process_next(&self) -> Result<PassOutcome, WorkerError> {
        let now = self.clock.now_ms();
        let Some(batch) = self
            .store
            .claim(&self.owner, now, millis(self.lease), self.batch_size)
            .await?
        else {
            return Ok(PassOutcome::Idle);
        };
        let span =
            tracing::info_span!("apply", target = %batch.target_key, jobs = batch.jobs.len());
        self.process(&batch)
            .instrument(span)
            .await
            .map(PassOutcome::Processed)
    }

    async fn process(&self, batch: &ClaimedBatch) -> Result<BatchReport, WorkerError> {
        let Some(decision) = self.with_heartbeat(batch, self.decide(batch)).await? else {
            tracing::warn!(
                "lost the lease on {}; another worker took it over, this pass is dropped",
                batch.target_key
            );
            return Ok(BatchReport {
                lease_lost: true,
                ..BatchReport::empty(batch.target_key.clone())
            });
        };
        let recorded = self
            .store
            .finish(
                &self.owner,
                &batch.target_key,
                &decision,
                self.clock.now_ms(),
            )
            .await?;
        if recorded == 0 && !decision.outcomes.is_empty() {
            tracing::warn!(
                "the lease on {} ran out before the pass was recorded; another worker redoes it",
                batch.target_key
            );
            return Ok(BatchReport {
                lease_lost: true,
                ..BatchReport::empty(batch.target_key.clone())
            });
        }
        let report = tally(&batch.target_key, &decision);
        log_report(&report, &decision.outcomes, self.clock.now_ms());
        count_report(&self.metrics, &report);
        Ok(report)
    }

    async fn decide(&self, batch: &ClaimedBatch) -> Result<apply::Decision, WorkerError> {
        let now = self.clock.now_ms();
        let Some(first) = batch.jobs.first() else {
            return Ok(apply::Decision::default());
        };
        match &first.change.target {
            TargetRef::External { kind, external_id } => {
                let versions = self.store.field_versions(&batch.target_key).await?;
                Ok(self
                    .apply_external(*kind, external_id, &batch.jobs, &versions, now)
                    .await)
            }
            TargetRef::Link { kind, link, key } => {
                let found = self.store.resolve_link(*kind, link, key).await?;
                Ok(self.relink(&batch.jobs, found, now))
            }
        }
    }

    /// Moves jobs waiting on a link to their real target once the link is known.
    fn relink(
        &self,
        jobs: &[ClaimedJob],
        found: Option<crate::model::ExternalId>,
        now_ms: i64,
    ) -> apply::Decision {
        let outcomes = jobs
            .iter()
            .map(|job| {
                let TargetRef::Link { kind, link, key } = &job.change.target else {
                    return (job.id, JobVerdict::Dead("internal: mixed targets in one batch".into()));
                };
                let outcome = match &found {
                    Some(external_id) => {
                        let mut change = job.change.clone();
                        change.target = TargetRef::External { kind: *kind, external_id: external_id.clone() };
                        JobVerdict::Rekey(Box::new(change))
                    }
                    None => {
                        let reason = format!(
                            "no {kind} is linked to {link} {key} yet: an event that carries both ids (a customer or checkout event) links them"
                        );
                        let transient = crate::scalekit::FailureClass::Transient;
                        self.policy.after_failure(job, &transient, &reason, now_ms, &mut rand::rng())
                    }
                };
                (job.id, outcome)
            })
            .collect();
        apply::Decision {
            outcomes,
            ..Default::default()
        }
    }

    /// Runs `work` while renewing the batch's lease every third of its length, so a slow
    /// Scalekit never lets another worker take the same target. If the lease was lost
    /// anyway (a stall longer than the lease), the work is cancelled: `None`.
    async fn with_heartbeat<T>(
        &self,
        batch: &ClaimedBatch,
        work: impl Future<Output = Result<T, WorkerError>>,
    ) -> Result<Option<T>, WorkerError> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                result = &mut work => return result.map(Some),
                _ = self.clock.sleep(self.lease / 3) => {
                    let until = self.clock.now_ms() + millis(self.lease);
                    if !self.store.extend_lease(&self.owner, &batch.target_key, until).await? {
                        return Ok(None);
                    }
                }
            }
        }
    }
}

/// Runs one worker task until `token` is cancelled: process while there is work, else wait
/// for `wake` (a new event) or the poll interval (due retries). The batch in progress when
/// the token fires is finished, not abandoned.
pub async fn run(worker: Arc<Worker>, wake: Arc<Notify>, poll: Duration, token: CancellationToken) {
    let mut failures: u32 = 0;
    while !token.is_cancelled() {
        // Listen before looking, so an event committed while this pass runs still wakes us.
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let pause = match worker.process_next().await {
            Ok(PassOutcome::Processed(_)) => {
                failures = 0;
                continue;
            }
            Ok(PassOutcome::Idle) => poll,
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::error!(error = %e, "worker pass failed; retrying");
                poll.saturating_mul(failures.min(30))
            }
        };
        tokio::select! {
            _ = token.cancelled() => break,
            _ = &mut notified => {}
            _ = worker.clock.sleep(pause) => {}
        }
    }
}

fn tally(target_key: &TargetKey, decision: &apply::Decision) -> BatchReport {
    let mut report = BatchReport {
        wrote: decision.wrote,
        ..BatchReport::empty(target_key.clone())
    };
    for (_, outcome) in &decision.outcomes {
        match outcome {
            JobVerdict::Done => report.done += 1,
            JobVerdict::Skipped(_) => report.skipped += 1,
            JobVerdict::Dead(_) => report.dead += 1,
            JobVerdict::Retry { .. } | JobVerdict::RunAgain(_) => report.retried += 1,
            JobVerdict::Rekey(_) => report.relinked += 1,
        }
    }
    report
}

/// Adds a processed batch to `orgsync_jobs_processed_total` and `orgsync_batches_total`.
fn count_report(metrics: &Metrics, report: &BatchReport) {
    let counts = [
        ("done", report.done),
        ("retried", report.retried),
        ("dead", report.dead),
        ("skipped", report.skipped),
        ("relinked", report.relinked),
    ];
    for (outcome, n) in counts {
        metrics.jobs_processed(outcome, n as u64);
    }
    metrics.batch(report.wrote);
}

fn log_report(report: &BatchReport, outcomes: &[(JobId, JobVerdict)], now_ms: i64) {
    for (id, outcome) in outcomes {
        match outcome {
            JobVerdict::Dead(reason) => tracing::error!(job = id.get(), %reason, "job is dead"),
            JobVerdict::Retry {
                error, run_at_ms, ..
            } => {
                tracing::warn!(job = id.get(), %error, retry_in_ms = run_at_ms - now_ms, "job will be retried")
            }
            _ => {}
        }
    }
    tracing::info!(
        done = report.done,
        retried = report.retried,
        dead = report.dead,
        skipped = report.skipped,
        relinked = report.relinked,
        wrote = report.wrote,
        "batch processed"
    );
}
