//! Applying one target's batch to Scalekit: resolve → (create) → merge → one PATCH.

use std::collections::{BTreeMap, HashMap};

use super::Worker;
use super::merge::{MergePlan, merge};
use super::retry::RetryKind;
use crate::model::{ExternalId, JobId, TargetKey, TargetKind, TargetRef, Version};
use crate::scalekit::{FailureClass, ObjectUpdate, ScalekitError, ScalekitObject};
use crate::store::{AppliedField, BatchResult, ClaimedJob, JobVerdict, Rename};

/// What a pass over one batch decided: the store records it in one transaction.
pub(super) type Decision = BatchResult;

/// How long jobs wait when Scalekit refuses orgsync's credentials (an operator must act).
const CREDENTIALS_RECHECK: std::time::Duration = std::time::Duration::from_secs(60);

impl Worker {
    /// Applies the batch of a target known by external id.
    pub(super) async fn apply_external(
        &self,
        kind: TargetKind,
        external_id: &ExternalId,
        jobs: &[ClaimedJob],
        versions: &HashMap<String, Version>,
        now_ms: i64,
    ) -> Decision {
        let Resolved {
            object,
            versions,
            rename,
        } = match self.resolve(kind, external_id, jobs, versions).await {
            Ok(Some(resolved)) => resolved,
            Ok(None) => {
                return self
                    .not_found(kind, external_id, jobs, versions, now_ms)
                    .await;
            }
            Err(failure) => return self.failed(jobs, None, &failure, now_ms),
        };
        self.health.report(None);
        let plan = merge(kind, &object.metadata, &versions, jobs);
        let sets_id = plan
            .new_external_id
            .as_ref()
            .filter(|id| object.external_id.as_deref() != Some(id.as_str()));
        let mut decision = settle(jobs, &plan);
        decision.rename = rename;
        if plan.desired == object.metadata && sets_id.is_none() {
            return decision;
        }
        let update = ObjectUpdate {
            metadata: (plan.desired != object.metadata).then(|| plan.desired.clone()),
            external_id: sets_id.cloned(),
        };
        let written = match kind {
            TargetKind::Organization => self.client.update_organization(&object.id, &update).await,
            TargetKind::User => self.client.update_user(&object.id, &update).await,
        };
        match written {
            Ok(after) => {
                self.check_replaced(&plan.desired, &after);
                decision.wrote = true;
                if let Some(to) = update.external_id {
                    decision.rename = Some(Rename {
                        kind,
                        from: external_id.clone(),
                        to,
                    });
                }
                decision
            }
            Err(e) if e.class() == FailureClass::Conflict => {
                let failure = self.external_id_conflict(kind, &object, &update, e).await;
                self.failed(jobs, Some(&plan), &failure, now_ms)
            }
            Err(e) => self.failed(jobs, Some(&plan), &e.into(), now_ms),
        }
    }

    /// A PATCH that changes the external id was refused as a duplicate: find out whether
    /// the new id is already ours (a retry after a lost answer: the next pass converges) or
    /// belongs to another object (a permanent conflict).
    async fn external_id_conflict(
        &self,
        kind: TargetKind,
        object: &ScalekitObject,
        update: &ObjectUpdate,
        error: ScalekitError,
    ) -> Failure {
        let Some(new_id) = &update.external_id else {
            return error.into();
        };
        match self.lookup(kind, new_id).await {
            Ok(Some(holder)) if holder.id == object.id => Failure::Adopted(format!(
                "the {kind} already has external id {new_id}; the next pass continues"
            )),
            Ok(Some(holder)) => Failure::Invalid(format!(
                "cannot change the external id of {kind} {} to {new_id}: {} already has it",
                object.id, holder.id
            )),
            Ok(None) => error.into(),
            Err(e) => e.into(),
        }
    }

    /// Finds the target by its external id; when that is gone but the batch renames it and
    /// an object already has the new id, an earlier pass renamed it without recording it (a
    /// lost answer, a crash, a replay): that object, with the newest field versions of both
    /// keys and the rename still to record.
    async fn resolve(
        &self,
        kind: TargetKind,
        external_id: &ExternalId,
        jobs: &[ClaimedJob],
        versions: &HashMap<String, Version>,
    ) -> Result<Option<Resolved>, Failure> {
        if let Some(object) = self.lookup(kind, external_id).await? {
            let versions = versions.clone();
            return Ok(Some(Resolved {
                object,
                versions,
                rename: None,
            }));
        }
        let newest = jobs
            .iter()
            .filter(|j| j.change.new_external_id.is_some())
            .max_by_key(|j| j.version);
        let Some(to) = newest.and_then(|j| j.change.new_external_id.clone()) else {
            return Ok(None);
        };
        let Some(object) = self.lookup(kind, &to).await? else {
            return Ok(None);
        };
        let key = TargetKey::external(kind, &to);
        let theirs = self
            .store
            .field_versions(&key)
            .await
            .map_err(|e| Failure::Wait(format!("reading field versions: {e}")))?;
        let mut versions = versions.clone();
        for (field, version) in theirs {
            let entry = versions.entry(field).or_insert(version);
            *entry = (*entry).max(version);
        }
        let from = external_id.clone();
        let rename = Some(Rename { kind, from, to });
        Ok(Some(Resolved {
            object,
            versions,
            rename,
        }))
    }

    /// No object has the external id: follow a recorded rename to the new id, else let the
    /// rules' `on_missing` decide.
    async fn not_found(
        &self,
        kind: TargetKind,
        external_id: &ExternalId,
        jobs: &[ClaimedJob],
        versions: &HashMap<String, Version>,
        now_ms: i64,
    ) -> Decision {
        match self.store.renamed_to(kind, external_id).await {
            Ok(Some(to)) => rekeyed(jobs, kind, &to),
            Ok(None) => {
                self.missing(kind, external_id, jobs, versions, now_ms)
                    .await
            }
            Err(e) => self.failed(
                jobs,
                None,
                &Failure::Wait(format!("reading renames: {e}")),
                now_ms,
            ),
        }
    }

    pub(super) async fn lookup(
        &self,
        kind: TargetKind,
        id: &ExternalId,
    ) -> Result<Option<ScalekitObject>, ScalekitError> {
        match kind {
            TargetKind::Organization => self.client.get_organization_by_external_id(id).await,
            TargetKind::User => self.client.get_user_by_external_id(id).await,
        }
    }

    /// Every job of the batch fails the same way, except those the merge already refused
    /// (they stay dead). Refused credentials hold every job without using up attempts: a
    /// configuration problem must not dead-letter the queue.
    pub(super) fn failed(
        &self,
        jobs: &[ClaimedJob],
        plan: Option<&MergePlan>,
        failure: &Failure,
        now_ms: i64,
    ) -> Decision {
        let (kind, message) = failure.classify();
        let credentials = failure.is_refused_credentials();
        if credentials {
            self.health.report(Some(message.clone()));
        }
        let refused: HashMap<JobId, &String> = plan
            .map(|p| p.refused.iter().map(|(id, r)| (*id, r)).collect())
            .unwrap_or_default();
        let mut rng = rand::rng();
        let outcomes = jobs
            .iter()
            .map(|j| {
                let outcome = match refused.get(&j.id) {
                    Some(reason) => JobVerdict::Dead((*reason).clone()),
                    None if credentials => {
                        self.policy
                            .retry_or_expire(j, CREDENTIALS_RECHECK, false, &message, now_ms)
                    }
                    None => self.policy.schedule(j, &kind, &message, now_ms, &mut rng),
                };
                (j.id, outcome)
            })
            .collect();
        Decision {
            outcomes,
            ..Decision::default()
        }
    }

    /// Warns once if Scalekit merged metadata instead of replacing it (a removed key stayed).
    fn check_replaced(&self, desired: &BTreeMap<String, String>, after: &ScalekitObject) {
        let kept = after.metadata.keys().any(|k| !desired.contains_key(k));
        if kept
            && !self
                .merge_warned
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(
                "Scalekit kept a metadata key orgsync removed: this environment merges metadata on update, so removals cannot take effect"
            );
        }
    }
}

/// The target found for a batch.
struct Resolved {
    /// The object as Scalekit has it.
    object: ScalekitObject,
    /// The field versions the merge must respect.
    versions: HashMap<String, Version>,
    /// A rename an earlier pass made but did not record.
    rename: Option<Rename>,
}

/// Moves every job to the object's new external id.
fn rekeyed(jobs: &[ClaimedJob], kind: TargetKind, to: &ExternalId) -> Decision {
    let outcomes = jobs
        .iter()
        .map(|j| {
            let mut change = j.change.clone();
            change.target = TargetRef::External {
                kind,
                external_id: to.clone(),
            };
            (j.id, JobVerdict::Rekey(Box::new(change)))
        })
        .collect();
    Decision {
        outcomes,
        ..Decision::default()
    }
}

/// Why a pass could not apply a batch.
#[derive(Debug)]
pub(super) enum Failure {
    /// Scalekit refused or did not answer.
    Scalekit(ScalekitError),
    /// Something the target needs does not exist yet: retry with backoff.
    Wait(String),
    /// The object appeared meanwhile (a duplicate create): run again at once.
    Adopted(String),
    /// The rule cannot produce what Scalekit needs: permanent.
    Invalid(String),
}

impl From<ScalekitError> for Failure {
    fn from(e: ScalekitError) -> Self {
        Failure::Scalekit(e)
    }
}

impl Failure {
    /// Scalekit refused orgsync's client credentials (an operator must fix them).
    fn is_refused_credentials(&self) -> bool {
        matches!(
            self,
            Failure::Scalekit(ScalekitError::InvalidCredentials { .. })
        )
    }

    fn classify(&self) -> (RetryKind, String) {
        let failure = RetryKind::Failure;
        match self {
            Failure::Scalekit(e) => (failure(e.class()), e.to_string()),
            Failure::Wait(m) => (failure(FailureClass::Transient), m.clone()),
            Failure::Adopted(m) => (RetryKind::Adopted, m.clone()),
            Failure::Invalid(m) => (failure(FailureClass::Permanent), m.clone()),
        }
    }
}

/// Done for every job the plan accepted, dead for those it refused.
pub(super) fn settle(jobs: &[ClaimedJob], plan: &MergePlan) -> Decision {
    let refused: HashMap<JobId, &String> = plan.refused.iter().map(|(id, r)| (*id, r)).collect();
    Decision {
        outcomes: jobs
            .iter()
            .map(|j| match refused.get(&j.id) {
                Some(reason) => (j.id, JobVerdict::Dead((*reason).clone())),
                None => (j.id, JobVerdict::Done),
            })
            .collect(),
        applied_fields: written_fields(plan),
        ..Decision::default()
    }
}

/// The fields a plan applies, each with the value it sends (exactly what the PATCH or the
/// create carries; `None` for a removed key), for drift to compare with later.
fn written_fields(plan: &MergePlan) -> Vec<AppliedField> {
    plan.applied_fields
        .iter()
        .map(|(field, version)| AppliedField {
            field: field.clone(),
            version: *version,
            value: plan.desired.get(field).cloned(),
        })
        .collect()
}
