//! Salesforce checks and limits: organization, token, DOCTYPE, size, the answers.

use super::salesforce::{ORG, deliver, message, notification, salesforce};
use super::{fixture_text, headers, receive, refused, try_source};
use crate::sources::soap::{self, SOAP_ENV};
use crate::sources::{AckSummary, ErrorCategory, ReplyFormat, SourceConfigError};

/// The constructed fixture.
fn account_fixture() -> String {
    fixture_text("salesforce/outbound_message.account.constructed.xml")
}

#[test]
fn the_empty_aspnet_message_is_refused() {
    let body = fixture_text("salesforce/outbound_message.empty.aspnet-webhooks.xml");
    let err = deliver(&salesforce(ORG, None), &body).unwrap_err();
    assert_eq!(err.kind(), "IncompleteMessage");
    assert!(
        err.to_string()
            .contains("OrganizationId, ActionId, Notification"),
        "{err}"
    );
    assert_eq!(refused(deliver(&salesforce(ORG, None), "")), "EmptyBody");
}

#[test]
fn the_organization_is_compared_on_its_first_15_characters() {
    let body = account_fixture();
    assert!(deliver(&salesforce("00D5g000004XkQmEAK", None), &body).is_ok());
    // An 18-character id whose case was lost is repaired from its suffix.
    assert!(deliver(&salesforce("00d5g000004xkqmeak", None), &body).is_ok());
    let err = deliver(&salesforce("00D5g000004XkQn", None), &body).unwrap_err();
    assert_eq!(err.kind(), "OrganizationMismatch");
    assert_eq!(err.category(), ErrorCategory::Unauthenticated);
    let lower = deliver(&salesforce("00D5g000004xkQm", None), &body);
    assert_eq!(refused(lower), "OrganizationMismatch");
    let short = body.replace(
        "00D5g000004XkQmEAK</OrganizationId>",
        "00D5g</OrganizationId>",
    );
    assert_eq!(
        refused(deliver(&salesforce(ORG, None), &short)),
        "OrganizationMismatch"
    );
}

#[test]
fn the_organization_checked_is_the_one_the_events_carry() {
    // Found by the fuzz target `salesforce_receive`: the first 15 characters matched, but
    // the suffix `UAK` made the event's 18-character id another organization (`00D5G…`).
    let body = account_fixture();
    let other_case = body.replace("00D5g000004XkQmEAK<", "00D5g000004XkQmUAK<");
    assert_eq!(
        refused(deliver(&salesforce(ORG, None), &other_case)),
        "OrganizationMismatch"
    );
    // A received id whose case was lost is repaired from its suffix, as a configured one is.
    let lost_case = body.replace("00D5g000004XkQmEAK<", "00d5g000004xkqmeak<");
    let events = deliver(&salesforce(ORG, None), &lost_case).unwrap();
    assert_eq!(events[0].payload["organization_id"], "00D5g000004XkQmEAK");
}

#[test]
fn a_configured_token_is_required_in_the_query() {
    let token = "Zm9vYmFyYmF6cXV4cXV1eA-0123456789abcdef";
    let source = salesforce(ORG, Some(token));
    let body = account_fixture();
    let h = headers(&[]);
    let send =
        |query: Option<&str>| receive(&source, &h, query, body.as_bytes(), super::salesforce::NOW);
    let events = send(Some(&format!("token={token}"))).unwrap();
    assert_eq!(
        events[0].verification,
        "salesforce organization id + url token"
    );
    assert!(send(Some(&format!("x=1&token={token}"))).is_ok());
    assert_eq!(refused(send(None)), "MissingToken");
    assert_eq!(refused(send(Some("x=1"))), "MissingToken");
    assert_eq!(refused(send(Some("token=wrong"))), "WrongToken");
    assert_eq!(
        refused(send(Some(&format!("token={token}x")))),
        "WrongToken"
    );
    // The token is checked before the body is even parsed.
    assert_eq!(
        refused(receive(&source, &h, Some("token=no"), b"<x", 0)),
        "WrongToken"
    );
}

#[test]
fn signing_adds_the_token_and_offline_parsing_skips_the_checks() {
    let token = "t/k n-0123456789abcdef0123456789";
    let source = salesforce(ORG, Some(token));
    let body = account_fixture();
    let signed = source.sign(body.as_bytes(), 0);
    assert_eq!(
        signed.query.as_deref(),
        Some("token=t%2Fk%20n-0123456789abcdef0123456789")
    );
    let h = headers(&[("content-type", &signed.headers[0].1)]);
    assert!(receive(&source, &h, signed.query.as_deref(), body.as_bytes(), 0).is_ok());
    let config: crate::sources::SourceConfig =
        toml::from_str("name = \"sf\"\nkind = \"salesforce\"").unwrap();
    let events = crate::sources::parse_unverified(&config, body.as_bytes()).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].verification, "unverified");
}

#[test]
fn configuration_errors_are_clear() {
    let config = "name = \"sf\"\nkind = \"salesforce\"";
    let err = try_source(config, &[]).unwrap_err();
    assert!(
        err.to_string()
            .contains("SALESFORCE_ORGANIZATION_ID is not set"),
        "{err}"
    );
    let err = try_source(config, &[("SALESFORCE_ORGANIZATION_ID", "acme")]).unwrap_err();
    assert!(
        err.to_string()
            .contains("is not a Salesforce organization id"),
        "{err}"
    );
    let env = [
        ("SALESFORCE_ORGANIZATION_ID", ORG),
        ("SALESFORCE_WEBHOOK_TOKEN", " "),
    ];
    let err = try_source(config, &env).unwrap_err();
    assert!(matches!(err, SourceConfigError::MissingEnv { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("SALESFORCE_WEBHOOK_TOKEN is not set"),
        "{err}"
    );
    let custom =
        "name = \"sf\"\nkind = \"salesforce\"\norganization_id_env = \"ORG\"\ntoken_env = \"TOK\"";
    let err = try_source(custom, &[("ORG", ORG), ("TOK", "t0k3n")]).unwrap_err();
    assert!(matches!(err, SourceConfigError::InvalidEnv { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("TOK is shorter than 32 characters"),
        "{err}"
    );
    assert!(!err.to_string().contains("t0k3n"), "{err}");
    let long = "t0k3n-0123456789abcdef0123456789";
    let source = try_source(custom, &[("ORG", ORG), ("TOK", long)]).unwrap();
    let body = account_fixture();
    assert_eq!(
        refused(receive(&source, &headers(&[]), None, body.as_bytes(), 0)),
        "MissingToken"
    );
}

#[test]
fn doctypes_and_undeclared_entities_are_refused() {
    let body = account_fixture();
    let laughs = body.replacen(
        "<soapenv:Envelope",
        "<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;\">]>\n<soapenv:Envelope",
        1,
    );
    let laughs = laughs.replace("Acme Corp &amp; Sons", "&lol2;");
    assert_eq!(
        refused(deliver(&salesforce(ORG, None), &laughs)),
        "DoctypeNotAllowed"
    );
    let undeclared = body.replace("Acme Corp &amp; Sons", "&lol;");
    assert_eq!(
        refused(deliver(&salesforce(ORG, None), &undeclared)),
        "MalformedXml"
    );
}

#[test]
fn malformed_documents_are_refused() {
    let source = salesforce(ORG, None);
    let body = account_fixture();
    for broken in [
        body.replace("</soapenv:Body>", ""),
        body.replace("<sf:Name>", "<sf:Name a=>"),
        format!("{body}<extra/>"),
        "just text".to_owned(),
        body.replace("xsi:type=\"sf:Account\"", ""),
        body.replace("<Id>04l5g000003AbCdAAK</Id>", ""),
    ] {
        assert_eq!(
            refused(deliver(&source, &broken)),
            "MalformedXml",
            "{broken}"
        );
    }
    let latin1 = [&b"<a>"[..], &[0xE9], b"</a>"].concat();
    let result = receive(&source, &headers(&[]), None, &latin1, 0);
    assert_eq!(refused(result), "MalformedXml");
}

#[test]
fn depth_and_size_are_bounded() {
    let deep = format!("{}{}", "<a>".repeat(40), "</a>".repeat(40));
    assert_eq!(
        soap::parse(deep.as_bytes()).unwrap_err().kind(),
        "MalformedXml"
    );
    let big = format!("<a>{}</a>", "x".repeat(soap::MAX_BYTES));
    assert_eq!(
        soap::parse(big.as_bytes()).unwrap_err().kind(),
        "BodyTooLarge"
    );
}

#[test]
fn one_hundred_notifications_pass_and_one_hundred_and_one_do_not() {
    let items: Vec<String> = (0..101)
        .map(|i| {
            let id = format!("04l5g00000{i:05}");
            notification(&id, &format!("<sf:Id>0015g00000{i:05}</sf:Id>"))
        })
        .collect();
    let source = salesforce(ORG, None);
    let events = deliver(&source, &message(ORG, &items[..100])).unwrap();
    assert_eq!(events.len(), 100);
    assert_eq!(events[99].provider_event_id, "04l5g0000000099AAA");
    let err = deliver(&source, &message(ORG, &items)).unwrap_err();
    assert_eq!(err.kind(), "TooManyNotifications");
}

#[test]
fn the_acknowledgement_is_the_documented_document() {
    let source = salesforce(ORG, None);
    assert_eq!(source.reply_format(), ReplyFormat::Soap);
    let ack = source.acknowledgement(&AckSummary {
        accepted: 2,
        duplicates: 0,
    });
    assert_eq!(ack.content_type, "text/xml; charset=utf-8");
    let expected = fixture_text("salesforce/ack_response.xml");
    assert_eq!(ack.body.trim_end(), expected.trim_end());
}

#[test]
fn faults_follow_the_documented_shape_and_escape_the_message() {
    let source = salesforce(ORG, None);
    let message = "The OrganizationId value did not match the expected value.";
    let expected = fixture_text("salesforce/fault_response.xml");
    assert_eq!(
        source.rejection(message).body.trim_end(),
        expected.trim_end()
    );
    let fault = source.failure("a < b & \"c\"\u{1}");
    let root = soap::parse(fault.body.as_bytes()).unwrap();
    let fault = root
        .child(SOAP_ENV, "Body")
        .and_then(|b| b.child(SOAP_ENV, "Fault"))
        .unwrap();
    assert_eq!(fault.child("", "faultcode").unwrap().text, "soapenv:Server");
    assert_eq!(
        fault.child("", "faultstring").unwrap().text,
        "a < b & \"c\"\u{FFFD}"
    );
}

#[test]
fn the_stored_body_has_the_session_id_redacted() {
    let source = salesforce("012345678901234", None);
    let body = fixture_text("salesforce/outbound_message.contact.aspnet-webhooks.xml");
    let stored = source.storable_body(body.as_bytes()).unwrap();
    let stored = std::str::from_utf8(&stored).unwrap();
    let start = body.find("<SessionId>").unwrap() + "<SessionId>".len();
    let end = body.find("</SessionId>").unwrap();
    assert_eq!(
        stored,
        format!("{}REDACTED{}", &body[..start], &body[end..])
    );
    // Still the same message.
    assert_eq!(
        deliver(&source, stored).unwrap(),
        deliver(&source, &body).unwrap()
    );
    let nil = account_fixture();
    assert!(matches!(
        salesforce(ORG, None).storable_body(nil.as_bytes()),
        Some(std::borrow::Cow::Borrowed(_))
    ));
}

#[test]
fn the_token_is_required_and_checked_before_any_xml_is_read() {
    let config = "name = \"sf\"\nkind = \"salesforce\"";
    let err = try_source(config, &[("SALESFORCE_ORGANIZATION_ID", ORG)]).unwrap_err();
    assert!(matches!(err, SourceConfigError::MissingEnv { .. }), "{err}");
    assert!(err.to_string().contains("at least 32 characters"), "{err}");
    let token = "a-token-of-at-least-32-characters-0123";
    let source = salesforce(ORG, Some(token));
    assert!(source.warnings().is_empty());
    let flood: String = (0..10_000).map(|i| format!(" a{i}=\"\"")).collect();
    let hostile = format!("<x{flood}/>");
    let h = headers(&[]);
    for query in [None, Some("token=wrong")] {
        let kind = refused(receive(&source, &h, query, hostile.as_bytes(), 0));
        assert!(kind == "MissingToken" || kind == "WrongToken", "{kind}");
    }
    let query = format!("token={token}");
    let kind = refused(receive(&source, &h, Some(&query), hostile.as_bytes(), 0));
    assert_eq!(kind, "TooManyAttributes");
    let open = salesforce(ORG, None);
    assert!(
        open.warnings()[0].contains("token check is OFF"),
        "{:?}",
        open.warnings()
    );
}

#[test]
fn attributes_and_namespace_declarations_are_capped_per_element() {
    let at_cap: String = (0..soap::MAX_ATTRIBUTES)
        .map(|i| format!(" xmlns:n{i}=\"u\""))
        .collect();
    assert!(soap::parse(format!("<x{at_cap}/>").as_bytes()).is_ok());
    let over = format!("<x{at_cap} a=\"1\"/>");
    let err = soap::parse(over.as_bytes()).unwrap_err();
    assert_eq!(err.kind(), "TooManyAttributes");
    assert!(soap::content_spans(over.as_bytes(), "u", "x").is_err());
    // Siblings may each declare 30 (Salesforce declares a prefix on every sObject), but at
    // most 64 are in scope at once.
    let thirty = |level: usize| -> String {
        (0..30)
            .map(|i| format!(" xmlns:n{level}_{i}=\"u\""))
            .collect()
    };
    let siblings = format!(
        "<a{}><b{}/><c{}/><d{}/></a>",
        thirty(0),
        thirty(1),
        thirty(2),
        thirty(3)
    );
    assert!(soap::parse(siblings.as_bytes()).is_ok());
    let nested = format!("<a{}><b{}><c{}/></b></a>", thirty(0), thirty(1), thirty(2));
    let err = soap::parse(nested.as_bytes()).unwrap_err();
    assert_eq!(err.kind(), "TooManyNamespaces");
}

#[test]
fn redaction_fails_closed() {
    use crate::sources::salesforce::redact_session_id;
    let unclosed = "<a xmlns=\"http://soap.sforce.com/2005/09/outbound\"><SessionId>secret";
    assert!(redact_session_id(unclosed.as_bytes()).is_none());
    let source = salesforce(ORG, None);
    assert!(source.storable_body(b"<unclosed").is_none());
    let body = account_fixture();
    let accepted = source
        .accept(&crate::sources::Delivery {
            headers: &headers(&[]),
            query: None,
            body: body.as_bytes(),
            now_unix: super::salesforce::NOW,
        })
        .unwrap();
    assert!(accepted.storable_body.is_some());
    assert!(
        !accepted.events[0]
            .verification
            .contains("raw body not kept")
    );
}
