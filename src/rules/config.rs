//! The rule configuration as written in TOML (`[[rules]]` tables), before compilation.
//!
//! Everything here is plain data; [`super::RuleSet::compile`] checks it and turns it into
//! compiled rules. Unknown keys are refused so that a typo fails at startup.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};

/// One `[[rules]]` table: which events it handles, which target they change, how to find
/// the target, and which metadata keys to write.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// A unique name, shown in logs, `orgsync explain` and every error about the rule.
    pub name: String,
    /// The configured source whose events the rule handles (e.g. `stripe`).
    pub source: String,
    /// Event types the rule handles; a trailing `*` matches any suffix
    /// (`customer.subscription.*`).
    pub events: Vec<String>,
    /// `organization` or `user`.
    pub target: String,
    /// Extra conditions on the event; all must hold for the rule to match.
    #[serde(default)]
    pub when: Vec<ConditionConfig>,
    /// Candidates for the target's external id, tried in order: a JSONPath, or
    /// `link:<kind>(<jsonpath>)` for an alias the store resolves.
    pub external_id: Candidates,
    /// `retry` (default), `create` or `skip`: what the worker does when the target is missing.
    #[serde(default)]
    pub on_missing: Option<String>,
    /// Values used to create the target when `on_missing = "create"`.
    #[serde(default)]
    pub create: Option<CreateConfig>,
    /// Metadata key → value spec: the keys this rule writes.
    #[serde(default)]
    pub set: BTreeMap<String, ValueSpecConfig>,
    /// Metadata keys this rule removes.
    #[serde(default)]
    pub unset: Vec<String>,
    /// A value spec for a new external id (CRM merges, migrations).
    #[serde(default)]
    pub new_external_id: Option<ValueSpecConfig>,
    /// Link kind → JSONPath: aliases learned when the external id came from a direct path.
    #[serde(default)]
    pub links: BTreeMap<String, String>,
}

/// `[rules.create]`: where the values for creating a missing target come from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateConfig {
    /// Organization display name (required to create an organization).
    #[serde(default)]
    pub display_name: Option<ValueSpecConfig>,
    /// User e-mail (required to create a user).
    #[serde(default)]
    pub email: Option<ValueSpecConfig>,
    /// User first name.
    #[serde(default)]
    pub first_name: Option<ValueSpecConfig>,
    /// User last name.
    #[serde(default)]
    pub last_name: Option<ValueSpecConfig>,
    /// For users: candidates for the external id of the organization the user joins.
    #[serde(default)]
    pub organization: Option<Candidates>,
}

/// One `when` condition: a JSONPath and exactly one test on the value it selects.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionConfig {
    /// The value to test.
    pub path: String,
    /// Holds when the value equals this (string, number or boolean).
    #[serde(default)]
    pub equals: Option<serde_json::Value>,
    /// Holds when the value is absent or differs from this.
    #[serde(default)]
    pub not_equals: Option<serde_json::Value>,
    /// Holds when the value equals one of these.
    #[serde(default)]
    pub one_of: Option<Vec<serde_json::Value>>,
    /// `true`: holds when the path selects a non-null value; `false`: when it does not.
    #[serde(default)]
    pub exists: Option<bool>,
}

/// One candidate or a list of candidates (`"$.a"` or `["$.a", "link:k($.b)"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidates(pub Vec<String>);

impl<'de> Deserialize<'de> for Candidates {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Candidates;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSONPath string or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Candidates, E> {
                Ok(Candidates(vec![v.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Candidates, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Candidates)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Where a value comes from: `"$.path"`, `["$.first", "$.fallback"]`, or a table.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueSpecConfig {
    /// One JSONPath.
    Path(String),
    /// JSONPaths tried in order; the first non-null, non-empty value wins.
    Paths(Vec<String>),
    /// The full form, with options.
    Table(ValueTable),
}

/// The table form of a value spec: exactly one of `path`, `paths`, `value`, plus options.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueTable {
    /// One JSONPath.
    #[serde(default)]
    pub path: Option<String>,
    /// JSONPaths tried in order.
    #[serde(default)]
    pub paths: Option<Vec<String>>,
    /// A literal string instead of a path.
    #[serde(default)]
    pub value: Option<String>,
    /// Reject the event when no value is found (absent or null).
    #[serde(default)]
    pub required: bool,
    /// `rfc3339`: the value is unix seconds, written as an RFC 3339 UTC instant.
    #[serde(default)]
    pub format: Option<String>,
    /// Separator for joining an array of scalars (or the values a wildcard path selects).
    #[serde(default)]
    pub join: Option<String>,
}

impl<'de> Deserialize<'de> for ValueSpecConfig {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ValueSpecConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSONPath string, a list of JSONPaths, or a table { path = … }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ValueSpecConfig, E> {
                Ok(ValueSpecConfig::Path(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ValueSpecConfig, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(ValueSpecConfig::Paths)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ValueSpecConfig, A::Error> {
                ValueTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(ValueSpecConfig::Table)
            }
        }
        deserializer.deserialize_any(V)
    }
}
