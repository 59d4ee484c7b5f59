//! Domain types shared by sources, rules, store and worker: what arrived, what it should
//! change, and which Scalekit object the change is for.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

mod ids;
pub mod limits;
mod payload_fields;
mod states;

pub use ids::{EventId, JobId, TargetKey};
pub use payload_fields::{PayloadFields, Step};
pub use states::{EventStatus, JobState};

/// A value that failed one of the domain constructors below.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// An external id that Scalekit or orgsync cannot use.
    #[error("invalid external id {value:?}: {reason}")]
    ExternalId {
        /// The offending value.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A target key that names no known kind of target.
    #[error("invalid target key {key:?}: use org:<external id> or user:<external id>")]
    TargetKey {
        /// The offending key.
        key: String,
    },
    /// A metadata key outside Scalekit's 3–25 character rule.
    #[error(
        "invalid metadata key {key:?}: keys must be {} to {} characters long",
        limits::METADATA_KEY_CHARS.start(),
        limits::METADATA_KEY_CHARS.end()
    )]
    MetadataKey {
        /// The offending key.
        key: String,
    },
}

/// Which kind of Scalekit object a change is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// A Scalekit organization (at most 10 metadata pairs).
    Organization,
    /// A Scalekit user (at most 20 metadata pairs).
    User,
}

impl TargetKind {
    /// The most metadata pairs Scalekit accepts on this kind of object.
    pub fn max_metadata_pairs(self) -> usize {
        match self {
            TargetKind::Organization => limits::ORGANIZATION_MAX_PAIRS,
            TargetKind::User => limits::USER_MAX_PAIRS,
        }
    }

    /// The short prefix used in target keys (`org`, `user`).
    pub fn prefix(self) -> &'static str {
        match self {
            TargetKind::Organization => "org",
            TargetKind::User => "user",
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TargetKind::Organization => "organization",
            TargetKind::User => "user",
        })
    }
}

/// An external id as Scalekit stores it: 1–255 characters, no `/` (it travels as one path
/// segment), no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ExternalId(String);

impl ExternalId {
    /// Checks and wraps an external id.
    pub fn parse(value: &str) -> Result<Self, ModelError> {
        let refuse = |reason| {
            Err(ModelError::ExternalId {
                value: value.to_owned(),
                reason,
            })
        };
        if value.trim().is_empty() {
            return refuse("it is empty");
        }
        if value.chars().count() > 255 {
            return refuse("it is longer than 255 characters");
        }
        if value.contains('/') {
            return refuse("it contains '/'");
        }
        if value == "." || value == ".." {
            return refuse("URL parsers read it as a directory step");
        }
        if value.chars().any(char::is_control) {
            return refuse("it contains a control character");
        }
        Ok(Self(value.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ExternalId {
    type Error = ModelError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ExternalId> for String {
    fn from(value: ExternalId) -> Self {
        value.0
    }
}

impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Scalekit metadata key: 3–25 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MetadataKey(String);

impl MetadataKey {
    /// Checks and wraps a metadata key.
    pub fn parse(key: &str) -> Result<Self, ModelError> {
        let len = key.chars().count();
        if !limits::METADATA_KEY_CHARS.contains(&len) {
            return Err(ModelError::MetadataKey {
                key: key.to_owned(),
            });
        }
        Ok(Self(key.to_owned()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MetadataKey {
    type Error = ModelError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<MetadataKey> for String {
    fn from(value: MetadataKey) -> Self {
        value.0
    }
}

impl fmt::Display for MetadataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a change names its target: directly by external id, or through a learned link
/// (e.g. `stripe_customer cus_X`) that the store resolves to an external id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum TargetRef {
    /// The Scalekit external id is known.
    External {
        /// Organization or user.
        kind: TargetKind,
        /// The object's external id.
        external_id: ExternalId,
    },
    /// Only an alias is known; the external id comes from the `links` table.
    Link {
        /// Organization or user.
        kind: TargetKind,
        /// The link kind, e.g. `stripe_customer`.
        link: String,
        /// The alias value, e.g. `cus_QXg1o8vcGmoR32`.
        key: String,
    },
}

impl TargetRef {
    /// Organization or user.
    pub fn kind(&self) -> TargetKind {
        match self {
            TargetRef::External { kind, .. } | TargetRef::Link { kind, .. } => *kind,
        }
    }

    /// The key the worker serialises on: `org:<external id>`, `user:<external id>`, or
    /// `link:org:<link>:<key>` while only an alias is known.
    pub fn key(&self) -> TargetKey {
        match self {
            TargetRef::External { kind, external_id } => TargetKey::external(*kind, external_id),
            TargetRef::Link { kind, link, key } => TargetKey::link(*kind, link, key),
        }
    }
}

impl fmt::Display for TargetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetRef::External { kind, external_id } => write!(f, "{kind} {external_id}"),
            TargetRef::Link { kind, link, key } => write!(f, "{kind} linked to {link} {key}"),
        }
    }
}

/// What the worker does when the target does not exist in Scalekit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMissing {
    /// Try again later (the object is often created moments after the event), until the
    /// configured maximum age; then the job ends dead.
    #[default]
    Retry,
    /// Create the object (with the change's `create` values).
    Create,
    /// Record the job as skipped.
    Skip,
}

/// Values used to create a missing object when `on_missing = "create"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSpec {
    /// Organization display name (required to create an organization).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// User e-mail (required to create a user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// User first name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// User last name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// The organization a created user joins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<TargetRef>,
}

/// One change to one target, produced by one rule from one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The rule that produced it (for logs, explain and the admin API).
    pub rule: String,
    /// Which object it changes.
    pub target: TargetRef,
    /// Metadata keys to set, values already stringified.
    #[serde(default)]
    pub set: BTreeMap<MetadataKey, String>,
    /// Metadata keys to remove.
    #[serde(default)]
    pub unset: BTreeSet<MetadataKey>,
    /// A new external id for the target (CRM merge, migration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_external_id: Option<ExternalId>,
    /// What to do when the target does not exist.
    #[serde(default)]
    pub on_missing: OnMissing,
    /// Values for creating the target when `on_missing` is `create`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<CreateSpec>,
    /// Made by `orgsync replay` with the current rules: it may rewrite the fields its own
    /// event wrote before (same version), never those of a newer event.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
}

/// A learned alias: "this `link` key belongs to that external id", recorded when an event
/// carries both (a customer id and an org id, say).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkUpdate {
    /// Organization or user.
    pub kind: TargetKind,
    /// The link kind, e.g. `stripe_customer`.
    pub link: String,
    /// The alias value.
    pub key: String,
    /// The external id it stands for.
    pub external_id: ExternalId,
}

/// What the rules made of one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Normalized {
    /// At least one rule matched and produced these changes and links.
    Matched {
        /// One change per matched rule.
        changes: Vec<Change>,
        /// Aliases learned from the event.
        links: Vec<LinkUpdate>,
    },
    /// No rule handles this event.
    Ignored,
    /// A rule matched but a required value is missing or invalid.
    Rejected {
        /// What was missing, naming the rule.
        reason: String,
    },
}

/// One verified event from a source, ready to be normalised and stored.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundEvent {
    /// The configured source name (the `{source}` in `/webhooks/{source}`).
    pub source: String,
    /// The sender's id for this event (Stripe `evt_…`, Salesforce notification id, …):
    /// unique per source, the dedupe key.
    pub provider_event_id: String,
    /// The event type rules match on (`customer.subscription.updated`, `Account`, …).
    pub event_type: String,
    /// When the source says the state was produced, in unix milliseconds; `None` means
    /// "use the arrival time". This is the version that orders changes.
    pub occurred_at_ms: Option<i64>,
    /// The JSON document the rules run on.
    pub payload: serde_json::Value,
    /// The verification that was done at receipt, stored with the event.
    pub verification: String,
}

/// What the verification text of an event says when its version was beyond the source's
/// future skew and was capped at the arrival time.
pub const VERSION_CAPPED_MARK: &str = "version capped at arrival";

/// What the verification text of an event says when the raw body was not kept.
pub const RAW_BODY_NOT_KEPT_MARK: &str = "raw body not kept";

/// The order of two changes to the same field: the source's version first, then the
/// arrival sequence (the event's row id), so equal timestamps resolve to the later arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version {
    /// Source version in unix milliseconds.
    pub at_ms: i64,
    /// Arrival order, breaking ties.
    pub seq: i64,
}

/// A JSON value's type in words, for error messages ("a number", "an object", …).
pub fn json_kind(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
