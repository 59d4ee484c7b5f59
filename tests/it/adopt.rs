//! A Contact for a person who signed up first (same e-mail in Scalekit): the user is
//! adopted when it has no external id or the same one, and left alone (dead job naming both
//! ids) when it has another.

use std::time::Duration;

use orgsync::clock::ManualClock;
use orgsync::store::JobState;
use scalekit_standin::{Fault, RecordedRequest, StandIn};

use crate::helpers::*;
use crate::salesforce::soap::*;

const CONTACT: &str = "0035g00000Kt7YpAAJ";
const EMAIL: &str = "Grace.Hopper@acme.example";

/// A Contact of [`ACCOUNT`] with the e-mail the person signed up with, in lower case.
fn contact(notification_id: &str) -> String {
    let fields = [
        ("AccountId", Some(ACCOUNT)),
        ("Department", Some("Research")),
        ("Email", Some("grace.hopper@acme.example")),
        ("FirstName", Some("Grace")),
        ("Id", Some(CONTACT)),
        ("LastName", Some("Hopper")),
        ("SystemModstamp", Some("2026-01-21T10:00:00.000Z")),
        ("Title", Some("Admiral")),
    ];
    notification(notification_id, "Contact", &fields)
}

/// The stand-in with the fixtures' organization, and a user who signed up through another
/// organization (`Home`) with `external_id`. Returns the stand-in, the org id and user id.
async fn signed_up_first(
    external_id: Option<&str>,
    duplicate_status: u16,
) -> (StandIn, String, String) {
    let standin = standin_with_org().await;
    standin.set_duplicate_conflict_status(duplicate_status);
    let org = standin.organization_by_external_id(ORG).unwrap().id;
    let home = standin.create_organization("Home", None, &[]);
    let user = standin.create_user(&home, EMAIL, external_id);
    (standin, org, user)
}

/// The daemon with the Account already applied (its link tells Contacts their org).
async fn app_with_account(standin: StandIn) -> TestApp {
    let app = spawn_app_with(TestOptions {
        standin: Some(standin),
        clock: Some(ManualClock::at_system_now()), // retries come when drain_until moves it
        ..Default::default()
    })
    .await;
    assert_ack(&post_soap(&app, fixture(ACCOUNT_FIXTURE), None).await);
    app.drain().await;
    app
}

fn calls(app: &TestApp, method: &str, path_part: &str) -> Vec<RecordedRequest> {
    app.standin
        .requests()
        .into_iter()
        .filter(|r| r.method == method && r.path.contains(path_part))
        .collect()
}

#[tokio::test]
async fn a_user_without_external_id_is_adopted_and_joins_the_organization() {
    for status in [400, 409] {
        let (standin, org, user) = signed_up_first(None, status).await;
        let app = app_with_account(standin).await;
        assert_ack(&post_soap(&app, message(SF_ORG, &[contact("04l5g00000G0001")]), None).await);
        app.drain_until(Duration::from_secs(30), || {
            app.standin
                .user(&user)
                .is_some_and(|u| u.metadata.contains_key("title"))
        })
        .await;
        let adopted = app.standin.user(&user).unwrap();
        assert_eq!(adopted.external_id.as_deref(), Some(CONTACT), "{status}");
        assert_eq!(adopted.metadata["department"], "Research");
        assert_eq!(adopted.memberships.len(), 2, "{:?}", adopted.memberships);
        let membership = app.standin.membership(&user, &org).unwrap();
        assert_eq!(membership.membership_status, "ACTIVE");
        assert_eq!(membership.roles, vec!["member".to_owned()]);
        assert_eq!(app.standin.users().len(), 1, "no second user");

        let searches = calls(&app, "GET", "/api/v1/users:search");
        assert_eq!(searches.len(), 1);
        let query = searches[0].query.clone().unwrap_or_default();
        assert!(query.contains("page_size=30"), "{query}");
        assert!(
            query.contains("query=grace.hopper%40acme.example"),
            "{query}"
        );
        let joins = calls(&app, "POST", "/api/v1/memberships/organizations/");
        assert_eq!(joins.len(), 1);
        assert_eq!(
            joins[0].path,
            format!("/api/v1/memberships/organizations/{org}/users/{user}")
        );
        assert_eq!(
            joins[0].query.as_deref(),
            Some("send_invitation_email=false")
        );
        let renames: Vec<_> = calls(&app, "PATCH", &user)
            .into_iter()
            .filter_map(|r| r.body)
            .filter(|b| b.get("external_id").is_some())
            .collect();
        assert_eq!(renames, vec![serde_json::json!({"external_id": CONTACT})]);
        assert!(app.jobs(Some(JobState::Dead)).await.is_empty());
        assert!(app.jobs(Some(JobState::Pending)).await.is_empty());
        app.stop().await;
    }
}

#[tokio::test]
async fn a_user_with_the_same_external_id_found_by_email_only_gets_its_membership() {
    // A backend without the users:external lookup (reference §5 U1) answers 404 to both
    // lookups; the search finds the user, who already carries the Contact's id.
    let (standin, org, user) = signed_up_first(Some(CONTACT), 400).await;
    let app = app_with_account(standin).await;
    for fault in [
        Fault::Status(404),
        Fault::Pass,
        Fault::Pass,
        Fault::Status(404),
    ] {
        app.standin.fail_next(1, fault);
    }
    assert_ack(&post_soap(&app, message(SF_ORG, &[contact("04l5g00000G0002")]), None).await);
    app.drain_until(Duration::from_secs(30), || {
        app.standin
            .user(&user)
            .is_some_and(|u| u.metadata.contains_key("title"))
    })
    .await;
    assert_eq!(calls(&app, "GET", "/api/v1/users:search").len(), 1);
    assert!(app.standin.membership(&user, &org).is_some());
    let renames = calls(&app, "PATCH", &user)
        .into_iter()
        .filter(|r| {
            r.body
                .as_ref()
                .is_some_and(|b| b.get("external_id").is_some())
        })
        .count();
    assert_eq!(renames, 0, "the external id is already right");
    assert_eq!(app.standin.users().len(), 1);
    assert!(app.jobs(Some(JobState::Dead)).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_user_with_another_external_id_is_left_alone_and_the_job_names_both_ids() {
    let (standin, org, user) = signed_up_first(Some("crm-legacy-7"), 400).await;
    let app = app_with_account(standin).await;
    assert_ack(&post_soap(&app, message(SF_ORG, &[contact("04l5g00000G0003")]), None).await);
    app.drain().await;
    let dead = app.jobs(Some(JobState::Dead)).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let reason = dead[0].last_error.clone().unwrap_or_default();
    assert!(
        reason.contains("crm-legacy-7") && reason.contains(CONTACT),
        "{reason}"
    );
    let untouched = app.standin.user(&user).unwrap();
    assert_eq!(untouched.external_id.as_deref(), Some("crm-legacy-7"));
    assert!(untouched.metadata.is_empty());
    assert!(app.standin.membership(&user, &org).is_none());
    assert!(calls(&app, "PATCH", "/api/v1/users/").is_empty());
    assert!(calls(&app, "POST", "/api/v1/memberships/").is_empty());
    app.stop().await;
}

#[tokio::test]
async fn an_adoption_cut_short_by_a_failure_completes_on_the_retry() {
    // Lookup, organization lookup, create, lookup and search pass; then the first or the
    // second write of the adoption (membership, external id) gets a 503.
    for passing in [5, 6] {
        let (standin, org, user) = signed_up_first(None, 400).await;
        let app = app_with_account(standin).await;
        app.standin.fail_next(passing, Fault::Pass);
        app.standin.fail_next(1, Fault::Status(503));
        let body = message(SF_ORG, &[contact("04l5g00000G0004")]);
        assert_ack(&post_soap(&app, body, None).await);
        app.drain_until(Duration::from_secs(30), || {
            app.standin
                .user(&user)
                .is_some_and(|u| u.metadata.contains_key("title"))
        })
        .await;
        assert!(app.standin.membership(&user, &org).is_some(), "{passing}");
        let adopted = app.standin.user(&user).unwrap();
        assert_eq!(adopted.external_id.as_deref(), Some(CONTACT));
        let failed = app
            .standin
            .requests()
            .iter()
            .filter(|r| r.status == Some(503))
            .count();
        assert_eq!(failed, 1);
        assert!(app.jobs(Some(JobState::Dead)).await.is_empty());
        app.stop().await;
    }
}
