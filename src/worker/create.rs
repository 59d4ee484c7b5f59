//! When the target does not exist: skip it, wait for it, or create it (and reconcile a
//! duplicate create by reading again).

use std::collections::{BTreeMap, HashMap};

use super::Worker;
use super::apply::{Decision, Failure, settle};
use super::merge::{MergePlan, merge};
use crate::model::{CreateSpec, ExternalId, JobId, OnMissing, TargetKind, TargetRef, Version};
use crate::scalekit::{FailureClass, NewOrganization, NewUser, ScalekitError};
use crate::store::{ClaimedJob, JobVerdict, Rename};

impl Worker {
    /// The target does not exist: skip, wait, or create it, per each job's rule.
    pub(super) async fn missing(
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
            // Once created the object exists for every job, "skip" ones included.
            let plan = merge(kind, &BTreeMap::new(), versions, jobs);
            // A renaming rule creates the object under its final id.
            let id = plan
                .new_external_id
                .clone()
                .unwrap_or_else(|| external_id.clone());
            let mut decision = match self.create(kind, &id, creator, &plan).await {
                Ok(()) => {
                    let mut done = settle(jobs, &plan);
                    let from = external_id.clone();
                    done.rename = (id != from).then(|| Rename {
                        kind,
                        from,
                        to: id.clone(),
                    });
                    done
                }
                Err(failure) => self.failed(jobs, Some(&plan), &failure, now_ms),
            };
            decision.wrote = true;
            return decision;
        }
        let reason = format!("no {kind} with external id {external_id} exists in Scalekit");
        let mut decision = Decision::default();
        decision.outcomes.extend(skipped(kind, external_id, jobs));
        for job in jobs
            .iter()
            .filter(|j| j.change.on_missing == OnMissing::Retry)
        {
            let outcome = self.policy.after_failure(
                job,
                &FailureClass::Transient,
                &reason,
                now_ms,
                &mut rand::rng(),
            );
            decision.outcomes.push((job.id, outcome));
        }
        decision
    }

    /// Creates the target with the merged metadata; a duplicate is reconciled by reading
    /// again (a user: by external id, then by e-mail, adopting one who signed up first).
    async fn create(
        &self,
        kind: TargetKind,
        external_id: &ExternalId,
        creator: &ClaimedJob,
        plan: &MergePlan,
    ) -> Result<(), Failure> {
        let spec = creator.change.create.clone().unwrap_or_default();
        let rule = &creator.change.rule;
        let created = match kind {
            TargetKind::Organization => {
                let display_name = spec.display_name.clone().ok_or_else(|| {
                    Failure::Invalid(format!(
                        "rule {rule:?} gives no display_name to create the organization"
                    ))
                })?;
                let new = NewOrganization {
                    display_name,
                    external_id: external_id.clone(),
                    metadata: plan.desired.clone(),
                };
                match self.client.create_organization(&new).await {
                    Err(e) if e.class() == FailureClass::Conflict => {
                        return Err(self.after_duplicate(kind, external_id, e).await);
                    }
                    other => other,
                }
            }
            TargetKind::User => {
                let email = spec.email.clone().ok_or_else(|| {
                    Failure::Invalid(format!("rule {rule:?} gives no email to create the user"))
                })?;
                let org_id = self.user_organization(rule, &spec).await?;
                let new = NewUser {
                    email,
                    external_id: external_id.clone(),
                    metadata: plan.desired.clone(),
                    first_name: spec.first_name.clone(),
                    last_name: spec.last_name.clone(),
                };
                match self.client.create_user(&org_id, &new).await {
                    Err(e) if e.class() == FailureClass::Conflict => {
                        return Err(self.user_after_duplicate(&new, &org_id, e).await);
                    }
                    other => other,
                }
            }
        };
        created.map(|_| ()).map_err(Failure::from)
    }

    /// The Scalekit id of the organization a new user joins: the rule's organization,
    /// through a learned link and any rename, which must exist in Scalekit by now.
    async fn user_organization(&self, rule: &str, spec: &CreateSpec) -> Result<String, Failure> {
        let wait = |what: String| Failure::Wait(what);
        let org_external_id = match &spec.organization {
            Some(TargetRef::External { external_id, .. }) => external_id.clone(),
            Some(TargetRef::Link { kind, link, key }) => {
                match self.store.resolve_link(*kind, link, key).await {
                    Ok(Some(external_id)) => external_id,
                    Ok(None) => {
                        return Err(wait(format!(
                            "the user's organization (linked to {link} {key}) is not known yet"
                        )));
                    }
                    Err(e) => return Err(wait(format!("reading links: {e}"))),
                }
            }
            None => {
                return Err(Failure::Invalid(format!(
                    "rule {rule:?} gives no organization to create the user in"
                )));
            }
        };
        // The organization may have been renamed since the event named it.
        let org_external_id = match self
            .store
            .renamed_to(TargetKind::Organization, &org_external_id)
            .await
        {
            Ok(renamed) => renamed.unwrap_or(org_external_id),
            Err(e) => return Err(wait(format!("reading renames: {e}"))),
        };
        match self
            .client
            .get_organization_by_external_id(&org_external_id)
            .await?
        {
            Some(org) => Ok(org.id),
            None => Err(wait(format!(
                "the user's organization {org_external_id} does not exist in Scalekit yet"
            ))),
        }
    }

    /// An organization create refused as a duplicate (or retried after a lost answer):
    /// adopt the one with the external id, and let the next pass merge into it.
    async fn after_duplicate(
        &self,
        kind: TargetKind,
        external_id: &ExternalId,
        error: ScalekitError,
    ) -> Failure {
        match self.lookup(kind, external_id).await {
            Ok(Some(_)) => Failure::Adopted(format!(
                "the {kind} {external_id} already existed; the next pass merges into it"
            )),
            Ok(None) => error.into(),
            Err(e) => e.into(),
        }
    }
}

fn skipped<'a>(
    kind: TargetKind,
    external_id: &'a ExternalId,
    jobs: &'a [ClaimedJob],
) -> impl Iterator<Item = (JobId, JobVerdict)> + 'a {
    jobs.iter()
        .filter(|j| j.change.on_missing == OnMissing::Skip)
        .map(move |j| {
            let reason =
                format!("no {kind} with external id {external_id} in Scalekit (on_missing = skip)");
            (j.id, JobVerdict::Skipped(reason))
        })
}
