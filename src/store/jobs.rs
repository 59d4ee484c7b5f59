//! The job queue after a claim (see `claim`): leases, field versions and finishing a
//! batch.

use std::collections::HashMap;

use super::links::{Rename, follow_rename};
use super::written::{AppliedField, record_applied};
use super::{Store, StoreError, encode_json};
use crate::model::{Change, EventId, JobId, JobState, TargetKey, Version};

/// A job handed to a worker.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    /// Row id.
    pub id: JobId,
    /// The event it came from.
    pub event_id: EventId,
    /// The change to apply.
    pub change: Change,
    /// Its order among changes to the same field.
    pub version: Version,
    /// Failed attempts so far.
    pub attempts: i64,
    /// Rate-limited retries so far (they lengthen the backoff, not the failure count).
    pub throttles: i64,
    /// When it was due; a job claimed early along with its target's due jobs does not
    /// count a failed attempt.
    pub run_at_ms: i64,
    /// Start of its retry window (for the maximum age).
    pub window_start_ms: i64,
}

/// Every claimed job of one target, in version order.
#[derive(Debug, Clone)]
pub struct ClaimedBatch {
    /// The target key all jobs share.
    pub target_key: TargetKey,
    /// The jobs, oldest version first.
    pub jobs: Vec<ClaimedJob>,
}

/// How one claimed job ends this pass.
#[derive(Debug, Clone, PartialEq)]
pub enum JobVerdict {
    /// Applied.
    Done,
    /// Not applied on purpose, with the reason.
    Skipped(String),
    /// Failed for good, with the reason.
    Dead(String),
    /// Try again at `run_at_ms`; `count_attempt` false counts a throttle instead (rate
    /// limits, refused credentials, jobs that were not due yet).
    Retry {
        /// Next attempt time.
        run_at_ms: i64,
        /// What failed.
        error: String,
        /// Whether this failure uses up the attempt budget.
        count_attempt: bool,
    },
    /// The target became known (a link resolved): run again under the new change/key.
    Rekey(Box<Change>),
    /// A duplicate create found the object and adopted it: run again now, using up
    /// neither an attempt nor a throttle; the note says what was adopted.
    RunAgain(String),
}

/// Everything a pass over one batch decided, recorded in one transaction.
#[derive(Debug, Clone, Default)]
pub struct BatchResult {
    /// One outcome per claimed job.
    pub outcomes: Vec<(JobId, JobVerdict)>,
    /// Field versions and the values written, to record (only when the write succeeded).
    pub applied_fields: Vec<AppliedField>,
    /// The target's external id changed.
    pub rename: Option<Rename>,
    /// Whether Scalekit was written to (PATCH or create).
    pub wrote: bool,
}

impl Store {
    /// Extends the lease on a target's claimed jobs (the worker's heartbeat). Returns false
    /// when the lease was lost (it expired and another worker took the jobs).
    pub async fn extend_lease(
        &self,
        owner: &str,
        target_key: &TargetKey,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let _turn = self.writer.acquire().await;
        let done = sqlx::query(
            "UPDATE jobs SET lease_expires_ms = $3
             WHERE target_key = $2 AND state = 'running' AND lease_owner = $1",
        )
        .bind(owner)
        .bind(target_key)
        .bind(until_ms)
        .execute(&self.work_pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Makes every job leased to `owner` runnable again now (a worker shutting down).
    pub async fn release_leases(&self, owner: &str, now_ms: i64) -> Result<u64, StoreError> {
        let _turn = self.writer.acquire().await;
        let done = sqlx::query(
            "UPDATE jobs SET state = 'pending', run_at_ms = $2, lease_owner = NULL,
                             lease_expires_ms = NULL, updated_at_ms = $2
             WHERE state = 'running' AND lease_owner = $1",
        )
        .bind(owner)
        .bind(now_ms)
        .execute(&self.work_pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// The newest applied version of each field of a target.
    pub async fn field_versions(
        &self,
        target_key: &TargetKey,
    ) -> Result<HashMap<String, Version>, StoreError> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT field, version_ms, version_seq FROM field_versions WHERE target_key = $1",
        )
        .bind(target_key)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(field, at_ms, seq)| (field, Version { at_ms, seq }))
            .collect())
    }

    /// Ends a pass over a batch in ONE transaction: each job's outcome, the field versions
    /// it applied, and a rename. Nothing is recorded unless every job is still leased to
    /// `owner` (a worker that lost its lease must not record versions another worker may
    /// have superseded); returns how many jobs changed.
    pub async fn finish(
        &self,
        owner: &str,
        target_key: &TargetKey,
        result: &BatchResult,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let _turn = self.writer.acquire().await;
        // A rename must not be forgotten: it is committed with a full sync.
        let mut tx = if result.rename.is_some() {
            self.begin().await?
        } else {
            self.begin_work().await?
        };
        let mut changed = 0;
        for (id, outcome) in &result.outcomes {
            changed += finish_job(&mut tx, owner, *id, outcome, now_ms).await?;
        }
        if changed < result.outcomes.len() as u64 {
            tx.rollback().await?;
            return Ok(0);
        }
        for applied in &result.applied_fields {
            record_applied(&mut tx, target_key, applied).await?;
        }
        if let Some(rename) = &result.rename {
            follow_rename(&mut tx, self.backend, rename).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }
}

async fn finish_job(
    tx: &mut sqlx::AnyConnection,
    owner: &str,
    id: JobId,
    outcome: &JobVerdict,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let throttle = i64::from(matches!(
        outcome,
        JobVerdict::Retry {
            count_attempt: false,
            ..
        }
    ));
    let (state, error, run_at, attempt, change) = match outcome {
        JobVerdict::Done => (JobState::Done, None, None, 0, None),
        JobVerdict::Skipped(reason) => (JobState::Skipped, Some(reason.as_str()), None, 0, None),
        JobVerdict::Dead(reason) => (JobState::Dead, Some(reason.as_str()), None, 1, None),
        JobVerdict::Retry {
            run_at_ms,
            error,
            count_attempt,
        } => (
            JobState::Pending,
            Some(error.as_str()),
            Some(*run_at_ms),
            i64::from(*count_attempt),
            None,
        ),
        JobVerdict::Rekey(change) => (
            JobState::Pending,
            None,
            Some(now_ms),
            0,
            Some(change.as_ref()),
        ),
        JobVerdict::RunAgain(note) => (
            JobState::Pending,
            Some(note.as_str()),
            Some(now_ms),
            0,
            None,
        ),
    };
    let done = sqlx::query(
        "UPDATE jobs SET state = $3, last_error = COALESCE($4, last_error),
                         run_at_ms = COALESCE($5, run_at_ms), attempts = attempts + $6,
                         throttles = throttles + $10,
                         change = COALESCE($7, change), target_key = COALESCE($8, target_key),
                         lease_owner = NULL, lease_expires_ms = NULL, updated_at_ms = $9
         WHERE id = $1 AND state = 'running' AND lease_owner = $2",
    )
    .bind(id)
    .bind(owner)
    .bind(state.as_str())
    .bind(error)
    .bind(run_at)
    .bind(attempt)
    .bind(change.map(encode_json))
    .bind(change.map(|c| c.target.key()))
    .bind(now_ms)
    .bind(throttle)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected())
}
