//! The shipped default rules against the Salesforce fixtures, presented as the JSON the
//! Salesforce source builds from each notification.

use serde_json::{Value, json};

use super::{default_rules, event, id, matched, set_pairs, unset_keys};
use crate::model::{InboundEvent, LinkUpdate, Normalized, OnMissing, TargetKind, TargetRef};

/// One notification of an Outbound Message, as the Salesforce source presents it.
fn notification(object_type: &str, notification_id: &str, fields: Value) -> InboundEvent {
    let payload = json!({
        "organization_id": "00D5g000004XkQmEAK",
        "action_id": "04k5g000000XyZ1AAK",
        "notification_id": notification_id,
        "object_type": object_type,
        "fields": fields,
    });
    event("salesforce", object_type, payload)
}

/// The first Account of `outbound_message.account.constructed.xml`.
fn acme() -> InboundEvent {
    notification(
        "Account",
        "04l5g000003AbCdAAK",
        json!({
            "Id": "0015g00000XyZabAAF",
            "BillingCountry": "United States",
            "LastModifiedById": "0055g00000Int9KAAR",
            "LastModifiedDate": "2026-01-21T09:12:44.000Z",
            "Name": "Acme Corp & Sons",
            "Org_Id__c": "org_01HZX5K9M3ABCDEF",
            "Stripe_Customer_Id__c": "cus_QXg1o8vcGmoR32",
            "SystemModstamp": "2026-01-21T09:12:44.000Z",
            "Type": "Customer - Direct",
            "Website": "https://acme.example",
        }),
    )
}

fn org_link(kind: &str, key: &str) -> LinkUpdate {
    LinkUpdate {
        kind: TargetKind::Organization,
        link: kind.into(),
        key: key.into(),
        external_id: id("org_01HZX5K9M3ABCDEF"),
    }
}

#[test]
fn account_with_an_org_id_updates_the_organization_and_learns_links() {
    let (changes, links) = matched(default_rules().normalize(&acme()));
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].rule, "salesforce account → organization");
    assert_eq!(changes[0].target.key(), "org:org_01HZX5K9M3ABCDEF");
    assert_eq!(
        set_pairs(&changes[0]),
        [
            ("crm_account_id", "0015g00000XyZabAAF"),
            ("crm_account_type", "Customer - Direct")
        ]
    );
    assert_eq!(
        links,
        [
            org_link("salesforce_account", "0015g00000XyZabAAF"),
            org_link("stripe_customer", "cus_QXg1o8vcGmoR32")
        ]
    );
}

#[test]
fn account_without_an_org_id_is_ignored() {
    let globex = notification(
        "Account",
        "04l5g000003AbCeAAK",
        json!({
            "Id": "0015g00000Pq8RtAAJ",
            "BillingCountry": null,
            "LastModifiedById": "0055g00000Int9KAAR",
            "LastModifiedDate": "2026-01-21T09:13:02.000Z",
            "Name": "Globex",
            "Org_Id__c": null,
            "Stripe_Customer_Id__c": null,
            "SystemModstamp": "2026-01-21T09:13:02.000Z",
            "Type": "Prospect",
            "Website": null,
        }),
    );
    assert_eq!(default_rules().normalize(&globex), Normalized::Ignored);
}

#[test]
fn cleared_account_fields_remove_keys_and_teach_no_link() {
    let mut account = acme();
    account.payload["fields"]["Type"] = Value::Null;
    account.payload["fields"]["Stripe_Customer_Id__c"] = Value::Null;
    let (changes, links) = matched(default_rules().normalize(&account));
    assert_eq!(unset_keys(&changes[0]), ["crm_account_type"]);
    assert_eq!(
        links,
        [org_link("salesforce_account", "0015g00000XyZabAAF")]
    );
}

#[test]
fn contacts_from_the_real_message_become_users() {
    // The two Contacts of outbound_message.contact.aspnet-webhooks.xml.
    let jeraldine = notification(
        "Contact",
        "04l1I000000fztEQAQ",
        json!({
            "Id": "0031I0000081tbPQAQ",
            "CreatedDate": "2017-12-11T21:49:24.000Z",
            "FirstName": "Jeraldine",
            "LastName": "Black",
            "Title": "White",
        }),
    );
    let doug = notification(
        "Contact",
        "04l1I000000fzt9QAA",
        json!({
            "Id": "0031I0000081tb0QAA",
            "CreatedDate": "2017-12-11T21:44:55.000Z",
            "Email": "drb24@cornell.edu",
            "FirstName": "Doug",
            "LastName": "Bunting",
            "Title": "Supreme Being",
        }),
    );
    let (changes, links) = matched(default_rules().normalize(&jeraldine));
    assert!(links.is_empty());
    let change = &changes[0];
    assert_eq!(change.rule, "salesforce contact → user");
    assert_eq!(
        change.target,
        TargetRef::External {
            kind: TargetKind::User,
            external_id: id("0031I0000081tbPQAQ")
        }
    );
    assert_eq!(set_pairs(change), [("title", "White")]);
    assert!(
        change.unset.is_empty(),
        "Department is not in the message: left alone"
    );
    assert_eq!(change.on_missing, OnMissing::Create);
    let create = change.create.clone().unwrap();
    assert_eq!(
        (create.first_name.as_deref(), create.last_name.as_deref()),
        (Some("Jeraldine"), Some("Black"))
    );
    assert_eq!((create.email, create.organization), (None, None));

    let (changes, _) = matched(default_rules().normalize(&doug));
    assert_eq!(changes[0].target.key(), "user:0031I0000081tb0QAA");
    assert_eq!(set_pairs(&changes[0]), [("title", "Supreme Being")]);
    assert_eq!(
        changes[0].create.clone().unwrap().email.as_deref(),
        Some("drb24@cornell.edu")
    );
}

#[test]
fn contact_with_an_account_names_its_organization_through_the_link() {
    let contact = notification(
        "Contact",
        "04l1",
        json!({
            "Id": "0031I0000081tbPQAQ",
            "AccountId": "0015g00000XyZabAAF",
            "Email": "jane@acme.example",
            "Title": null,
            "Department": "Finance",
        }),
    );
    let (changes, _) = matched(default_rules().normalize(&contact));
    assert_eq!(set_pairs(&changes[0]), [("department", "Finance")]);
    assert_eq!(unset_keys(&changes[0]), ["title"]);
    let org = changes[0].create.clone().unwrap().organization.unwrap();
    assert_eq!(org.key(), "link:org:salesforce_account:0015g00000XyZabAAF");
}

#[test]
fn other_salesforce_objects_are_ignored() {
    let lead = notification("Lead", "04l2", json!({"Id": "00Q5g00000abcdeAAA"}));
    assert_eq!(default_rules().normalize(&lead), Normalized::Ignored);
}
