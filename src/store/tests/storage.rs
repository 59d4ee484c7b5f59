//! What the store keeps per event and how it finds work (issue 8): a JSON source's
//! payload is stored once, in its raw body; the claim walks an index instead of sorting
//! the backlog; the workers' bookkeeping skips the fsync that ingest keeps.

use super::*;
use crate::store::RawDelivery;

/// A delivery whose body is the event's payload, pretty-printed as Stripe sends it.
fn json_delivery(item: &IngestItem) -> RawDelivery {
    RawDelivery {
        content_type: Some("application/json".into()),
        body: serde_json::to_vec_pretty(&item.event.payload).unwrap(),
        payload_is_body: true,
    }
}

store_test!(a_json_payload_is_stored_once_and_read_back_from_the_raw_body);
async fn a_json_payload_is_stored_once_and_read_back_from_the_raw_body(store: Store) {
    let same = item("evt_same", 1_000, org("org_a"), "plan", "pro");
    let mut other = item("evt_other", 1_000, org("org_a"), "plan", "pro");
    let raw = json_delivery(&same);
    store
        .ingest(Some(raw.clone()), std::slice::from_ref(&same), 5)
        .await
        .unwrap();
    // A payload that is not its delivery's body (a Salesforce notification) is kept.
    other.event.payload = json!({"notification": "evt_other"});
    let notification = RawDelivery {
        payload_is_body: false,
        ..raw
    };
    store
        .ingest(Some(notification), &[other.clone()], 6)
        .await
        .unwrap();
    let stored: Vec<(String, String)> =
        sqlx::query_as("SELECT provider_event_id, payload FROM events ORDER BY id")
            .fetch_all(&store.pool)
            .await
            .unwrap();
    assert_eq!(stored[0], ("evt_same".into(), String::new()));
    assert_eq!(stored[1].1, other.event.payload.to_string());
    let filter = crate::store::ReplayFilter {
        limit: 10,
        ..Default::default()
    };
    let replayed = store.events_to_replay(&filter).await.unwrap();
    assert_eq!(replayed[0].event.payload, same.event.payload);
    assert_eq!(replayed[1].event.payload, other.event.payload);
    let shown = store.event(replayed[0].id).await.unwrap().unwrap();
    assert_eq!(shown.payload, Some(same.event.payload.clone()));
    assert!(shown.raw_body.is_some());
}

#[tokio::test]
async fn the_claim_walks_the_runnable_index_without_sorting_the_backlog() {
    let (store, _dir) = sqlite_store().await;
    let sql = "EXPLAIN QUERY PLAN
               SELECT j.target_key FROM jobs j INDEXED BY jobs_runnable
               WHERE j.state = 'pending' AND j.run_at_ms <= 1
               ORDER BY j.run_at_ms, j.id LIMIT 1";
    let plan: Vec<(i64, i64, i64, String)> =
        sqlx::query_as(sql).fetch_all(&store.pool).await.unwrap();
    let details: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
    assert!(
        details
            .iter()
            .any(|d| d.contains("USING INDEX jobs_runnable")),
        "{details:?}"
    );
    assert!(
        !details.iter().any(|d| d.contains("TEMP B-TREE")),
        "{details:?}"
    );
    // And the claim statement itself runs (the index exists after the migrations).
    store.claim("w", 1, 1_000, 10).await.unwrap();
}

#[tokio::test]
async fn waking_the_waiters_of_a_link_searches_indexes_instead_of_the_backlog() {
    let (store, _dir) = sqlite_store().await;
    let sql = format!(
        "EXPLAIN QUERY PLAN {}",
        crate::store::links::WAKE_WAITING_SQLITE
    );
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(&sql)
        .bind(r#"["link:org:stripe_customer:cus_1"]"#)
        .fetch_all(&store.pool)
        .await
        .unwrap();
    let details: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
    for index in ["jobs_by_target", "jobs_by_waits_for"] {
        assert!(details.iter().any(|d| d.contains(index)), "{details:?}");
    }
    // Not `SEARCH jobs USING INDEX jobs_runnable (state=?)`: every pending job.
    assert!(
        !details.iter().any(|d| d.contains("jobs_runnable")),
        "{details:?}"
    );
}

#[tokio::test]
async fn worker_bookkeeping_skips_its_fsync_and_ingest_keeps_it() {
    let (store, _dir) = sqlite_store().await;
    let sync = |pool: &sqlx::AnyPool| {
        let pool = pool.clone();
        async move {
            let value: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(&pool)
                .await
                .unwrap();
            value
        }
    };
    assert_eq!(sync(&store.pool).await, 2, "FULL for ingest");
    assert_eq!(
        sync(&store.work_pool).await,
        1,
        "NORMAL for claims and finishes"
    );
}

#[tokio::test]
async fn postgres_keeps_the_compressed_bodies_without_compressing_them_again() {
    let Some(db) = orgsync_testkit::TestDb::create().await else {
        return;
    };
    let store = Store::connect(db.url()).await.unwrap();
    let storage: String = sqlx::query_scalar(
        "SELECT attstorage::text FROM pg_attribute
         WHERE attrelid = 'deliveries'::regclass AND attname = 'body'",
    )
    .fetch_one(&store.pool)
    .await
    .unwrap();
    // EXTERNAL: out of line when large, never through pglz.
    assert_eq!(storage, "e");
    store.close().await;
}

#[tokio::test]
async fn postgres_keeps_bodies_up_to_eight_kilobytes_in_their_row() {
    let Some(db) = orgsync_testkit::TestDb::create().await else {
        return;
    };
    let store = Store::connect(db.url()).await.unwrap();
    let insert = |hex_chunks: i32| {
        sqlx::query(
            "INSERT INTO deliveries (source, received_at_ms, body, body_encoding)
             SELECT 'stripe', 0, convert_to(string_agg(md5(g::text), ''), 'UTF8'), 'identity'
             FROM generate_series(1, $1) AS g",
        )
        .bind(hex_chunks)
        .execute(&store.pool)
    };
    let toast_bytes = || {
        sqlx::query_scalar::<_, i64>(
            "SELECT pg_relation_size(reltoastrelid) FROM pg_class
             WHERE oid = 'deliveries'::regclass",
        )
        .fetch_one(&store.pool)
    };
    // 4 KB: over the 2 KB a row was once cut at, kept in the row now.
    insert(128).await.unwrap();
    assert_eq!(toast_bytes().await.unwrap(), 0);
    // 16 KB: still moved out of line.
    insert(512).await.unwrap();
    assert!(toast_bytes().await.unwrap() > 0);
    store.close().await;
}
