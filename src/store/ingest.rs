//! The ingest transaction: events, their jobs and learned links, committed together.

use sqlx::{Any, Transaction};

use super::body::{self, BodyEncoding};
use super::group_commit::Request;
use super::links::record_links;
use super::new_jobs::NewJobs;
use super::{Backend, Store, StoreError};
use crate::model::{Change, EventId, InboundEvent, LinkUpdate, Normalized, Version};

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
        mut raw: Option<RawDelivery>,
        mut items: Vec<IngestItem>,
        now_ms: i64,
    ) -> Result<IngestReport, StoreError> {
        if raw.as_ref().is_some_and(|raw| raw.payload_is_body) {
            // Not stored (derived from the body when read): freed here, in the caller's
            // task, rather than by the writer, which every delivery waits for.
            for item in &mut items {
                item.event.payload = serde_json::Value::Null;
            }
        }
        // Compressed here, in the caller's task, for the same reason.
        let mut body_encoding = BodyEncoding::Identity;
        if let Some(raw) = raw.as_mut() {
            let (encoding, stored) = body::encode(std::mem::take(&mut raw.body));
            (body_encoding, raw.body) = (encoding, stored);
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let request = Request {
            raw,
            body_encoding,
            items,
            now_ms,
            reply,
        };
        self.ingest_queue
            .send(request)
            .await
            .map_err(|_| StoreError::Closed)?;
        let (result, _items, _raw) = answer.await.map_err(|_| StoreError::Closed)?;
        result
    }
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
    let renames = record_links(tx, backend, links.iter().map(|l| (l, version)).collect()).await?;
    let mut jobs = NewJobs::new(renames);
    let count = jobs.add(tx, event_id, version, changes, now_ms).await?;
    jobs.insert(tx, backend).await?;
    Ok(count)
}
