//! The values orgsync wrote (migration 0005): recorded with each field version when a batch
//! finishes, read back by `orgsync drift`, and the repair jobs drift enqueues.

use super::ingest::enqueue;
use super::{Store, StoreError};
use crate::model::{Change, EventId, ExternalId, TargetKey, TargetKind, Version};

/// One field a finished batch applied: its winning version and the value sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedField {
    /// The metadata key.
    pub field: String,
    /// The version that won.
    pub version: Version,
    /// The value PATCHed (after string conversion); `None` when the key was removed.
    pub value: Option<String>,
}

/// What orgsync remembers of one field of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenField {
    /// Organization or user.
    pub kind: TargetKind,
    /// The target's external id.
    pub external_id: ExternalId,
    /// The metadata key.
    pub field: String,
    /// The version of the newest applied value.
    pub version: Version,
    /// What was written: `None` for rows recorded before values were kept (migration
    /// 0005); `Some(None)` when orgsync removed the key; `Some(Some(v))` when it set `v`.
    pub written: Option<Option<String>>,
}

/// A `field_versions` row as [`Store::written_fields`] selects it.
#[derive(sqlx::FromRow)]
struct WrittenRow {
    target_key: TargetKey,
    field: String,
    version_ms: i64,
    version_seq: i64,
    written: Option<String>,
    written_value: Option<String>,
}

/// Which recorded fields to read back.
#[derive(Debug, Clone, Default)]
pub struct WrittenFilter {
    /// Only this target key (`org:EXT`, `user:EXT`).
    pub target_key: Option<TargetKey>,
    /// Only targets with a field last written from an event of this source (still stored);
    /// all their fields are returned.
    pub source: Option<String>,
    /// At most this many targets, in key order.
    pub limit: i64,
}

/// A repair job: a change carrying the version of the value it writes back.
#[derive(Debug, Clone)]
pub struct RepairJob {
    /// The change (marked `replayed`, so its own version may rewrite the field).
    pub change: Change,
    /// The version recorded with the values it restores.
    pub version: Version,
}

/// Records one applied field in a batch's transaction. The version only moves forward; the
/// value follows any write at the same or a newer version (a replay may rewrite its own
/// event's value at the same version).
pub(super) async fn record_applied(
    tx: &mut sqlx::AnyConnection,
    target_key: &TargetKey,
    applied: &AppliedField,
) -> Result<(), StoreError> {
    let written = if applied.value.is_some() {
        "set"
    } else {
        "removed"
    };
    sqlx::query(
        "INSERT INTO field_versions (target_key, field, version_ms, version_seq, written, written_value)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (target_key, field) DO UPDATE
           SET version_ms = excluded.version_ms, version_seq = excluded.version_seq,
               written = excluded.written, written_value = excluded.written_value
           WHERE (excluded.version_ms, excluded.version_seq)
              >= (field_versions.version_ms, field_versions.version_seq)",
    )
    .bind(target_key)
    .bind(&applied.field)
    .bind(applied.version.at_ms)
    .bind(applied.version.seq)
    .bind(written)
    .bind(applied.value.as_deref())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

impl Store {
    /// Every recorded field of the first `filter.limit` targets (in key order) that match.
    pub async fn written_fields(
        &self,
        filter: &WrittenFilter,
    ) -> Result<Vec<WrittenField>, StoreError> {
        let sql =
            "SELECT f.target_key, f.field, f.version_ms, f.version_seq, f.written, f.written_value
             FROM field_versions f
             WHERE f.target_key IN (
                 SELECT DISTINCT g.target_key FROM field_versions g
                 WHERE ($1 IS NULL OR g.target_key = $1)
                   AND ($2 IS NULL OR EXISTS (SELECT 1 FROM events e
                                              WHERE e.id = g.version_seq AND e.source = $2))
                 ORDER BY g.target_key LIMIT $3)
             ORDER BY f.target_key, f.field";
        let rows: Vec<WrittenRow> = sqlx::query_as(sql)
            .bind(&filter.target_key)
            .bind(&filter.source)
            .bind(filter.limit)
            .fetch_all(&self.pool)
            .await?;
        let mut fields = Vec::with_capacity(rows.len());
        for row in rows {
            let Some((kind, external_id)) = row.target_key.external_target() else {
                continue; // not an external target (cannot happen: links have no versions)
            };
            fields.push(WrittenField {
                kind,
                external_id,
                field: row.field,
                version: Version {
                    at_ms: row.version_ms,
                    seq: row.version_seq,
                },
                written: match row.written.as_deref() {
                    Some("set") => Some(row.written_value),
                    Some(_) => Some(None),
                    None => None,
                },
            });
        }
        Ok(fields)
    }

    /// Enqueues drift repairs in one transaction, under one event that records them
    /// (source `orgsync`, type `drift.repair`, the jobs as payload), so the queue's
    /// foreign key holds even when the events that wrote the values were pruned. Returns
    /// the event id.
    pub async fn enqueue_repairs(
        &self,
        repairs: &[RepairJob],
        now_ms: i64,
    ) -> Result<EventId, StoreError> {
        // A new event row, then its jobs (no links): the order ingest uses (see
        // `group_commit`), so this cannot deadlock with a group commit.
        let mut tx = self.begin().await?;
        let payload = serde_json::json!({
            "repairs": repairs.iter().map(|r| serde_json::json!({
                "change": r.change, "version": r.version,
            })).collect::<Vec<_>>(),
        });
        let provider_id = format!("drift-repair-{now_ms}-{:08x}", rand::random::<u32>());
        let (event_id,): (EventId,) = sqlx::query_as(
            "INSERT INTO events (source, provider_event_id, event_type, occurred_at_ms,
                                 received_at_ms, payload, verification, status)
             VALUES ('orgsync', $1, 'drift.repair', $2, $2, $3, $4, 'accepted')
             RETURNING id",
        )
        .bind(provider_id)
        .bind(now_ms)
        .bind(payload.to_string())
        .bind("none: made by orgsync drift --repair")
        .fetch_one(&mut *tx)
        .await?;
        for repair in repairs {
            let change = std::slice::from_ref(&repair.change);
            let backend = self.backend;
            enqueue(
                &mut tx,
                backend,
                event_id,
                repair.version,
                change,
                &[],
                now_ms,
            )
            .await?;
        }
        tx.commit().await?;
        if !repairs.is_empty() {
            self.announce_committed_jobs();
        }
        Ok(event_id)
    }
}
