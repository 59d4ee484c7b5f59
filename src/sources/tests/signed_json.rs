//! Plain HMAC header mode and Standard Webhooks.

use sha2::{Digest, Sha256};

use super::{headers, receive, refused, source, try_source};
use crate::sources::hmac::hmac_signature;
use crate::sources::{SignatureEncoding, Source, standard_webhooks_signature};

/// An Apex-style body.
const BODY: &[u8] =
    br#"{"event_id":"a01","type":"account.updated","at":"2026-01-21T09:12:44Z","n":7}"#;

/// An HMAC source with extra config lines.
fn hmac(extra: &str) -> Source {
    source(
        &format!(
            "name = \"apex\"\nkind = \"hmac\"\nsecret_env = \"APEX\"\nheader = \"X-Signature\"\n{extra}"
        ),
        &[("APEX", "old-secret"), ("APEX_PREVIOUS", "apex-secret")],
    )
}

#[test]
fn hex_signatures_of_the_raw_body_verify() {
    let source = hmac("id_path = \"$.event_id\"\noccurred_at_path = \"$.at\"");
    let sig = hmac_signature("apex-secret", None, BODY, SignatureEncoding::Hex);
    // Received long after the body's `at`, so its version stands.
    let now = 2_000_000_000;
    let events = receive(&source, &headers(&[("x-signature", &sig)]), None, BODY, now).unwrap();
    let event = &events[0];
    assert_eq!(event.provider_event_id, "a01");
    assert_eq!(event.event_type, "account.updated");
    assert_eq!(event.occurred_at_ms, Some(1_768_986_764_000));
    assert_eq!(event.verification, "hmac-sha256 x-signature (secret #2)");
    let upper = sig.to_uppercase();
    assert!(receive(&source, &headers(&[("X-Signature", &upper)]), None, BODY, 0).is_ok());
    let other = hmac_signature("nope", None, BODY, SignatureEncoding::Hex);
    let h = headers(&[("x-signature", &other)]);
    assert_eq!(
        refused(receive(&source, &h, None, BODY, 0)),
        "NoMatchingSignature"
    );
    assert_eq!(
        refused(receive(&source, &headers(&[]), None, BODY, 0)),
        "MissingHeader"
    );
    let h = headers(&[("x-signature", "xyz")]);
    assert_eq!(
        refused(receive(&source, &h, None, BODY, 0)),
        "MalformedHeader"
    );
}

#[test]
fn base64_signatures_with_a_prefix_verify_and_ids_default_to_the_body_hash() {
    let source = hmac("encoding = \"base64\"\nprefix = \"sha256=\"\ntype_path = \"$.n\"");
    let sig = hmac_signature("apex-secret", None, BODY, SignatureEncoding::Base64);
    let h = headers(&[("x-signature", &format!("sha256={sig}"))]);
    let events = receive(&source, &h, None, BODY, 0).unwrap();
    assert_eq!(
        events[0].provider_event_id,
        hex::encode(Sha256::digest(BODY))
    );
    assert_eq!(events[0].event_type, "7");
    assert_eq!(events[0].occurred_at_ms, None);
    let bare = headers(&[("x-signature", &sig)]);
    assert_eq!(
        refused(receive(&source, &bare, None, BODY, 0)),
        "MalformedHeader"
    );
}

#[test]
fn a_timestamp_header_is_signed_and_checked() {
    let source = hmac("timestamp_header = \"X-Timestamp\"\ntimestamp_unit = \"milliseconds\"");
    let ms = "1769817617123";
    let sig = hmac_signature("apex-secret", Some(ms), BODY, SignatureEncoding::Hex);
    let h = headers(&[("x-signature", &sig), ("x-timestamp", ms)]);
    assert!(receive(&source, &h, None, BODY, 1769817617).is_ok());
    assert!(receive(&source, &h, None, BODY, 1769817617 + 300).is_ok());
    assert_eq!(
        refused(receive(&source, &h, None, BODY, 1769817617 + 301)),
        "TimestampTooOld"
    );
    assert_eq!(
        refused(receive(&source, &h, None, BODY, 1769817617 - 61)),
        "TimestampInFuture"
    );
    // The body alone is not what is signed any more.
    let body_only = hmac_signature("apex-secret", None, BODY, SignatureEncoding::Hex);
    let h = headers(&[("x-signature", &body_only), ("x-timestamp", ms)]);
    assert_eq!(
        refused(receive(&source, &h, None, BODY, 1769817617)),
        "NoMatchingSignature"
    );
    let h = headers(&[("x-signature", &sig)]);
    assert_eq!(
        refused(receive(&source, &h, None, BODY, 1769817617)),
        "MissingHeader"
    );
    let h = headers(&[("x-signature", &sig), ("x-timestamp", "soon")]);
    assert_eq!(
        refused(receive(&source, &h, None, BODY, 1769817617)),
        "MalformedHeader"
    );
}

#[test]
fn hmac_payload_problems_are_reported_after_verification() {
    let source = hmac("id_path = \"$.missing\"");
    let sig = hmac_signature("apex-secret", None, BODY, SignatureEncoding::Hex);
    let h = headers(&[("x-signature", &sig)]);
    assert_eq!(refused(receive(&source, &h, None, BODY, 0)), "MissingField");
    let body = b"[]";
    let sig = hmac_signature("apex-secret", None, body, SignatureEncoding::Hex);
    let h = headers(&[("x-signature", &sig)]);
    assert_eq!(
        refused(receive(&source, &h, None, body, 0)),
        "MalformedJson"
    );
    assert_eq!(refused(receive(&source, &h, None, b"", 0)), "EmptyBody");
}

#[test]
fn hmac_configuration_is_validated() {
    let base = "name = \"a\"\nkind = \"hmac\"\nsecret_env = \"S\"\n";
    let env = [("S", "x")];
    let err = try_source(base, &env).unwrap_err();
    assert!(err.to_string().contains("`header` is required"), "{err}");
    let err = try_source(&format!("{base}header = \"X\"\nid_path = \"$[\""), &env).unwrap_err();
    assert!(err.to_string().contains("not a valid JSONPath"), "{err}");
    let err = try_source(
        &format!("{base}header = \"X\"\ntolerance_seconds = 5"),
        &env,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("needs `timestamp_header`"),
        "{err}"
    );
    let err = try_source(&format!("{base}header = \"bad header\""), &env).unwrap_err();
    assert!(err.to_string().contains("not a valid header name"), "{err}");
}

#[test]
fn the_published_standard_webhooks_vectors_verify() {
    let vectors = [
        (
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            r#"{"email":"test@example.com","username":"test_user"}"#,
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        ),
        (
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ),
    ];
    for (secret, id, ts, body, signature) in vectors {
        let source = source(
            "name = \"sw\"\nkind = \"standard_webhooks\"\nsecret_env = \"SW\"\ntype_path = \"$.*\"",
            &[("SW", secret)],
        );
        assert_eq!(
            standard_webhooks_signature(secret, id, ts, body.as_bytes()).as_deref(),
            Some(signature)
        );
        let t = ts.to_string();
        let h = headers(&[
            ("webhook-id", id),
            ("webhook-timestamp", &t),
            ("webhook-signature", signature),
        ]);
        // The vectors carry no `type`; `$.*` takes the first member's value.
        let events = receive(&source, &h, None, body.as_bytes(), ts).unwrap();
        assert_eq!(events[0].provider_event_id, id);
        assert_eq!(events[0].verification, "standard-webhooks v1 (secret #1)");
        let wrong = signature.replace("v1,", "v1,AA");
        let h = headers(&[
            ("webhook-id", id),
            ("webhook-timestamp", &t),
            ("webhook-signature", &wrong),
        ]);
        assert_eq!(
            refused(receive(&source, &h, None, body.as_bytes(), ts)),
            "NoMatchingSignature"
        );
    }
}

#[test]
fn standard_webhooks_events_carry_the_message_id_and_type() {
    let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let source = source(
        "name = \"scalekit\"\nkind = \"standard_webhooks\"\nsecret_env = \"SW\"",
        &[
            ("SW", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ("SW_PREVIOUS", secret),
        ],
    );
    let body = br#"{"type":"organization.updated","data":{"id":"org_1"}}"#;
    let ts = 1_769_817_617;
    let sig = standard_webhooks_signature(secret, "msg_1", ts, body).unwrap();
    let list = format!("v1a,AAAA v1,{} {sig}", "A".repeat(44));
    let t = ts.to_string();
    let h = headers(&[
        ("webhook-id", "msg_1"),
        ("webhook-timestamp", &t),
        ("webhook-signature", &list),
    ]);
    let events = receive(&source, &h, None, body, ts + 300).unwrap();
    assert_eq!(events[0].provider_event_id, "msg_1");
    assert_eq!(events[0].event_type, "organization.updated");
    assert_eq!(events[0].verification, "standard-webhooks v1 (secret #2)");
    assert_eq!(
        refused(receive(&source, &h, None, body, ts + 301)),
        "TimestampTooOld"
    );
    assert_eq!(
        refused(receive(&source, &h, None, body, ts - 301)),
        "TimestampInFuture"
    );
    let svix = headers(&[
        ("svix-id", "msg_1"),
        ("svix-timestamp", &t),
        ("svix-signature", &sig),
    ]);
    assert!(receive(&source, &svix, None, body, ts).is_ok());
    let no_id = headers(&[("webhook-timestamp", &t), ("webhook-signature", &sig)]);
    assert_eq!(
        refused(receive(&source, &no_id, None, body, ts)),
        "MissingHeader"
    );
    let bad_ts = headers(&[
        ("webhook-id", "msg_1"),
        ("webhook-timestamp", "x"),
        ("webhook-signature", &sig),
    ]);
    assert_eq!(
        refused(receive(&source, &bad_ts, None, body, ts)),
        "MalformedHeader"
    );
    let other_id = headers(&[
        ("webhook-id", "msg_2"),
        ("webhook-timestamp", &t),
        ("webhook-signature", &sig),
    ]);
    assert_eq!(
        refused(receive(&source, &other_id, None, body, ts)),
        "NoMatchingSignature"
    );
}

#[test]
fn an_hmac_secret_with_a_comma_is_one_key() {
    let source = source(
        "name = \"apex\"\nkind = \"hmac\"\nsecret_env = \"APEX\"\nheader = \"X-Signature\"",
        &[("APEX", "first,second")],
    );
    let whole = hmac_signature("first,second", None, BODY, SignatureEncoding::Hex);
    assert!(receive(&source, &headers(&[("x-signature", &whole)]), None, BODY, 0).is_ok());
    for part in ["first", "second"] {
        let sig = hmac_signature(part, None, BODY, SignatureEncoding::Hex);
        let h = headers(&[("x-signature", &sig)]);
        assert_eq!(
            refused(receive(&source, &h, None, BODY, 0)),
            "NoMatchingSignature"
        );
    }
}

#[test]
fn hmac_sources_that_could_be_replayed_after_retention_are_warned_about() {
    let base =
        "name = \"apex\"\nkind = \"hmac\"\nsecret_env = \"APEX\"\nheader = \"X-Signature\"\n";
    let env = [("APEX", "k")];
    let bare = source(base, &env);
    assert_eq!(bare.warnings().len(), 1);
    assert!(
        bare.warnings()[0].contains("timestamp_header"),
        "{:?}",
        bare.warnings()
    );
    for safer in ["timestamp_header = \"X-Ts\"", "occurred_at_path = \"$.at\""] {
        assert!(
            source(&format!("{base}{safer}"), &env)
                .warnings()
                .is_empty()
        );
    }
}

#[test]
fn versions_beyond_the_future_skew_are_capped_for_every_json_kind() {
    let now = 1_768_986_764 - 3_600; // an hour before the body's `at`
    let plain = hmac("occurred_at_path = \"$.at\"");
    let sig = hmac_signature("apex-secret", None, BODY, SignatureEncoding::Hex);
    let events = receive(&plain, &headers(&[("x-signature", &sig)]), None, BODY, now).unwrap();
    assert_eq!(events[0].occurred_at_ms, Some(now * 1000));
    assert!(events[0].verification.contains("version capped at arrival"));
    let skewed = hmac("occurred_at_path = \"$.at\"\nfuture_skew_seconds = 3600");
    let events = receive(&skewed, &headers(&[("x-signature", &sig)]), None, BODY, now).unwrap();
    assert_eq!(events[0].occurred_at_ms, Some(1_768_986_764_000));

    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let standard = source(
        "name = \"w\"\nkind = \"standard_webhooks\"\nsecret_env = \"W\"\noccurred_at_path = \"$.at\"",
        &[("W", secret)],
    );
    let t = now.to_string();
    let sig = standard_webhooks_signature(secret, "msg_1", now, BODY).unwrap();
    let h = headers(&[
        ("webhook-id", "msg_1"),
        ("webhook-timestamp", &t),
        ("webhook-signature", &sig),
    ]);
    let events = receive(&standard, &h, None, BODY, now).unwrap();
    assert_eq!(events[0].occurred_at_ms, Some(now * 1000));
}
