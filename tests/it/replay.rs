//! Replay: stored events through fixed rules, without ever going back in time.

use orgsync::config::Settings;
use orgsync::replay::replay;
use orgsync::rules::RuleSet;
use orgsync::store::{EventFilter, EventStatus, JobState, ReplayFilter};
use scalekit_standin::StandIn;

use crate::helpers::*;

/// The default rules with `from` replaced by `to` in the config text (a rule "fix").
fn rules_with(from: &str, to: &str) -> RuleSet {
    let text = std::fs::read_to_string(config_path()).unwrap();
    assert!(text.contains(from), "the config has {from}");
    let settings = Settings::parse(&text.replace(from, to)).unwrap();
    let names: Vec<&str> = settings.sources.iter().map(|s| s.name.as_str()).collect();
    RuleSet::compile(&settings.rules, &names).unwrap()
}

fn all_stripe() -> ReplayFilter {
    ReplayFilter {
        source: Some("stripe".into()),
        limit: 1000,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_fixed_rule_replayed_rewrites_old_values_but_never_goes_back_in_time() {
    let standin = StandIn::start().await.unwrap();
    standin.create_organization("Acme Corp", Some(ORG), &[]);
    let app = spawn_app_with(TestOptions {
        standin: Some(standin),
        ..Default::default()
    })
    .await;
    app.post_stripe(&fixture("stripe/event.customer.subscription.updated.json"))
        .await;
    app.post_stripe(&fixture(
        "stripe/event.customer.subscription.updated.quantity.json",
    ))
    .await;
    app.drain().await;
    let metadata = || {
        app.standin
            .organization_by_external_id(ORG)
            .unwrap()
            .metadata
    };
    assert_eq!(metadata()["plan_type"], "pro_monthly");
    assert_eq!(metadata()["seats"], "8");

    // The "fix": plan_type from the price id instead of its lookup key.
    let fixed = rules_with(
        "plan_type = [\"$.data.object.items.data[0].price.lookup_key\", \"$.data.object.items.data[0].price.id\"]",
        "plan_type = \"$.data.object.items.data[0].price.id\"",
    );
    let mut seen = 0;
    let dry = replay(&app.store, &fixed, &all_stripe(), true, now_ms(), |_, _| {
        seen += 1
    })
    .await
    .unwrap();
    assert_eq!((dry.events, dry.matched, dry.jobs, seen), (2, 2, 2, 2));
    assert!(
        app.jobs(Some(JobState::Pending)).await.is_empty(),
        "a dry run stores nothing"
    );

    let done = replay(
        &app.store,
        &fixed,
        &all_stripe(),
        false,
        now_ms(),
        |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(done.jobs, 2);
    app.drain().await;
    assert_eq!(
        metadata()["plan_type"],
        "price_1PgafmB7WZ01zgkW6dKueIc5",
        "rewritten by the replay"
    );
    assert_eq!(
        metadata()["seats"],
        "8",
        "the older event's seats=5 never comes back"
    );

    // Replaying only the older event cannot touch what the newer one wrote.
    let older = app
        .store
        .list_events(&EventFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let oldest = older.iter().map(|e| e.id).min().unwrap();
    let back = rules_with(
        "seats = \"$.data.object.items.data[0].quantity\"",
        "seats = { value = \"1\" }",
    );
    let one = ReplayFilter {
        ids: vec![oldest],
        limit: 10,
        ..Default::default()
    };
    replay(&app.store, &back, &one, false, now_ms(), |_, _| {})
        .await
        .unwrap();
    app.drain().await;
    assert_eq!(metadata()["seats"], "8");
    assert!(app.jobs(Some(JobState::Dead)).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn an_ignored_event_becomes_accepted_when_a_rule_for_it_is_added() {
    let standin = StandIn::start().await.unwrap();
    standin.create_organization("Acme Corp", Some(ORG), &[]);
    let app = spawn_app_with(TestOptions {
        standin: Some(standin),
        ..Default::default()
    })
    .await;
    let mut event: serde_json::Value =
        serde_json::from_slice(&fixture("stripe/event.customer.updated.json")).unwrap();
    event["type"] = "customer.tax_id.updated".into();
    app.post_stripe(event.to_string().as_bytes()).await;
    let stored = app
        .store
        .list_events(&EventFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(stored[0].status, EventStatus::Ignored);

    let extended = rules_with(
        "events = [\"customer.created\", \"customer.updated\"]",
        "events = [\"customer.created\", \"customer.updated\", \"customer.tax_id.updated\"]",
    );
    let filter = ReplayFilter {
        status: Some(EventStatus::Ignored),
        limit: 10,
        ..Default::default()
    };
    let report = replay(&app.store, &extended, &filter, false, now_ms(), |_, _| {})
        .await
        .unwrap();
    assert_eq!((report.events, report.matched, report.jobs), (1, 1, 1));
    let stored = app
        .store
        .list_events(&EventFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(stored[0].status, EventStatus::Accepted);
    app.drain().await;
    let org = app.standin.organization_by_external_id(ORG).unwrap();
    assert_eq!(org.metadata["billing_customer_id"], "cus_QXg1o8vcGmoR32");
    app.stop().await;
}
