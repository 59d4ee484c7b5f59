//! Salesforce Outbound Messages: the fixtures, namespaces, nil/absent/empty fields.

use serde_json::json;

use super::{fixture_text, headers, receive, refused, source};
use crate::model::InboundEvent;
use crate::sources::Source;
use crate::sources::verify::rfc3339_ms;

/// The constructed fixture's organization.
pub(super) const ORG: &str = "00D5g000004XkQm";

/// A Salesforce source for `org`, with an optional token.
/// (`None`: the token check switched off).
pub(super) fn salesforce(org: &str, token: Option<&str>) -> Source {
    let mut env = vec![("SALESFORCE_ORGANIZATION_ID", org)];
    match token {
        Some(token) => {
            env.push(("SALESFORCE_WEBHOOK_TOKEN", token));
            source("name = \"sf\"\nkind = \"salesforce\"", &env)
        }
        None => source(
            "name = \"sf\"\nkind = \"salesforce\"\n\
             insecure_skip_token_check_mtls_at_proxy = true",
            &env,
        ),
    }
}

/// The clock the Salesforce tests receive at (2033), after every fixture's time.
pub(super) const NOW: i64 = 2_000_000_000;

/// Receives `body` without a query.
pub(super) fn deliver(
    source: &Source,
    body: &str,
) -> Result<Vec<InboundEvent>, crate::sources::SourceError> {
    receive(
        source,
        &headers(&[("content-type", "text/xml")]),
        None,
        body.as_bytes(),
        NOW,
    )
}

/// One `Notification` with an `Account` sObject carrying `fields` (XML with `sf:` prefixes).
pub(super) fn notification(id: &str, fields: &str) -> String {
    format!(
        "<Notification><Id>{id}</Id><sObject xsi:type=\"sf:Account\" \
         xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\">{fields}</sObject></Notification>"
    )
}

/// An Outbound Message for `org` around `notifications`.
pub(super) fn message(org: &str, notifications: &[String]) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body>\
         <notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\">\
         <OrganizationId>{org}</OrganizationId><ActionId>04k5g000000XyZ1AAK</ActionId>\
         {}</notifications></soapenv:Body></soapenv:Envelope>",
        notifications.concat()
    )
}

#[test]
fn the_constructed_account_fixture_gives_two_events() {
    let body = fixture_text("salesforce/outbound_message.account.constructed.xml");
    let events = deliver(&salesforce(ORG, None), &body).unwrap();
    assert_eq!(events.len(), 2);
    let first = &events[0];
    assert_eq!(first.source, "sf");
    assert_eq!(first.provider_event_id, "04l5g000003AbCdAAK");
    assert_eq!(first.event_type, "Account");
    assert_eq!(first.occurred_at_ms, rfc3339_ms("2026-01-21T09:12:44.000Z"));
    assert_eq!(
        first.verification,
        "salesforce organization id (url token check off at the operator's request)"
    );
    assert_eq!(
        first.payload,
        json!({
            "organization_id": "00D5g000004XkQmEAK",
            "action_id": "04k5g000000XyZ1AAK",
            "notification_id": "04l5g000003AbCdAAK",
            "object_type": "Account",
            "fields": {
                "Id": "0015g00000XyZabAAF",
                "BillingCountry": "United States",
                "LastModifiedById": "0055g00000Int9KAAR",
                "LastModifiedDate": "2026-01-21T09:12:44.000Z",
                "Name": "Acme Corp & Sons",
                "Org_Id__c": "org_01HZX5K9M3ABCDEF",
                "Stripe_Customer_Id__c": "cus_QXg1o8vcGmoR32",
                "SystemModstamp": "2026-01-21T09:12:44.000Z",
                "Type": "Customer - Direct",
                "Website": "https://acme.example"
            }
        })
    );
    let second = &events[1];
    assert_eq!(second.provider_event_id, "04l5g000003AbCeAAK");
    let fields = &second.payload["fields"];
    for nil in [
        "BillingCountry",
        "Org_Id__c",
        "Stripe_Customer_Id__c",
        "Website",
    ] {
        assert_eq!(fields.get(nil), Some(&serde_json::Value::Null), "{nil}");
    }
    assert_eq!(fields["Name"], "Globex");
}

#[test]
fn the_aspnet_contact_fixture_gives_two_contacts_and_drops_the_session_id() {
    let body = fixture_text("salesforce/outbound_message.contact.aspnet-webhooks.xml");
    let events = deliver(&salesforce("012345678901234", None), &body).unwrap();
    let ids: Vec<&str> = events
        .iter()
        .map(|e| e.provider_event_id.as_str())
        .collect();
    assert_eq!(ids, ["04l1I000000fztEQAQ", "04l1I000000fzt9QAA"]);
    assert!(events.iter().all(|e| e.event_type == "Contact"));
    let first = &events[0].payload;
    assert_eq!(first["organization_id"], "012345678901234AAA");
    assert_eq!(first["action_id"], "04k1I000000bmsHQAQ");
    assert_eq!(first["fields"]["Id"], "0031I0000081tbPQAQ");
    assert_eq!(first["fields"]["FirstName"], "Jeraldine");
    assert_eq!(events[1].payload["fields"]["Email"], "drb24@cornell.edu");
    // No SystemModstamp or LastModifiedDate: the arrival time will be used.
    assert_eq!(events[0].occurred_at_ms, None);
    for event in &events {
        let text = event.payload.to_string();
        assert!(!text.contains("AQsAQOjGFnFJ") && !text.contains("SessionId"));
    }
}

/// The account fixture with every prefix renamed and the default namespace made explicit.
fn renamed_prefixes(body: &str) -> String {
    let mut text = body
        .replace("soapenv", "env")
        .replace("xsi", "inst")
        .replace("sf:", "rec:")
        .replace("xmlns:sf", "xmlns:rec")
        .replace(
            "<notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\">",
            "<om:notifications xmlns:om=\"http://soap.sforce.com/2005/09/outbound\">",
        );
    for name in [
        "notifications",
        "OrganizationId",
        "ActionId",
        "SessionId",
        "EnterpriseUrl",
        "PartnerUrl",
        "Notification",
        "Id",
        "sObject",
    ] {
        for (from, to) in [("<", "<om:"), ("</", "</om:")] {
            for end in [">", " ", "/>"] {
                text = text.replace(&format!("{from}{name}{end}"), &format!("{to}{name}{end}"));
            }
        }
    }
    text
}

#[test]
fn prefixes_do_not_matter_only_namespaces_do() {
    let body = fixture_text("salesforce/outbound_message.account.constructed.xml");
    let renamed = renamed_prefixes(&body);
    assert!(renamed.contains("<om:Id>") && renamed.contains("inst:type=\"rec:Account\""));
    assert!(!renamed.contains("sf:") && !renamed.contains("soapenv"));
    let source = salesforce(ORG, None);
    assert_eq!(
        deliver(&source, &renamed).unwrap(),
        deliver(&source, &body).unwrap()
    );
    // The same prefixes bound to other namespaces are not a Salesforce message.
    let wrong = body.replace("http://soap.sforce.com/2005/09/outbound", "urn:other");
    assert_eq!(refused(deliver(&source, &wrong)), "MalformedXml");
}

#[test]
fn the_type_prefix_is_resolved_where_it_is_declared() {
    let item = "<Notification><Id>04l5g000003AbCdAAK</Id>\
        <sObject xmlns:t=\"urn:sobject.enterprise.soap.sforce.com\" xsi:type=\"t:Contact\">\
        <t:Id>0031I0000081tbP</t:Id><x:Id xmlns:x=\"urn:elsewhere\">ignored</x:Id>\
        </sObject></Notification>";
    let events = deliver(&salesforce(ORG, None), &message(ORG, &[item.to_owned()])).unwrap();
    assert_eq!(events[0].event_type, "Contact");
    assert_eq!(
        events[0].payload["fields"],
        json!({"Id": "0031I0000081tbPQAQ"})
    );
    let undeclared = item.replace("xsi:type=\"t:Contact\"", "xsi:type=\"u:Contact\"");
    let result = deliver(&salesforce(ORG, None), &message(ORG, &[undeclared]));
    assert_eq!(refused(result), "MalformedXml");
}

#[test]
fn nil_absent_and_empty_fields_stay_distinct() {
    let fields = "<sf:Id>0015g00000XyZab</sf:Id><sf:Nil xsi:nil=\"true\"/>\
        <sf:Empty></sf:Empty><sf:SelfClosed/><sf:Text>a &lt;b&gt; &#233;&#x4E2D; <![CDATA[<c>]]></sf:Text>\
        <sf:OwnerId>0055g00000int9kaar</sf:OwnerId><sf:NotNil xsi:nil=\"false\">x</sf:NotNil>";
    let body = message(ORG, &[notification("04l5g000003AbCdAAK", fields)]);
    let events = deliver(&salesforce(ORG, None), &body).unwrap();
    assert_eq!(
        events[0].payload["fields"],
        json!({
            "Id": "0015g00000XyZabAAF",
            "Nil": null,
            "Empty": "",
            "SelfClosed": "",
            "Text": "a <b> \u{e9}\u{4e2d} <c>",
            "OwnerId": "0055g00000Int9KAAR",
            "NotNil": "x"
        })
    );
    assert!(events[0].payload["fields"].get("Absent").is_none());
}

#[test]
fn occurred_at_prefers_system_modstamp_then_last_modified_date() {
    let both = "<sf:LastModifiedDate>2026-01-21T09:00:00Z</sf:LastModifiedDate>\
        <sf:SystemModstamp>2026-01-21T10:00:00Z</sf:SystemModstamp>";
    let only_last = "<sf:LastModifiedDate>2026-01-21T09:00:00Z</sf:LastModifiedDate>";
    let body = message(
        ORG,
        &[
            notification("04l5g0000000001", both),
            notification("04l5g0000000002", only_last),
        ],
    );
    let events = deliver(&salesforce(ORG, None), &body).unwrap();
    assert_eq!(events[0].occurred_at_ms, rfc3339_ms("2026-01-21T10:00:00Z"));
    assert_eq!(events[1].occurred_at_ms, rfc3339_ms("2026-01-21T09:00:00Z"));
}

#[test]
fn a_record_id_with_an_impossible_suffix_is_refused() {
    let body = message(
        ORG,
        &[notification(
            "04l5g000003AbCdAAK",
            "<sf:Id>003G000001SUbc4BAD</sf:Id>",
        )],
    );
    assert_eq!(
        refused(deliver(&salesforce(ORG, None), &body)),
        "MalformedXml"
    );
}

#[test]
fn only_id_fields_are_normalised() {
    use crate::sources::salesforce::normalise_id;
    assert_eq!(
        normalise_id("Id", "0031I0000081tbP").unwrap(),
        "0031I0000081tbPQAQ"
    );
    assert_eq!(
        normalise_id("OwnerId", "0031I0000081tbP").unwrap(),
        "0031I0000081tbPQAQ"
    );
    assert_eq!(
        normalise_id("Name", "0031I0000081tbP").unwrap(),
        "0031I0000081tbP"
    );
    assert_eq!(
        normalise_id("OwnerId", "003G000001SUbc4BAD").unwrap(),
        "003G000001SUbc4BAD"
    );
    assert!(normalise_id("Id", "003G000001SUbc4BAD").is_err());
}
