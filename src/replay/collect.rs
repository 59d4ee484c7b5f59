//! A replay that keeps what the rules made of the first events of a dry run, for the
//! admin API and the console to show (each in its own shape).

use super::{ReplayReport, replay};
use crate::model::Normalized;
use crate::rules::RuleSet;
use crate::store::{ReplayFilter, Store, StoreError, StoredEvent};

/// A replay's counts and, for a dry run, its first outcomes.
#[derive(Debug)]
pub struct Collected<T> {
    /// The counts.
    pub report: ReplayReport,
    /// A dry run's first outcomes, as the caller's `view` made them (empty for a replay
    /// that stored its jobs).
    pub outcomes: Vec<T>,
    /// Whether a dry run selected more events than `outcomes` holds.
    pub truncated: bool,
}

/// Replays what `filter` selects (see [`replay`]); a dry run also keeps the first `max`
/// outcomes, each as `view` makes it of the stored event and its verdict.
pub async fn replay_collecting<T>(
    store: &Store,
    rules: &RuleSet,
    filter: &ReplayFilter,
    dry_run: bool,
    now_ms: i64,
    max: usize,
    mut view: impl FnMut(&StoredEvent, &Normalized) -> T,
) -> Result<Collected<T>, StoreError> {
    let mut outcomes = Vec::new();
    let mut truncated = false;
    let report = replay(
        store,
        rules,
        filter,
        dry_run,
        now_ms,
        |stored, normalized| match dry_run {
            false => {}
            true if outcomes.len() >= max => truncated = true,
            true => outcomes.push(view(stored, normalized)),
        },
    )
    .await?;
    Ok(Collected {
        report,
        outcomes,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::InboundEvent;
    use crate::store::IngestItem;

    #[tokio::test]
    async fn a_dry_run_keeps_the_first_outcomes_and_a_replay_none() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("orgsync.db").display());
        let store = Store::connect(&url).await.unwrap();
        let items: Vec<IngestItem> = (0..3)
            .map(|n| IngestItem {
                event: InboundEvent {
                    source: "stripe".into(),
                    provider_event_id: format!("evt_{n}"),
                    event_type: "customer.updated".into(),
                    occurred_at_ms: Some(n),
                    payload: serde_json::json!({ "n": n }),
                    verification: "test".into(),
                },
                normalized: Normalized::Ignored,
            })
            .collect();
        store.ingest(None, &items, 1).await.unwrap();
        let rules = RuleSet::compile(&[], &["stripe"]).unwrap();
        let filter = ReplayFilter {
            limit: 10,
            ..ReplayFilter::default()
        };
        let run = |dry_run| replay_collecting(&store, &rules, &filter, dry_run, 2, 2, |e, _| e.id);
        let dry = run(true).await.unwrap();
        assert_eq!((dry.report.events, dry.report.ignored), (3, 3));
        assert_eq!((dry.outcomes.len(), dry.truncated), (2, true));
        let real = run(false).await.unwrap();
        assert_eq!(real.report.events, 3);
        assert!(real.outcomes.is_empty() && !real.truncated);
        store.close().await;
    }
}
