//! Salesforce Outbound Messages through `Source::accept`: the first byte picks the source
//! (URL token checked, or the check switched off for mTLS) and whether the right token is
//! sent; the rest is the SOAP body. The configured organization is the fixtures' one, so a
//! well-formed message is accepted and reaches the default rules and the `SessionId`
//! redaction of the stored body.

#![no_main]

mod common;

use std::sync::LazyLock;

use common::NOW;
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use orgsync::sources::salesforce::MAX_NOTIFICATIONS;
use orgsync::sources::salesforce::OM_NS;
use orgsync::sources::{Delivery, Source, SourceConfig, parse_unverified, soap};

/// The organization of the constructed fixture.
const ORG: &str = "00D5g000004XkQmEAK";
/// The URL token of the checked source.
const TOKEN: &str = "0123456789abcdef0123456789abcdef";

static CHECKED: LazyLock<Source> = LazyLock::new(|| {
    common::source(
        "name = \"salesforce\"\nkind = \"salesforce\"",
        &[
            ("SALESFORCE_ORGANIZATION_ID", ORG),
            ("SALESFORCE_WEBHOOK_TOKEN", TOKEN),
        ],
    )
});

static UNCHECKED: LazyLock<Source> = LazyLock::new(|| {
    common::source(
        "name = \"salesforce\"\nkind = \"salesforce\"\n\
         insecure_skip_token_check_mtls_at_proxy = true",
        &[("SALESFORCE_ORGANIZATION_ID", ORG)],
    )
});

static CONFIG: LazyLock<SourceConfig> = LazyLock::new(|| {
    toml::from_str("name = \"salesforce\"\nkind = \"salesforce\"").expect("harness config")
});

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let (source, query) = match flags & 3 {
        0 => (&*CHECKED, Some(format!("token={TOKEN}"))),
        1 => (&*CHECKED, Some(format!("a=1&token={TOKEN}x"))),
        2 => (&*CHECKED, None),
        _ => (&*UNCHECKED, None),
    };
    let headers = HeaderMap::new();
    let delivery = Delivery {
        headers: &headers,
        query: query.as_deref(),
        body,
        now_unix: NOW,
    };
    let result = common::deliver(source, &delivery);
    if flags & 3 == 1 || flags & 3 == 2 {
        assert!(result.is_err(), "accepted without the right token");
        return;
    }
    let Ok(accepted) = result else {
        return;
    };
    assert!(accepted.events.len() <= MAX_NOTIFICATIONS);
    for event in &accepted.events {
        assert_eq!(
            event.payload["organization_id"].as_str().map(|o| &o[..15]),
            Some(&ORG[..15])
        );
    }
    // Offline parsing (`orgsync explain`) sees the same notifications.
    let offline = parse_unverified(&CONFIG, body).expect("an accepted body parses offline");
    let ids = |events: &[orgsync::model::InboundEvent]| -> Vec<(String, String)> {
        events
            .iter()
            .map(|e| (e.provider_event_id.clone(), e.event_type.clone()))
            .collect()
    };
    assert_eq!(ids(&offline), ids(&accepted.events));
    let Some(kept) = &accepted.storable_body else {
        return;
    };
    // The kept body holds no session id, and is still the same message.
    let spans = soap::content_spans(kept, OM_NS, "SessionId").expect("the kept body reads");
    for (start, end) in spans {
        let content = &kept[start..end];
        assert!(
            content.is_empty() || content == b"REDACTED",
            "a SessionId survived redaction: {:?}",
            String::from_utf8_lossy(content)
        );
    }
    let again = parse_unverified(&CONFIG, kept).expect("the kept body parses");
    assert_eq!(ids(&again), ids(&accepted.events));
});
