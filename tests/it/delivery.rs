//! From a signed delivery to Scalekit metadata: the worker against the stand-in.

use std::collections::BTreeMap;
use std::time::Duration;

use orgsync::clock::ManualClock;
use orgsync::store::JobState;
use scalekit_standin::{Fault, StandIn};

use crate::helpers::*;

pub(crate) fn metadata(standin: &StandIn) -> BTreeMap<String, String> {
    standin
        .organization_by_external_id(ORG)
        .expect("the organization exists")
        .metadata
}

pub(crate) fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn subscription(status: &str, seats: &str, period_end: &str) -> Vec<(&'static str, String)> {
    vec![
        ("plan_type", "pro_monthly".into()),
        ("subscription_status", status.into()),
        ("seats", seats.into()),
        ("current_period_end", period_end.into()),
    ]
}

/// What each fixture adds to the organization after `customer.created` linked it.
pub(crate) fn expected(fixture: &str) -> Option<Vec<(&'static str, String)>> {
    Some(match fixture {
        "event.checkout.session.completed.json"
        | "event.customer.created.json"
        | "event.customer.updated.json" => vec![],
        "event.customer.deleted.json" => return None,
        "event.customer.subscription.created.json"
        | "event.customer.subscription.trial_will_end.json" => {
            subscription("trialing", "5", "2026-02-01T00:00:00Z")
        }
        "event.customer.subscription.deleted.json" => {
            subscription("canceled", "8", "2026-02-15T00:00:00Z")
        }
        "event.customer.subscription.paused.json" => {
            subscription("paused", "5", "2026-02-01T00:00:00Z")
        }
        "event.customer.subscription.resumed.json" => {
            subscription("active", "5", "2026-02-17T00:00:00Z")
        }
        "event.customer.subscription.updated.json" => {
            subscription("active", "5", "2026-02-15T00:00:00Z")
        }
        "event.customer.subscription.updated.quantity.json" => {
            subscription("active", "8", "2026-02-15T00:00:00Z")
        }
        "event.entitlements.active_entitlement_summary.updated.json" => {
            vec![("entitlements", "sso,seats_pro".into())]
        }
        "event.invoice.paid.json" => vec![("last_invoice_status", "paid".into())],
        "event.invoice.payment_failed.json" => {
            vec![("last_invoice_status", "payment_failed".into())]
        }
        other => panic!("no expectation for {other}"),
    })
}

#[tokio::test]
async fn every_stripe_fixture_becomes_organization_metadata() {
    for name in stripe_fixtures() {
        let app = spawn_app_with_org().await;
        // customer.created links cus_… to the organization (entitlement events carry only
        // the customer id) and sets billing_customer_id.
        assert_eq!(
            app.post_stripe(&fixture("stripe/event.customer.created.json"))
                .await
                .status(),
            200
        );
        app.drain().await;
        assert_eq!(
            app.post_stripe(&fixture(&format!("stripe/{name}")))
                .await
                .status(),
            200
        );
        app.drain().await;
        let mut want = map(&[("managed_by", "dashboard")]);
        if let Some(pairs) = expected(&name) {
            want.insert("billing_customer_id".into(), "cus_QXg1o8vcGmoR32".into());
            want.extend(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)));
        }
        assert_eq!(metadata(&app.standin), want, "{name}");
        assert!(app.jobs(Some(JobState::Dead)).await.is_empty(), "{name}");
        // Every PATCH sent the complete map, as strings, to the by-id path.
        for body in metadata_patches(&app.standin, "/api/v1/organizations/org_") {
            assert_eq!(body["metadata"]["managed_by"], "dashboard");
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn lookups_use_the_literal_colon_path() {
    let app = spawn_app_with_org().await;
    app.post_stripe(&fixture("stripe/event.customer.created.json"))
        .await;
    app.drain().await;
    let lookups: Vec<String> = app
        .standin
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        lookups,
        vec![format!("/api/v1/organizations:external/{ORG}")]
    );
    app.stop().await;
}

#[tokio::test]
async fn an_older_event_delivered_last_does_not_overwrite_the_newer_state() {
    let app = spawn_app_with_org().await;
    app.post_stripe(&fixture("stripe/event.customer.subscription.updated.json"))
        .await;
    app.drain().await;
    assert_eq!(metadata(&app.standin)["subscription_status"], "active");
    app.post_stripe(&fixture("stripe/event.customer.subscription.created.json"))
        .await;
    app.drain().await;
    let state = metadata(&app.standin);
    assert_eq!(state["subscription_status"], "active");
    assert_eq!(state["current_period_end"], "2026-02-15T00:00:00Z");
    // Both arriving together merge the same way.
    let app2 = spawn_app_with_org().await;
    app2.post_stripe(&fixture("stripe/event.customer.subscription.updated.json"))
        .await;
    app2.post_stripe(&fixture("stripe/event.customer.subscription.created.json"))
        .await;
    app2.drain().await;
    assert_eq!(metadata(&app2.standin)["subscription_status"], "active");
    let patches = app2
        .standin
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(patches, 1, "one merged write for the target");
    app.stop().await;
    app2.stop().await;
}

#[tokio::test]
async fn rate_limits_and_server_errors_delay_but_everything_is_applied() {
    let standin = standin_with_org().await;
    standin.fail_next(
        2,
        Fault::RateLimited {
            retry_after_secs: Some(1),
        },
    );
    let hand = ManualClock::at_system_now();
    let app = spawn_app_with(TestOptions {
        standin: Some(standin),
        clock: Some(hand.clone()),
        ..Default::default()
    })
    .await;
    let start = hand.now_ms();
    app.post_stripe(&fixture("stripe/event.customer.subscription.updated.json"))
        .await;
    app.drain_until(Duration::from_secs(30), || {
        metadata(&app.standin).contains_key("plan_type")
    })
    .await;
    app.standin.fail_next(3, Fault::Status(500));
    app.post_stripe(&fixture(
        "stripe/event.customer.subscription.updated.quantity.json",
    ))
    .await;
    app.drain_until(Duration::from_secs(30), || {
        metadata(&app.standin).get("seats").map(String::as_str) == Some("8")
    })
    .await;
    app.standin.fail_next(1, Fault::RateLimitedPlainText);
    app.post_stripe(&fixture("stripe/event.invoice.paid.json"))
        .await;
    app.drain_until(Duration::from_secs(30), || {
        metadata(&app.standin).contains_key("last_invoice_status")
    })
    .await;
    assert!(app.jobs(Some(JobState::Dead)).await.is_empty());
    assert!(app.jobs(Some(JobState::Pending)).await.is_empty());
    // Two Retry-After waits of a second each, and three backoffs of at least half a second.
    assert!(
        hand.now_ms() - start >= 3_500,
        "it did not wait for the retries"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_validation_error_ends_dead_with_scalekits_message() {
    let standin = standin_with_org().await;
    let app = spawn_app_with(TestOptions {
        standin: Some(standin),
        ..Default::default()
    })
    .await;
    app.post_stripe(&fixture("stripe/event.customer.subscription.updated.json"))
        .await;
    // The lookup succeeds, the PATCH is refused with 400.
    app.standin.fail_next(1, Fault::Pass);
    app.standin.fail_next(1, Fault::Status(400));
    app.drain().await;
    let dead = app.jobs(Some(JobState::Dead)).await;
    assert_eq!(dead.len(), 1);
    let reason = dead[0].last_error.clone().unwrap();
    assert!(reason.contains("400"), "{reason}");
    assert!(app.jobs(Some(JobState::Pending)).await.is_empty());
    assert!(!metadata(&app.standin).contains_key("plan_type"));
    app.stop().await;
}

#[tokio::test]
async fn a_restarted_daemon_drains_the_jobs_left_pending() {
    let standin = standin_with_org().await;
    let first = spawn_app_with(TestOptions {
        scalekit: false,
        standin: Some(standin),
        ..Default::default()
    })
    .await;
    first
        .post_stripe(&fixture("stripe/event.customer.subscription.updated.json"))
        .await;
    let (data_dir, standin) = first.stop().await;
    assert!(standin.requests().is_empty());
    let second = spawn_app_with(TestOptions {
        data_dir: Some(data_dir),
        standin: Some(standin),
        run_workers: true,
        ..Default::default()
    })
    .await;
    second
        .drain_until(Duration::from_secs(30), || {
            metadata(&second.standin).contains_key("subscription_status")
        })
        .await;
    second.stop().await;
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_and_the_change_applied() {
    let app = spawn_app_with_org().await;
    app.post_stripe(&fixture("stripe/event.customer.created.json"))
        .await;
    app.drain().await;
    assert_eq!(app.standin.token_requests(), 1);
    app.standin.expire_tokens();
    app.post_stripe(&fixture("stripe/event.customer.subscription.updated.json"))
        .await;
    app.drain().await;
    assert_eq!(app.standin.token_requests(), 2, "one refresh after the 401");
    assert_eq!(metadata(&app.standin)["subscription_status"], "active");
    app.stop().await;
}

#[tokio::test]
async fn a_scalekit_that_merges_metadata_keeps_removed_keys_but_nothing_fails() {
    let standin = standin_with_org().await;
    standin.set_metadata_merge(true);
    let app = spawn_app_with(TestOptions {
        standin: Some(standin),
        ..Default::default()
    })
    .await;
    app.post_stripe(&fixture("stripe/event.customer.subscription.updated.json"))
        .await;
    app.drain().await;
    app.post_stripe(&fixture("stripe/event.customer.deleted.json"))
        .await;
    app.drain().await;
    // Under merge semantics a removal cannot be expressed: the key stays, orgsync warns,
    // and the job is still done (retrying could never change it).
    assert_eq!(metadata(&app.standin)["plan_type"], "pro_monthly");
    assert!(app.jobs(Some(JobState::Dead)).await.is_empty());
    assert!(app.jobs(Some(JobState::Pending)).await.is_empty());
    app.stop().await;
}
