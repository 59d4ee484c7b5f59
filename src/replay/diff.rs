//! `replay --dry-run --diff`: what a replay would change in Scalekit. The selected events
//! run through the current rules; each target's changes are merged, exactly as the worker
//! would (same staleness rule), over the live object read through the rate-limited client.
//! Nothing is stored and nothing is written.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::drift::LiveReader;
use crate::model::{
    Change, EventId, ExternalId, JobId, Normalized, TargetKey, TargetKind, TargetRef,
};
use crate::rules::RuleSet;
use crate::store::{ClaimedJob, ReplayFilter, Store, StoreError};
use crate::worker::merge;

/// What the replay would do to one key of one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyDiff {
    /// The metadata key.
    pub key: String,
    /// Its live value (`None`: absent, or the target could not be read).
    pub live: Option<String>,
    /// Its value after the replay (`None`: absent).
    pub after: Option<String>,
    /// Whether the replay would write it (it wins and differs from the live value).
    pub write: bool,
    /// The replayed version is older than the stored one: the newer value is kept.
    pub kept: bool,
}

/// What the replay would do to one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetDiff {
    /// `org:EXT`, `user:EXT`, or `link:…` while the link is not known yet.
    pub target: TargetKey,
    /// Scalekit's id, when the live object was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scalekit_id: Option<String>,
    /// Whether the live object exists (false: the worker would wait, create or skip).
    pub exists: bool,
    /// Why the live object could not be read, or the target resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A new external id the replay would set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_external_id: Option<String>,
    /// Changes the merge would refuse (Scalekit's limits), with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
    /// Every key the replayed changes set or remove, by key.
    pub keys: Vec<KeyDiff>,
}

/// A change's target as known now: kind and external id, or `None` while a link is unknown.
type Resolved = Option<(TargetKind, ExternalId)>;

/// Reads the live object of every target the selected events change and reports, per key,
/// the live value, the value after the replay and whether the replay would write it.
pub async fn diff(
    store: &Store,
    rules: &RuleSet,
    filter: &ReplayFilter,
    reader: &mut LiveReader,
) -> Result<Vec<TargetDiff>, StoreError> {
    let mut by_target: BTreeMap<TargetKey, (Resolved, Vec<ClaimedJob>)> = BTreeMap::new();
    let mut next_id = 0;
    for stored in store.events_to_replay(filter).await? {
        let Normalized::Matched { changes, .. } = rules.normalize(&stored.event) else {
            continue;
        };
        for change in changes {
            let resolved = resolve(store, &change.target).await?;
            let key = match &resolved {
                Some((kind, id)) => TargetKey::external(*kind, id),
                None => change.target.key(),
            };
            next_id += 1;
            let job = pseudo_job(JobId(next_id), stored.id, stored.version, change);
            let entry = by_target
                .entry(key)
                .or_insert_with(|| (resolved, Vec::new()));
            entry.1.push(job);
        }
    }
    let mut diffs = Vec::with_capacity(by_target.len());
    for (key, (resolved, jobs)) in by_target {
        diffs.push(match resolved {
            Some((kind, id)) => target_diff(store, reader, key, kind, &id, &jobs).await?,
            None => unresolved(key, &jobs),
        });
    }
    Ok(diffs)
}

/// The external target a change names, through links and renames; `None` while a link is
/// not known yet.
async fn resolve(store: &Store, target: &TargetRef) -> Result<Resolved, StoreError> {
    let (kind, id) = match target {
        TargetRef::External { kind, external_id } => (*kind, external_id.clone()),
        TargetRef::Link { kind, link, key } => match store.resolve_link(*kind, link, key).await? {
            Some(id) => (*kind, id),
            None => return Ok(None),
        },
    };
    let id = store.renamed_to(kind, &id).await?.unwrap_or(id);
    Ok(Some((kind, id)))
}

/// Merges the target's replayed changes over its live object and stored versions.
async fn target_diff(
    store: &Store,
    reader: &mut LiveReader,
    key: TargetKey,
    kind: TargetKind,
    external_id: &ExternalId,
    jobs: &[ClaimedJob],
) -> Result<TargetDiff, StoreError> {
    let versions = store.field_versions(&key).await?;
    let (live, error) = match reader.read(kind, external_id).await {
        Ok(live) => (live, None),
        Err(e) => (None, Some(e)),
    };
    let current = live
        .as_ref()
        .map(|o| o.metadata.clone())
        .unwrap_or_default();
    let plan = merge(kind, &current, &versions, jobs);
    let applied: BTreeSet<&str> = plan
        .applied_fields
        .iter()
        .map(|(f, _)| f.as_str())
        .collect();
    let refused_jobs: BTreeSet<JobId> = plan.refused.iter().map(|(id, _)| *id).collect();
    let keys = touched_keys(jobs, &refused_jobs)
        .into_iter()
        .map(|k| {
            let (now, after) = (current.get(&k).cloned(), plan.desired.get(&k).cloned());
            let wins = applied.contains(k.as_str());
            KeyDiff {
                write: wins && now != after && error.is_none(),
                kept: !wins,
                live: now,
                after,
                key: k,
            }
        })
        .collect();
    let new_external_id = plan
        .new_external_id
        .filter(|id| live.as_ref().and_then(|o| o.external_id.as_deref()) != Some(id.as_str()))
        .map(String::from);
    Ok(TargetDiff {
        target: key,
        scalekit_id: live.as_ref().map(|o| o.id.clone()),
        exists: live.is_some(),
        error,
        new_external_id,
        refused: plan.refused.into_iter().map(|(_, reason)| reason).collect(),
        keys,
    })
}

/// A target known only by a link no event has taught yet.
fn unresolved(key: TargetKey, jobs: &[ClaimedJob]) -> TargetDiff {
    let error = match jobs.first().map(|j| &j.change.target) {
        Some(TargetRef::Link { kind, link, key }) => {
            format!("no {kind} is linked to {link} {key} yet; the replayed changes would wait")
        }
        _ => "the target is not known".to_owned(),
    };
    let keys = touched_keys(jobs, &BTreeSet::new())
        .into_iter()
        .map(|key| KeyDiff {
            key,
            live: None,
            after: None,
            write: false,
            kept: false,
        })
        .collect();
    TargetDiff {
        target: key,
        scalekit_id: None,
        exists: false,
        error: Some(error),
        new_external_id: None,
        refused: Vec::new(),
        keys,
    }
}

/// Every key the (not refused) changes set or remove, in order.
fn touched_keys(jobs: &[ClaimedJob], refused: &BTreeSet<JobId>) -> BTreeSet<String> {
    jobs.iter()
        .filter(|j| !refused.contains(&j.id))
        .flat_map(|j| j.change.set.keys().chain(&j.change.unset))
        .map(|k| k.to_string())
        .collect()
}

/// The job a replay would enqueue for `change`, as the worker would claim it.
fn pseudo_job(
    id: JobId,
    event_id: EventId,
    version: crate::model::Version,
    change: Change,
) -> ClaimedJob {
    ClaimedJob {
        id,
        event_id,
        change: Change {
            replayed: true,
            ..change
        },
        version,
        attempts: 0,
        throttles: 0,
        run_at_ms: 0,
        window_start_ms: 0,
    }
}
