//! Reading stored events back for a replay, and enqueueing what the current rules make
//! of them.

use super::ingest::enqueue;
use super::{Backend, Store, StoreError};
use crate::model::{EventId, EventStatus, InboundEvent, Normalized, Version};

/// Which stored events to replay (all conditions must hold).
#[derive(Debug, Clone, Default)]
pub struct ReplayFilter {
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
    /// Only these event ids (empty: any).
    pub ids: Vec<EventId>,
    /// At most this many, oldest first.
    pub limit: i64,
}

/// An event row as [`Store::events_to_replay`] selects it.
#[derive(sqlx::FromRow)]
struct ReplayColumns {
    id: EventId,
    source: String,
    provider_event_id: String,
    event_type: String,
    occurred_at_ms: Option<i64>,
    received_at_ms: i64,
    payload: String,
    verification: String,
    raw_body: Option<Vec<u8>>,
    raw_body_encoding: Option<String>,
}

/// A stored event, as the rules see it again.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// Row id (the arrival sequence).
    pub id: EventId,
    /// The event as first verified and parsed.
    pub event: InboundEvent,
    /// Its version: the source's time (else the arrival time), then the arrival sequence.
    pub version: Version,
}

impl Store {
    /// The events a filter selects, oldest first.
    pub async fn events_to_replay(
        &self,
        filter: &ReplayFilter,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let ids = (!filter.ids.is_empty())
            .then(|| serde_json::to_string(&filter.ids).unwrap_or_default());
        // The id list travels as one JSON array.
        let id_list = match self.backend {
            Backend::Sqlite => "SELECT value FROM json_each($6)",
            Backend::Postgres => "SELECT value::bigint FROM jsonb_array_elements_text($6::jsonb)",
        };
        let sql = format!(
            "SELECT id, source, provider_event_id, event_type, occurred_at_ms, received_at_ms,
                    payload, verification,
                    CASE WHEN payload = '' THEN
                      (SELECT body FROM deliveries WHERE deliveries.id = events.delivery_id)
                    END AS raw_body,
                    CASE WHEN payload = '' THEN
                      (SELECT body_encoding FROM deliveries WHERE deliveries.id = events.delivery_id)
                    END AS raw_body_encoding
             FROM events
             WHERE ($1 IS NULL OR source = $1) AND ($2 IS NULL OR event_type = $2)
               AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR received_at_ms >= $4)
               AND ($5 IS NULL OR received_at_ms < $5)
               AND ($6 IS NULL OR id IN ({id_list}))
             ORDER BY id LIMIT $7"
        );
        let rows: Vec<ReplayColumns> = sqlx::query_as(&sql)
            .bind(&filter.source)
            .bind(&filter.event_type)
            .bind(filter.status.map(EventStatus::as_str))
            .bind(filter.since_ms)
            .bind(filter.until_ms)
            .bind(ids)
            .bind(filter.limit)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|row| {
                let id = row.id;
                let encoding = row.raw_body_encoding.as_deref();
                let body = super::body::decode(id.get(), encoding, row.raw_body)?;
                Ok(StoredEvent {
                    id,
                    version: Version {
                        at_ms: row.occurred_at_ms.unwrap_or(row.received_at_ms),
                        seq: id.get(),
                    },
                    event: InboundEvent {
                        payload: super::events::payload(id.get(), &row.payload, body.as_deref())?,
                        source: row.source,
                        provider_event_id: row.provider_event_id,
                        event_type: row.event_type,
                        occurred_at_ms: row.occurred_at_ms,
                        verification: row.verification,
                    },
                })
            })
            .collect()
    }

    /// Records what the current rules make of a stored event, in one transaction: its new
    /// status, and one replayed job per change at the event's original version (so a newer
    /// event's fields are never overwritten). Returns the number of jobs enqueued.
    pub async fn replay(
        &self,
        stored: &StoredEvent,
        normalized: &Normalized,
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        let (status, reason) = EventStatus::of(normalized);
        // The event row first, then its links, then jobs: the order ingest uses too (see
        // `group_commit`), so a replay and a group commit cannot deadlock.
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE events SET status = $2, reason = $3 WHERE id = $1")
            .bind(stored.id)
            .bind(status.as_str())
            .bind(reason)
            .execute(&mut *tx)
            .await?;
        let mut jobs = 0;
        if let Normalized::Matched { changes, links } = normalized {
            let replayed: Vec<_> = changes
                .iter()
                .cloned()
                .map(|c| crate::model::Change {
                    replayed: true,
                    ..c
                })
                .collect();
            jobs = enqueue(
                &mut tx,
                self.backend,
                stored.id,
                stored.version,
                &replayed,
                links,
                now_ms,
            )
            .await?;
        }
        tx.commit().await?;
        if jobs > 0 {
            self.announce_committed_jobs();
        }
        Ok(jobs)
    }
}
