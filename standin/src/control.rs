//! The test side of [`StandIn`]: seeding, reading snapshots, and the scripting switches.
//! All of it is synchronous: the lock is never held across an `.await`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::state::{Membership, lock};
use crate::{Fault, Organization, RecordedRequest, StandIn, User};

impl StandIn {
    /// Seeds an organization without validation (tests may seed states the API refuses).
    pub fn create_organization(
        &self,
        display_name: &str,
        external_id: Option<&str>,
        metadata: &[(&str, &str)],
    ) -> String {
        let metadata: BTreeMap<String, String> = metadata
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        lock(&self.shared).insert_org(
            display_name.to_owned(),
            external_id.map(str::to_owned),
            metadata,
        )
    }

    /// Seeds a user with an `ACTIVE` `member` membership in `organization_id`, without validation.
    pub fn create_user(
        &self,
        organization_id: &str,
        email: &str,
        external_id: Option<&str>,
    ) -> String {
        let membership = Membership {
            organization_id: organization_id.to_owned(),
            membership_status: "ACTIVE".to_owned(),
            roles: vec!["member".to_owned()],
            metadata: BTreeMap::new(),
        };
        lock(&self.shared).insert_user(email.to_owned(), external_id.map(str::to_owned), membership)
    }

    /// Replaces a seeded user's metadata; false when there is no such user.
    pub fn set_user_metadata(&self, user_id: &str, metadata: &[(&str, &str)]) -> bool {
        let mut inner = lock(&self.shared);
        let Some(user) = inner.users.get_mut(user_id) else {
            return false;
        };
        user.metadata = metadata
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        true
    }

    /// Edits a seeded organization's metadata by hand (as in the dashboard): sets each
    /// `(key, Some(value))`, removes each `(key, None)`; false when there is no such org.
    pub fn edit_organization_metadata(&self, org_id: &str, edits: &[(&str, Option<&str>)]) -> bool {
        let mut inner = lock(&self.shared);
        let Some(org) = inner.orgs.get_mut(org_id) else {
            return false;
        };
        for (key, value) in edits {
            match value {
                Some(value) => org.metadata.insert((*key).to_owned(), (*value).to_owned()),
                None => org.metadata.remove(*key),
            };
        }
        org.update_time = std::time::SystemTime::now();
        true
    }

    /// The organization with this external id.
    pub fn organization_by_external_id(&self, external_id: &str) -> Option<Organization> {
        lock(&self.shared).org_by_external_id(external_id).cloned()
    }

    /// The organization with this id.
    pub fn organization(&self, id: &str) -> Option<Organization> {
        lock(&self.shared).orgs.get(id).cloned()
    }

    /// The user with this external id.
    pub fn user_by_external_id(&self, external_id: &str) -> Option<User> {
        let inner = lock(&self.shared);
        let id = inner.user_id_by_external_id(external_id)?;
        inner.users.get(&id).map(|u| u.snapshot())
    }

    /// The user with this id.
    pub fn user(&self, id: &str) -> Option<User> {
        lock(&self.shared).users.get(id).map(|u| u.snapshot())
    }

    /// The membership of user `user_id` in `organization_id` (roles, status, metadata).
    pub fn membership(&self, user_id: &str, organization_id: &str) -> Option<Membership> {
        let inner = lock(&self.shared);
        let user = inner.users.get(user_id)?;
        user.memberships
            .iter()
            .find(|m| m.organization_id == organization_id)
            .cloned()
    }

    /// Every organization, in creation order.
    pub fn organizations(&self) -> Vec<Organization> {
        lock(&self.shared).orgs.values().cloned().collect()
    }

    /// Every user, in creation order.
    pub fn users(&self) -> Vec<User> {
        lock(&self.shared)
            .users
            .values()
            .map(|u| u.snapshot())
            .collect()
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared).requests.clone()
    }

    /// How many requests reached `POST /oauth/token` (faulted and refused ones included).
    pub fn token_requests(&self) -> usize {
        lock(&self.shared).token_requests
    }

    /// Answers the next `n` `/api` calls with `fault` (queued after faults already pending).
    pub fn fail_next(&self, n: usize, fault: Fault) {
        lock(&self.shared)
            .api_faults
            .extend(std::iter::repeat_n(fault, n));
    }

    /// Loses the answers of the next `n` writes (any `/api` call but a GET) that succeed:
    /// each is applied, then answered 504 `DEADLINE_EXCEEDED` instead of its 2xx.
    pub fn lose_next_answers(&self, n: usize) {
        lock(&self.shared).writes_to_lose += n;
    }

    /// How many applied writes had their answer lost so far.
    pub fn lost_answers(&self) -> usize {
        lock(&self.shared).lost_answers
    }

    /// Answers the next `n` token requests with `fault` (they still count as token requests).
    pub fn fail_next_token_requests(&self, n: usize, fault: Fault) {
        lock(&self.shared)
            .token_faults
            .extend(std::iter::repeat_n(fault, n));
    }

    /// Delays every `/api` answer by `d`; the change itself is made before the delay.
    pub fn set_latency(&self, d: Duration) {
        lock(&self.shared).latency = d;
    }

    /// Holds every `/api` answer (the change is made, the answer waits) while `on`; `false`
    /// releases the held answers. Lets a test keep a call in flight as long as it needs.
    pub fn hold_answers(&self, on: bool) {
        lock(&self.shared).held.send_replace(on);
    }

    /// Makes every issued token invalid, so the next `/api` call gets 401.
    pub fn expire_tokens(&self) {
        lock(&self.shared).tokens.clear();
    }

    /// Sets `expires_in` (and the real lifetime) of tokens issued from now on.
    pub fn set_token_ttl(&self, secs: u64) {
        lock(&self.shared).token_ttl_secs = secs;
    }

    /// Leaves `expires_in` out of token responses (the lifetime stays the TTL).
    pub fn set_omit_expires_in(&self, on: bool) {
        lock(&self.shared).omit_expires_in = on;
    }

    /// Merges a PATCHed `metadata` map into the stored one instead of replacing it.
    pub fn set_metadata_merge(&self, on: bool) {
        lock(&self.shared).merge_metadata = on;
    }

    /// Status for duplicate external ids and emails: 409 (ALREADY_EXISTS) or else 400.
    pub fn set_duplicate_conflict_status(&self, status: u16) {
        lock(&self.shared).duplicate_status = if status == 409 { 409 } else { 400 };
    }
}
