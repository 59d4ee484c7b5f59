//! The operator's view of the queue: job states, listing, counting and manual retry.

use std::collections::BTreeMap;

use super::{Store, StoreError, decode_json};
use crate::model::{EventId, JobId, JobState, TargetKey};

/// A job as the operator sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobRow {
    /// Row id.
    pub id: JobId,
    /// The event it came from.
    pub event_id: EventId,
    /// Its target key.
    pub target_key: TargetKey,
    /// Current state.
    pub state: JobState,
    /// Failed attempts so far.
    pub attempts: i64,
    /// Next attempt time (unix ms).
    pub run_at_ms: i64,
    /// The last failure or the reason it is dead/skipped.
    pub last_error: Option<String>,
    /// The change, as JSON.
    pub change: serde_json::Value,
}

impl Store {
    /// Lists jobs, newest first, optionally in one state.
    pub async fn list_jobs(
        &self,
        state: Option<JobState>,
        limit: i64,
    ) -> Result<Vec<JobRow>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs
             WHERE ($1 IS NULL OR state = $1) ORDER BY id DESC LIMIT $2"
        );
        let rows: Vec<JobColumns> = sqlx::query_as(&sql)
            .bind(state.map(JobState::as_str))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(job_row).collect()
    }

    /// Makes a dead (or skipped) job runnable again now, with a fresh retry window.
    /// Returns false when no such job is in one of those states.
    pub async fn retry_job(&self, id: JobId, now_ms: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'pending', attempts = 0, throttles = 0, run_at_ms = $2, window_start_ms = $2,
                             updated_at_ms = $2, lease_owner = NULL, lease_expires_ms = NULL
             WHERE id = $1 AND state IN ('dead', 'skipped')",
        )
        .bind(id)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() > 0 {
            self.announce_committed_jobs();
        }
        Ok(done.rows_affected() > 0)
    }

    /// Makes every dead job runnable again now, with a fresh retry window (after the cause,
    /// such as a Scalekit outage or a wrong permission, was fixed). Returns how many.
    pub async fn retry_dead(&self, now_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'pending', attempts = 0, throttles = 0, run_at_ms = $1, window_start_ms = $1,
                             updated_at_ms = $1, lease_owner = NULL, lease_expires_ms = NULL
             WHERE state = 'dead'",
        )
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() > 0 {
            self.announce_committed_jobs();
        }
        Ok(done.rows_affected())
    }

    /// One job, if it exists.
    pub async fn job(&self, id: JobId) -> Result<Option<JobRow>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        let row: Option<JobColumns> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(job_row).transpose()
    }

    /// Counts jobs per state, every state listed (for readiness and the operator).
    pub async fn job_counts(&self) -> Result<BTreeMap<JobState, i64>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM jobs GROUP BY state")
                .fetch_all(&self.pool)
                .await?;
        let mut counts: BTreeMap<JobState, i64> = JobState::ALL.map(|s| (s, 0)).into();
        for (name, count) in rows {
            let state = name.parse().map_err(|reason| StoreError::Corrupt {
                what: "job state count",
                id: 0,
                reason,
            })?;
            counts.insert(state, count);
        }
        Ok(counts)
    }
}

/// The columns [`job_row`] reads.
pub(super) const JOB_COLUMNS: &str =
    "id, event_id, target_key, state, attempts, run_at_ms, last_error, change";

/// A job row of `SELECT {JOB_COLUMNS}`, as stored.
#[derive(sqlx::FromRow)]
pub(super) struct JobColumns {
    id: JobId,
    event_id: EventId,
    target_key: TargetKey,
    #[sqlx(try_from = "String")]
    state: JobState,
    attempts: i64,
    run_at_ms: i64,
    last_error: Option<String>,
    change: String,
}

/// The operator's view of a stored job row (its change decoded).
pub(super) fn job_row(row: JobColumns) -> Result<JobRow, StoreError> {
    Ok(JobRow {
        change: decode_json("job", row.id.get(), &row.change)?,
        id: row.id,
        event_id: row.event_id,
        target_key: row.target_key,
        state: row.state,
        attempts: row.attempts,
        run_at_ms: row.run_at_ms,
        last_error: row.last_error,
    })
}
