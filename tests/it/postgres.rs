//! The daemon on PostgreSQL (skipped, with a note, when `ORGSYNC_TEST_DATABASE_URL` is not
//! set): the Stripe fixtures end as the expected metadata, concurrent redeliveries are
//! stored once, and two replicas sharing one database apply a stream of events without
//! ever working on the same organization at the same time, and a job one replica stores
//! wakes the other's workers at once.

mod tls;
mod wake;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use orgsync::store::{EventFilter, JobState};
use scalekit_standin::StandIn;

use crate::delivery::{expected, map, metadata};
use crate::helpers::*;
use crate::semantics::support::{BASE, subscription};

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
    assert_eq!(
        metadata(&standin).get("managed_by").map(String::as_str),
        Some("dashboard")
    );
    assert!(standin.organization_by_external_id(ORG).is_some());
    first.stop().await;
    second.stop().await;
}

/// Organizations and events of the two-replica stream.
const ORGS: usize = 10;
const EVENTS: usize = 200;
const STATUSES: [&str; 4] = ["trialing", "active", "past_due", "canceled"];

fn replica_org(n: usize) -> String {
    format!("org_replica_{n}")
}

#[tokio::test]
async fn two_replicas_share_the_queue_without_overlapping_on_an_organization() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let standin = StandIn::start().await.unwrap();
    for n in 0..ORGS {
        let org = replica_org(n);
        standin.create_organization(&org, Some(&org), &[("managed_by", "dashboard")]);
    }
    let replicas = [
        spawn_app_with(on(&db, &standin, true)).await,
        spawn_app_with(on(&db, &standin, true)).await,
    ];
    // Per organization: (created, seats, status) of its newest event.
    let mut newest: HashMap<String, (i64, u64, &str)> = HashMap::new();
    let mut posts = Vec::new();
    for i in 0..EVENTS {
        let org = replica_org(i % ORGS);
        // Mostly newer than the organization's previous event; every 7th is older (even and
        // odd offsets: no two events of one organization share a `created`).
        let step = i64::try_from(i).unwrap() * 2;
        let created = if i % 7 == 6 {
            BASE + step - 61
        } else {
            BASE + step
        };
        let (seats, status) = (i as u64 + 1, STATUSES[i % 4]);
        let body = subscription(&format!("evt_replica_{i}"), created, &org, status, seats);
        // Alternately to each replica (not always the same one per organization).
        let addr = replicas[(i + i / ORGS) % 2].addr.to_string();
        let http = replicas[0].http.clone();
        posts.push(tokio::spawn(async move {
            post_signed(&http, &addr, &body).await
        }));
        // In bursts, so many jobs of one organization wait at once.
        if posts.len() == 20 {
            for post in posts.drain(..) {
                assert_eq!(post.await.unwrap().unwrap(), 200);
            }
        }
        let entry = newest.entry(org).or_insert((created, seats, status));
        if created > entry.0 {
            *entry = (created, seats, status);
        }
    }
    for post in posts {
        assert_eq!(post.await.unwrap().unwrap(), 200);
    }
    let want: BTreeMap<String, (String, String)> = newest
        .iter()
        .map(|(org, (_, seats, status))| (org.clone(), (seats.to_string(), status.to_string())))
        .collect();
    let observed = || -> BTreeMap<String, (String, String)> {
        (0..ORGS)
            .map(replica_org)
            .filter_map(|org| {
                let metadata = standin.organization_by_external_id(&org)?.metadata;
                let field = |k: &str| metadata.get(k).cloned().unwrap_or_default();
                Some((org, (field("seats"), field("subscription_status"))))
            })
            .collect()
    };
    wait_for_ok(Duration::from_secs(60), "every event applied", async || {
        let counts = replicas[0].store.job_counts().await.unwrap();
        assert!(counts[&JobState::Dead] == 0, "dead jobs: {counts:?}");
        let all_done = counts.iter().all(|(s, n)| *s == JobState::Done || *n == 0);
        if all_done && counts.get(&JobState::Done) == Some(&(EVENTS as i64)) && observed() == want {
            return Ok(());
        }
        Err(format!("{counts:?}\n{:#?}\nvs {want:#?}", observed()))
    })
    .await;
    check_no_overlap(&standin);
    for replica in replicas {
        replica.stop().await;
    }
}

/// Per organization, in the order the stand-in received them: each batch is a lookup
/// followed by at most one PATCH, so a PATCH that does not directly follow a lookup of its
/// organization means two batches of it overlapped (both writing).
fn check_no_overlap(standin: &StandIn) {
    let external_of: HashMap<String, String> = standin
        .organizations()
        .into_iter()
        .filter_map(|o| Some((o.id, o.external_id?)))
        .collect();
    let mut last: HashMap<String, &str> = HashMap::new();
    let mut patches = 0;
    for request in standin.requests() {
        let path = request.path.as_str();
        let (org, kind) = if let Some(ext) = path.strip_prefix("/api/v1/organizations:external/") {
            (ext.to_owned(), "lookup")
        } else if let Some(id) = path.strip_prefix("/api/v1/organizations/") {
            (external_of[id].clone(), "write")
        } else {
            continue;
        };
        let kind = match (request.method.as_str(), kind) {
            ("GET", "lookup") => "lookup",
            ("PATCH", "write") => "write",
            other => panic!("unexpected request {other:?} {path}"),
        };
        if kind == "write" {
            patches += 1;
            assert_eq!(
                last.get(&org).copied(),
                Some("lookup"),
                "two write sequences for {org} overlapped"
            );
        }
        last.insert(org, kind);
    }
    assert!(patches >= ORGS, "only {patches} PATCHes");
}
