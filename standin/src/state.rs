//! The in-memory state of the stand-in: organizations, users, tokens, switches, faults and
//! the request log, all behind one `std::sync::Mutex` that is never held across `.await`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use rand::RngExt;

use crate::faults::Fault;
use crate::record::RecordedRequest;

/// The shared handle every handler and middleware receives as axum state.
pub type Shared = Arc<Mutex<Inner>>;

/// Locks the state; a poisoned lock (a panicking test thread) is recovered, not propagated.
pub fn lock(shared: &Shared) -> MutexGuard<'_, Inner> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A snapshot of one organization, as tests read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// Scalekit id, `org_` + 17 digits.
    pub id: String,
    /// The display name (1–200 chars through the API).
    pub display_name: String,
    /// The environment-unique external id, absent when unset.
    pub external_id: Option<String>,
    /// The string-to-string metadata map.
    pub metadata: BTreeMap<String, String>,
    /// The optional slug.
    pub slug: Option<String>,
    /// The optional `https://` logo URL.
    pub logo_url: Option<String>,
    /// `US` or `EU`.
    pub region_code: String,
    /// When the organization was created.
    pub create_time: SystemTime,
    /// When the organization last changed.
    pub update_time: SystemTime,
}

/// One membership of a user in an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The organization the user belongs to.
    pub organization_id: String,
    /// `ACTIVE`, or `PENDING_INVITE` when created with an invitation email.
    pub membership_status: String,
    /// Role names, e.g. `member`.
    pub roles: Vec<String>,
    /// The membership's own metadata map.
    pub metadata: BTreeMap<String, String>,
}

/// A snapshot of one user, as tests read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Scalekit id, `usr_` + 17 digits.
    pub id: String,
    /// The environment-unique email address.
    pub email: String,
    /// The environment-unique external id, absent when unset.
    pub external_id: Option<String>,
    /// The user's metadata map.
    pub metadata: BTreeMap<String, String>,
    /// Ids of the organizations the user is a member of.
    pub memberships: Vec<String>,
    /// `user_profile.first_name`, absent when never set.
    pub first_name: Option<String>,
    /// `user_profile.last_name`, absent when never set.
    pub last_name: Option<String>,
    /// The `send_invitation_email` query value the user was created with (None when seeded).
    pub send_invitation_email: Option<bool>,
    /// When the user was created.
    pub create_time: SystemTime,
    /// When the user last changed.
    pub update_time: SystemTime,
}

/// The stored user profile: string fields by proto name plus its two maps.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// `usp_` + 17 digits.
    pub id: String,
    /// String fields that were set (`first_name`, `last_name`, `locale`, …).
    pub strings: BTreeMap<String, String>,
    /// `user_profile.metadata`.
    pub metadata: BTreeMap<String, String>,
    /// `user_profile.custom_attributes`.
    pub custom_attributes: BTreeMap<String, String>,
}

/// The stored user: the snapshot fields plus memberships in full and the profile.
#[derive(Debug, Clone)]
pub struct UserRecord {
    /// Scalekit id.
    pub id: String,
    /// Email, unique case-insensitively.
    pub email: String,
    /// External id, unique when set.
    pub external_id: Option<String>,
    /// User metadata (≤ 20 pairs through the API).
    pub metadata: BTreeMap<String, String>,
    /// Memberships in creation order.
    pub memberships: Vec<Membership>,
    /// The user profile.
    pub profile: Profile,
    /// The `send_invitation_email` value of the creating request.
    pub send_invitation_email: Option<bool>,
    /// Creation time.
    pub create_time: SystemTime,
    /// Last change.
    pub update_time: SystemTime,
}

impl UserRecord {
    /// The typed snapshot handed to tests.
    pub fn snapshot(&self) -> User {
        User {
            id: self.id.clone(),
            email: self.email.clone(),
            external_id: self.external_id.clone(),
            metadata: self.metadata.clone(),
            memberships: self
                .memberships
                .iter()
                .map(|m| m.organization_id.clone())
                .collect(),
            first_name: self.profile.strings.get("first_name").cloned(),
            last_name: self.profile.strings.get("last_name").cloned(),
            send_invitation_email: self.send_invitation_email,
            create_time: self.create_time,
            update_time: self.update_time,
        }
    }
}

/// Everything the stand-in knows, guarded by the one mutex.
#[derive(Debug)]
pub struct Inner {
    /// Organizations by id (ids grow, so this is creation order).
    pub orgs: BTreeMap<String, Organization>,
    /// Users by id.
    pub users: BTreeMap<String, UserRecord>,
    /// Issued tokens and when each expires.
    pub tokens: HashMap<String, Instant>,
    /// `expires_in` of new tokens, in seconds.
    pub token_ttl_secs: u64,
    /// Leave `expires_in` out of token responses (tests the client's 3600 s default).
    pub omit_expires_in: bool,
    /// How many requests reached `POST /oauth/token`.
    pub token_requests: usize,
    /// Faults to answer the next `/api` calls with, front first.
    pub api_faults: VecDeque<Fault>,
    /// Faults to answer the next token requests with, front first.
    pub token_faults: VecDeque<Fault>,
    /// Delay added to every `/api` answer.
    pub latency: Duration,
    /// How many more applied writes get their answer lost (a 504 instead of the 2xx).
    pub writes_to_lose: usize,
    /// How many applied writes had their answer lost so far.
    pub lost_answers: usize,
    /// While true, `/api` answers are held back (after their change is made).
    pub held: tokio::sync::watch::Sender<bool>,
    /// Merge a PATCHed metadata map into the stored one instead of replacing it.
    pub merge_metadata: bool,
    /// 400 (default) or 409 for duplicate external ids and emails.
    pub duplicate_status: u16,
    /// Every request received, in arrival order.
    pub requests: Vec<RecordedRequest>,
    /// Counter behind generated ids.
    next_id: u64,
    /// `env_…` id shown on users.
    pub environment_id: String,
}

impl Default for Inner {
    fn default() -> Self {
        let mut inner = Inner {
            orgs: BTreeMap::new(),
            users: BTreeMap::new(),
            tokens: HashMap::new(),
            token_ttl_secs: 86_399,
            omit_expires_in: false,
            token_requests: 0,
            api_faults: VecDeque::new(),
            token_faults: VecDeque::new(),
            latency: Duration::ZERO,
            writes_to_lose: 0,
            lost_answers: 0,
            held: tokio::sync::watch::Sender::new(false),
            merge_metadata: false,
            duplicate_status: 400,
            requests: Vec::new(),
            next_id: rand::rng().random_range(10_000_000_000_000_000..50_000_000_000_000_000),
            environment_id: String::new(),
        };
        inner.environment_id = inner.new_id("env");
        inner
    }
}

impl Inner {
    /// A fresh id: `prefix_` + 17 digits, increasing.
    pub fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += rand::rng().random_range(1..1_000);
        format!("{prefix}_{}", self.next_id)
    }

    /// The organization with this external id.
    pub fn org_by_external_id(&self, external_id: &str) -> Option<&Organization> {
        self.orgs
            .values()
            .find(|o| o.external_id.as_deref() == Some(external_id))
    }

    /// The id of the user with this external id.
    pub fn user_id_by_external_id(&self, external_id: &str) -> Option<String> {
        self.users
            .values()
            .find(|u| u.external_id.as_deref() == Some(external_id))
            .map(|u| u.id.clone())
    }

    /// Whether some user has this email (case-insensitive).
    pub fn email_taken(&self, email: &str) -> bool {
        self.users
            .values()
            .any(|u| u.email.eq_ignore_ascii_case(email))
    }

    /// Whether `token` was issued and has not expired at `now`.
    pub fn token_valid(&self, token: &str, now: Instant) -> bool {
        self.tokens.get(token).is_some_and(|expiry| now < *expiry)
    }

    /// Inserts a new organization and returns its id.
    pub fn insert_org(
        &mut self,
        display_name: String,
        external_id: Option<String>,
        metadata: BTreeMap<String, String>,
    ) -> String {
        let id = self.new_id("org");
        let now = SystemTime::now();
        let org = Organization {
            id: id.clone(),
            display_name,
            external_id,
            metadata,
            slug: None,
            logo_url: None,
            region_code: "US".to_owned(),
            create_time: now,
            update_time: now,
        };
        self.orgs.insert(id.clone(), org);
        id
    }

    /// Inserts a new user with one membership and returns its id.
    pub fn insert_user(
        &mut self,
        email: String,
        external_id: Option<String>,
        membership: Membership,
    ) -> String {
        let id = self.new_id("usr");
        let now = SystemTime::now();
        let profile = Profile {
            id: self.new_id("usp"),
            ..Profile::default()
        };
        let user = UserRecord {
            id: id.clone(),
            email,
            external_id,
            metadata: BTreeMap::new(),
            memberships: vec![membership],
            profile,
            send_invitation_email: None,
            create_time: now,
            update_time: now,
        };
        self.users.insert(id.clone(), user);
        id
    }
}
