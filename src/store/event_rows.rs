//! Phase 1 of a group commit (see `group_commit`): the deliveries' raw bodies and the
//! event rows of a whole batch, written by a few multi-row statements (one per
//! [`EVENTS_PER_INSERT`] events, one per [`DELIVERIES_PER_INSERT`] bodies) instead of two
//! statements per event; each statement is a round trip (PostgreSQL) or a hop to sqlx's
//! SQLite thread, and those hops were most of a batch's time.
//!
//! Lock order (PostgreSQL, several replicas writing at once): the event rows are written
//! in (source, provider event id) order, the order `group_commit` relies on.
//! - The INSERT names each key once, sorted. PostgreSQL inserts the rows of a `VALUES`
//!   list one after the other, so its unique-index entries are taken in key order; a key
//!   another transaction inserted and has not committed makes this one wait for it right
//!   there, holding only entries of smaller keys. `ON CONFLICT DO NOTHING` locks no
//!   committed row.
//! - Then, key by key in the same order and one statement each, the duplicate counts:
//!   row locks on committed rows (or on this transaction's own new rows, which nobody
//!   else can see). A transaction takes these only after all its unique entries, and
//!   nobody waits for an entry of a transaction that is past its INSERT except to insert
//!   that key, which it does in key order too. So every transaction takes (new keys, in
//!   key order) then (counted rows, in key order) then the later phases, and a waiter
//!   always holds only things that come before what it waits for: no cycle can form.
//!   (One `UPDATE … FROM (VALUES …)` would lock in whatever order the join produced;
//!   redeliveries are rare, so they keep their own statements.)
//! - The deliveries' rows are new rows nobody else sees: no lock is shared.

use super::group_commit::Request;
use super::ingest::{IngestItem, IngestedEvent, RawDelivery};
use super::statements::{Arg, Statements};
use super::values_list::values_sql;
use super::{Backend, StoreError};
use crate::model::{EventId, EventStatus};

/// The most events one INSERT writes: 10 bound values each, far below SQLite's 32 766
/// and PostgreSQL's 65 535 parameters per statement.
const EVENTS_PER_INSERT: usize = 500;

/// The values bound per event row.
const VALUES_PER_EVENT: usize = 10;

/// The most raw bodies one INSERT writes (each up to the body limit).
const DELIVERIES_PER_INSERT: usize = 64;

/// The most body bytes one INSERT carries beyond its first body.
const DELIVERY_BYTES_PER_INSERT: usize = 8 << 20;

/// One event occurrence of a batch: (delivery, item).
type Occurrence = (usize, usize);

/// Writes the raw bodies and event rows of `batch` and counts its redeliveries. Returns
/// one report entry per event, per delivery, in delivery order.
pub(super) async fn write_events(
    tx: &mut impl Statements,
    backend: Backend,
    batch: &[Request],
) -> Result<Vec<Vec<IngestedEvent>>, StoreError> {
    let item = |(r, i): Occurrence| &batch[r].items[i];
    let key = |o: Occurrence| {
        let event = &item(o).event;
        (event.source.as_str(), event.provider_event_id.as_str())
    };
    let mut order: Vec<Occurrence> = batch
        .iter()
        .enumerate()
        .flat_map(|(r, request)| (0..request.items.len()).map(move |i| (r, i)))
        .collect();
    // Stable: a redelivery within the batch follows the first delivery of its event.
    order.sort_by(|&a, &b| key(a).cmp(&key(b)));
    let groups: Vec<&[Occurrence]> = order.chunk_by(|&a, &b| key(a) == key(b)).collect();

    let deliveries = insert_deliveries(tx, backend, batch).await?;
    let firsts: Vec<Occurrence> = groups.iter().map(|group| group[0]).collect();
    let mut inserted = Vec::with_capacity(firsts.len());
    for chunk in firsts.chunks(EVENTS_PER_INSERT) {
        inserted.extend(insert_events(tx, backend, batch, &deliveries, chunk).await?);
    }
    inserted.sort_unstable_by(|a, b| (a.1.as_str(), a.2.as_str()).cmp(&(&b.1, &b.2)));

    let mut stored: Vec<Vec<Option<IngestedEvent>>> =
        batch.iter().map(|r| vec![None; r.items.len()]).collect();
    let mut used = vec![false; batch.len()];
    for group in groups {
        let first = group[0];
        let new_id = inserted
            .binary_search_by(|(_, source, id)| (source.as_str(), id.as_str()).cmp(&key(first)))
            .ok()
            .map(|at| inserted[at].0);
        let mut redelivered = group;
        if let Some(event_id) = new_id {
            used[first.0] = true;
            stored[first.0][first.1] = Some(IngestedEvent {
                event_id,
                duplicate: false,
                jobs: 0,
            });
            redelivered = &group[1..];
        }
        if redelivered.is_empty() {
            continue;
        }
        let (source, provider_event_id) = key(first);
        let event_id = count_duplicates(tx, source, provider_event_id, redelivered.len()).await?;
        for &(r, i) in redelivered {
            stored[r][i] = Some(IngestedEvent {
                event_id,
                duplicate: true,
                jobs: 0,
            });
        }
    }
    drop_unused(tx, &deliveries, &used).await?;
    Ok(stored
        .into_iter()
        .map(|events| events.into_iter().flatten().collect())
        .collect())
}

/// Inserts the raw body of every delivery that kept one; returns each delivery's row id.
async fn insert_deliveries(
    tx: &mut impl Statements,
    backend: Backend,
    batch: &[Request],
) -> Result<Vec<Option<i64>>, StoreError> {
    let mut ids = vec![None; batch.len()];
    let kept: Vec<(usize, &Request, &RawDelivery)> = batch
        .iter()
        .enumerate()
        // A delivery without events (none parsed) has no row to name its body.
        .filter(|(_, request)| !request.items.is_empty())
        .filter_map(|(r, request)| Some((r, request, request.raw.as_ref()?)))
        .collect();
    let mut rest = kept.as_slice();
    while !rest.is_empty() {
        let mut take = 1;
        let mut bytes = rest[0].2.body.len();
        while take < rest.len().min(DELIVERIES_PER_INSERT) {
            bytes += rest[take].2.body.len();
            if bytes > DELIVERY_BYTES_PER_INSERT {
                break;
            }
            take += 1;
        }
        let (chunk, later) = rest.split_at(take);
        rest = later;
        let sql = values_sql(
            backend,
            "INSERT INTO deliveries (source, received_at_ms, content_type, body, body_encoding)
             VALUES ",
            chunk.len(),
            5,
            " RETURNING id",
        );
        let mut args = Vec::with_capacity(chunk.len() * 5);
        for (_, request, raw) in chunk {
            let source = request.items.first().map(|i| i.event.source.as_str());
            args.extend([
                Arg::from(source.unwrap_or_default()),
                request.now_ms.into(),
                raw.content_type.as_deref().into(),
                raw.body.as_slice().into(),
                request.body_encoding.as_str().into(),
            ]);
        }
        let mut rows: Vec<(i64,)> = tx.fetch(&sql, &args).await?;
        // Both databases number new rows in the order the VALUES list gives them (SQLite:
        // one after the other under its write lock; PostgreSQL: the identity's sequence,
        // drawn row by row), but neither promises RETURNING in that order: sort the ids.
        rows.sort_unstable();
        if rows.len() != chunk.len() {
            return Err(StoreError::WriteRefused(format!(
                "{} raw bodies written, {} row ids returned",
                chunk.len(),
                rows.len()
            )));
        }
        for ((r, _, _), (id,)) in chunk.iter().zip(rows) {
            ids[*r] = Some(id);
        }
    }
    Ok(ids)
}

/// Inserts the events of `chunk` (each key once, in key order) unless already stored;
/// returns (row id, source, provider event id) of the new ones.
async fn insert_events(
    tx: &mut impl Statements,
    backend: Backend,
    batch: &[Request],
    deliveries: &[Option<i64>],
    chunk: &[Occurrence],
) -> Result<Vec<(EventId, String, String)>, StoreError> {
    let sql = values_sql(
        backend,
        "INSERT INTO events (source, provider_event_id, event_type, occurred_at_ms,
                             received_at_ms, payload, verification, status, reason,
                             delivery_id)
         VALUES ",
        chunk.len(),
        VALUES_PER_EVENT,
        " ON CONFLICT (source, provider_event_id) DO NOTHING
          RETURNING id, source, provider_event_id",
    );
    let payloads: Vec<String> = chunk
        .iter()
        .map(|&(r, i)| payload_text(batch[r].raw.as_ref(), &batch[r].items[i].event.payload))
        .collect();
    let mut args = Vec::with_capacity(chunk.len() * VALUES_PER_EVENT);
    for (&(r, i), payload) in chunk.iter().zip(&payloads) {
        let request = &batch[r];
        let IngestItem { event, normalized } = &request.items[i];
        let (status, reason) = EventStatus::of(normalized);
        args.extend([
            Arg::from(event.source.as_str()),
            event.provider_event_id.as_str().into(),
            event.event_type.as_str().into(),
            event.occurred_at_ms.into(),
            request.now_ms.into(),
            payload.as_str().into(),
            event.verification.as_str().into(),
            status.as_str().into(),
            reason.into(),
            deliveries[r].into(),
        ]);
    }
    let rows: Vec<(i64, String, String)> = tx.fetch(&sql, &args).await?;
    Ok(rows
        .into_iter()
        .map(|(id, source, provider_event_id)| (EventId(id), source, provider_event_id))
        .collect())
}

/// The `payload` column of an event: empty when the source said the payload is the raw
/// body parsed (a JSON source), so the body is stored once and the payload derived from
/// it when read; else the payload's JSON text (a Salesforce notification, or no raw body
/// kept).
fn payload_text(raw: Option<&RawDelivery>, payload: &serde_json::Value) -> String {
    match raw {
        Some(raw) if raw.payload_is_body => String::new(),
        _ => payload.to_string(),
    }
}

/// Counts `times` redeliveries on a stored event; returns its row id.
async fn count_duplicates(
    tx: &mut impl Statements,
    source: &str,
    provider_event_id: &str,
    times: usize,
) -> Result<EventId, StoreError> {
    let times = i64::try_from(times).unwrap_or(i64::MAX);
    let rows: Vec<(i64,)> = tx
        .fetch(
            "UPDATE events SET duplicates = duplicates + $3
             WHERE source = $1 AND provider_event_id = $2 RETURNING id",
            &[source.into(), provider_event_id.into(), times.into()],
        )
        .await?;
    match rows.first() {
        Some(&(id,)) => Ok(EventId(id)),
        None => Err(StoreError::WriteRefused(format!(
            "the stored event {source}/{provider_event_id} to count a redelivery on is gone"
        ))),
    }
}

/// Deletes the raw bodies none of whose events was new (a redelivery keeps no second
/// copy of the body). The rows are this transaction's own: no lock on them is shared.
async fn drop_unused(
    tx: &mut impl Statements,
    deliveries: &[Option<i64>],
    used: &[bool],
) -> Result<(), StoreError> {
    for (id, used) in deliveries.iter().zip(used) {
        if let (Some(id), false) = (id, used) {
            tx.execute("DELETE FROM deliveries WHERE id = $1", &[(*id).into()])
                .await?;
        }
    }
    Ok(())
}
