//! The lease heartbeat: a batch slower than its lease keeps its target, on the daemon's
//! clock, while the stand-in holds the answer it waits for.

use std::time::Duration;

use orgsync::clock::ManualClock;
use scalekit_standin::StandIn;
use sqlx::Connection;

use super::support::{BASE, subscription};
use super::{api_calls, field};
use crate::helpers::*;

/// The latest lease expiry of `target_key`'s running jobs, read from the SQLite file.
async fn lease_expiry(db: &mut sqlx::SqliteConnection, target_key: &str) -> Option<i64> {
    sqlx::query_scalar(
        "SELECT MAX(lease_expires_ms) FROM jobs WHERE target_key = ?1 AND state = 'running'",
    )
    .bind(target_key)
    .fetch_one(db)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_batch_slower_than_its_lease_keeps_its_target_through_the_heartbeat() {
    const LEASE_MS: i64 = 5_000;
    let hand = ManualClock::at_system_now();
    let standin = StandIn::start().await.unwrap();
    standin.create_organization("Slow", Some("org_slow"), &[]);
    // The lookup's answer is held while the clock runs through three leases; four workers
    // poll all along.
    standin.hold_answers(true);
    let app = spawn_app_with(TestOptions {
        standin: Some(standin.clone()),
        run_workers: true,
        tune: Some(Box::new(|s| {
            s.worker.lease_seconds = 5;
            s.scalekit.request_timeout_seconds = 300; // the held answer never times out
        })),
        clock: Some(hand.clone()),
        ..Default::default()
    })
    .await;
    let url = format!(
        "sqlite://{}",
        app.data_dir.path().join("orgsync.db").display()
    );
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let body = subscription("evt_slow_1", BASE, "org_slow", "active", 1);
    assert_eq!(app.post_stripe(&body).await.status(), 200);
    wait_for(Duration::from_secs(30), "the first lookup", async || {
        !api_calls(&standin).is_empty()
    })
    .await;
    // A second change for the same target waits for the first batch to end.
    let body = subscription("evt_slow_2", BASE + 1, "org_slow", "active", 2);
    assert_eq!(app.post_stripe(&body).await.status(), 200);
    let claimed = hand.now_ms();
    while hand.now_ms() < claimed + 3 * LEASE_MS {
        // Every renewal due by now was made: the lease reaches past the next step.
        let renewed = hand.now_ms() + LEASE_MS - LEASE_MS / 3;
        wait_for(Duration::from_secs(30), "the lease renewal", async || {
            lease_expiry(&mut db, "org:org_slow")
                .await
                .is_some_and(|until| until >= renewed)
        })
        .await;
        hand.advance(Duration::from_secs(1));
    }
    assert_eq!(
        api_calls(&standin).len(),
        1,
        "another worker took the target"
    );
    standin.hold_answers(false);
    wait_for(Duration::from_secs(30), "the second change", async || {
        field(&standin, "org_slow", "seats").as_deref() == Some("2")
    })
    .await;
    let methods: Vec<String> = api_calls(&standin).into_iter().map(|(m, _)| m).collect();
    assert_eq!(
        methods,
        ["GET", "PATCH", "GET", "PATCH"],
        "one worker at a time per target"
    );
    app.stop().await;
}
