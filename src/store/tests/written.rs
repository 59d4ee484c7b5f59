//! The values orgsync wrote (migration 0005) and the drift repair jobs.

use super::*;

fn applied(field: &str, version: Version, value: Option<&str>) -> AppliedField {
    AppliedField {
        field: field.into(),
        version,
        value: value.map(str::to_owned),
    }
}

/// Claims the one runnable batch and finishes it done with `fields`.
async fn finish_with(store: &Store, now_ms: i64, fields: Vec<AppliedField>) {
    let batch = store
        .claim("w", now_ms, 60_000, 100)
        .await
        .unwrap()
        .unwrap();
    let result = BatchResult {
        outcomes: batch
            .jobs
            .iter()
            .map(|j| (j.id, JobVerdict::Done))
            .collect(),
        applied_fields: fields,
        ..Default::default()
    };
    assert!(
        store
            .finish("w", &batch.target_key, &result, now_ms)
            .await
            .unwrap()
            > 0
    );
}

fn written(fields: &[WrittenField], field: &str) -> Option<Option<String>> {
    fields
        .iter()
        .find(|f| f.field == field)
        .and_then(|f| f.written.clone())
}

store_test!(values_follow_writes_at_the_same_or_a_newer_version_only);
async fn values_follow_writes_at_the_same_or_a_newer_version_only(store: Store) {
    let all = WrittenFilter {
        limit: 10,
        ..Default::default()
    };
    let v = |at_ms, seq| Version { at_ms, seq };
    for (n, (version, value)) in [
        (v(2000, 1), Some("pro")),
        // A replay of the same event with a fixed rule: same version, new value.
        (v(2000, 1), Some("pro_monthly")),
        // An older event arriving late never replaces the value.
        (v(1000, 9), Some("free")),
        (v(3000, 2), None),
    ]
    .into_iter()
    .enumerate()
    {
        let at = 10 + n as i64;
        store
            .ingest(
                None,
                &[item(&format!("e{n}"), 1, org("E1"), "plan", "x")],
                at,
            )
            .await
            .unwrap();
        finish_with(&store, at, vec![applied("plan", version, value)]).await;
        let fields = store.written_fields(&all).await.unwrap();
        let expected = match n {
            0 => Some(Some("pro".to_owned())),
            1 | 2 => Some(Some("pro_monthly".to_owned())),
            _ => Some(None),
        };
        assert_eq!(written(&fields, "plan"), expected, "step {n}");
    }
    let fields = store.written_fields(&all).await.unwrap();
    assert_eq!(fields[0].version, v(3000, 2));
    assert_eq!(fields[0].kind, TargetKind::Organization);
    assert_eq!(fields[0].external_id.as_str(), "E1");
}

store_test!(filters_select_targets_and_sources);
async fn filters_select_targets_and_sources(store: Store) {
    store
        .ingest(None, &[item("a", 1, org("E1"), "plan", "x")], 1)
        .await
        .unwrap();
    let seq = store
        .claim("w", 1, 60_000, 100)
        .await
        .unwrap()
        .unwrap()
        .jobs[0]
        .event_id
        .get();
    store.release_leases("w", 1).await.unwrap();
    let version = Version { at_ms: 1, seq };
    finish_with(&store, 2, vec![applied("plan", version, Some("pro"))]).await;
    let filter = |target: Option<&str>, source: Option<&str>| WrittenFilter {
        target_key: target.map(key),
        source: source.map(str::to_owned),
        limit: 10,
    };
    let count = |f| {
        let store = store.clone();
        async move { store.written_fields(&f).await.unwrap().len() }
    };
    assert_eq!(count(filter(Some("org:E1"), None)).await, 1);
    assert_eq!(count(filter(Some("org:E2"), None)).await, 0);
    assert_eq!(count(filter(None, Some("stripe"))).await, 1);
    assert_eq!(count(filter(None, Some("salesforce"))).await, 0);
}

store_test!(repairs_are_enqueued_at_the_recorded_version_under_one_event);
async fn repairs_are_enqueued_at_the_recorded_version_under_one_event(store: Store) {
    let version = Version {
        at_ms: 5000,
        seq: 77,
    };
    let mut change = match store
        .ingest(None, &[item("a", 1, org("E1"), "plan", "pro")], 1)
        .await
    {
        Ok(_) => store
            .claim("w", 1, 60_000, 100)
            .await
            .unwrap()
            .unwrap()
            .jobs[0]
            .change
            .clone(),
        Err(e) => panic!("{e}"),
    };
    change.replayed = true;
    store.release_leases("w", 1).await.unwrap();
    let event_id = store
        .enqueue_repairs(&[RepairJob { change, version }], 2)
        .await
        .unwrap();
    let event = store.event(event_id).await.unwrap().unwrap();
    assert_eq!(
        (event.source.as_str(), event.event_type.as_str()),
        ("orgsync", "drift.repair")
    );
    let batch = store.claim("x", 3, 60_000, 100).await.unwrap().unwrap();
    let repair = batch.jobs.iter().find(|j| j.event_id == event_id).unwrap();
    assert_eq!(repair.version, version);
    assert!(repair.change.replayed);
}
