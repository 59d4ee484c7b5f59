//! Drift: has someone else changed a value orgsync wrote? orgsync remembers the value it
//! wrote for every key (with its version, in `field_versions`); [`check`] reads the live
//! objects and lists each key whose live value differs, and [`repair`] enqueues jobs that
//! write orgsync's values back through the normal queue.
//!
//! What each finding means ([`DriftKind`]):
//! - `absent`: orgsync set the key, the live object no longer has it;
//! - `changed`: orgsync set the key to one value, it now holds another (or orgsync removed
//!   the key and it is back);
//! - `never_written`: the live object has a key that a rule owns for this kind of target
//!   (it appears in some rule's `set` or `unset`), on a target orgsync has written, but
//!   orgsync never wrote that key there: the next event for it will overwrite it.
//!
//! Keys no rule owns are never looked at, reported or touched. Fields recorded before
//! values were kept (migration 0005) cannot be compared; they are counted as `unknown`.
//!
//! Repairs carry the version recorded with the value, marked as replayed: the merge lets
//! a change rewrite a field at its own version, so the repair applies, but a newer event
//! (applied or still queued) always wins over it.
//!
//! Layout: `live` reads objects (spaced, 429s waited out), `render` prints reports,
//! `periodic` is the daemon's optional check with its metrics.

mod live;
mod periodic;
mod render;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

pub use live::LiveReader;
pub use periodic::{record_metrics, run_periodically};
pub use render::{render_diff, render_drift};

use crate::model::{
    Change, EventId, ExternalId, MetadataKey, OnMissing, TargetKey, TargetKind, TargetRef, Version,
};
use crate::rules::RuleSet;
use crate::scalekit::ScalekitObject;
use crate::store::{RepairJob, Store, StoreError, WrittenField, WrittenFilter};

/// The rule name repair jobs carry (shown in job lists and logs).
pub const REPAIR_RULE: &str = "drift repair";

/// Which targets to check.
#[derive(Debug, Clone)]
pub struct DriftOptions {
    /// Only targets orgsync wrote from this source's events (still stored).
    pub source: Option<String>,
    /// Only this target: `org:EXT` or `user:EXT`.
    pub target: Option<String>,
    /// At most this many targets, in key order.
    pub limit: i64,
}

/// A check that cannot run as asked.
#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    /// `--target` is not `org:EXT` or `user:EXT`.
    #[error("invalid target {0:?}: use org:EXTERNAL_ID or user:EXTERNAL_ID")]
    BadTarget(String),
    /// `--limit` below 1.
    #[error("invalid limit {0}: use 1 or more")]
    BadLimit(i64),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a live key differs from what orgsync wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// orgsync set it; the live object lacks it.
    Absent,
    /// The live value is not the one orgsync wrote (or orgsync removed it and it is back).
    Changed,
    /// A key a rule owns holds a value orgsync never wrote on this target.
    NeverWritten,
}

/// One drifted key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyDrift {
    /// The metadata key.
    pub key: String,
    /// How it differs.
    pub drift: DriftKind,
    /// What orgsync wrote (`None`: it removed the key, or never wrote it).
    pub written: Option<String>,
    /// The live value (`None`: absent).
    pub live: Option<String>,
    /// The version of orgsync's value (a repair carries it); `None` when never written.
    pub version: Option<Version>,
}

/// One target's findings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetDrift {
    /// `org:EXT` or `user:EXT`.
    pub target: TargetKey,
    /// Organization or user.
    pub kind: TargetKind,
    /// Its external id.
    pub external_id: ExternalId,
    /// Scalekit's id, when the object was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scalekit_id: Option<String>,
    /// Scalekit has no object with this external id any more.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub missing: bool,
    /// Why the object could not be read (the rest of the report is still complete).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The drifted keys, by key.
    pub keys: Vec<KeyDrift>,
}

/// The result of a check: only targets with findings are listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DriftReport {
    /// When the check ran (unix ms).
    pub checked_at_ms: i64,
    /// Targets read.
    pub targets_checked: usize,
    /// Drifted keys over all targets.
    pub drifted_keys: usize,
    /// Keys recorded before values were kept (migration 0005): not comparable.
    pub unknown_keys: usize,
    /// Targets that could not be read or no longer exist.
    pub unreadable_targets: usize,
    /// The targets with findings.
    pub targets: Vec<TargetDrift>,
}

/// Compares what orgsync wrote with the live objects of the selected targets.
pub async fn check(
    store: &Store,
    reader: &mut LiveReader,
    rules: &RuleSet,
    options: &DriftOptions,
    now_ms: i64,
) -> Result<DriftReport, DriftError> {
    let target_key = match &options.target {
        None => None,
        Some(target) => Some(
            TargetKey::parse(target)
                .ok()
                .filter(|key| key.external_target().is_some())
                .ok_or_else(|| DriftError::BadTarget(target.clone()))?,
        ),
    };
    if options.limit < 1 {
        return Err(DriftError::BadLimit(options.limit));
    }
    let filter = WrittenFilter {
        target_key,
        source: options.source.clone(),
        limit: options.limit,
    };
    let mut by_target: BTreeMap<(TargetKind, ExternalId), Vec<WrittenField>> = BTreeMap::new();
    for field in store.written_fields(&filter).await? {
        let key = (field.kind, field.external_id.clone());
        by_target.entry(key).or_default().push(field);
    }
    let mut report = DriftReport {
        checked_at_ms: now_ms,
        ..DriftReport::default()
    };
    for ((kind, external_id), fields) in by_target {
        report.targets_checked += 1;
        report.unknown_keys += fields.iter().filter(|f| f.written.is_none()).count();
        let owned = rules.owned_keys(kind);
        let found = compare(reader, kind, external_id, &fields, &owned).await;
        report.drifted_keys += found.keys.len();
        report.unreadable_targets += usize::from(found.missing || found.error.is_some());
        if !found.keys.is_empty() || found.missing || found.error.is_some() {
            report.targets.push(found);
        }
    }
    Ok(report)
}

/// Reads one target and compares it with its recorded fields.
async fn compare(
    reader: &mut LiveReader,
    kind: TargetKind,
    external_id: ExternalId,
    fields: &[WrittenField],
    owned: &BTreeSet<MetadataKey>,
) -> TargetDrift {
    let mut found = TargetDrift {
        target: TargetKey::external(kind, &external_id),
        kind,
        external_id,
        scalekit_id: None,
        missing: false,
        error: None,
        keys: Vec::new(),
    };
    match reader.read(kind, &found.external_id).await {
        Ok(Some(object)) => {
            found.scalekit_id = Some(object.id.clone());
            found.keys = drifted_keys(&object, fields, owned);
        }
        Ok(None) => found.missing = true,
        Err(e) => found.error = Some(e),
    }
    found
}

/// The keys of `object` that differ from the recorded `fields`, plus owned keys never
/// written (see the module documentation).
fn drifted_keys(
    object: &ScalekitObject,
    fields: &[WrittenField],
    owned: &BTreeSet<MetadataKey>,
) -> Vec<KeyDrift> {
    let live = |key: &str| object.metadata.get(key).cloned();
    let mut keys = Vec::new();
    for field in fields {
        let Some(written) = &field.written else {
            continue;
        };
        let now = live(&field.field);
        let drift = match (written, &now) {
            (Some(_), None) => DriftKind::Absent,
            (Some(w), Some(l)) if w != l => DriftKind::Changed,
            (None, Some(_)) => DriftKind::Changed,
            _ => continue,
        };
        keys.push(KeyDrift {
            key: field.field.clone(),
            drift,
            written: written.clone(),
            live: now,
            version: Some(field.version),
        });
    }
    let recorded: BTreeSet<&str> = fields.iter().map(|f| f.field.as_str()).collect();
    for key in owned.iter().filter(|k| !recorded.contains(k.as_str())) {
        if let Some(value) = live(key.as_str()) {
            keys.push(KeyDrift {
                key: key.to_string(),
                drift: DriftKind::NeverWritten,
                written: None,
                live: Some(value),
                version: None,
            });
        }
    }
    keys.sort_by(|a, b| a.key.cmp(&b.key));
    keys
}

/// The jobs that write orgsync's values back: one per target and recorded version, for
/// every `absent` or `changed` key (a `never_written` key has no value to restore).
pub fn repair_jobs(report: &DriftReport) -> Vec<RepairJob> {
    let mut jobs: BTreeMap<(TargetKey, Version), RepairJob> = BTreeMap::new();
    for target in &report.targets {
        for key in &target.keys {
            let (Some(version), Ok(metadata_key)) = (key.version, MetadataKey::parse(&key.key))
            else {
                continue;
            };
            let job = jobs
                .entry((target.target.clone(), version))
                .or_insert_with(|| RepairJob {
                    change: repair_change(target),
                    version,
                });
            match &key.written {
                Some(value) => {
                    job.change.set.insert(metadata_key, value.clone());
                }
                None => {
                    job.change.unset.insert(metadata_key);
                }
            }
        }
    }
    jobs.into_values().collect()
}

/// An empty repair change for a target: skipped if the target is gone, never created.
fn repair_change(target: &TargetDrift) -> Change {
    Change {
        rule: REPAIR_RULE.to_owned(),
        target: TargetRef::External {
            kind: target.kind,
            external_id: target.external_id.clone(),
        },
        set: BTreeMap::new(),
        unset: BTreeSet::new(),
        new_external_id: None,
        on_missing: OnMissing::Skip,
        create: None,
        replayed: true,
    }
}

/// What a repair enqueued.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RepairSummary {
    /// The `drift.repair` event the jobs belong to (none when nothing needed repair).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<EventId>,
    /// Jobs enqueued.
    pub jobs: usize,
    /// Keys they write back.
    pub keys: usize,
}

/// Enqueues the repair jobs of `report` (the running daemon applies them).
pub async fn repair(
    store: &Store,
    report: &DriftReport,
    now_ms: i64,
) -> Result<RepairSummary, StoreError> {
    let jobs = repair_jobs(report);
    if jobs.is_empty() {
        return Ok(RepairSummary::default());
    }
    let keys = jobs
        .iter()
        .map(|j| j.change.set.len() + j.change.unset.len())
        .sum();
    let event_id = store.enqueue_repairs(&jobs, now_ms).await?;
    Ok(RepairSummary {
        event_id: Some(event_id),
        jobs: jobs.len(),
        keys,
    })
}

#[cfg(test)]
mod tests;
