//! Contacts → Scalekit users: created on missing in the organization their Account links
//! to (no invitation e-mail), and a duplicate on create reconciled by reading again.

use std::time::Duration;

use orgsync::clock::ManualClock;
use orgsync::store::JobState;
use scalekit_standin::Fault;

use super::soap::*;
use crate::helpers::*;

/// A Contact as the default rule wants it (every field it reads selected).
const CONTACT: &str = "0035g00000Kt7YpAAJ";
const EMAIL: &str = "ada@acme.example";

fn contact(notification_id: &str, account_id: &str) -> String {
    let fields = [
        ("AccountId", Some(account_id)),
        ("Department", Some("Engineering")),
        ("Email", Some(EMAIL)),
        ("FirstName", Some("Ada")),
        ("Id", Some(CONTACT)),
        ("LastName", Some("Lovelace")),
        ("SystemModstamp", Some("2026-01-21T10:00:00.000Z")),
        ("Title", Some("CTO")),
    ];
    notification(notification_id, "Contact", &fields)
}

/// The account fixture: it teaches `salesforce_account 0015g00000XyZabAAF → ORG`.
fn account_fixture() -> Vec<u8> {
    fixture(ACCOUNT_FIXTURE)
}

#[tokio::test]
async fn a_contact_becomes_a_user_in_its_accounts_organization_without_an_invitation() {
    let standin = standin_with_org().await;
    standin.create_organization("Someone else", Some("org_other"), &[]);
    let app = spawn_app_with(TestOptions {
        standin: Some(standin),
        clock: Some(ManualClock::at_system_now()),
        ..Default::default()
    })
    .await;
    // The Contact arrives before the Account (15-character AccountId): its organization is
    // not known yet, so the creation waits instead of failing.
    let account15 = &ACCOUNT[..15];
    assert_ack(
        &post_soap(
            &app,
            message(SF_ORG, &[contact("04l5g00000D0001", account15)]),
            None,
        )
        .await,
    );
    app.drain().await;
    assert!(app.standin.user_by_external_id(CONTACT).is_none());
    assert!(app.jobs(Some(JobState::Dead)).await.is_empty());

    assert_ack(&post_soap(&app, account_fixture(), None).await);
    app.drain_until(Duration::from_secs(30), || {
        app.standin.user_by_external_id(CONTACT).is_some()
    })
    .await;
    let org = app.standin.organization_by_external_id(ORG).unwrap();
    let user = app.standin.user_by_external_id(CONTACT).unwrap();
    assert_eq!(user.email, EMAIL);
    assert_eq!(
        (user.first_name.as_deref(), user.last_name.as_deref()),
        (Some("Ada"), Some("Lovelace"))
    );
    assert_eq!(user.memberships, vec![org.id.clone()]);
    assert_eq!(user.send_invitation_email, Some(false));
    assert_eq!(
        app.standin
            .membership(&user.id, &org.id)
            .unwrap()
            .membership_status,
        "ACTIVE"
    );
    let metadata: Vec<(String, String)> = user.metadata.into_iter().collect();
    assert_eq!(
        metadata,
        vec![
            ("department".into(), "Engineering".into()),
            ("title".into(), "CTO".into())
        ]
    );
    let creates: Vec<_> = app
        .standin
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/users"))
        .collect();
    assert_eq!(creates.len(), 1);
    assert_eq!(
        creates[0].path,
        format!("/api/v1/organizations/{}/users", org.id)
    );
    assert_eq!(
        creates[0].query.as_deref(),
        Some("send_invitation_email=false")
    );
    no_dead_or_pending(&app).await;

    // A later change of the same Contact updates the user (no second creation).
    let mut changed = contact("04l5g00000D0002", ACCOUNT).replace("CTO", "CEO");
    changed = changed.replace("2026-01-21T10:00:00", "2026-01-21T11:00:00");
    assert_ack(&post_soap(&app, message(SF_ORG, &[changed]), None).await);
    app.drain().await;
    assert_eq!(
        app.standin.user_by_external_id(CONTACT).unwrap().metadata["title"],
        "CEO"
    );
    assert_eq!(app.standin.users().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_duplicate_on_create_is_resolved_by_reading_again() {
    for status in [400, 409] {
        let standin = standin_with_org().await;
        standin.set_duplicate_conflict_status(status);
        let org_id = standin.organization_by_external_id(ORG).unwrap().id;
        // The user exists, but the first lookup misses it (created meanwhile elsewhere).
        let existing = standin.create_user(&org_id, EMAIL, Some(CONTACT));
        let app = spawn_app_with(TestOptions {
            standin: Some(standin),
            clock: Some(ManualClock::at_system_now()),
            ..Default::default()
        })
        .await;
        assert_ack(&post_soap(&app, account_fixture(), None).await);
        app.drain().await;
        app.standin.fail_next(1, Fault::Status(404));
        assert_ack(
            &post_soap(
                &app,
                message(SF_ORG, &[contact("04l5g00000E0001", ACCOUNT)]),
                None,
            )
            .await,
        );
        app.drain_until(Duration::from_secs(30), || {
            app.standin
                .user(&existing)
                .is_some_and(|u| u.metadata.contains_key("title"))
        })
        .await;
        let refused: Vec<_> = app
            .standin
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/users"))
            .collect();
        assert_eq!(refused.len(), 1, "{status}");
        assert_eq!(refused[0].status, Some(status));
        assert_eq!(app.standin.users().len(), 1, "{status}");
        assert_eq!(
            app.standin.user(&existing).unwrap().metadata["department"],
            "Engineering"
        );
        no_dead_or_pending(&app).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn an_email_taken_by_another_user_ends_dead_with_scalekits_reason() {
    let standin = standin_with_org().await;
    let org_id = standin.organization_by_external_id(ORG).unwrap().id;
    standin.create_user(&org_id, EMAIL, Some("someone-else"));
    let app = spawn_app_with(TestOptions {
        standin: Some(standin),
        clock: Some(ManualClock::at_system_now()),
        ..Default::default()
    })
    .await;
    assert_ack(&post_soap(&app, account_fixture(), None).await);
    assert_ack(
        &post_soap(
            &app,
            message(SF_ORG, &[contact("04l5g00000F0001", ACCOUNT)]),
            None,
        )
        .await,
    );
    app.drain().await;
    let dead = app.jobs(Some(JobState::Dead)).await;
    assert_eq!(dead.len(), 1);
    let reason = dead[0].last_error.clone().unwrap_or_default();
    assert!(
        reason.contains(EMAIL) || reason.contains("already exists"),
        "{reason}"
    );
    // It read again before giving up.
    let lookups = app
        .standin
        .requests()
        .iter()
        .filter(|r| r.path == format!("/api/v1/users:external/{CONTACT}"))
        .count();
    assert_eq!(lookups, 2);
    app.stop().await;
}
