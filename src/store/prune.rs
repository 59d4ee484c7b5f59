//! Retention: finished jobs and old events are deleted after a while, in small
//! transactions so ingest never waits long behind a prune.

use super::{Store, StoreError};

/// Rows deleted per transaction.
const CHUNK: i64 = 1000;

/// What a prune deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Done and skipped jobs.
    pub jobs: u64,
    /// Events with no job left (dead, pending or running jobs keep theirs).
    pub events: u64,
    /// Raw deliveries no event refers to any more.
    pub deliveries: u64,
}

impl Store {
    /// Deletes done/skipped jobs last changed before `before_ms`, then events received
    /// before it that no remaining job refers to, then unreferenced raw deliveries. Dead
    /// jobs stay (an operator must look at them), and so do field versions and links (they
    /// keep old events from overwriting newer state, and cost little).
    pub async fn prune(&self, before_ms: i64) -> Result<PruneReport, StoreError> {
        let jobs = self
            .delete_in_chunks(
                "DELETE FROM jobs WHERE id IN (
                   SELECT id FROM jobs WHERE state IN ('done', 'skipped') AND updated_at_ms < $1
                   LIMIT $2)",
                before_ms,
            )
            .await?;
        let events = self
            .delete_in_chunks(
                "DELETE FROM events WHERE id IN (
                   SELECT e.id FROM events e WHERE e.received_at_ms < $1
                     AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.event_id = e.id)
                   LIMIT $2)",
                before_ms,
            )
            .await?;
        let deliveries = self
            .delete_in_chunks(
                "DELETE FROM deliveries WHERE id IN (
                   SELECT d.id FROM deliveries d WHERE d.received_at_ms < $1
                     AND NOT EXISTS (SELECT 1 FROM events e WHERE e.delivery_id = d.id)
                   LIMIT $2)",
                before_ms,
            )
            .await?;
        Ok(PruneReport {
            jobs,
            events,
            deliveries,
        })
    }

    async fn delete_in_chunks(&self, sql: &str, before_ms: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let deleted = sqlx::query(sql)
                .bind(before_ms)
                .bind(CHUNK)
                .execute(&self.pool)
                .await?
                .rows_affected();
            total += deleted;
            if deleted < u64::try_from(CHUNK).unwrap_or(u64::MAX) {
                return Ok(total);
            }
        }
    }
}
