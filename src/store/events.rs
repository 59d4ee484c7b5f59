//! Reading stored events back (operator views; replay builds on these).

use super::{Store, StoreError, body, decode_json};
use crate::model::{EventId, EventStatus, VERSION_CAPPED_MARK};

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only this source.
    pub source: Option<String>,
    /// Only this status.
    pub status: Option<EventStatus>,
    /// At most this many, newest first.
    pub limit: i64,
}

/// A stored event.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EventRow {
    /// Row id (also the arrival sequence).
    pub id: EventId,
    /// Source name.
    pub source: String,
    /// The sender's event id.
    pub provider_event_id: String,
    /// Event type.
    pub event_type: String,
    /// The source's timestamp (unix ms), if it had one.
    pub occurred_at_ms: Option<i64>,
    /// Arrival time (unix ms).
    pub received_at_ms: i64,
    /// What the rules made of it.
    pub status: EventStatus,
    /// Why it was rejected.
    pub reason: Option<String>,
    /// How many redeliveries were acknowledged without storing again.
    pub duplicates: i64,
    /// The verification done at receipt.
    pub verification: String,
    /// The source's version lay beyond its future skew and was capped at the arrival time
    /// (the verification text says what the sender claimed).
    pub version_capped: bool,
    /// The payload (only filled by [`Store::event`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
    /// The delivery's raw body as text (only filled by [`Store::event`], when kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_body: Option<String>,
}

/// The columns [`event_row`] reads (without the payload).
pub(super) const EVENT_COLUMNS: &str =
    "id, source, provider_event_id, event_type, occurred_at_ms, received_at_ms,
                       status, reason, duplicates, verification";

impl Store {
    /// Lists events, newest first.
    pub async fn list_events(&self, filter: &EventFilter) -> Result<Vec<EventRow>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events
             WHERE ($1 IS NULL OR source = $1) AND ($2 IS NULL OR status = $2)
             ORDER BY id DESC LIMIT $3"
        );
        let rows: Vec<EventColumns> = sqlx::query_as(&sql)
            .bind(&filter.source)
            .bind(filter.status.map(EventStatus::as_str))
            .bind(filter.limit)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(event_row).collect()
    }

    /// One event with its payload.
    pub async fn event(&self, id: EventId) -> Result<Option<EventRow>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS}, payload,
                    (SELECT body FROM deliveries WHERE deliveries.id = events.delivery_id) AS raw_body,
                    (SELECT body_encoding FROM deliveries WHERE deliveries.id = events.delivery_id)
                      AS raw_body_encoding
             FROM events WHERE id = $1"
        );
        let row: Option<EventColumns> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(event_row).transpose()
    }
}

/// An event row of `SELECT {EVENT_COLUMNS}`, as stored (plus `payload` and `raw_body`
/// when selected).
#[derive(sqlx::FromRow)]
pub(super) struct EventColumns {
    id: EventId,
    source: String,
    provider_event_id: String,
    event_type: String,
    occurred_at_ms: Option<i64>,
    received_at_ms: i64,
    #[sqlx(try_from = "String")]
    status: EventStatus,
    reason: Option<String>,
    duplicates: i64,
    verification: String,
    #[sqlx(default)]
    payload: Option<String>,
    #[sqlx(default)]
    raw_body: Option<Vec<u8>>,
    #[sqlx(default)]
    raw_body_encoding: Option<String>,
}

/// The operator's view of a stored event row (its payload decoded when selected).
pub(super) fn event_row(row: EventColumns) -> Result<EventRow, StoreError> {
    let body = body::decode(row.id.get(), row.raw_body_encoding.as_deref(), row.raw_body)?;
    let payload = match &row.payload {
        Some(text) => Some(payload(row.id.get(), text, body.as_deref())?),
        None => None,
    };
    let raw_body = body.map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    Ok(EventRow {
        id: row.id,
        source: row.source,
        provider_event_id: row.provider_event_id,
        event_type: row.event_type,
        occurred_at_ms: row.occurred_at_ms,
        received_at_ms: row.received_at_ms,
        status: row.status,
        reason: row.reason,
        duplicates: row.duplicates,
        version_capped: row.verification.contains(VERSION_CAPPED_MARK),
        verification: row.verification,
        payload,
        raw_body,
    })
}

/// An event's payload from its `payload` column, or (when that is empty, see
/// `event_rows::payload_text`) from its delivery's raw body.
pub(super) fn payload(
    id: i64,
    text: &str,
    raw_body: Option<&[u8]>,
) -> Result<serde_json::Value, StoreError> {
    if !text.is_empty() {
        return decode_json("event", id, text);
    }
    let body = raw_body.ok_or_else(|| StoreError::Corrupt {
        what: "event",
        id,
        reason: "its payload is its delivery's body, and that delivery is missing".into(),
    })?;
    serde_json::from_slice(body).map_err(|e| StoreError::Corrupt {
        what: "event",
        id,
        reason: e.to_string(),
    })
}
