//! Queries for the browser console: per-source delivery counts, per-minute activity, queue
//! lag, filtered event and job lists, a target's owned fields, filtered bulk retry. Every
//! time-bounded query is a range scan on an existing index (`events_by_received`,
//! `jobs_by_state_run_at`, `jobs_by_target`, `jobs_by_event`).

use super::events::{EVENT_COLUMNS, EventColumns, event_row};
use super::job_views::{JOB_COLUMNS, JobColumns, job_row};
use super::{EventRow, JobRow, Store, StoreError};
use crate::model::{EventId, EventStatus, JobState, TargetKey};

/// How far before the chart window a done job's last run time may lie and still be counted
/// (a job is applied shortly after its run time unless the workers were stopped for long).
const DONE_LOOKBACK_MS: i64 = 24 * 3_600_000;

/// Events one source delivered in a time window, by status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceCounts {
    /// The source's name.
    pub source: String,
    /// Events stored as accepted.
    pub accepted: i64,
    /// Events no rule handles.
    pub ignored: i64,
    /// Events a rule could not map.
    pub rejected: i64,
    /// Redeliveries acknowledged without storing again.
    pub duplicates: i64,
}

/// Which events the console lists (all conditions must hold).
#[derive(Debug, Clone, Default)]
pub struct ConsoleEventFilter {
    /// Only this source.
    pub source: Option<String>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// Only this status.
    pub status: Option<EventStatus>,
    /// Received at or after this time (unix ms).
    pub since_ms: Option<i64>,
    /// Received before this time (unix ms).
    pub until_ms: Option<i64>,
    /// At most this many, newest first.
    pub limit: i64,
}

/// Which jobs the console lists or retries.
#[derive(Debug, Clone, Default)]
pub struct ConsoleJobFilter {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs of this target key (`org:<external id>`, `user:<external id>`).
    pub target_key: Option<TargetKey>,
    /// Only jobs of this event.
    pub event_id: Option<EventId>,
    /// At most this many, newest first.
    pub limit: i64,
}

impl Store {
    /// Events received since `since_ms`, per source and status.
    pub async fn deliveries_by_source(
        &self,
        since_ms: i64,
    ) -> Result<Vec<SourceCounts>, StoreError> {
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            // `source || ''` keeps SQLite from scanning the whole table in source order
            // instead of the `received_at_ms` range.
            "SELECT source || '' AS src, status, COUNT(*),
                    CAST(COALESCE(SUM(duplicates), 0) AS BIGINT)
             FROM events WHERE received_at_ms >= $1 GROUP BY src, status ORDER BY src",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<SourceCounts> = Vec::new();
        for (source, status, count, duplicates) in rows {
            if out.last().is_none_or(|c| c.source != source) {
                out.push(SourceCounts {
                    source: source.clone(),
                    ..SourceCounts::default()
                });
            }
            if let Some(counts) = out.last_mut() {
                match status.parse::<EventStatus>() {
                    Ok(EventStatus::Accepted) => counts.accepted += count,
                    Ok(EventStatus::Ignored) => counts.ignored += count,
                    Ok(EventStatus::Rejected) | Err(_) => counts.rejected += count,
                }
                counts.duplicates += duplicates;
            }
        }
        Ok(out)
    }

    /// The run time of the oldest pending job that is due at `now_ms` (the queue lag's
    /// start), if any.
    pub async fn oldest_runnable_ms(&self, now_ms: i64) -> Result<Option<i64>, StoreError> {
        let row: (Option<i64>,) = sqlx::query_as(
            "SELECT MIN(run_at_ms) FROM jobs WHERE state = 'pending' AND run_at_ms <= $1",
        )
        .bind(now_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.0)
    }

    /// Events received per minute since `since_ms`: (minute since the epoch, count).
    pub async fn events_per_minute(&self, since_ms: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT received_at_ms / 60000 AS minute, COUNT(*) FROM events
             WHERE received_at_ms >= $1 GROUP BY minute ORDER BY minute",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Jobs applied (done) per minute since `since_ms`: (minute since the epoch, count). The
    /// scan is bounded through the `(state, run_at_ms)` index: a job is done after its last
    /// run time, so only jobs run from [`DONE_LOOKBACK_MS`] before the window are read.
    pub async fn applied_per_minute(&self, since_ms: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT updated_at_ms / 60000 AS minute, COUNT(*) FROM jobs
             WHERE state = 'done' AND run_at_ms >= $2 AND updated_at_ms >= $1
             GROUP BY minute ORDER BY minute",
        )
        .bind(since_ms)
        .bind(since_ms - DONE_LOOKBACK_MS)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Events matching `filter`, newest first, without payloads.
    pub async fn console_events(
        &self,
        filter: &ConsoleEventFilter,
    ) -> Result<Vec<EventRow>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events
             WHERE ($1 IS NULL OR source = $1) AND ($2 IS NULL OR event_type = $2)
               AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR received_at_ms >= $4)
               AND ($5 IS NULL OR received_at_ms < $5)
             ORDER BY id DESC LIMIT $6"
        );
        let rows: Vec<EventColumns> = sqlx::query_as(&sql)
            .bind(&filter.source)
            .bind(&filter.event_type)
            .bind(filter.status.map(EventStatus::as_str))
            .bind(filter.since_ms)
            .bind(filter.until_ms)
            .bind(filter.limit)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(event_row).collect()
    }

    /// Jobs matching `filter`, newest first.
    pub async fn console_jobs(&self, filter: &ConsoleJobFilter) -> Result<Vec<JobRow>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs
             WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR target_key = $2)
               AND ($3 IS NULL OR event_id = $3)
             ORDER BY id DESC LIMIT $4"
        );
        let rows: Vec<JobColumns> = sqlx::query_as(&sql)
            .bind(filter.state.map(JobState::as_str))
            .bind(&filter.target_key)
            .bind(filter.event_id)
            .bind(filter.limit)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(job_row).collect()
    }

    /// How many dead jobs a bulk retry with this target filter would run again.
    pub async fn count_dead(&self, target_key: Option<&TargetKey>) -> Result<i64, StoreError> {
        let row: (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM jobs WHERE state = 'dead' AND ($1 IS NULL OR target_key = $1)",
        )
        .bind(target_key)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.0)
    }

    /// Makes the dead jobs of one target (or all, with `None`) runnable again now, with a
    /// fresh retry window. Returns how many.
    pub async fn retry_dead_matching(
        &self,
        target_key: Option<&TargetKey>,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'pending', attempts = 0, throttles = 0, run_at_ms = $1,
                             window_start_ms = $1, updated_at_ms = $1, lease_owner = NULL,
                             lease_expires_ms = NULL
             WHERE state = 'dead' AND ($2 IS NULL OR target_key = $2)",
        )
        .bind(now_ms)
        .bind(target_key)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
