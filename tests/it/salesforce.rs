//! Salesforce Outbound Messages over real HTTP: parsing, the organization and token checks,
//! one deduplicated event per notification, the SOAP answers, and versions.
//! Builders are in `salesforce/soap.rs`; users created from Contacts in `salesforce/users.rs`.

pub(crate) mod soap;
mod users;

use orgsync::store::EventStatus;
use soap::*;

use crate::helpers::*;

#[tokio::test]
async fn the_account_fixture_becomes_organization_metadata_and_is_acked_after_commit() {
    let app = spawn_app_with_org().await;
    let answer = post_soap(&app, fixture(ACCOUNT_FIXTURE), None).await;
    assert_ack(&answer);
    assert_eq!(
        answer.1.trim(),
        String::from_utf8(fixture("salesforce/ack_response.xml"))
            .unwrap()
            .trim()
    );
    // Both notifications are stored by the time the Ack arrives; Globex has no Org_Id__c.
    let stored = events(&app).await;
    let ids: Vec<&str> = stored
        .iter()
        .map(|e| e.provider_event_id.as_str())
        .collect();
    assert_eq!(ids, vec![id18("04l5g000003AbCd"), id18("04l5g000003AbCe")]);
    let statuses: Vec<&str> = stored.iter().map(|e| e.status.as_str()).collect();
    assert_eq!(statuses, vec!["accepted", "ignored"]);
    assert!(
        stored
            .iter()
            .all(|e| e.event_type == "Account" && e.source == "salesforce")
    );
    assert_eq!(stored[0].occurred_at_ms, Some(MODSTAMP_MS));
    let payload = app
        .store
        .event(stored[1].id)
        .await
        .unwrap()
        .unwrap()
        .payload
        .unwrap();
    assert_eq!(payload["fields"]["Website"], serde_json::Value::Null);
    assert_eq!(payload["fields"]["Name"], "Globex");
    assert_eq!(payload["organization_id"], SF_ORG);

    app.drain().await;
    let org = app.standin.organization_by_external_id(ORG).unwrap();
    let want = [
        ("crm_account_id", ACCOUNT),
        ("crm_account_type", "Customer - Direct"),
        ("managed_by", "dashboard"),
    ];
    assert_eq!(
        org.metadata,
        want.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    );
    assert_eq!(patches(&app.standin), 1);
    app.stop().await;
}

#[tokio::test]
async fn the_captured_contact_fixture_updates_existing_users() {
    let standin = standin_with_org().await;
    let org_id = standin.organization_by_external_id(ORG).unwrap().id;
    let doug = standin.create_user(&org_id, "drb24@cornell.edu", Some("0031I0000081tb0QAA"));
    let jeraldine = standin.create_user(&org_id, "jb@example.com", Some("0031I0000081tbPQAQ"));
    standin.set_user_metadata(&jeraldine, &[("department", "Sales")]);
    // The captured message comes from another organization.
    let env = vec![("SALESFORCE_ORGANIZATION_ID", "012345678901234".to_owned())];
    let app = spawn_app_with(TestOptions {
        standin: Some(standin),
        env,
        ..Default::default()
    })
    .await;
    assert_ack(&post_soap(&app, fixture(CONTACT_FIXTURE), None).await);
    let stored = events(&app).await;
    assert_eq!(stored.len(), 2);
    assert!(
        stored
            .iter()
            .all(|e| e.event_type == "Contact" && e.status == EventStatus::Accepted)
    );
    // No SystemModstamp or LastModifiedDate: the arrival time orders the changes.
    assert!(stored.iter().all(|e| e.occurred_at_ms.is_none()));
    let shown = app.store.event(stored[0].id).await.unwrap().unwrap();
    let payload = shown.payload.unwrap();
    assert!(
        !payload.to_string().contains("AQsAQOjGFnFJzGPA"),
        "the session id stays out: {payload}"
    );
    let raw = shown.raw_body.expect("the delivery's bytes are kept");
    assert!(
        raw.contains("<Notification>") && raw.contains("REDACTED"),
        "{raw}"
    );
    assert!(
        !raw.contains("AQsAQOjGFnFJzGPA"),
        "the session id is redacted from the raw body"
    );

    app.drain().await;
    let user = |id: &str| app.standin.user(id).unwrap().metadata;
    assert_eq!(
        user(&doug).into_iter().collect::<Vec<_>>(),
        vec![("title".into(), "Supreme Being".into())]
    );
    let jb = user(&jeraldine);
    assert_eq!(
        (jb["title"].as_str(), jb["department"].as_str()),
        ("White", "Sales")
    );
    metadata_patches(&app.standin, "/api/v1/users/usr_");
    assert_eq!(patches(&app.standin), 2);
    app.stop().await;
}

#[tokio::test]
async fn a_hundred_notifications_are_a_hundred_events_merged_into_one_write() {
    let app = spawn_app_with_org().await;
    // Newest first in the document: the SystemModstamp, not the order, decides.
    let items: Vec<String> = (0..101)
        .rev()
        .map(|i| {
            account(
                &format!("04l5g00000A{i:04}"),
                &format!("Type {i}"),
                &format!("2026-01-21T09:{:02}:{:02}.000Z", i / 60, i % 60),
            )
        })
        .collect();
    let too_many = post_soap(&app, message(SF_ORG, &items), None).await;
    assert_fault(&too_many, "Client", "TooManyNotifications");
    assert!(events(&app).await.is_empty());

    assert_ack(&post_soap(&app, message(SF_ORG, &items[1..]), None).await);
    let stored = events(&app).await;
    assert_eq!(stored.len(), 100);
    assert!(stored.iter().all(|e| e.status == EventStatus::Accepted));
    assert_eq!(app.jobs(None).await.len(), 100);
    app.drain().await;
    let org = app.standin.organization_by_external_id(ORG).unwrap();
    assert_eq!(org.metadata["crm_account_type"], "Type 99");
    assert_eq!(patches(&app.standin), 1, "one merged write for one target");
    app.stop().await;
}

#[tokio::test]
async fn a_redelivered_message_is_acked_again_but_never_applied_twice() {
    let app = spawn_app_with_org().await;
    let first = post_soap(&app, fixture(ACCOUNT_FIXTURE), None).await;
    assert_ack(&first);
    app.drain().await;
    let calls = app.standin.requests().len();
    let again = post_soap(&app, fixture(ACCOUNT_FIXTURE), None).await;
    assert_eq!(again, first);
    assert!(app.drain().await.is_empty(), "nothing to run");
    assert_eq!(
        app.standin.requests().len(),
        calls,
        "no second lookup or write"
    );
    let stored = events(&app).await;
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|e| e.duplicates == 1));
    assert_eq!(app.jobs(None).await.len(), 1);
    // The same notifications inside another message are duplicates too.
    let one = account("04l5g000003AbCd", "Changed", "2026-01-21T09:12:44.000Z");
    assert_ack(&post_soap(&app, message(SF_ORG, &[one]), None).await);
    assert!(app.drain().await.is_empty());
    assert_eq!(
        app.standin
            .organization_by_external_id(ORG)
            .unwrap()
            .metadata["crm_account_type"],
        "Customer - Direct"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_message_from_another_organization_is_refused_with_a_fault() {
    let app = spawn_app().await;
    assert_fault(
        &post_soap(&app, fixture(CONTACT_FIXTURE), None).await,
        "Client",
        "OrganizationId",
    );
    let other = message(
        "00D5g000004XkQnEAK",
        &[account("04l5g000003AbCd", "T", "2026-01-21T09:12:44.000Z")],
    );
    assert_fault(
        &post_soap(&app, other, None).await,
        "Client",
        "OrganizationMismatch",
    );
    assert!(events(&app).await.is_empty());
    // The 15-character form of the configured id is the same organization.
    let short = message(
        "00D5g000004XkQm",
        &[account("04l5g000003AbCd", "T", "2026-01-21T09:12:44.000Z")],
    );
    assert_ack(&post_soap(&app, short, None).await);
    assert_eq!(events(&app).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn the_url_token_is_required() {
    let token = SF_TOKEN;
    let app = spawn_app().await;
    let body = fixture(ACCOUNT_FIXTURE);
    assert_fault(
        &post_soap(&app, body.clone(), Some("")).await,
        "Client",
        "MissingToken",
    );
    assert_fault(
        &post_soap(&app, body.clone(), Some("token=wrong")).await,
        "Client",
        "WrongToken",
    );
    let prefix = &token[..token.len() - 1];
    assert_fault(
        &post_soap(&app, body.clone(), Some(&format!("token={prefix}"))).await,
        "Client",
        "WrongToken",
    );
    assert!(events(&app).await.is_empty());
    assert_ack(&post_soap(&app, body, Some(&format!("token={token}"))).await);
    assert_eq!(events(&app).await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn malformed_messages_are_refused_with_a_fault_and_nothing_is_stored() {
    let app = spawn_app().await;
    let bomb = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;\">]>\
                <lolz>&lol2;</lolz>";
    let nested = format!("{}{}", "<a>".repeat(200), "</a>".repeat(200));
    let wrong_ns =
        message(SF_ORG, &[]).replace("http://soap.sforce.com/2005/09/outbound", "urn:other");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"this is not xml".to_vec(), "Malformed"),
        (fixture(ACCOUNT_FIXTURE)[..600].to_vec(), "Malformed"),
        (bomb.as_bytes().to_vec(), "Doctype"),
        (nested.into_bytes(), "Malformed"),
        (
            fixture("salesforce/outbound_message.empty.aspnet-webhooks.xml"),
            "Notification",
        ),
        (wrong_ns.into_bytes(), "notifications"),
        (
            message(
                SF_ORG,
                &[notification(
                    "04l5g000003AbCd",
                    "Account",
                    &[("Id", Some("003G000001SUbc4BAD"))],
                )],
            )
            .into_bytes(),
            "Malformed",
        ),
        (Vec::new(), "EmptyBody"),
    ];
    for (body, reason) in cases {
        let answer = post_soap(&app, body, None).await;
        assert_fault(&answer, "Client", reason);
    }
    assert!(events(&app).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_store_failure_answers_a_server_fault_so_salesforce_retries() {
    let app = spawn_app().await;
    app.store.close().await;
    let answer = post_soap(&app, fixture(ACCOUNT_FIXTURE), None).await;
    assert_fault(&answer, "Server", "retry");
    assert_eq!(answer.0, 500);
    app.stop().await;
}

#[tokio::test]
async fn versions_come_from_system_modstamp_then_last_modified_date_then_arrival() {
    let app = spawn_app_with_org().await;
    let with = |id: &str, fields: &[(&str, Option<&str>)]| {
        let mut all = vec![("Id", Some(ACCOUNT)), ("Org_Id__c", Some(ORG))];
        all.extend_from_slice(fields);
        notification(id, "Account", &all)
    };
    let items = [
        with(
            "04l5g00000B0001",
            &[
                ("SystemModstamp", Some("2026-01-21T09:12:44.000Z")),
                ("LastModifiedDate", Some("2026-01-01T00:00:00.000Z")),
            ],
        ),
        with(
            "04l5g00000B0002",
            &[("LastModifiedDate", Some("2026-01-21T09:12:44.000Z"))],
        ),
        with("04l5g00000B0003", &[("Type", Some("no time"))]),
    ];
    assert_ack(&post_soap(&app, message(SF_ORG, &items), None).await);
    let times: Vec<Option<i64>> = events(&app)
        .await
        .iter()
        .map(|e| e.occurred_at_ms)
        .collect();
    assert_eq!(times, vec![Some(MODSTAMP_MS), Some(MODSTAMP_MS), None]);
    app.drain().await;
    assert_eq!(
        app.standin
            .organization_by_external_id(ORG)
            .unwrap()
            .metadata["crm_account_type"],
        "no time"
    );

    // A newer change applied first is not overwritten by an older one delivered later
    // (both a little ahead of the "no time" arrival, within the future skew).
    let newer = account("04l5g00000C0001", "Newer", &rfc3339(now_ms() + 30_000));
    assert_ack(&post_soap(&app, message(SF_ORG, &[newer]), None).await);
    app.drain().await;
    let older = account("04l5g00000C0002", "Older", &rfc3339(now_ms() + 20_000));
    assert_ack(&post_soap(&app, message(SF_ORG, &[older]), None).await);
    app.drain().await;
    assert_eq!(
        app.standin
            .organization_by_external_id(ORG)
            .unwrap()
            .metadata["crm_account_type"],
        "Newer"
    );
    app.stop().await;
}
