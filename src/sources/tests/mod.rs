//! Tests of the sources against the shared fixtures and published vectors.

mod robustness;
mod salesforce;
mod salesforce_checks;
mod signed_json;
mod stripe;

use std::collections::HashMap;
use std::path::PathBuf;

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use super::{Delivery, InboundEvent, Source, SourceConfig, SourceError};

/// A fixture file's bytes: `tests/fixtures/…` in the crate, else `../shared/fixtures/…`.
fn fixture(relative: &str) -> Vec<u8> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        root.join("tests/fixtures").join(relative),
        root.join("../shared/fixtures").join(relative),
    ];
    candidates
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .unwrap_or_else(|| panic!("fixture {relative} not found"))
}

/// A fixture file as text.
fn fixture_text(relative: &str) -> String {
    String::from_utf8(fixture(relative)).unwrap()
}

/// A source from TOML config text and an environment given as pairs.
fn source(toml_text: &str, env: &[(&str, &str)]) -> Source {
    try_source(toml_text, env).unwrap()
}

/// Like [`source`], returning the configuration error.
fn try_source(toml_text: &str, env: &[(&str, &str)]) -> Result<Source, super::SourceConfigError> {
    let config: SourceConfig = toml::from_str(toml_text).unwrap();
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Source::from_config(&config, &|name| env.get(name).cloned())
}

/// Headers from pairs.
fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

/// Runs `receive` on one delivery.
fn receive(
    source: &Source,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<Vec<InboundEvent>, SourceError> {
    source.receive(&Delivery {
        headers,
        query,
        body,
        now_unix,
    })
}

/// The kind of the error `receive` gave.
fn refused(result: Result<Vec<InboundEvent>, SourceError>) -> &'static str {
    match result {
        Ok(events) => panic!("expected a refusal, got {events:?}"),
        Err(e) => e.kind(),
    }
}

#[test]
fn sources_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Source>();
}

#[test]
fn settings_of_another_kind_are_refused() {
    let err = try_source(
        "name = \"s\"\nkind = \"stripe\"\nheader = \"X-Signature\"",
        &[("STRIPE_WEBHOOK_SECRET", "whsec_x")],
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("`header` does not apply to kind stripe"),
        "{err}"
    );
    let err = try_source("name = \"h\"\nkind = \"hmac\"\nheader = \"X-Sig\"", &[]).unwrap_err();
    assert!(
        err.to_string().contains("`secret_env` is required"),
        "{err}"
    );
}

#[test]
fn missing_secrets_name_the_variable_and_never_print_values() {
    let err = try_source("name = \"s\"\nkind = \"stripe\"", &[]).unwrap_err();
    assert!(matches!(err, super::SourceConfigError::MissingEnv { .. }));
    assert!(
        err.to_string().contains("STRIPE_WEBHOOK_SECRET is not set"),
        "{err}"
    );
    let config = "name = \"w\"\nkind = \"standard_webhooks\"\nsecret_env = \"W\"";
    let err = try_source(config, &[("W", "whsec_not base64!")]).unwrap_err();
    assert!(!err.to_string().contains("not base64!"), "{err}");
    let source = source(
        "name = \"s\"\nkind = \"stripe\"",
        &[("STRIPE_WEBHOOK_SECRET", "whsec_topsecret")],
    );
    assert!(!format!("{source:?}").contains("topsecret"));
}

#[test]
fn json_answers_report_counts_and_errors() {
    let source = source(
        "name = \"s\"\nkind = \"stripe\"",
        &[("STRIPE_WEBHOOK_SECRET", "whsec_x")],
    );
    let ack = source.acknowledgement(&super::AckSummary {
        accepted: 1,
        duplicates: 2,
    });
    assert_eq!(ack.content_type, "application/json");
    assert_eq!(ack.body, r#"{"received":true,"accepted":1,"duplicates":2}"#);
    let ack: serde_json::Value = serde_json::from_str(&ack.body).unwrap();
    assert_eq!(
        ack,
        serde_json::json!({"received": true, "accepted": 1, "duplicates": 2})
    );
    let rejection = source.rejection("bad \"thing\"");
    let rejection: serde_json::Value = serde_json::from_str(&rejection.body).unwrap();
    assert_eq!(rejection, serde_json::json!({"error": "bad \"thing\""}));
    assert_eq!(source.reply_format(), super::ReplyFormat::Json);
}

#[test]
fn signed_requests_are_accepted_and_bodies_parse_offline() {
    let stripe = source(
        "name = \"s\"\nkind = \"stripe\"",
        &[
            ("STRIPE_WEBHOOK_SECRET", "whsec_a"),
            ("STRIPE_WEBHOOK_SECRET_PREVIOUS", "whsec_b"),
        ],
    );
    let hmac = source(
        "name = \"h\"\nkind = \"hmac\"\nsecret_env = \"H\"\nheader = \"X-Sig\"\n\
         prefix = \"sha256=\"\ntimestamp_header = \"X-Ts\"\ntimestamp_unit = \"milliseconds\"",
        &[("H", "k")],
    );
    let standard = source(
        "name = \"w\"\nkind = \"standard_webhooks\"\nsecret_env = \"W\"",
        &[("W", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")],
    );
    let body = br#"{"id":"evt_1","type":"customer.created","created":5}"#;
    for source in [&stripe, &hmac, &standard] {
        let signed = source.sign(body, 1000);
        let pairs: Vec<(&str, &str)> = signed
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let events = receive(source, &headers(&pairs), None, body, 1000).unwrap();
        assert_eq!(events[0].event_type, "customer.created", "{source:?}");
        assert_eq!(
            signed.headers[0],
            ("content-type".into(), "application/json".into())
        );
    }
    let config: SourceConfig = toml::from_str("name = \"s\"\nkind = \"stripe\"").unwrap();
    let events = super::parse_unverified(&config, body).unwrap();
    assert_eq!(events[0].verification, "unverified");
    assert_eq!(events[0].provider_event_id, "evt_1");
    let err = super::parse_unverified(&config, b"{}").unwrap_err();
    assert!(err.to_string().starts_with("MissingField: "), "{err}");
}
