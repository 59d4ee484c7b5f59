//! Ingest, claim, finish and the operator's views.

use super::*;

store_test!(a_redelivery_is_counted_not_stored_again);
async fn a_redelivery_is_counted_not_stored_again(store: Store) {
    let first = store
        .ingest(None, &[item("evt_1", 1000, org("E1"), "plan", "pro")], 5)
        .await
        .unwrap();
    let again = store
        .ingest(None, &[item("evt_1", 1000, org("E1"), "plan", "pro")], 6)
        .await
        .unwrap();
    assert_eq!((first.accepted(), first.duplicates()), (1, 0));
    assert_eq!((again.accepted(), again.duplicates()), (0, 1));
    let events = store
        .list_events(&EventFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].duplicates, 1);
    assert_eq!(store.list_jobs(None, 10).await.unwrap().len(), 1);
}

store_test!(claim_takes_every_job_of_one_target_and_holds_it);
async fn claim_takes_every_job_of_one_target_and_holds_it(store: Store) {
    store
        .ingest(None, &[item("a", 2000, org("E1"), "plan", "new")], 1)
        .await
        .unwrap();
    store
        .ingest(None, &[item("b", 1000, org("E1"), "plan", "old")], 2)
        .await
        .unwrap();
    store
        .ingest(None, &[item("c", 1000, org("E2"), "plan", "x")], 3)
        .await
        .unwrap();
    let batch = store.claim("w1", 10, 60_000, 100).await.unwrap().unwrap();
    assert_eq!(batch.target_key, "org:E1");
    assert_eq!(batch.jobs.len(), 2);
    assert!(
        batch.jobs[0].version < batch.jobs[1].version,
        "oldest version first"
    );
    let other = store.claim("w2", 10, 60_000, 100).await.unwrap().unwrap();
    assert_eq!(
        other.target_key, "org:E2",
        "a held target is never handed out twice"
    );
    assert!(store.claim("w3", 10, 60_000, 100).await.unwrap().is_none());
    // The lease of w1 expires: its jobs become claimable again.
    let again = store
        .claim("w3", 70_000, 60_000, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.target_key, "org:E1");
    // w1 can no longer finish them.
    let outcomes: Vec<_> = batch
        .jobs
        .iter()
        .map(|j| (j.id, JobVerdict::Done))
        .collect();
    let result = BatchResult {
        outcomes,
        ..Default::default()
    };
    assert_eq!(
        store
            .finish("w1", &key("org:E1"), &result, 70_001)
            .await
            .unwrap(),
        0
    );
}

store_test!(finish_records_versions_and_outcomes);
async fn finish_records_versions_and_outcomes(store: Store) {
    store
        .ingest(None, &[item("a", 2000, org("E1"), "plan", "new")], 1)
        .await
        .unwrap();
    let batch = store.claim("w", 10, 60_000, 100).await.unwrap().unwrap();
    let v = batch.jobs[0].version;
    let outcomes = vec![(
        batch.jobs[0].id,
        JobVerdict::Retry {
            run_at_ms: 500,
            error: "boom".into(),
            count_attempt: true,
        },
    )];
    let result = BatchResult {
        outcomes,
        applied_fields: vec![AppliedField {
            field: "plan".into(),
            version: v,
            value: Some("pro".into()),
        }],
        ..Default::default()
    };
    store
        .finish("w", &batch.target_key, &result, 11)
        .await
        .unwrap();
    assert!(
        store.claim("w", 100, 60_000, 100).await.unwrap().is_none(),
        "not before run_at"
    );
    let batch = store.claim("w", 500, 60_000, 100).await.unwrap().unwrap();
    assert_eq!(batch.jobs[0].attempts, 1);
    let result = BatchResult {
        outcomes: vec![(batch.jobs[0].id, JobVerdict::Dead("bad".into()))],
        ..Default::default()
    };
    store
        .finish("w", &batch.target_key, &result, 501)
        .await
        .unwrap();
    let dead = store.list_jobs(Some(JobState::Dead), 10).await.unwrap();
    assert_eq!(dead[0].last_error.as_deref(), Some("bad"));
    assert_eq!(
        store.field_versions(&key("org:E1")).await.unwrap()["plan"],
        v
    );
    assert!(store.retry_job(dead[0].id, 600).await.unwrap());
    assert!(store.claim("w", 600, 60_000, 100).await.unwrap().is_some());
}

store_test!(the_raw_body_is_kept_once_per_delivery_with_new_events);
async fn the_raw_body_is_kept_once_per_delivery_with_new_events(store: Store) {
    let raw = || {
        Some(RawDelivery {
            content_type: Some("text/xml".into()),
            body: b"<soap/>".to_vec(),
            payload_is_body: false,
        })
    };
    let two = [
        item("n1", 1, org("E1"), "plan", "a"),
        item("n2", 2, org("E2"), "plan", "b"),
    ];
    store.ingest(raw(), &two, 1).await.unwrap();
    store.ingest(raw(), &two, 2).await.unwrap();
    let (deliveries,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM deliveries")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(
        deliveries, 1,
        "a fully duplicate redelivery keeps no second copy"
    );
    for event in store
        .list_events(&EventFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
    {
        let shown = store.event(event.id).await.unwrap().unwrap();
        assert_eq!(shown.raw_body.as_deref(), Some("<soap/>"));
    }
}

store_test!(an_unreadable_job_is_buried_instead_of_blocking_its_target);
async fn an_unreadable_job_is_buried_instead_of_blocking_its_target(store: Store) {
    store
        .ingest(
            None,
            &[
                item("a", 1, org("E1"), "plan", "x"),
                item("b", 2, org("E1"), "plan", "y"),
            ],
            1,
        )
        .await
        .unwrap();
    sqlx::query("UPDATE jobs SET change = '{\"broken\":true}' WHERE id = 1")
        .execute(&store.pool)
        .await
        .unwrap();
    let batch = store.claim("w", 2, 60_000, 100).await.unwrap().unwrap();
    assert_eq!(batch.jobs.len(), 1);
    let dead = store.list_jobs(Some(JobState::Dead), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("unreadable")
    );
}

store_test!(retry_dead_makes_every_dead_job_runnable_again);
async fn retry_dead_makes_every_dead_job_runnable_again(store: Store) {
    for (event, target) in [("d1", "E1"), ("d2", "E2"), ("ok", "E3")] {
        store
            .ingest(None, &[item(event, 1, org(target), "plan", "x")], 1)
            .await
            .unwrap();
    }
    for _ in 0..2 {
        let batch = store.claim("w", 10, 60_000, 100).await.unwrap().unwrap();
        let result = BatchResult {
            outcomes: vec![(batch.jobs[0].id, JobVerdict::Dead("bad".into()))],
            ..Default::default()
        };
        store
            .finish("w", &batch.target_key, &result, 11)
            .await
            .unwrap();
    }
    assert_eq!(store.retry_dead(20).await.unwrap(), 2);
    assert_eq!(store.retry_dead(21).await.unwrap(), 0, "none left dead");
    let jobs = store.list_jobs(Some(JobState::Pending), 10).await.unwrap();
    assert_eq!(jobs.len(), 3);
    let one = store.job(jobs[0].id).await.unwrap().unwrap();
    assert_eq!((one.state, one.attempts), (JobState::Pending, 0));
    assert!(store.job(JobId(9_999)).await.unwrap().is_none());
}

store_test!(prune_deletes_finished_work_but_keeps_dead_jobs_and_their_events);
async fn prune_deletes_finished_work_but_keeps_dead_jobs_and_their_events(store: Store) {
    let raw = || {
        Some(RawDelivery {
            content_type: None,
            body: b"{}".to_vec(),
            payload_is_body: false,
        })
    };
    store
        .ingest(raw(), &[item("old_done", 1, org("E1"), "plan", "a")], 100)
        .await
        .unwrap();
    store
        .ingest(raw(), &[item("old_dead", 1, org("E2"), "plan", "b")], 100)
        .await
        .unwrap();
    store
        .ingest(raw(), &[item("new_done", 1, org("E3"), "plan", "c")], 5_000)
        .await
        .unwrap();
    while let Some(batch) = store.claim("w", 6_000, 60_000, 100).await.unwrap() {
        let outcome = if batch.target_key == "org:E2" {
            JobVerdict::Dead("x".into())
        } else {
            JobVerdict::Done
        };
        let outcomes = batch.jobs.iter().map(|j| (j.id, outcome.clone())).collect();
        let at = if batch.target_key == "org:E3" {
            5_000
        } else {
            200
        };
        store
            .finish(
                "w",
                &batch.target_key,
                &BatchResult {
                    outcomes,
                    ..Default::default()
                },
                at,
            )
            .await
            .unwrap();
    }
    let report = store.prune(1_000).await.unwrap();
    assert_eq!(
        report,
        PruneReport {
            jobs: 1,
            events: 1,
            deliveries: 1
        }
    );
    let left: Vec<String> = store
        .list_events(&EventFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.provider_event_id)
        .collect();
    assert_eq!(left, vec!["new_done", "old_dead"]);
    assert_eq!(
        store
            .list_jobs(Some(JobState::Dead), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.prune(1_000).await.unwrap(), PruneReport::default());
}

store_test!(a_job_run_again_after_an_adoption_is_due_at_once_and_uses_up_nothing);
async fn a_job_run_again_after_an_adoption_is_due_at_once_and_uses_up_nothing(store: Store) {
    store
        .ingest(None, &[item("a", 2000, org("E1"), "plan", "new")], 1)
        .await
        .unwrap();
    let batch = store.claim("w", 10, 60_000, 100).await.unwrap().unwrap();
    let note = "adopted Scalekit user usr_1";
    let result = BatchResult {
        outcomes: vec![(batch.jobs[0].id, JobVerdict::RunAgain(note.into()))],
        ..Default::default()
    };
    assert_eq!(
        store
            .finish("w", &batch.target_key, &result, 11)
            .await
            .unwrap(),
        1
    );
    let again = store.claim("w", 11, 60_000, 100).await.unwrap().unwrap();
    let job = &again.jobs[0];
    assert_eq!((job.run_at_ms, job.attempts, job.throttles), (11, 0, 0));
    let row = store.job(job.id).await.unwrap().unwrap();
    assert_eq!(row.last_error.as_deref(), Some(note));
}
