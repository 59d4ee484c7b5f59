//! No input makes a source or the rules panic: seeded random mutations of the fixtures
//! (byte flips, cuts, insertions of XML/JSON punctuation, random headers) must each end in
//! a clean `Ok` or `Err`. The seed is in every failure message.

use std::panic::AssertUnwindSafe;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::salesforce::{ORG, salesforce};
use super::{fixture, headers, receive, source};
use crate::sources::stripe_signature_header;

const ROUNDS: u64 = 1500;
const PUNCTUATION: &[u8] = b"<>&;:\"'=/\\{}[],.-0123456789 \n\x00\xff";

/// One random edit of `bytes`.
fn mutate(rng: &mut StdRng, bytes: &mut Vec<u8>) {
    if bytes.is_empty() {
        bytes.push(b'<');
        return;
    }
    let at = rng.random_range(0..bytes.len());
    match rng.random_range(0..5) {
        0 => bytes[at] ^= 1 << rng.random_range(0..8),
        1 => bytes.truncate(at),
        2 => {
            let end = (at + rng.random_range(1..64)).min(bytes.len());
            bytes.drain(at..end);
        }
        3 => {
            let end = (at + rng.random_range(1..256)).min(bytes.len());
            let copy = bytes[at..end].to_vec();
            bytes.splice(at..at, copy);
        }
        _ => bytes.insert(at, PUNCTUATION[rng.random_range(0..PUNCTUATION.len())]),
    }
}

fn mutated(seed: u64, original: &[u8]) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut bytes = original.to_vec();
    for _ in 0..rng.random_range(1..6) {
        mutate(&mut rng, &mut bytes);
    }
    bytes
}

#[test]
fn mangled_soap_messages_never_panic() {
    let source = salesforce(ORG, None);
    let original = fixture("salesforce/outbound_message.account.constructed.xml");
    let h = headers(&[("content-type", "text/xml")]);
    for seed in 0..ROUNDS {
        let body = mutated(seed, &original);
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            receive(&source, &h, None, &body, 0).map(|e| e.len())
        }));
        assert!(
            result.is_ok(),
            "seed {seed} panicked on {:?}",
            String::from_utf8_lossy(&body)
        );
    }
}

#[test]
fn signed_but_mangled_json_and_random_headers_never_panic() {
    let stripe = source(
        "name = \"s\"\nkind = \"stripe\"",
        &[("STRIPE_WEBHOOK_SECRET", "whsec_x")],
    );
    let original = fixture("stripe/event.customer.subscription.updated.json");
    for seed in 0..ROUNDS {
        let body = mutated(seed, &original);
        let signed = stripe_signature_header("whsec_x", 1000, &body);
        let h = headers(&[("stripe-signature", &signed)]);
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            receive(&stripe, &h, None, &body, 1000).map(|e| e.len())
        }));
        assert!(
            result.is_ok(),
            "seed {seed} panicked on {:?}",
            String::from_utf8_lossy(&body)
        );
        let header =
            String::from_utf8_lossy(&mutated(seed, signed.as_bytes())).replace(['\n', '\0'], "");
        if let Ok(value) = axum::http::HeaderValue::from_str(&header) {
            let mut h = axum::http::HeaderMap::new();
            h.insert("stripe-signature", value);
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                receive(&stripe, &h, None, &original, 1000).map(|e| e.len())
            }));
            assert!(result.is_ok(), "seed {seed} panicked on header {header:?}");
        }
    }
}

#[test]
fn the_default_rules_never_panic_on_strange_values() {
    use crate::model::InboundEvent;
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/orgsync.toml"))
        .unwrap();
    let settings = crate::config::Settings::parse(&text).unwrap();
    let rules = crate::rules::RuleSet::compile(&settings.rules, &["stripe", "salesforce"]).unwrap();
    let original: serde_json::Value =
        serde_json::from_slice(&fixture("stripe/event.customer.subscription.updated.json"))
            .unwrap();
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
    for seed in 0..ROUNDS {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut payload = original.clone();
        for _ in 0..3 {
            replace_random_node(&mut rng, &mut payload, &strange);
        }
        let event = InboundEvent {
            source: "stripe".into(),
            provider_event_id: format!("evt_{seed}"),
            event_type: "customer.subscription.updated".into(),
            occurred_at_ms: None,
            payload: payload.clone(),
            verification: "test".into(),
        };
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| rules.normalize(&event)));
        assert!(result.is_ok(), "seed {seed} panicked on {payload}");
    }
}

/// Replaces one randomly chosen node of `value` by one of `choices`.
fn replace_random_node(
    rng: &mut StdRng,
    value: &mut serde_json::Value,
    choices: &[serde_json::Value],
) {
    let mut node = value;
    loop {
        let children = match node {
            serde_json::Value::Object(map) => map.len(),
            serde_json::Value::Array(items) => items.len(),
            _ => 0,
        };
        if children == 0 || rng.random_range(0..4) == 0 {
            *node = choices[rng.random_range(0..choices.len())].clone();
            return;
        }
        let pick = rng.random_range(0..children);
        node = match node {
            serde_json::Value::Object(map) => map.values_mut().nth(pick).expect("in range"),
            serde_json::Value::Array(items) => &mut items[pick],
            _ => return,
        };
    }
}
