//! Stripe deliveries with a correct `Stripe-Signature`, so every input reaches the event
//! parser and the default rules: the first byte picks the secret (current or previous)
//! and how long ago the delivery was signed; the rest is the body.

#![no_main]

mod common;

use std::sync::LazyLock;

use common::{NOW, STRIPE_PREVIOUS, STRIPE_SECRET};
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use orgsync::sources::{Delivery, Source, stripe_signature_header};

static SOURCE: LazyLock<Source> = LazyLock::new(|| {
    common::source(
        "name = \"stripe\"\nkind = \"stripe\"\nsecret_env = \"S\"",
        &[("S", STRIPE_SECRET), ("S_PREVIOUS", STRIPE_PREVIOUS)],
    )
});

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let secret = if flags & 1 == 0 {
        STRIPE_SECRET
    } else {
        STRIPE_PREVIOUS
    };
    // From 60 s in the future to 575 s ago: both ends of the window and beyond.
    let signed_at = NOW - i64::from(flags >> 1) * 5 + 60;
    let mut headers = HeaderMap::new();
    let value = stripe_signature_header(secret, signed_at, body);
    common::add_header(&mut headers, "stripe-signature", value.as_bytes());
    let delivery = Delivery {
        headers: &headers,
        query: None,
        body,
        now_unix: NOW,
    };
    let result = common::deliver(&SOURCE, &delivery);
    let age = NOW - signed_at;
    if let Err(e) = &result {
        let signature_refused = matches!(
            e.kind(),
            "NoMatchingSignature" | "MissingHeader" | "MalformedHeader" | "NoV1Signature"
        );
        assert!(!signature_refused, "a correct signature was refused: {e}");
        if (-60..=300).contains(&age) {
            assert!(
                !matches!(e.kind(), "TimestampTooOld" | "TimestampInFuture"),
                "a timestamp within the window was refused: {e}"
            );
        }
    }
    if let Ok(accepted) = &result {
        assert!((-60..=300).contains(&age), "accepted outside the window");
        assert_eq!(accepted.storable_body.as_deref(), Some(body));
    }
});
