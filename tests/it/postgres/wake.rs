//! A job one replica commits wakes the workers of another at once (LISTEN/NOTIFY), not at
//! their next poll.

use std::time::Duration;

use orgsync::clock::ManualClock;
use orgsync::config::Settings;
use scalekit_standin::StandIn;

use super::on;
use crate::helpers::*;
use crate::semantics::support::{BASE, subscription};

/// How long a change may take to reach Scalekit: generous for a busy machine.
const BOUND: Duration = Duration::from_secs(20);

/// A daemon on `db` with a single worker, on a clock that stands still: its poll never
/// comes, so only a notification can wake it.
async fn replica(db: &TestDb, standin: &StandIn, run_workers: bool) -> TestApp {
    let mut options = on(db, standin, run_workers);
    options.tune = Some(Box::new(|settings: &mut Settings| {
        settings.worker.concurrency = 1;
    }));
    options.clock = Some(ManualClock::at_system_now());
    spawn_app_with(options).await
}

/// Waits until the organization shows `seats`, failing after [`BOUND`].
async fn wait_for_seats(standin: &StandIn, seats: u64) {
    let want = Some(seats.to_string());
    wait_for_ok(BOUND, &format!("seats {seats}"), async || {
        let shown = standin
            .organization_by_external_id(ORG)
            .and_then(|o| o.metadata.get("seats").cloned());
        if shown == want {
            Ok(())
        } else {
            Err(format!("shown: {shown:?}"))
        }
    })
    .await;
}

#[tokio::test]
async fn a_job_stored_by_one_replica_wakes_the_workers_of_another_at_once() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let standin = standin_with_org().await;
    // The receiving replica runs no workers; only the other one can apply anything.
    let receiver = replica(&db, &standin, false).await;
    let applier = replica(&db, &standin, true).await;
    // A first event through the applying replica itself: afterwards its worker has looked,
    // found nothing more, and waits for a wake-up or its poll.
    let body = subscription("evt_wake_1", BASE + 1, ORG, "active", 1);
    assert_eq!(applier.post_stripe(&body).await.status(), 200);
    wait_for_seats(&standin, 1).await;
    for seats in 2..=4 {
        let created = BASE + i64::try_from(seats).unwrap_or(0);
        let body = subscription(&format!("evt_wake_{seats}"), created, ORG, "active", seats);
        assert_eq!(receiver.post_stripe(&body).await.status(), 200);
        wait_for_seats(&standin, seats).await;
    }
    applier.stop().await;
    receiver.stop().await;
}
