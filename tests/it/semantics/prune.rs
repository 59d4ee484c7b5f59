//! Pruning runs on the daemon's clock: once the clock has passed the retention, the next
//! scheduled prune deletes what was finished before it.

use std::time::{Duration, Instant};

use orgsync::clock::ManualClock;
use orgsync::store::JobState;

use crate::helpers::*;

#[tokio::test]
async fn the_scheduled_prune_deletes_finished_work_once_the_clock_passes_the_retention() {
    let hand = ManualClock::at_system_now();
    let app = spawn_app_with(TestOptions {
        standin: Some(standin_with_org().await),
        clock: Some(hand.clone()),
        tune: Some(Box::new(|s| {
            s.database.retention_days = 1;
            s.database.prune_interval_minutes = 60;
        })),
        ..Default::default()
    })
    .await;
    let body = fixture("stripe/event.customer.subscription.updated.json");
    assert_eq!(app.post_stripe(&body).await.status(), 200);
    app.drain().await;
    assert_eq!(app.jobs(Some(JobState::Done)).await.len(), 1);
    // A day and an hour later (the prune's sleep ends), the job is past the retention.
    hand.advance(Duration::from_secs(25 * 3600));
    let limit = Instant::now() + Duration::from_secs(30);
    let mut polls = 0;
    while !app.jobs(None).await.is_empty() {
        assert!(Instant::now() < limit, "the done job was never pruned");
        polls += 1;
        if polls % 50 == 0 {
            // The prune loop reads the clock when its sleep starts: if its startup prune
            // was still running when the clock moved (a loaded machine), its sleep began
            // after the move. Another interval ends that sleep too.
            hand.advance(Duration::from_secs(3600));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.stop().await;
}
