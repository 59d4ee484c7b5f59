//! Claiming: the oldest runnable job whose target nobody holds, with every other waiting
//! job of that target, under a lease. SQLite does it in one statement (one writer at a
//! time); PostgreSQL needs row locks and a per-target advisory lock, see
//! [`Store::claim_postgres`].

use sqlx::{Any, Transaction};

use super::jobs::{ClaimedBatch, ClaimedJob};
use super::{Backend, Store, StoreError, decode_json};
use crate::model::{EventId, JobId, TargetKey, Version};

/// A job that may be claimed at `$1`: due, or running under an expired lease.
const RUNNABLE: &str = "(state = 'pending' AND run_at_ms <= $1)
                     OR (state = 'running' AND lease_expires_ms <= $1)";

/// A live running job of the target of the outer row `j`: that target is held.
const HELD: &str = "SELECT 1 FROM jobs r WHERE r.target_key = j.target_key
                    AND r.state = 'running' AND r.lease_expires_ms > $1";

/// The columns a claim returns.
const CLAIMED: &str = "id, event_id, target_key, change, version_ms, version_seq, attempts,
                       throttles, run_at_ms, window_start_ms";

/// How many candidate rows a PostgreSQL claim locks and tries, oldest first.
const CANDIDATES: i64 = 16;

impl Store {
    /// Claims the oldest runnable job whose target nobody holds, together with every other
    /// waiting job of that target (at most `limit`), under a lease for `owner`. Two
    /// workers, in this process or another replica, never hold the same target.
    pub async fn claim(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Option<ClaimedBatch>, StoreError> {
        let rows = match self.backend {
            Backend::Sqlite => self.claim_sqlite(owner, now_ms, lease_ms, limit).await?,
            Backend::Postgres => self.claim_postgres(owner, now_ms, lease_ms, limit).await?,
        };
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let target_key = first.target_key.clone();
        let mut jobs = Vec::with_capacity(rows.len());
        for row in rows {
            let id = row.id;
            match claimed_job(row) {
                Ok(job) => jobs.push(job),
                // An unreadable job must not block its target forever: it ends dead, named.
                Err(e) => self.bury(id, &e.to_string(), now_ms).await?,
            }
        }
        jobs.sort_by_key(|j| j.version);
        Ok(Some(ClaimedBatch { target_key, jobs }))
    }

    /// SQLite: one statement, under this process's write turn. Writers are serialised, so
    /// the target it picks cannot gain a running job between the choice and the update.
    ///
    /// The target is found in O(log n) of the backlog: first a job whose lease expired
    /// (the `jobs_by_lease` partial index, almost always empty), else the oldest due
    /// pending job whose target is free, walking `jobs_runnable` in `(run_at_ms, id)`
    /// order and stopping at the first hit (only targets held right now are stepped over).
    async fn claim_sqlite(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedRow>, StoreError> {
        let sql = format!(
            "UPDATE jobs SET state = 'running', lease_owner = $2, lease_expires_ms = $3,
                             updated_at_ms = $1
             WHERE id IN (
               SELECT id FROM jobs
               WHERE target_key = (
                   SELECT target_key FROM (
                     SELECT target_key FROM (
                       SELECT j.target_key FROM jobs j INDEXED BY jobs_by_lease
                       WHERE j.state = 'running' AND j.lease_expires_ms <= $1 LIMIT 1)
                     UNION ALL
                     SELECT target_key FROM (
                       SELECT j.target_key FROM jobs j INDEXED BY jobs_runnable
                       WHERE j.state = 'pending' AND j.run_at_ms <= $1
                         AND NOT EXISTS ({HELD})
                       ORDER BY j.run_at_ms, j.id LIMIT 1))
                   LIMIT 1)
                 AND (state = 'pending' OR (state = 'running' AND lease_expires_ms <= $1))
               ORDER BY version_ms, version_seq LIMIT $4)
             RETURNING {CLAIMED}"
        );
        let _turn = self.writer.acquire().await;
        Ok(sqlx::query_as(&sql)
            .bind(now_ms)
            .bind(owner)
            .bind(now_ms + lease_ms)
            .bind(limit)
            .fetch_all(&self.work_pool)
            .await?)
    }

    /// PostgreSQL, where several replicas claim at once under READ COMMITTED. The SQLite
    /// statement is not enough there: its subqueries see a snapshot taken when it began,
    /// so two claimers could both find a target free and both take it. So, in one
    /// transaction:
    ///
    /// 1. lock a few candidate rows (oldest runnable first, target without a live running
    ///    job) with `FOR UPDATE SKIP LOCKED`: claimers spread over different rows instead
    ///    of queueing behind each other;
    /// 2. for each candidate target in turn, take `pg_try_advisory_xact_lock` on its key:
    ///    at most one transaction decides about a target at a time, and a busy target is
    ///    skipped, never waited for;
    /// 3. holding that lock, check AGAIN, in a new statement (so with a fresh snapshot),
    ///    that the target has no live running job: a claimer that took it and committed
    ///    after step 1's snapshot (and so released its advisory lock) is visible now;
    /// 4. mark its waiting jobs running (oldest version first, at most `limit`) and return
    ///    them. Rows another claimer locked as candidates are skipped rather than waited
    ///    for (waiting could deadlock two claimers); they stay pending and are claimed
    ///    after this batch finishes.
    ///
    /// The transaction commits before the rows are handed out, which releases the locks.
    async fn claim_postgres(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedRow>, StoreError> {
        let mut tx = self.begin().await?;
        let candidates: Vec<(String,)> = sqlx::query_as(&format!(
            "SELECT j.target_key FROM jobs j
             WHERE ({RUNNABLE})
               AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.target_key = j.target_key
                               AND r.state = 'running' AND r.lease_expires_ms > $1)
             ORDER BY j.run_at_ms, j.id LIMIT $2
             FOR UPDATE OF j SKIP LOCKED"
        ))
        .bind(now_ms)
        .bind(CANDIDATES)
        .fetch_all(&mut *tx)
        .await?;
        let mut tried: Vec<&str> = Vec::new();
        for (key,) in &candidates {
            if tried.contains(&key.as_str()) {
                continue;
            }
            tried.push(key);
            if !lock_free_target(&mut tx, key, now_ms).await? {
                continue;
            }
            let rows: Vec<ClaimedRow> = sqlx::query_as(&format!(
                "UPDATE jobs SET state = 'running', lease_owner = $2, lease_expires_ms = $3,
                                 updated_at_ms = $1
                 WHERE id IN (
                   SELECT id FROM jobs
                   WHERE target_key = $5
                     AND (state = 'pending' OR (state = 'running' AND lease_expires_ms <= $1))
                   ORDER BY version_ms, version_seq LIMIT $4
                   FOR UPDATE SKIP LOCKED)
                 RETURNING {CLAIMED}"
            ))
            .bind(now_ms)
            .bind(owner)
            .bind(now_ms + lease_ms)
            .bind(limit)
            .bind(key)
            .fetch_all(&mut *tx)
            .await?;
            if !rows.is_empty() {
                tx.commit().await?;
                return Ok(rows);
            }
        }
        tx.commit().await?;
        Ok(Vec::new())
    }

    /// Marks one claimed job dead with the reason (a job that cannot be read back).
    async fn bury(&self, id: JobId, reason: &str, now_ms: i64) -> Result<(), StoreError> {
        let _turn = self.writer.acquire().await;
        sqlx::query(
            "UPDATE jobs SET state = 'dead', last_error = $2, lease_owner = NULL,
                             lease_expires_ms = NULL, updated_at_ms = $3
             WHERE id = $1",
        )
        .bind(id)
        .bind(reason)
        .bind(now_ms)
        .execute(&self.work_pool)
        .await?;
        Ok(())
    }
}

/// Steps 2 and 3 of a PostgreSQL claim: takes the target's advisory lock (held until the
/// transaction ends) and tells whether, now that it is held, the target is still free.
async fn lock_free_target(
    tx: &mut Transaction<'static, Any>,
    key: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let (locked,): (bool,) =
        sqlx::query_as("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(key)
            .fetch_one(&mut **tx)
            .await?;
    if !locked {
        return Ok(false);
    }
    let (held,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM jobs WHERE target_key = $1 AND state = 'running'
                        AND lease_expires_ms > $2)",
    )
    .bind(key)
    .bind(now_ms)
    .fetch_one(&mut **tx)
    .await?;
    Ok(!held)
}

/// A job row as a claim returns it (the [`CLAIMED`] columns).
#[derive(sqlx::FromRow)]
pub(super) struct ClaimedRow {
    id: JobId,
    event_id: EventId,
    target_key: TargetKey,
    change: String,
    version_ms: i64,
    version_seq: i64,
    attempts: i64,
    throttles: i64,
    run_at_ms: i64,
    window_start_ms: i64,
}

fn claimed_job(row: ClaimedRow) -> Result<ClaimedJob, StoreError> {
    Ok(ClaimedJob {
        id: row.id,
        event_id: row.event_id,
        change: decode_json("job", row.id.get(), &row.change)?,
        version: Version {
            at_ms: row.version_ms,
            seq: row.version_seq,
        },
        attempts: row.attempts,
        throttles: row.throttles,
        run_at_ms: row.run_at_ms,
        window_start_ms: row.window_start_ms,
    })
}
