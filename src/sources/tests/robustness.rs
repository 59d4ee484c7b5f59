//! No input makes a source or the rules panic: proptest mutates the fixtures (bit flips,
//! cuts, deletions, repeated runs, XML/JSON punctuation), signs the result or mangles the
//! signature header, and each delivery must end in `Ok` with a bounded number of events or
//! in a refusal that names its kind with a short message. A failing input is shrunk and
//! its seed kept in `proptest-regressions/sources/tests/robustness.txt`.

use std::fmt;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

use super::salesforce::{ORG, salesforce};
use super::{fixture, headers, receive, source};
use crate::model::InboundEvent;
use crate::sources::salesforce::MAX_NOTIFICATIONS;
use crate::sources::{Source, SourceError, stripe_signature_header};

/// Cases per property (each is one parse: fast).
const CASES: u32 = 1500;
/// The longest refusal message: it goes back to the sender and into the logs.
const MAX_MESSAGE: usize = 512;
const PUNCTUATION: &[u8] = b"<>&;:\"'=/\\{}[],.-0123456789 \n\x00\xff";

/// One edit of a byte string; positions are relative, so they fit any length.
#[derive(Debug, Clone)]
enum Edit {
    Flip(Index, u8),
    Truncate(Index),
    Delete(Index, usize),
    Repeat(Index, usize),
    Insert(Index, Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), 0..8u8).prop_map(|(at, bit)| Edit::Flip(at, bit)),
        any::<Index>().prop_map(Edit::Truncate),
        (any::<Index>(), 1..64usize).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<Index>(), 1..256usize).prop_map(|(at, n)| Edit::Repeat(at, n)),
        (any::<Index>(), any::<Index>()).prop_map(|(at, p)| Edit::Insert(at, p)),
    ]
}

/// `original` after one to five edits.
fn mutated(original: Vec<u8>) -> impl Strategy<Value = Bytes> {
    vec(edit(), 1..6).prop_map(move |edits| {
        let mut bytes = original.clone();
        for edit in &edits {
            apply(edit, &mut bytes);
        }
        Bytes(bytes)
    })
}

fn apply(edit: &Edit, bytes: &mut Vec<u8>) {
    if bytes.is_empty() {
        bytes.push(b'<');
        return;
    }
    let len = bytes.len();
    match *edit {
        Edit::Flip(at, bit) => bytes[at.index(len)] ^= 1 << bit,
        Edit::Truncate(at) => bytes.truncate(at.index(len)),
        Edit::Delete(at, n) => {
            let at = at.index(len);
            bytes.drain(at..(at + n).min(len));
        }
        Edit::Repeat(at, n) => {
            let at = at.index(len);
            let copy = bytes[at..(at + n).min(len)].to_vec();
            bytes.splice(at..at, copy);
        }
        Edit::Insert(at, p) => bytes.insert(at.index(len), PUNCTUATION[p.index(PUNCTUATION.len())]),
    }
}

/// Bytes shown as lossy text in a failure report.
#[derive(Clone)]
struct Bytes(Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

/// The checks every delivery's outcome must pass (a panic fails the case by itself).
fn check(result: Result<Vec<InboundEvent>, SourceError>) -> Result<(), TestCaseError> {
    match result {
        Ok(events) => prop_assert!(events.len() <= MAX_NOTIFICATIONS, "{} events", events.len()),
        Err(e) => {
            let message = e.to_string();
            prop_assert!(!e.kind().is_empty() && !message.is_empty(), "{e:?}");
            prop_assert!(
                message.len() <= MAX_MESSAGE,
                "{} bytes: {message}",
                message.len()
            );
        }
    }
    Ok(())
}

fn stripe() -> Source {
    source(
        "name = \"s\"\nkind = \"stripe\"",
        &[("STRIPE_WEBHOOK_SECRET", "whsec_x")],
    )
}

/// Runs the property with [`CASES`] cases.
fn config() -> ProptestConfig {
    ProptestConfig::with_cases(CASES)
}

#[test]
fn mangled_soap_messages_never_panic() {
    let source = salesforce(ORG, None);
    let h = headers(&[("content-type", "text/xml")]);
    let original = fixture("salesforce/outbound_message.account.constructed.xml");
    proptest!(config(), |(body in mutated(original))| {
        check(receive(&source, &h, None, &body.0, 0))?;
    });
}

#[test]
fn signed_but_mangled_json_never_panics() {
    let stripe = stripe();
    proptest!(config(), |(body in mutated(fixture(SUBSCRIPTION)))| {
        let signed = stripe_signature_header("whsec_x", 1000, &body.0);
        let h = headers(&[("stripe-signature", &signed)]);
        check(receive(&stripe, &h, None, &body.0, 1000))?;
    });
}

#[test]
fn mangled_signature_headers_never_panic() {
    let stripe = stripe();
    let body = fixture(SUBSCRIPTION);
    let signed = stripe_signature_header("whsec_x", 1000, &body).into_bytes();
    proptest!(config(), |(header in mutated(signed))| {
        let header = String::from_utf8_lossy(&header.0).replace(['\n', '\0'], "");
        if let Ok(value) = axum::http::HeaderValue::from_str(&header) {
            let mut h = axum::http::HeaderMap::new();
            h.insert("stripe-signature", value);
            check(receive(&stripe, &h, None, &body, 1000))?;
        }
    });
}

/// The subscription fixture, the mutated JSON's original.
const SUBSCRIPTION: &str = "stripe/event.customer.subscription.updated.json";

/// One replacement in a JSON document: follow `path` (each step picks a child) until it
/// ends or reaches a leaf, and put `choice` there.
#[derive(Debug, Clone)]
struct Replacement {
    path: Vec<Index>,
    choice: Index,
}

fn replacement() -> impl Strategy<Value = Replacement> {
    (vec(any::<Index>(), 0..8), any::<Index>())
        .prop_map(|(path, choice)| Replacement { path, choice })
}

/// Replaces the node `r` leads to by one of `choices`.
fn replace(value: &mut serde_json::Value, r: &Replacement, choices: &[serde_json::Value]) {
    replace_at(value, &r.path, &choices[r.choice.index(choices.len())]);
}

/// Follows `path` from `node` while there are children, and puts `choice` where it ends.
fn replace_at(node: &mut serde_json::Value, path: &[Index], choice: &serde_json::Value) {
    match (path.split_first(), node) {
        (Some((step, rest)), serde_json::Value::Object(map)) if !map.is_empty() => {
            let pick = step.index(map.len());
            let child = map.values_mut().nth(pick).expect("in range");
            replace_at(child, rest, choice);
        }
        (Some((step, rest)), serde_json::Value::Array(items)) if !items.is_empty() => {
            let pick = step.index(items.len());
            replace_at(&mut items[pick], rest, choice);
        }
        (_, node) => *node = choice.clone(),
    }
}

#[test]
fn the_default_rules_never_panic_on_strange_values() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/orgsync.toml"))
        .unwrap();
    let settings = crate::config::Settings::parse(&text).unwrap();
    let rules = crate::rules::RuleSet::compile(&settings.rules, &["stripe", "salesforce"]).unwrap();
    let original: serde_json::Value = serde_json::from_slice(&fixture(SUBSCRIPTION)).unwrap();
    let strange = [
        serde_json::Value::Null,
        serde_json::json!(1e300),
        serde_json::json!(-1),
        serde_json::json!(true),
        serde_json::json!([]),
        serde_json::json!({}),
        serde_json::json!("x".repeat(300)),
        serde_json::json!("a/b"),
        serde_json::json!(""),
    ];
    proptest!(config(), |(replacements in vec(replacement(), 3))| {
        let mut payload = original.clone();
        for r in &replacements {
            replace(&mut payload, r, &strange);
        }
        let event = InboundEvent {
            source: "stripe".into(),
            provider_event_id: "evt_strange".into(),
            event_type: "customer.subscription.updated".into(),
            occurred_at_ms: None,
            payload,
            verification: "test".into(),
        };
        rules.normalize(&event);
    });
}

#[test]
fn a_long_name_in_malformed_xml_is_quoted_only_in_part() {
    let name = "n".repeat(100_000);
    let body = format!("<Envelope><{name}></x{name}></Envelope>");
    let h = headers(&[("content-type", "text/xml")]);
    let err = receive(&salesforce(ORG, None), &h, None, body.as_bytes(), 0).unwrap_err();
    assert_eq!(err.kind(), "MalformedXml");
    assert!(err.to_string().len() <= MAX_MESSAGE, "{err}");
    assert!(err.to_string().ends_with('…'), "{err}");
}
