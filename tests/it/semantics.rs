//! Delivery semantics in one process: coalescing, staleness with tie-breaking,
//! `on_missing = "retry"` up to the maximum age, and the client-side rate limit, on the
//! daemon's manual clock; the lease heartbeat and scheduled pruning in `lease` and `prune`.

mod lease;
mod prune;
pub(crate) mod support;

use std::time::Duration;

use orgsync::clock::ManualClock;
use orgsync::store::JobState;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use scalekit_standin::StandIn;

use crate::helpers::*;
use support::{BASE, ingest_at, subscription};

/// `(method, path)` of every `/api` call the stand-in saw for `org`'s lookups and writes.
pub(crate) fn api_calls(standin: &StandIn) -> Vec<(String, String)> {
    standin
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/"))
        .map(|r| (r.method, r.path))
        .collect()
}

pub(crate) fn field(standin: &StandIn, org: &str, key: &str) -> Option<String> {
    standin
        .organization_by_external_id(org)?
        .metadata
        .get(key)
        .cloned()
}

#[tokio::test]
async fn a_burst_of_twenty_events_costs_one_read_and_one_write() {
    let standin = StandIn::start().await.unwrap();
    standin.create_organization("Burst", Some("org_burst"), &[("managed_by", "dashboard")]);
    let app = spawn_app_with(TestOptions {
        standin: Some(standin),
        ..Default::default()
    })
    .await;
    let mut order: Vec<u64> = (1..=20).collect();
    order.shuffle(&mut StdRng::seed_from_u64(4));
    for i in &order {
        let status = if i % 2 == 0 { "active" } else { "past_due" };
        let body = subscription(
            &format!("evt_burst_{i}"),
            BASE + *i as i64,
            "org_burst",
            status,
            *i,
        );
        assert_eq!(app.post_stripe(&body).await.status(), 200);
    }
    let reports = app.drain().await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!((reports[0].done, reports[0].wrote), (20, true));
    let calls = api_calls(&app.standin);
    let methods: Vec<&str> = calls.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(methods, ["GET", "PATCH"], "{calls:?}");
    assert_eq!(
        field(&app.standin, "org_burst", "seats").as_deref(),
        Some("20")
    );
    assert_eq!(
        field(&app.standin, "org_burst", "subscription_status").as_deref(),
        Some("active")
    );
    assert_eq!(
        field(&app.standin, "org_burst", "managed_by").as_deref(),
        Some("dashboard")
    );

    // Twenty newer events that say what Scalekit already has: one read, no write.
    for i in 1..=20 {
        let body = subscription(
            &format!("evt_same_{i}"),
            BASE + 100 + i,
            "org_burst",
            "active",
            20,
        );
        assert_eq!(app.post_stripe(&body).await.status(), 200);
    }
    let reports = app.drain().await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!((reports[0].done, reports[0].wrote), (20, false));
    let methods: Vec<String> = api_calls(&app.standin)
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    assert_eq!(methods, ["GET", "PATCH", "GET"]);
    app.stop().await;
}

#[tokio::test]
async fn duplicates_and_reorderings_converge_to_the_newest_value() {
    let standin = StandIn::start().await.unwrap();
    for org in ["org_stale", "org_tie_ab", "org_tie_ba"] {
        standin.create_organization(org, Some(org), &[]);
    }
    let app = spawn_app_with(TestOptions {
        standin: Some(standin),
        ..Default::default()
    })
    .await;
    let seats = |org| field(&app.standin, org, "seats");
    let ev = |n: u64, created: i64, org: &str| {
        subscription(&format!("evt_{org}_{n}"), created, org, "active", n)
    };

    // The newest arrives first; older ones and a duplicate of it come later, in two passes.
    assert_eq!(
        app.post_stripe(&ev(3, BASE + 3, "org_stale"))
            .await
            .status(),
        200
    );
    app.drain().await;
    for n in [1, 3, 2] {
        assert_eq!(
            app.post_stripe(&ev(n, BASE + n as i64, "org_stale"))
                .await
                .status(),
            200
        );
    }
    app.drain().await;
    assert_eq!(seats("org_stale").as_deref(), Some("3"));
    // Equal `created`: the later arrival wins, in a later pass…
    app.post_stripe(&ev(10, BASE + 10, "org_stale")).await;
    app.drain().await;
    app.post_stripe(&ev(11, BASE + 10, "org_stale")).await;
    app.drain().await;
    assert_eq!(seats("org_stale").as_deref(), Some("11"));
    // …and a redelivery of the earlier one is acknowledged and changes nothing.
    assert_eq!(
        app.post_stripe(&ev(10, BASE + 10, "org_stale"))
            .await
            .status(),
        200
    );
    assert!(app.drain().await.is_empty(), "a duplicate makes no job");
    assert_eq!(seats("org_stale").as_deref(), Some("11"));
    let patches = app
        .standin
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(
        patches, 3,
        "one write per newer value, none for stale or duplicate events"
    );

    // Equal `created` in one batch: arrival order decides, whichever way round.
    app.post_stripe(&ev(21, BASE + 20, "org_tie_ab")).await;
    app.post_stripe(&ev(22, BASE + 20, "org_tie_ab")).await;
    app.post_stripe(&ev(22, BASE + 20, "org_tie_ba")).await;
    app.post_stripe(&ev(21, BASE + 20, "org_tie_ba")).await;
    app.drain().await;
    assert_eq!(seats("org_tie_ab").as_deref(), Some("22"));
    assert_eq!(seats("org_tie_ba").as_deref(), Some("21"));
    assert!(app.jobs(Some(JobState::Dead)).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn retry_waits_for_an_organization_created_later() {
    let hand = ManualClock::at_system_now();
    let app = spawn_app_with(TestOptions {
        clock: Some(hand.clone()),
        ..Default::default()
    })
    .await;
    let body = subscription("evt_late_1", BASE, "org_late", "active", 7);
    assert_eq!(app.post_stripe(&body).await.status(), 200);
    let reports = app.drain().await;
    assert_eq!(reports[0].retried, 1, "{reports:?}");
    let pending = app.jobs(Some(JobState::Pending)).await;
    let reason = pending[0].last_error.clone().unwrap_or_default();
    assert!(
        reason.contains("no organization with external id org_late"),
        "{reason}"
    );
    let lookups = |s: &StandIn| {
        s.requests()
            .iter()
            .filter(|r| r.path.ends_with(":external/org_late"))
            .count()
    };
    // Nothing is due until the backoff (at most a second in the tests) has passed…
    assert!(app.drain().await.is_empty(), "retried before its time");
    // …then it looks again, once per backoff.
    for looked in 2..=3 {
        hand.advance(Duration::from_secs(1));
        let reports = app.drain().await;
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!(lookups(&app.standin), looked);
    }
    // Once the organization appears, the next attempt applies the change.
    app.standin
        .create_organization("Late Inc", Some("org_late"), &[]);
    assert!(app.drain().await.is_empty(), "retried before its time");
    hand.advance(Duration::from_secs(1));
    app.drain().await;
    assert_eq!(
        field(&app.standin, "org_late", "seats").as_deref(),
        Some("7")
    );
    let done = app.jobs(Some(JobState::Done)).await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].attempts, 3, "{:?}", done[0]);
    app.stop().await;
}

#[tokio::test]
async fn retry_ends_dead_at_the_maximum_age_with_the_reason() {
    let hand = ManualClock::at_system_now();
    let app = spawn_app_with(TestOptions {
        clock: Some(hand.clone()),
        ..Default::default()
    })
    .await;
    // A job queued 72 h minus 1.5 s ago: its retry window ends 1.5 s from now.
    let max_age_ms = 72 * 3600 * 1000;
    let deadline = hand.now_ms() + 1500;
    ingest_at(
        &app.store,
        &subscription("evt_never_1", BASE, "org_never", "active", 3),
        deadline - max_age_ms,
    )
    .await;
    let dead = loop {
        app.drain().await;
        let dead = app.jobs(Some(JobState::Dead)).await;
        if !dead.is_empty() {
            break dead;
        }
        assert!(hand.now_ms() < deadline + 1000, "the job never died");
        hand.advance(Duration::from_millis(500));
    };
    assert!(hand.now_ms() >= deadline, "it died before the deadline");
    let reason = dead[0].last_error.clone().unwrap_or_default();
    assert!(reason.contains("maximum age of 72 h"), "{reason}");
    assert!(
        reason.contains("no organization with external id org_never exists"),
        "{reason}"
    );
    let lookups = app
        .standin
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/org_never"))
        .count();
    assert!(lookups >= 2, "{lookups} lookups");
    app.stop().await;
}

#[tokio::test]
async fn the_client_side_rate_limit_holds() {
    const RATE: usize = 8;
    let hand = ManualClock::at_system_now();
    let standin = StandIn::start().await.unwrap();
    let orgs: Vec<String> = (0..10).map(|i| format!("org_rate_{i}")).collect();
    for org in &orgs {
        standin.create_organization(org, Some(org), &[]);
    }
    let app = spawn_app_with(TestOptions {
        standin: Some(standin.clone()),
        run_workers: true,
        tune: Some(Box::new(|s| s.scalekit.requests_per_second = RATE as u32)),
        clock: Some(hand.clone()),
        ..Default::default()
    })
    .await;
    for (i, org) in orgs.iter().enumerate() {
        let body = subscription(&format!("evt_rate_{i}"), BASE, org, "active", 4);
        assert_eq!(app.post_stripe(&body).await.status(), 200);
    }
    let applied = || {
        orgs.iter()
            .all(|org| field(&standin, org, "seats").is_some())
    };
    // The clock moves one request interval at a time, once the request the last step
    // allowed has arrived; each request is stamped with the clock's reading.
    let step = Duration::from_secs(1) / RATE as u32;
    let mut starts: Vec<i64> = Vec::new();
    loop {
        let seen = starts.len();
        wait_for(Duration::from_secs(30), "the next request", async || {
            standin.requests().len() > seen || applied()
        })
        .await;
        let now = standin.requests().len();
        starts.extend(std::iter::repeat_n(hand.now_ms(), now - seen));
        if applied() {
            break;
        }
        hand.advance(step);
    }
    // Token + 10 lookups + 10 writes; any RATE + 1 consecutive starts span a second.
    assert_eq!(starts.len(), 21);
    let tightest = starts
        .windows(RATE + 1)
        .map(|w| w[RATE] - w[0])
        .min()
        .unwrap();
    assert!(
        tightest >= 1000,
        "{} requests within {tightest} ms of the clock",
        RATE + 1
    );
    assert!(
        starts[20] - starts[0] >= 2500,
        "21 requests at {RATE}/s within {} ms of the clock",
        starts[20] - starts[0]
    );
    app.stop().await;
}
