//! What the fuzz targets share: sources built from TOML, headers from fuzzed text, the
//! default rules, and the properties every delivery must have whatever its bytes.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::LazyLock;

use http::{HeaderMap, HeaderName, HeaderValue};
use orgsync::config::Settings;
use orgsync::model::InboundEvent;
use orgsync::rules::{RuleSet, describe};
use orgsync::sources::{Accepted, Delivery, Source, SourceConfig, SourceError};

/// "Now" for every delivery (the time of the Stripe fixtures' signing example).
pub const NOW: i64 = 1_769_817_617;

/// The longest error message a sender may have quoted back, in characters. The longest
/// legitimate one names a configured header or path; a message that grows with the body
/// would let a sender make every refusal (and its log line) as large as the body limit.
pub const MAX_MESSAGE_CHARS: usize = 512;

/// The Stripe endpoint secret the targets sign with, and the previous one (rotation).
pub const STRIPE_SECRET: &str = "whsec_test_secret";
/// The previous Stripe secret, still accepted while rotating.
pub const STRIPE_PREVIOUS: &str = "whsec_previous_secret";

/// The default config file, whose rules the accepted events are run through.
const DEFAULT_CONFIG: &str = include_str!("../../../config/orgsync.toml");

/// The shipped rules, compiled once.
pub static DEFAULT_RULES: LazyLock<RuleSet> = LazyLock::new(|| {
    let settings = Settings::parse(DEFAULT_CONFIG).expect("the default config parses");
    RuleSet::compile(&settings.rules, &["stripe", "salesforce"]).expect("the default rules compile")
});

/// A source from TOML text and an environment given as pairs (harness setup: panics on
/// a bad harness config, never on fuzzed input).
pub fn source(toml_text: &str, env: &[(&str, &str)]) -> Source {
    let config: SourceConfig = toml::from_str(toml_text).expect("harness source config");
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Source::from_config(&config, &|name| env.get(name).cloned()).expect("harness source")
}

/// Adds a header when name and value are valid HTTP (the http layer refuses others before
/// a source sees them).
pub fn add_header(map: &mut HeaderMap, name: &str, value: &[u8]) {
    if let (Ok(name), Ok(value)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_bytes(value),
    ) {
        map.append(name, value);
    }
}

/// Splits off the first `n` lines (`\n`-terminated) of `data`; the rest is the body.
pub fn lines(data: &[u8], n: usize) -> Option<(Vec<&[u8]>, &[u8])> {
    let mut rest = data;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let at = rest.iter().position(|&b| b == b'\n')?;
        out.push(&rest[..at]);
        rest = &rest[at + 1..];
    }
    Some((out, rest))
}

/// Runs a delivery through [`Source::accept`] twice and checks the properties every
/// source must have; returns the first result.
pub fn deliver(source: &Source, delivery: &Delivery<'_>) -> Result<Accepted, SourceError> {
    let first = source.accept(delivery);
    let second = source.accept(delivery);
    match (&first, &second) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.events, b.events, "the same delivery gave other events");
            assert_eq!(a.storable_body, b.storable_body);
            assert_eq!(a.versions_capped, b.versions_capped);
            assert_eq!(
                source.receive(delivery).map(|e| e.len()).ok(),
                Some(a.events.len())
            );
            accepted(source, a, delivery.now_unix);
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "the same delivery was refused for another reason");
            refusal(source, a);
        }
        _ => panic!("the same delivery was accepted once and refused once: {first:?} {second:?}"),
    }
    first
}

/// Properties of an accepted delivery: versions within the skew, a kept body only for a
/// verified delivery, and the default rules run on every event without panicking, twice
/// alike.
fn accepted(source: &Source, accepted: &Accepted, now_unix: i64) {
    assert!(!accepted.events.is_empty(), "accepted with no event");
    for event in &accepted.events {
        check_event(source, event, now_unix);
        let once = DEFAULT_RULES.normalize(event);
        assert_eq!(once, DEFAULT_RULES.normalize(event));
        let _ = describe(&once);
        serde_json::to_string(&once).expect("a normalized event serializes");
    }
}

/// An event's own invariants.
fn check_event(source: &Source, event: &InboundEvent, now_unix: i64) {
    assert_eq!(event.source, source.name());
    assert!(
        !event.provider_event_id.is_empty(),
        "an event without an id"
    );
    assert!(!event.event_type.is_empty(), "an event without a type");
    if let Some(at) = event.occurred_at_ms {
        // Every skew the targets configure is at most 300 s.
        assert!(
            at <= now_unix.saturating_mul(1000).saturating_add(300_000),
            "a version from the future was not capped: {at}"
        );
    }
}

/// Properties of a refusal: a bounded message, and an answer that names no more.
pub fn refusal(source: &Source, error: &SourceError) {
    let message = error.to_string();
    assert!(
        message.chars().count() <= MAX_MESSAGE_CHARS,
        "a refusal message of {} characters: {:?}",
        message.chars().count(),
        message.chars().take(120).collect::<String>()
    );
    let _ = error.kind();
    let _ = error.category();
    let answer = source.refusal(error, "req_fuzz");
    assert!(answer.body.len() <= 8 * MAX_MESSAGE_CHARS + 1024);
}
