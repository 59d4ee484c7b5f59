//! Builders and assertions for Salesforce tests: SOAP messages with their own prefixes,
//! the POST, and the Ack / fault checks.

use orgsync::sources::sfid;
use scalekit_standin::StandIn;

use crate::helpers::*;

/// The organization id the tests configure (`SALESFORCE_ORGANIZATION_ID`).
pub const SF_ORG: &str = "00D5g000004XkQmEAK";
/// The Scalekit organization of the constructed Account fixture.
/// The Account of the constructed fixture (18 characters).
pub const ACCOUNT: &str = "0015g00000XyZabAAF";
/// The constructed Account message (two Accounts, one without Org_Id__c).
pub const ACCOUNT_FIXTURE: &str = "salesforce/outbound_message.account.constructed.xml";
/// The captured Contact message (another organization, two Contacts).
pub const CONTACT_FIXTURE: &str = "salesforce/outbound_message.contact.aspnet-webhooks.xml";
/// `2026-01-21T09:12:44.000Z` in unix ms (the fixture's first SystemModstamp).
pub const MODSTAMP_MS: i64 = 1_768_986_764_000;

/// The 18-character form of a Salesforce id.
pub fn id18(id: &str) -> String {
    sfid::to_18(id).expect("a Salesforce id")
}

/// A unix-millisecond time as Salesforce writes it (`2026-01-21T09:12:44.123Z`).
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// XML-escapes a text value.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One `Notification` with prefixes unlike the fixtures'; a `None` value is `xsi:nil`.
pub fn notification(id: &str, object: &str, fields: &[(&str, Option<&str>)]) -> String {
    let fields: String = fields
        .iter()
        .map(|(name, value)| match value {
            Some(v) => format!("<o:{name}>{}</o:{name}>", escape(v)),
            None => format!("<o:{name} i:nil=\"true\"/>"),
        })
        .collect();
    format!(
        "<om:Notification><om:Id>{id}</om:Id><om:sObject i:type=\"o:{object}\" \
         xmlns:o=\"urn:sobject.enterprise.soap.sforce.com\">{fields}</om:sObject></om:Notification>"
    )
}

/// A whole Outbound Message from `organization_id`.
pub fn message(organization_id: &str, notifications: &[String]) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <env:Envelope xmlns:env=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\"><env:Body>\
         <om:notifications xmlns:om=\"http://soap.sforce.com/2005/09/outbound\">\
         <om:OrganizationId>{organization_id}</om:OrganizationId>\
         <om:ActionId>04k5g000000XyZ1AAK</om:ActionId><om:SessionId i:nil=\"true\"/>\
         {}</om:notifications></env:Body></env:Envelope>",
        notifications.concat()
    )
}

/// An Account notification for [`ACCOUNT`] / [`ORG`] with this type and SystemModstamp.
pub fn account(notification_id: &str, account_type: &str, modstamp: &str) -> String {
    let fields = [
        ("Id", Some(ACCOUNT)),
        ("Org_Id__c", Some(ORG)),
        ("SystemModstamp", Some(modstamp)),
        ("Type", Some(account_type)),
    ];
    notification(notification_id, "Account", &fields)
}

/// POSTs a SOAP body to `/webhooks/salesforce?query` (`None`: the configured token);
/// returns the status and the body.
pub async fn post_soap(
    app: &TestApp,
    body: impl Into<Vec<u8>>,
    query: Option<&str>,
) -> (u16, String) {
    let url = match query {
        Some("") => app.url("/webhooks/salesforce"),
        Some(q) => app.url(&format!("/webhooks/salesforce?{q}")),
        None => app.url(&format!("/webhooks/salesforce?token={SF_TOKEN}")),
    };
    let response = app
        .http
        .post(url)
        .header("content-type", "text/xml; charset=utf-8")
        .header("soapaction", "\"\"")
        .body(body.into())
        .send()
        .await
        .expect("the daemon answers");
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/xml"), "{content_type}");
    (status, response.text().await.unwrap())
}

/// Asserts an Ack answer.
pub fn assert_ack((status, body): &(u16, String)) {
    assert_eq!(*status, 200, "{body}");
    assert!(
        body.contains("notificationsResponse") && body.contains("<Ack>true</Ack>"),
        "{body}"
    );
}

/// Asserts a SOAP fault with a non-2xx status and this code. A `Client` fault carries only
/// a generic reason with the request id, never the `reason` (which goes to the log); a
/// `Server` fault's faultstring contains `reason`.
pub fn assert_fault((status, body): &(u16, String), code: &str, reason: &str) {
    assert!(!(200..300).contains(status), "{status}: {body}");
    assert!(
        body.contains("<soapenv:Fault>") && !body.contains("<Ack>"),
        "{body}"
    );
    assert!(
        body.contains(&format!("<faultcode>soapenv:{code}</faultcode>")),
        "{body}"
    );
    let faultstring = body.split("<faultstring>").nth(1).unwrap_or_default();
    if code == "Client" {
        assert!(
            faultstring.starts_with("the message was refused (request id "),
            "{body}"
        );
        assert!(!faultstring.contains(reason), "{reason} leaks: {body}");
    } else {
        assert!(faultstring.contains(reason), "{reason}: {body}");
    }
}

/// How many PATCH calls the stand-in received.
pub fn patches(standin: &StandIn) -> usize {
    standin
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count()
}
