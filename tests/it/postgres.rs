//! The daemon on PostgreSQL (skipped, with a note, when `ORGSYNC_TEST_DATABASE_URL` is not
//! set): the Stripe fixtures end as the expected metadata, concurrent redeliveries are
//! stored once, and two replicas sharing one database apply a stream of events without
//! ever working on the same organization at the same time.

mod db;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use orgsync::store::{EventFilter, JobState};
use scalekit_standin::StandIn;

use crate::delivery::{ORG, expected, map, metadata, standin_with_org};
use crate::helpers::*;
use crate::semantics::support::{BASE, post_signed, subscription};
use db::TestDb;

/// Options for a daemon on `db`.
fn on(db: &TestDb, standin: &StandIn, run_workers: bool) -> TestOptions {
    TestOptions {
        standin: Some(standin.clone()),
        run_workers,
        env: vec![("ORGSYNC_DATABASE_URL", db.url().to_owned())],
        ..Default::default()
    }
}

#[tokio::test]
async fn every_stripe_fixture_becomes_organization_metadata_on_postgres() {
    for name in stripe_fixtures() {
        let Some(db) = TestDb::create().await else {
            return;
        };
        let app = spawn_app_with(on(&db, &standin_with_org().await, false)).await;
        for body in [
            fixture("stripe/event.customer.created.json"),
            fixture(&format!("stripe/{name}")),
        ] {
            assert_eq!(app.post_stripe(&body).await.status(), 200, "{name}");
            app.drain().await;
        }
        let mut want = map(&[("managed_by", "dashboard")]);
        if let Some(pairs) = expected(&name) {
            want.insert("billing_customer_id".into(), "cus_QXg1o8vcGmoR32".into());
            want.extend(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)));
        }
        assert_eq!(metadata(&app.standin), want, "{name}");
        assert!(app.jobs(Some(JobState::Dead)).await.is_empty(), "{name}");
        app.stop().await;
    }
}

#[tokio::test]
async fn concurrent_redeliveries_to_two_replicas_are_stored_once() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let standin = standin_with_org().await;
    let first = spawn_app_with(on(&db, &standin, false)).await;
    let second = spawn_app_with(on(&db, &standin, false)).await;
    let body = fixture("stripe/event.customer.subscription.updated.json");
    let posts: Vec<_> = (0..24)
        .map(|i| {
            let addr = if i % 2 == 0 { first.addr } else { second.addr }.to_string();
            let (http, body) = (first.http.clone(), body.clone());
            tokio::spawn(async move { post_signed(&http, &addr, &body).await })
        })
        .collect();
    for post in posts {
        assert_eq!(post.await.unwrap().unwrap(), 200);
    }
    let events = first
        .store
        .list_events(&EventFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "one event row");
    assert_eq!(events[0].duplicates, 23);
    assert_eq!(first.jobs(None).await.len(), 1, "one job");
    first.drain().await;
    assert_eq!(metadata(&standin)["seats"], "5");
    assert_eq!(metadata(&standin).get("managed_by").map(String::as_str), Some("dashboard"));
    assert!(standin.organization_by_external_id(ORG).is_some());
    first.stop().await;
    second.stop().await;
}
