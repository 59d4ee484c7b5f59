//! Merging a target's claimed changes into the metadata map to send: pure, no I/O.

use std::collections::{BTreeMap, HashMap};

use crate::model::{ExternalId, JobId, TargetKind, Version};
use crate::scalekit::validate_metadata;
use crate::store::ClaimedJob;

/// The result of merging one batch over the current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergePlan {
    /// The complete metadata map the target should have.
    pub desired: BTreeMap<String, String>,
    /// The fields this batch writes, with the version that wins.
    pub applied_fields: Vec<(String, Version)>,
    /// The newest external id a job asked for, if any.
    pub new_external_id: Option<ExternalId>,
    /// Jobs that cannot be applied (limit violations), with the reason; the rest apply.
    pub refused: Vec<(JobId, String)>,
}

/// Applies `jobs` (in any order) over `current`, field by field, skipping every field whose
/// stored version is newer than or equal to the job's.
///
/// Ordering: a change's version is the source's timestamp (Stripe `created`, Salesforce
/// `SystemModstamp`), and equal timestamps are broken by arrival order (the event's row
/// id). So for one field the newest source state wins whatever the delivery order, and for
/// equal timestamps the later arrival wins; a redelivery (same event, same version) never
/// writes again. A job whose changes would break Scalekit's metadata limits is refused
/// alone; the others still apply.
pub fn merge(
    kind: TargetKind,
    current: &BTreeMap<String, String>,
    versions: &HashMap<String, Version>,
    jobs: &[ClaimedJob],
) -> MergePlan {
    let mut ordered: Vec<&ClaimedJob> = jobs.iter().collect();
    ordered.sort_by_key(|j| j.version);
    let mut desired = current.clone();
    let mut winners: HashMap<String, Version> = versions.clone();
    let mut applied: BTreeMap<String, Version> = BTreeMap::new();
    let mut new_external_id = None;
    let mut refused = Vec::new();

    for job in ordered {
        let before = (desired.clone(), winners.clone(), applied.clone());
        // A replayed change (same event, current rules) may rewrite what its own event
        // wrote: equal versions pass for it, and only for it.
        let is_newer = |field: &str, winners: &HashMap<String, Version>| {
            winners
                .get(field)
                .is_none_or(|v| *v < job.version || (job.change.replayed && *v == job.version))
        };
        for (key, value) in &job.change.set {
            if is_newer(key.as_str(), &winners) {
                desired.insert(key.to_string(), value.clone());
                winners.insert(key.to_string(), job.version);
                applied.insert(key.to_string(), job.version);
            }
        }
        for key in &job.change.unset {
            if is_newer(key.as_str(), &winners) {
                desired.remove(key.as_str());
                winners.insert(key.to_string(), job.version);
                applied.insert(key.to_string(), job.version);
            }
        }
        if let Err(e) = validate_metadata(kind, &desired) {
            refused.push((job.id, format!("rule {:?}: {e}", job.change.rule)));
            (desired, winners, applied) = before;
            continue;
        }
        if let Some(id) = &job.change.new_external_id {
            new_external_id = Some(id.clone());
        }
    }
    MergePlan {
        desired,
        applied_fields: applied.into_iter().collect(),
        new_external_id,
        refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Change, EventId, MetadataKey, OnMissing, TargetRef};

    fn job(id: i64, at_ms: i64, set: &[(&str, &str)], unset: &[&str]) -> ClaimedJob {
        ClaimedJob {
            id: JobId(id),
            event_id: EventId(id),
            change: Change {
                rule: "r".into(),
                target: TargetRef::External {
                    kind: TargetKind::Organization,
                    external_id: ExternalId::parse("E").unwrap(),
                },
                set: set
                    .iter()
                    .map(|(k, v)| (MetadataKey::parse(k).unwrap(), v.to_string()))
                    .collect(),
                unset: unset
                    .iter()
                    .map(|k| MetadataKey::parse(k).unwrap())
                    .collect(),
                new_external_id: None,
                on_missing: OnMissing::Retry,
                create: None,
                replayed: false,
            },
            version: Version { at_ms, seq: id },
            attempts: 0,
            throttles: 0,
            run_at_ms: 0,
            window_start_ms: 0,
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn newest_version_wins_whatever_the_order() {
        let jobs = [
            job(2, 2000, &[("status", "active")], &[]),
            job(1, 1000, &[("status", "trialing")], &[]),
        ];
        let plan = merge(
            TargetKind::Organization,
            &map(&[("other", "kept")]),
            &HashMap::new(),
            &jobs,
        );
        assert_eq!(
            plan.desired,
            map(&[("other", "kept"), ("status", "active")])
        );
        assert_eq!(
            plan.applied_fields,
            vec![(
                "status".to_string(),
                Version {
                    at_ms: 2000,
                    seq: 2
                }
            )]
        );
    }

    #[test]
    fn fields_already_written_by_a_newer_event_are_left_alone() {
        let stored = HashMap::from([(
            "status".to_string(),
            Version {
                at_ms: 5000,
                seq: 1,
            },
        )]);
        let jobs = [job(9, 3000, &[("status", "old"), ("seats", "5")], &[])];
        let plan = merge(
            TargetKind::Organization,
            &map(&[("status", "new")]),
            &stored,
            &jobs,
        );
        assert_eq!(plan.desired, map(&[("status", "new"), ("seats", "5")]));
        assert_eq!(plan.applied_fields.len(), 1);
    }

    #[test]
    fn equal_timestamps_go_to_the_later_arrival_and_redeliveries_are_no_ops() {
        let jobs = [
            job(4, 1000, &[("plan", "b")], &[]),
            job(3, 1000, &[("plan", "a")], &[]),
        ];
        let plan = merge(
            TargetKind::Organization,
            &BTreeMap::new(),
            &HashMap::new(),
            &jobs,
        );
        assert_eq!(plan.desired["plan"], "b");
        let stored = HashMap::from([(
            "plan".to_string(),
            Version {
                at_ms: 1000,
                seq: 4,
            },
        )]);
        let again = merge(TargetKind::Organization, &plan.desired, &stored, &jobs[..1]);
        assert!(again.applied_fields.is_empty());
    }

    #[test]
    fn unset_removes_and_a_job_over_the_limit_is_refused_alone() {
        let current: BTreeMap<_, _> = (0..9)
            .map(|i| (format!("key{i}"), "v".to_string()))
            .collect();
        let jobs = [
            job(1, 1, &[("extra1", "x"), ("extra2", "y")], &[]),
            job(2, 2, &[], &["key0"]),
        ];
        let plan = merge(TargetKind::Organization, &current, &HashMap::new(), &jobs);
        assert_eq!(plan.refused.len(), 1);
        assert_eq!(plan.refused[0].0, JobId(1));
        assert!(plan.refused[0].1.contains("10"), "{}", plan.refused[0].1);
        assert_eq!(plan.desired.len(), 8);
    }
}
