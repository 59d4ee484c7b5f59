//! Stripe against `signatures.json`: every fixture, every header variant, the clock.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{fixture, headers, receive, refused, source};
use crate::sources::{Source, stripe_signature_header};

/// The fixture timestamp.
const T: i64 = 1769817617;

/// A Stripe source with the given secret.
fn stripe(secret: &str) -> Source {
    source(
        "name = \"stripe\"\nkind = \"stripe\"",
        &[("STRIPE_WEBHOOK_SECRET", secret)],
    )
}

/// The signature manifest.
fn manifest() -> Value {
    serde_json::from_slice(&fixture("stripe/signatures.json")).unwrap()
}

/// The customer.created body and one of its header variants.
fn variant(name: &str) -> (Vec<u8>, String) {
    let manifest = manifest();
    let header = manifest["header_variants_for_event.customer.created.json"][name]
        .as_str()
        .unwrap()
        .to_owned();
    (fixture("stripe/event.customer.created.json"), header)
}

#[test]
fn every_fixture_verifies_at_its_clock_and_is_unchanged() {
    let manifest = manifest();
    let source = stripe(manifest["secret"].as_str().unwrap());
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(files.len(), 15);
    for entry in files {
        let file = entry["file"].as_str().unwrap();
        let body = fixture(&format!("stripe/{file}"));
        assert_eq!(
            hex::encode(Sha256::digest(&body)),
            entry["sha256"].as_str().unwrap(),
            "{file} was reformatted"
        );
        let header = entry["stripe_signature"].as_str().unwrap();
        let h = headers(&[("stripe-signature", header)]);
        let now = manifest["clock_for_tests"]["accept_at_now"]
            .as_i64()
            .unwrap();
        let result = receive(&source, &h, None, &body, now);
        if file.starts_with("thin_event") {
            assert_eq!(refused(result), "ThinEvent", "{file}");
            continue;
        }
        let events = result.unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(events.len(), 1);
        let payload: Value = serde_json::from_slice(&body).unwrap();
        let event = &events[0];
        assert_eq!(event.source, "stripe");
        assert_eq!(event.provider_event_id, payload["id"].as_str().unwrap());
        assert_eq!(event.event_type, payload["type"].as_str().unwrap());
        // Two fixtures were created after the test clock: capped at arrival, and marked.
        let created = payload["created"].as_i64().unwrap();
        let capped = created > now + 60;
        let version = if capped { now } else { created };
        assert_eq!(event.occurred_at_ms, Some(version * 1000), "{file}");
        assert_eq!(
            event.verification.contains("version capped at arrival"),
            capped,
            "{file}"
        );
        assert_eq!(event.payload, payload);
        assert!(
            event
                .verification
                .starts_with("stripe-signature v1 (secret #1)")
        );
        // The signing helper reproduces the manifest.
        assert_eq!(
            stripe_signature_header("whsec_test_secret", T, &body),
            header
        );
    }
}

#[test]
fn header_variants_pass_or_fail_with_their_own_kind() {
    let source = stripe("whsec_test_secret");
    for (name, expected) in [
        ("rotation_two_v1_any_match_passes", None),
        ("test_mode_with_fake_v0", None),
        ("only_v0_must_fail_no_v1", Some("NoV1Signature")),
        ("no_timestamp_must_fail", Some("MalformedHeader")),
        ("wrong_timestamp_must_fail", Some("NoMatchingSignature")),
    ] {
        let (body, header) = variant(name);
        let result = receive(
            &source,
            &headers(&[("Stripe-Signature", &header)]),
            None,
            &body,
            T,
        );
        match expected {
            None => assert!(result.is_ok(), "{name}: {result:?}"),
            Some(kind) => assert_eq!(refused(result), kind, "{name}"),
        }
    }
}

#[test]
fn the_clock_window_is_300_s_back_and_60_s_ahead() {
    let source = stripe("whsec_test_secret");
    let (body, header) = variant("test_mode_with_fake_v0");
    let h = headers(&[("stripe-signature", &header)]);
    let clock = &manifest()["clock_for_tests"];
    let accept = clock["accept_at_now"].as_i64().unwrap();
    let reject = clock["reject_at_now_(too_old_>300s)"].as_i64().unwrap();
    assert!(receive(&source, &h, None, &body, accept).is_ok());
    assert_eq!(
        refused(receive(&source, &h, None, &body, reject)),
        "TimestampTooOld"
    );
    assert!(receive(&source, &h, None, &body, T - 60).is_ok());
    assert_eq!(
        refused(receive(&source, &h, None, &body, T - 61)),
        "TimestampInFuture"
    );
}

#[test]
fn the_window_is_configurable() {
    let source = source(
        "name = \"s\"\nkind = \"stripe\"\ntolerance_seconds = 10\nfuture_skew_seconds = 0",
        &[("STRIPE_WEBHOOK_SECRET", "whsec_test_secret")],
    );
    let (body, header) = variant("test_mode_with_fake_v0");
    let h = headers(&[("stripe-signature", &header)]);
    assert!(receive(&source, &h, None, &body, T + 10).is_ok());
    assert_eq!(
        refused(receive(&source, &h, None, &body, T + 11)),
        "TimestampTooOld"
    );
    assert_eq!(
        refused(receive(&source, &h, None, &body, T - 1)),
        "TimestampInFuture"
    );
}

#[test]
fn a_stale_timestamp_is_reported_only_for_an_authentic_delivery() {
    let source = stripe("whsec_test_secret");
    let (body, header) = variant("wrong_timestamp_must_fail");
    let h = headers(&[("stripe-signature", &header)]);
    assert_eq!(
        refused(receive(&source, &h, None, &body, T + 10_000)),
        "NoMatchingSignature"
    );
}

#[test]
fn rotation_accepts_any_configured_secret() {
    let (body, header) = variant("test_mode_with_fake_v0");
    let h = headers(&[("stripe-signature", &header)]);
    let rotated = source(
        "name = \"stripe\"\nkind = \"stripe\"",
        &[
            ("STRIPE_WEBHOOK_SECRET", "whsec_new_secret"),
            ("STRIPE_WEBHOOK_SECRET_PREVIOUS", "whsec_test_secret"),
        ],
    );
    let events = receive(&rotated, &h, None, &body, T).unwrap();
    assert_eq!(events[0].verification, "stripe-signature v1 (secret #2)");
    let other = stripe("whsec_new_secret");
    assert_eq!(
        refused(receive(&other, &h, None, &body, T)),
        "NoMatchingSignature"
    );
}

#[test]
fn missing_and_empty_inputs_have_their_own_kinds() {
    let source = stripe("whsec_test_secret");
    let (body, header) = variant("test_mode_with_fake_v0");
    let h = headers(&[("stripe-signature", &header)]);
    assert_eq!(refused(receive(&source, &h, None, b"", T)), "EmptyBody");
    assert_eq!(
        refused(receive(&source, &headers(&[]), None, &body, T)),
        "MissingHeader"
    );
    let blank = headers(&[("stripe-signature", " ")]);
    assert_eq!(
        refused(receive(&source, &blank, None, &body, T)),
        "MissingHeader"
    );
    let bad = headers(&[("stripe-signature", "t=1769817617,v1=zz")]);
    assert_eq!(
        refused(receive(&source, &bad, None, &body, T)),
        "NoMatchingSignature"
    );
}

#[test]
fn a_verified_body_that_is_not_an_event_is_malformed() {
    let source = stripe("whsec_test_secret");
    for (body, kind) in [
        (&b"not json"[..], "MalformedJson"),
        (b"[1]", "MalformedJson"),
        (
            br#"{"type":"customer.created","created":1}"#,
            "MissingField",
        ),
        (br#"{"id":"evt_1","created":1}"#, "MissingField"),
        (
            br#"{"id":"evt_1","type":"t","created":"soon"}"#,
            "MalformedJson",
        ),
    ] {
        let header = stripe_signature_header("whsec_test_secret", T, body);
        let h = headers(&[("stripe-signature", &header)]);
        assert_eq!(refused(receive(&source, &h, None, body, T)), kind);
    }
}

#[test]
fn thin_events_are_refused_after_verification_with_the_documented_message() {
    let source = stripe("whsec_test_secret");
    let body = fixture("stripe/thin_event.v1.billing.meter.error_report_triggered.json");
    let header = stripe_signature_header("whsec_test_secret", T, &body);
    let h = headers(&[("stripe-signature", &header)]);
    let err = receive(&source, &h, None, &body, T).unwrap_err();
    assert_eq!(err.category(), crate::sources::ErrorCategory::Unsupported);
    assert!(err.to_string().starts_with(
        "thin (v2) event notifications are not supported; configure a snapshot destination"
    ));
    assert!(
        err.to_string()
            .contains("v1.billing.meter.error_report_triggered")
    );
    // Unsigned, the same body is refused for its signature first.
    let forged = headers(&[("stripe-signature", "t=1769817617,v1=00")]);
    assert_eq!(
        refused(receive(&source, &forged, None, &body, T)),
        "NoMatchingSignature"
    );
}
