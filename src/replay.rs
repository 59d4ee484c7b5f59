//! Replay: stored events run through the current rules again and enqueued as new jobs, for
//! example after a mapping rule was fixed. A dry run only reports what the rules make of
//! each event. Replayed jobs carry their event's original version, so they may rewrite what
//! their own event wrote but never a newer event's fields. [`diff`] (in `diff`) shows what
//! a replay would change in the live Scalekit objects; [`replay_collecting`] (in `collect`)
//! keeps a dry run's first outcomes for the admin API and the console.

mod collect;
mod diff;

pub use collect::{Collected, replay_collecting};
pub use diff::{KeyDiff, TargetDiff, diff};

use crate::model::Normalized;
use crate::rules::RuleSet;
use crate::store::{ReplayFilter, Store, StoreError, StoredEvent};

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReplayReport {
    /// Events selected.
    pub events: usize,
    /// Events the rules matched.
    pub matched: usize,
    /// Events no rule handles.
    pub ignored: usize,
    /// Events a rule matched but could not map.
    pub rejected: usize,
    /// Jobs enqueued (in a dry run: that would be).
    pub jobs: usize,
}

/// An RFC 3339 time (`2026-11-01T00:00:00Z`) as unix milliseconds, for replay filters.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            format!("{text:?} is not an RFC 3339 time ({e}); use e.g. 2026-11-01T00:00:00Z")
        })?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| format!("{text:?} is out of range"))
}

/// Replays the events `filter` selects through `rules`; `dry_run` stores nothing.
/// `each` sees every event with its verdict (for output and progress).
pub async fn replay(
    store: &Store,
    rules: &RuleSet,
    filter: &ReplayFilter,
    dry_run: bool,
    now_ms: i64,
    mut each: impl FnMut(&StoredEvent, &Normalized),
) -> Result<ReplayReport, StoreError> {
    let mut report = ReplayReport::default();
    for stored in store.events_to_replay(filter).await? {
        let normalized = rules.normalize(&stored.event);
        report.events += 1;
        match &normalized {
            Normalized::Matched { .. } => report.matched += 1,
            Normalized::Ignored => report.ignored += 1,
            Normalized::Rejected { .. } => report.rejected += 1,
        }
        report.jobs += match (&normalized, dry_run) {
            (Normalized::Matched { changes, .. }, true) => changes.len(),
            (_, true) => 0,
            (_, false) => store.replay(&stored, &normalized, now_ms).await?,
        };
        each(&stored, &normalized);
    }
    Ok(report)
}
