//! Organizations through the `crm` HMAC source: created on missing (a duplicate on create
//! reconciled by reading again) and renamed by a rule, including a rename an earlier pass
//! made without recording it.

use std::time::Duration;

use scalekit_standin::{Fault, StandIn};
use serde_json::json;

use super::*;

#[tokio::test]
async fn a_missing_organization_is_created_with_the_rules_display_name() {
    let app = spawn(StandIn::start().await.unwrap()).await;
    let body = crm_event(
        "evt_new",
        1_768_986_764,
        json!({ "org_id": "org_new_1", "name": "Initech", "tier": "trial" }),
    );
    assert_accepted(&post_crm(&app, &body).await, 1, 0);
    app.drain().await;
    let org = app
        .standin
        .organization_by_external_id("org_new_1")
        .expect("created");
    assert_eq!(org.display_name, "Initech");
    assert_eq!(
        org.metadata.get("crm_account_type").map(String::as_str),
        Some("trial")
    );
    assert_eq!(app.standin.organizations().len(), 1);
    // The next change finds it.
    let later = crm_event(
        "evt_new2",
        1_768_986_800,
        json!({ "org_id": "org_new_1", "name": "Initech", "tier": "pro" }),
    );
    assert_accepted(&post_crm(&app, &later).await, 1, 0);
    app.drain().await;
    assert_eq!(org_metadata(&app, "org_new_1")["crm_account_type"], "pro");
    assert_eq!(app.standin.organizations().len(), 1);
    no_dead_or_pending(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_duplicate_organization_on_create_is_resolved_by_reading_again() {
    for status in [400, 409] {
        let standin = StandIn::start().await.unwrap();
        standin.set_duplicate_conflict_status(status);
        standin.create_organization(
            "Already there",
            Some("org_dup"),
            &[("managed_by", "dashboard")],
        );
        // The lookup misses it (created meanwhile by someone else).
        standin.fail_next(1, Fault::Status(404));
        let app = spawn(standin).await;
        let body = crm_event(
            "evt_dup",
            1_768_986_764,
            json!({ "org_id": "org_dup", "name": "Dup", "tier": "gold" }),
        );
        assert_accepted(&post_crm(&app, &body).await, 1, 0);
        app.drain_until(Duration::from_secs(30), || {
            app.standin
                .organization_by_external_id("org_dup")
                .is_some_and(|o| o.metadata.contains_key("crm_account_type"))
        })
        .await;
        let creates: Vec<_> = app
            .standin
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == "/api/v1/organizations")
            .collect();
        assert_eq!(creates.len(), 1, "{status}");
        assert_eq!(creates[0].status, Some(status));
        assert_eq!(app.standin.organizations().len(), 1);
        let org = app.standin.organization_by_external_id("org_dup").unwrap();
        assert_eq!(
            (
                org.display_name.as_str(),
                org.metadata["managed_by"].as_str()
            ),
            ("Already there", "dashboard")
        );
        no_dead_or_pending(&app).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn a_rule_changes_an_organizations_external_id() {
    let standin = StandIn::start().await.unwrap();
    let id = standin.create_organization("Acme", Some("org_old"), &[("managed_by", "dashboard")]);
    let app = spawn(standin).await;
    let merge = crm_event(
        "evt_m",
        1_768_986_764,
        json!({ "org_id": "org_old", "new_org_id": "org_merged", "tier": "silver" }),
    );
    assert_accepted(&post_crm(&app, &merge).await, 1, 0);
    app.drain().await;
    let org = app.standin.organization(&id).unwrap();
    assert_eq!(org.external_id.as_deref(), Some("org_merged"));
    assert_eq!(org.metadata["crm_account_type"], "silver");
    assert_eq!(org.metadata["managed_by"], "dashboard");
    assert!(app.standin.organization_by_external_id("org_old").is_none());
    // Changes for the new id apply to the same organization; an older one does not win.
    let newer = crm_event(
        "evt_n",
        1_768_986_900,
        json!({ "org_id": "org_merged", "tier": "platinum" }),
    );
    let older = crm_event(
        "evt_o",
        1_768_986_000,
        json!({ "org_id": "org_merged", "tier": "stale" }),
    );
    assert_accepted(&post_crm(&app, &newer).await, 1, 0);
    app.drain().await;
    assert_accepted(&post_crm(&app, &older).await, 1, 0);
    app.drain().await;
    assert_eq!(
        app.standin.organization(&id).unwrap().metadata["crm_account_type"],
        "platinum"
    );
    assert_eq!(app.standin.organizations().len(), 1);
    no_dead_or_pending(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_rename_that_already_happened_is_not_created_again() {
    // The state after the renaming PATCH succeeded but its answer was lost (or after a
    // replay of the merge event): only the new id exists.
    let standin = StandIn::start().await.unwrap();
    let id =
        standin.create_organization("Acme", Some("org_merged"), &[("managed_by", "dashboard")]);
    let app = spawn(standin).await;
    let merge = crm_event(
        "evt_m",
        1_768_986_764,
        json!({ "org_id": "org_old", "new_org_id": "org_merged", "name": "Acme", "tier": "silver" }),
    );
    assert_accepted(&post_crm(&app, &merge).await, 1, 0);
    app.drain().await;
    assert_eq!(
        app.standin.organizations().len(),
        1,
        "{:?}",
        app.standin.organizations()
    );
    assert_eq!(
        app.standin.organization(&id).unwrap().metadata["crm_account_type"],
        "silver"
    );
    // The rename was recorded: the new id carries the field's version, so an older change
    // addressed to it does not win.
    let stale = crm_event(
        "evt_s",
        1_768_986_000,
        json!({ "org_id": "org_merged", "tier": "stale" }),
    );
    assert_accepted(&post_crm(&app, &stale).await, 1, 0);
    app.drain().await;
    assert_eq!(
        app.standin.organization(&id).unwrap().metadata["crm_account_type"],
        "silver"
    );
    no_dead_or_pending(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn an_organization_created_by_a_renaming_rule_gets_the_new_id() {
    let app = spawn(StandIn::start().await.unwrap()).await;
    let first = crm_event(
        "evt_f1",
        1_768_986_764,
        json!({ "org_id": "org_fresh", "new_org_id": "org_final", "name": "Fresh", "tier": "trial" }),
    );
    assert_accepted(&post_crm(&app, &first).await, 1, 0);
    app.drain().await;
    let org = app
        .standin
        .organization_by_external_id("org_final")
        .expect("created under the new id");
    assert_eq!(org.metadata["crm_account_type"], "trial");
    let later = crm_event(
        "evt_f2",
        1_768_986_800,
        json!({ "org_id": "org_final", "name": "Fresh", "tier": "pro" }),
    );
    assert_accepted(&post_crm(&app, &later).await, 1, 0);
    app.drain().await;
    assert_eq!(
        app.standin.organizations().len(),
        1,
        "{:?}",
        app.standin.organizations()
    );
    assert_eq!(org_metadata(&app, "org_final")["crm_account_type"], "pro");
    no_dead_or_pending(&app).await;
    app.stop().await;
}
