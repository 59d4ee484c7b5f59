//! Applying one target's batch to Scalekit: resolve → (create) → merge → one PATCH.

use std::collections::{BTreeMap, HashMap};

use super::Worker;
use super::merge::{MergePlan, merge};
use crate::model::{ExternalId, OnMissing, TargetKind, TargetRef, Version};
use crate::scalekit::{
    FailureClass, NewOrganization, NewUser, ObjectUpdate, ScalekitError, ScalekitObject,
};
use crate::store::{BatchResult, ClaimedJob, JobOutcome, Rename};

/// What a pass over one batch decided: the store records it in one transaction.
pub(super) type Decision = BatchResult;

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
                    .missing(kind, external_id, jobs, versions, now_ms)
                    .await;
            }
            Err(failure) => return self.failed(jobs, &failure, now_ms),
        };
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
                self.failed(jobs, &failure, now_ms)
            }
            Err(e) => self.failed(jobs, &e.into(), now_ms),
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
        let key = format!("{}:{to}", kind.prefix());
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

    async fn lookup(
        &self,
        kind: TargetKind,
        id: &ExternalId,
    ) -> Result<Option<ScalekitObject>, ScalekitError> {
        match kind {
            TargetKind::Organization => self.client.get_organization_by_external_id(id).await,
            TargetKind::User => self.client.get_user_by_external_id(id).await,
        }
    }

    /// The target does not exist: skip, wait, or create it, per each job's rule.
    async fn missing(
        &self,
        kind: TargetKind,
        external_id: &ExternalId,
        jobs: &[ClaimedJob],
        versions: &HashMap<String, Version>,
        now_ms: i64,
    ) -> Decision {
        let creator = jobs
            .iter()
            .rev()
            .find(|j| j.change.on_missing == OnMissing::Create);
        if let Some(creator) = creator {
            let wanted: Vec<ClaimedJob> = jobs
                .iter()
                .filter(|j| j.change.on_missing != OnMissing::Skip)
                .cloned()
                .collect();
            let plan = merge(kind, &BTreeMap::new(), versions, &wanted);
            // A renaming rule creates the object under its final id.
            let id = plan
                .new_external_id
                .clone()
                .unwrap_or_else(|| external_id.clone());
            let mut decision = match self.create(kind, &id, creator, &plan).await {
                Ok(()) => {
                    let mut done = settle(&wanted, &plan);
                    let from = external_id.clone();
                    done.rename = (id != from).then(|| Rename {
                        kind,
                        from,
                        to: id.clone(),
                    });
                    done
                }
                Err(failure) => self.failed(&wanted, &failure, now_ms),
            };
            decision.wrote = true;
            decision.outcomes.extend(skipped(kind, external_id, jobs));
            return decision;
        }
        let reason = format!("no {kind} with external id {external_id} exists in Scalekit");
        let mut decision = Decision::default();
        decision.outcomes.extend(skipped(kind, external_id, jobs));
        for job in jobs
            .iter()
            .filter(|j| j.change.on_missing == OnMissing::Retry)
        {
            let delay = self.policy.backoff(job.attempts, &mut rand::rng());
            let outcome = self
                .policy
                .retry_or_expire(job, delay, true, &reason, now_ms);
            decision.outcomes.push((job.id, outcome));
        }
        decision
    }

    async fn create(
        &self,
        kind: TargetKind,
        external_id: &ExternalId,
        creator: &ClaimedJob,
        plan: &MergePlan,
    ) -> Result<(), Failure> {
        let spec = creator.change.create.clone().unwrap_or_default();
        let invalid = Failure::Invalid;
        let rule = &creator.change.rule;
        let created = match kind {
            TargetKind::Organization => {
                let display_name = spec.display_name.ok_or_else(|| {
                    invalid(format!(
                        "rule {rule:?} gives no display_name to create the organization"
                    ))
                })?;
                let new = NewOrganization {
                    display_name,
                    external_id: external_id.clone(),
                    metadata: plan.desired.clone(),
                };
                self.client.create_organization(&new).await
            }
            TargetKind::User => {
                let email = spec.email.ok_or_else(|| {
                    invalid(format!("rule {rule:?} gives no email to create the user"))
                })?;
                let org_external_id = match spec.organization {
                    Some(TargetRef::External { external_id, .. }) => external_id,
                    Some(TargetRef::Link { kind, link, key }) => {
                        match self.store.resolve_link(kind, &link, &key).await {
                            Ok(Some(external_id)) => external_id,
                            Ok(None) => {
                                return Err(Failure::Wait(format!(
                                    "the user's organization (linked to {link} {key}) is not known yet"
                                )));
                            }
                            Err(e) => return Err(Failure::Wait(format!("reading links: {e}"))),
                        }
                    }
                    None => {
                        return Err(invalid(format!(
                            "rule {rule:?} gives no organization to create the user in"
                        )));
                    }
                };
                let Some(org) = self
                    .client
                    .get_organization_by_external_id(&org_external_id)
                    .await?
                else {
                    return Err(Failure::Wait(format!(
                        "the user's organization {org_external_id} does not exist in Scalekit yet"
                    )));
                };
                let new = NewUser {
                    email,
                    external_id: external_id.clone(),
                    metadata: plan.desired.clone(),
                    first_name: spec.first_name,
                    last_name: spec.last_name,
                };
                self.client.create_user(&org.id, &new).await
            }
        };
        match created {
            Ok(_) => Ok(()),
            // A duplicate, or a retry after a lost response: adopt what is there, and let the
            // next pass merge into it.
            Err(e) if e.class() == FailureClass::Conflict => {
                match self.lookup(kind, external_id).await? {
                    Some(_) => Err(Failure::Adopted(format!(
                        "the {kind} {external_id} already existed; the next pass merges into it"
                    ))),
                    None => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Every job of the batch fails the same way.
    fn failed(&self, jobs: &[ClaimedJob], failure: &Failure, now_ms: i64) -> Decision {
        let (class, message) = failure.classify();
        let mut rng = rand::rng();
        Decision {
            outcomes: jobs
                .iter()
                .map(|j| {
                    (
                        j.id,
                        self.policy
                            .after_failure(j, &class, &message, now_ms, &mut rng),
                    )
                })
                .collect(),
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

/// Why a pass could not apply a batch.
#[derive(Debug)]
enum Failure {
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
    fn classify(&self) -> (FailureClass, String) {
        match self {
            Failure::Scalekit(e) => (e.class(), e.to_string()),
            Failure::Wait(m) => (FailureClass::Transient, m.clone()),
            Failure::Adopted(m) => (
                FailureClass::RateLimited {
                    retry_after: Some(std::time::Duration::ZERO),
                },
                m.clone(),
            ),
            Failure::Invalid(m) => (FailureClass::Permanent, m.clone()),
        }
    }
}

/// Done for every job the plan accepted, dead for those it refused.
fn settle(jobs: &[ClaimedJob], plan: &MergePlan) -> Decision {
    let refused: HashMap<i64, &String> = plan.refused.iter().map(|(id, r)| (*id, r)).collect();
    Decision {
        outcomes: jobs
            .iter()
            .map(|j| match refused.get(&j.id) {
                Some(reason) => (j.id, JobOutcome::Dead((*reason).clone())),
                None => (j.id, JobOutcome::Done),
            })
            .collect(),
        applied_fields: plan.applied_fields.clone(),
        ..Decision::default()
    }
}

fn skipped<'a>(
    kind: TargetKind,
    external_id: &'a ExternalId,
    jobs: &'a [ClaimedJob],
) -> impl Iterator<Item = (i64, JobOutcome)> + 'a {
    jobs.iter()
        .filter(|j| j.change.on_missing == OnMissing::Skip)
        .map(move |j| {
            let reason =
                format!("no {kind} with external id {external_id} in Scalekit (on_missing = skip)");
            (j.id, JobOutcome::Skipped(reason))
        })
}
