//! One group commit of several deliveries, written directly (no timing decides what
//! shares a batch): each raw body is stored once and named by its own events only, and
//! redeliveries inside the batch and from before it are counted, not stored.

use super::*;
use crate::store::event_rows::write_events;
use crate::store::group_commit::Request;

/// A delivery of `items` with `body` kept as its raw body (or none).
fn request(body: Option<&str>, items: Vec<IngestItem>) -> Request {
    let (reply, _) = tokio::sync::oneshot::channel();
    Request {
        raw: body.map(|body| RawDelivery {
            content_type: Some("application/json".into()),
            body: body.as_bytes().to_vec(),
            payload_is_body: false,
        }),
        body_encoding: crate::store::body::BodyEncoding::Identity,
        items,
        now_ms: 7,
        reply,
    }
}

store_test!(a_batch_stores_each_body_once_and_names_it_in_its_own_events_only);
async fn a_batch_stores_each_body_once_and_names_it_in_its_own_events_only(store: Store) {
    let event = |id: &str| item(id, 1_000, org("org_a"), "plan", "pro");
    store.ingest(None, &[event("evt_old")], 5).await.unwrap();
    let batch = vec![
        request(Some("body zero"), vec![event("evt_c"), event("evt_a")]),
        request(Some("body one"), vec![event("evt_b"), event("evt_c")]),
        request(Some("body two"), vec![event("evt_old")]),
        request(None, vec![event("evt_d")]),
    ];
    let mut tx = store.begin().await.unwrap();
    let reports = write_events(&mut tx, store.backend(), &batch)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let shape: Vec<Vec<bool>> = reports
        .iter()
        .map(|events| events.iter().map(|e| e.duplicate).collect())
        .collect();
    assert_eq!(
        shape,
        [
            vec![false, false],
            vec![false, true],
            vec![true],
            vec![false]
        ]
    );
    // The in-batch redelivery names the row its first delivery wrote.
    assert_eq!(reports[1][1].event_id, reports[0][0].event_id);
    // New rows are numbered in key order (see `group_commit`).
    let (a, b, c, d) = (
        reports[0][1].event_id,
        reports[1][0].event_id,
        reports[0][0].event_id,
        reports[3][0].event_id,
    );
    assert!(a < b && b < c && c < d, "{a} {b} {c} {d}");

    let rows: Vec<(String, i64, Option<Vec<u8>>)> = sqlx::query_as(
        "SELECT e.provider_event_id, e.duplicates, d.body
         FROM events e LEFT JOIN deliveries d ON d.id = e.delivery_id
         ORDER BY e.provider_event_id",
    )
    .fetch_all(&store.pool)
    .await
    .unwrap();
    let body = |text: &str| Some(text.as_bytes().to_vec());
    assert_eq!(
        rows,
        [
            ("evt_a".into(), 0, body("body zero")),
            ("evt_b".into(), 0, body("body one")),
            ("evt_c".into(), 1, body("body zero")),
            ("evt_d".into(), 0, None),
            ("evt_old".into(), 1, None),
        ]
    );
    // The body whose only event was a redelivery is not kept.
    let deliveries: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(deliveries, 2);
}
