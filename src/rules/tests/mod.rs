//! Tests of the rules engine: compile errors, engine semantics, and the default rules
//! against every Stripe fixture and the Salesforce notifications.

mod compile_errors;
mod default_salesforce;
mod default_stripe;
mod pruned_payloads;
mod semantics;

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

use super::{RuleConfig, RuleSet};
use crate::model::{Change, ExternalId, InboundEvent, LinkUpdate, Normalized};

/// The `[[rules]]` part of a config file.
#[derive(Deserialize)]
struct RulesFile {
    rules: Vec<RuleConfig>,
}

const SOURCES: &[&str] = &["stripe", "salesforce", "crm"];

/// Parses TOML rules; panics with the parse error (tests only).
fn configs(toml_text: &str) -> Vec<RuleConfig> {
    toml::from_str::<RulesFile>(toml_text).unwrap().rules
}

/// Compiles TOML rules against [`SOURCES`].
fn rules(toml_text: &str) -> RuleSet {
    RuleSet::compile(&configs(toml_text), SOURCES).unwrap()
}

/// The shipped default rules, read from the one default config the binary uses too.
fn default_rules() -> RuleSet {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/orgsync.toml");
    rules(&std::fs::read_to_string(path).unwrap())
}

/// A fixture file: `tests/fixtures/…` in the crate, else the shared `../shared/fixtures/…`.
fn fixture(relative: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        root.join("tests/fixtures").join(relative),
        root.join("../shared/fixtures").join(relative),
    ];
    candidates
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_else(|| panic!("fixture {relative} not found"))
}

/// An event from `source` with the given type and payload.
fn event(source: &str, event_type: &str, payload: Value) -> InboundEvent {
    InboundEvent {
        source: source.into(),
        provider_event_id: "evt_test".into(),
        event_type: event_type.into(),
        occurred_at_ms: None,
        payload,
        verification: "test".into(),
    }
}

/// A Stripe fixture wrapped as the Stripe source would: type from `type`.
fn stripe_fixture(file: &str) -> InboundEvent {
    let payload: Value = serde_json::from_str(&fixture(&format!("stripe/{file}"))).unwrap();
    let event_type = payload["type"].as_str().unwrap().to_owned();
    event("stripe", &event_type, payload)
}

/// The changes and links of a `Matched` result; panics otherwise.
fn matched(normalized: Normalized) -> (Vec<Change>, Vec<LinkUpdate>) {
    match normalized {
        Normalized::Matched { changes, links } => (changes, links),
        other => panic!("expected a match, got {other:?}"),
    }
}

/// The reason of a `Rejected` result; panics otherwise.
fn rejected(normalized: Normalized) -> String {
    match normalized {
        Normalized::Rejected { reason } => reason,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn id(value: &str) -> ExternalId {
    ExternalId::parse(value).unwrap()
}

/// `set` of a change as (key, value) string pairs.
fn set_pairs(change: &Change) -> Vec<(&str, &str)> {
    change
        .set
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// `unset` of a change as strings.
fn unset_keys(change: &Change) -> Vec<&str> {
    change.unset.iter().map(|k| k.as_str()).collect()
}

#[test]
fn rule_set_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RuleSet>();
}
