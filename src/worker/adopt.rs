//! A user create refused as a duplicate: the user exists already, because an earlier
//! attempt's answer was lost, or because the person signed up first (through SSO, say) with
//! the same e-mail and no external id yet. Such a user is adopted: its external id is set
//! and its membership in the rule's organization created when missing; a user holding a
//! different external id is left alone and the job ends dead (reference §8).

use super::Worker;
use super::apply::Failure;
use crate::model::{ExternalId, TargetKind};
use crate::scalekit::{NewUser, ObjectUpdate, ScalekitError, ScalekitObject};

impl Worker {
    /// Reconciles a refused user create: by external id first, then by e-mail.
    pub(super) async fn user_after_duplicate(
        &self,
        new: &NewUser,
        org_id: &str,
        error: ScalekitError,
    ) -> Failure {
        let external_id = &new.external_id;
        let found = match self.lookup(TargetKind::User, external_id).await {
            Ok(Some(found)) => found,
            Ok(None) => match self.client.find_user_by_email(&new.email).await {
                Ok(Some(found)) => found,
                Ok(None) => return error.into(),
                Err(e) => return e.into(),
            },
            Err(e) => return e.into(),
        };
        match self.adopt(found, new, org_id).await {
            Ok(failure) => failure,
            Err(e) => e.into(),
        }
    }

    /// Adopts `user` when it is the one meant (same e-mail; no external id or the same);
    /// the next pass merges the metadata into it.
    async fn adopt(
        &self,
        user: ScalekitObject,
        new: &NewUser,
        org_id: &str,
    ) -> Result<Failure, ScalekitError> {
        if let Some(reason) = refusal(&user, new) {
            return Ok(Failure::Invalid(reason));
        }
        let external_id = &new.external_id;
        let email = user.email.as_deref().unwrap_or_default();
        // The membership first: once the external id is set, later passes find the user by
        // it and never come back here, so a failure in between must leave it unset.
        let mut done = Vec::new();
        if !user.memberships.iter().any(|m| m == org_id) {
            self.client.add_membership(org_id, &user.id).await?;
            done.push(format!("added it to organization {org_id}"));
        }
        if user.external_id.is_none() {
            let update = ObjectUpdate {
                metadata: None,
                external_id: Some(external_id.clone()),
            };
            self.client.update_user(&user.id, &update).await?;
            done.push(format!("set its external id {external_id}"));
        }
        tracing::info!(user = %user.id, %external_id, "adopted an existing Scalekit user with the same e-mail");
        let done = if done.is_empty() {
            "nothing to change".to_owned()
        } else {
            done.join(" and ")
        };
        Ok(Failure::Adopted(format!(
            "adopted Scalekit user {} ({email}), who existed already: {done}; the next pass merges into it",
            user.id
        )))
    }
}

/// Why `user` is not the one `new` means: another e-mail, or another external id.
fn refusal(user: &ScalekitObject, new: &NewUser) -> Option<String> {
    let external_id = &new.external_id;
    let same_email = user
        .email
        .as_deref()
        .is_some_and(|e| e.eq_ignore_ascii_case(&new.email));
    if !same_email {
        return Some(format!(
            "user {external_id} already exists in Scalekit ({}) with another e-mail ({}); not adopting it",
            user.id,
            user.email.as_deref().unwrap_or_default()
        ));
    }
    let other = user.external_id.as_deref()?;
    (other != external_id.as_str()).then(|| other_external_id(user, other, external_id))
}

/// The dead-letter reason for a user holding another external id: names both ids.
fn other_external_id(user: &ScalekitObject, other: &str, wanted: &ExternalId) -> String {
    format!(
        "the e-mail {} belongs to Scalekit user {} with external id {other}, not {wanted}; \
         not adopting it (change one of the external ids, then retry the job)",
        user.email.as_deref().unwrap_or_default(),
        user.id
    )
}
