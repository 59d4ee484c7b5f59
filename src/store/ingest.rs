//! The ingest transaction: events, their jobs and learned links, committed together.

use sqlx::{Any, Transaction};

use super::group_commit::Request;
use super::links::record_links;
use super::new_jobs::NewJobs;
use super::{Backend, Store, StoreError};
use crate::model::{Change, EventId, EventStatus, InboundEvent, LinkUpdate, Normalized, Version};

/// One verified event with what the rules made of it.
#[derive(Debug, Clone)]
pub struct IngestItem {
    /// The event as the source parsed it.
    pub event: InboundEvent,
    /// The rules' verdict.
    pub normalized: Normalized,
}

/// The bytes a sender delivered, kept with the events they carried (audit, and checking
/// a signature again by hand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDelivery {
    /// The request's `Content-Type`.
    pub content_type: Option<String>,
    /// The body as received (secrets a source must not keep already redacted).
    pub body: Vec<u8>,
    /// True when every event of the delivery has the body, parsed as JSON, as its payload
    /// (a JSON source says so): the payload is then not stored again but derived from the
    /// body when read. False for a Salesforce message, whose events carry their own JSON.
    pub payload_is_body: bool,
}

/// What happened to one event of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestedEvent {
    /// The event's row id.
    pub event_id: EventId,
    /// True when the event had been stored before (a redelivery).
    pub duplicate: bool,
    /// How many jobs were enqueued for it.
    pub jobs: usize,
}

/// What happened to a whole delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// One entry per event, in delivery order.
    pub events: Vec<IngestedEvent>,
}

impl IngestReport {
    /// Events stored for the first time.
    pub fn accepted(&self) -> usize {
        self.events.iter().filter(|e| !e.duplicate).count()
    }

    /// Redelivered events (counted, not stored again).
    pub fn duplicates(&self) -> usize {
        self.events.iter().filter(|e| e.duplicate).count()
    }
}

impl Store {
    /// Stores a delivery: each new event, its jobs and its links; a redelivered event only
    /// bumps its duplicate counter. The delivery is committed in one transaction (shared
    /// with the deliveries that arrived meanwhile, see `group_commit`), nothing is visible
    /// to the workers before the commit, and this returns only after it.
    pub async fn ingest(
        &self,
        raw: Option<RawDelivery>,
        items: &[IngestItem],
        now_ms: i64,
    ) -> Result<IngestReport, StoreError> {
        self.ingest_owned(raw, items.to_vec(), now_ms).await
    }

    /// [`Store::ingest`] for a caller that hands its items over (no copy of the payloads).
    pub async fn ingest_owned(
        &self,
        raw: Option<RawDelivery>,
        items: Vec<IngestItem>,
        now_ms: i64,
    ) -> Result<IngestReport, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let request = Request {
            raw,
            items,
            now_ms,
            reply,
        };
        self.ingest_queue
            .send(request)
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

/// The raw body of the delivery being written, stored with its first new event.
pub(super) struct PendingRaw<'a> {
    /// The bytes, if the caller kept them.
    pub raw: Option<&'a RawDelivery>,
    /// The `deliveries` row once written.
    pub id: Option<i64>,
    /// True once an event of the delivery was new (and references the row).
    pub used: bool,
}

impl PendingRaw<'_> {
    /// The `payload` column of an event of this delivery: empty when the source said the
    /// payload is the raw body parsed (a JSON source), so the body is stored once and the
    /// payload derived from it when read; else the payload's JSON text (a Salesforce
    /// notification, or no raw body kept).
    fn payload_text(&self, payload: &serde_json::Value) -> String {
        match self.raw {
            Some(raw) if raw.payload_is_body => String::new(),
            _ => payload.to_string(),
        }
    }

    /// The delivery's row id, writing the row the first time (before the event's row, so
    /// the event is inserted with it in one statement); `None` when no body is kept.
    async fn row(
        &mut self,
        tx: &mut Transaction<'_, Any>,
        source: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let Some(raw) = self.raw else {
            return Ok(None);
        };
        if let Some(id) = self.id {
            return Ok(Some(id));
        }
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO deliveries (source, received_at_ms, content_type, body)
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(source)
        .bind(now_ms)
        .bind(&raw.content_type)
        .bind(&raw.body)
        .fetch_one(&mut **tx)
        .await?;
        Ok(Some(*self.id.insert(id)))
    }

    /// Deletes the delivery's row again when none of its events was new (a redelivery
    /// keeps no second copy of the body). The row is this transaction's own: no lock on it
    /// is shared with anyone.
    pub(super) async fn drop_if_unused(
        &self,
        tx: &mut Transaction<'_, Any>,
    ) -> Result<(), StoreError> {
        if let (Some(id), false) = (self.id, self.used) {
            sqlx::query("DELETE FROM deliveries WHERE id = $1")
                .bind(id)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

/// A redelivery: count it on the stored event, store nothing else.
async fn count_duplicate(
    tx: &mut Transaction<'_, Any>,
    event: &InboundEvent,
) -> Result<IngestedEvent, StoreError> {
    let (event_id,): (EventId,) = sqlx::query_as(
        "UPDATE events SET duplicates = duplicates + 1
         WHERE source = $1 AND provider_event_id = $2 RETURNING id",
    )
    .bind(&event.source)
    .bind(&event.provider_event_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(IngestedEvent {
        event_id,
        duplicate: true,
        jobs: 0,
    })
}

/// Stores one event's row (or counts a redelivery), naming the delivery's raw body; its
/// links and jobs are written later in the transaction (see `group_commit` for the order).
pub(super) async fn ingest_one(
    tx: &mut Transaction<'_, Any>,
    item: &IngestItem,
    raw: &mut PendingRaw<'_>,
    now_ms: i64,
) -> Result<IngestedEvent, StoreError> {
    let event = &item.event;
    let (status, reason) = EventStatus::of(&item.normalized);
    let delivery_id = raw.row(tx, &event.source, now_ms).await?;
    let inserted: Option<(EventId,)> = sqlx::query_as(
        "INSERT INTO events (source, provider_event_id, event_type, occurred_at_ms, received_at_ms,
                             payload, verification, status, reason, delivery_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (source, provider_event_id) DO NOTHING
         RETURNING id",
    )
    .bind(&event.source)
    .bind(&event.provider_event_id)
    .bind(&event.event_type)
    .bind(event.occurred_at_ms)
    .bind(now_ms)
    .bind(raw.payload_text(&event.payload))
    .bind(&event.verification)
    .bind(status.as_str())
    .bind(reason)
    .bind(delivery_id)
    .fetch_optional(&mut **tx)
    .await?;

    let Some((event_id,)) = inserted else {
        return count_duplicate(tx, event).await;
    };
    raw.used = true;
    Ok(IngestedEvent {
        event_id,
        duplicate: false,
        jobs: 0,
    })
}

/// A new event's version: the source's time (else the arrival time), then its row id.
pub(super) fn version_of(event: &InboundEvent, event_id: EventId, now_ms: i64) -> Version {
    Version {
        at_ms: event.occurred_at_ms.unwrap_or(now_ms),
        seq: event_id.get(),
    }
}

/// Records an event's links and inserts one pending job per change (see `new_jobs`).
/// Used by replay; ingest records the links of a whole batch first (see `group_commit`).
pub(super) async fn enqueue(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    event_id: EventId,
    version: Version,
    changes: &[Change],
    links: &[LinkUpdate],
    now_ms: i64,
) -> Result<usize, StoreError> {
    record_links(tx, backend, links.iter().map(|l| (l, version)).collect()).await?;
    let mut jobs = NewJobs::default();
    let count = jobs.add(tx, event_id, version, changes, now_ms).await?;
    jobs.insert(tx).await?;
    Ok(count)
}
