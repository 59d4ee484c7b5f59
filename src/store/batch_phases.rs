//! The statements of one group commit (see `group_commit`), in the three phases of its
//! lock order: event rows, links, jobs.

use super::event_rows::write_events;
use super::group_commit::Request;
use super::ingest::{IngestItem, IngestReport, IngestedEvent, version_of};
use super::links::record_links;
use super::new_jobs::NewJobs;
use super::resolve::KnownRenames;
use super::statements::Statements;
use super::{Backend, StoreError};
use crate::model::Normalized;

/// The statements of a batch, in the three phases of the lock order (see `group_commit`).
pub(super) async fn statements(
    tx: &mut impl Statements,
    backend: Backend,
    batch: &[Request],
) -> Result<Vec<IngestReport>, StoreError> {
    let mut events = write_events(tx, backend, batch).await?;
    let renames = write_links(tx, backend, batch, &events).await?;
    write_jobs(tx, backend, batch, &mut events, NewJobs::new(renames)).await?;
    Ok(events
        .into_iter()
        .map(|events| IngestReport { events })
        .collect())
}

/// The new events that matched a rule: (delivery, item) with the event's report entry.
fn fresh<'a>(
    batch: &'a [Request],
    events: &'a [Vec<IngestedEvent>],
) -> impl Iterator<Item = (&'a Request, &'a IngestItem, &'a IngestedEvent)> {
    batch.iter().zip(events).flat_map(|(request, events)| {
        request
            .items
            .iter()
            .zip(events)
            .filter(|(item, event)| {
                !event.duplicate && matches!(item.normalized, Normalized::Matched { .. })
            })
            .map(move |(item, event)| (request, item, event))
    })
}

/// Phase 2: the links every new event of the batch learned (sorted inside). Returns what
/// it learned of the renames.
async fn write_links(
    tx: &mut impl Statements,
    backend: Backend,
    batch: &[Request],
    events: &[Vec<IngestedEvent>],
) -> Result<KnownRenames, StoreError> {
    let mut links = Vec::new();
    for (request, item, event) in fresh(batch, events) {
        if let Normalized::Matched { links: learned, .. } = &item.normalized {
            let version = version_of(&item.event, event.event_id, request.now_ms);
            links.extend(learned.iter().map(|link| (link, version)));
        }
    }
    record_links(tx, backend, links).await
}

/// Phase 3: the jobs of every new event, in arrival order, counted in its report entry;
/// all written by a few multi-row statements (gathered in `jobs`).
async fn write_jobs(
    tx: &mut impl Statements,
    backend: Backend,
    batch: &[Request],
    events: &mut [Vec<IngestedEvent>],
    mut jobs: NewJobs,
) -> Result<(), StoreError> {
    for (request, events) in batch.iter().zip(events.iter_mut()) {
        for (item, event) in request.items.iter().zip(events.iter_mut()) {
            let Normalized::Matched { changes, .. } = &item.normalized else {
                continue;
            };
            if !event.duplicate {
                let version = version_of(&item.event, event.event_id, request.now_ms);
                let (id, now) = (event.event_id, request.now_ms);
                event.jobs = jobs.add(tx, id, version, changes, now).await?;
            }
        }
    }
    jobs.insert(tx, backend).await
}
