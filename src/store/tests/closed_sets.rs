//! The database itself refuses values outside the closed sets the Rust enums name
//! (migration 0006), and accepts every value they name.

use super::*;

/// Runs one statement with one text bound, telling whether the database took it.
async fn accepts(store: &Store, sql: &str, value: &str) -> bool {
    sqlx::query(sql)
        .bind(value)
        .execute(&store.pool)
        .await
        .is_ok()
}

store_test!(the_database_accepts_exactly_the_job_states_and_event_statuses_the_enums_name);
async fn the_database_accepts_exactly_the_job_states_and_event_statuses_the_enums_name(
    store: Store,
) {
    store
        .ingest(None, &[item("evt_1", 1000, org("E1"), "plan", "pro")], 5)
        .await
        .unwrap();
    for state in JobState::ALL {
        let sql = "UPDATE jobs SET state = $1";
        assert!(accepts(&store, sql, state.as_str()).await, "{state}");
    }
    for state in ["superseded", "Pending", ""] {
        let sql = "UPDATE jobs SET state = $1";
        assert!(!accepts(&store, sql, state).await, "{state:?}");
    }
    for status in EventStatus::ALL {
        let sql = "UPDATE events SET status = $1";
        assert!(accepts(&store, sql, status.as_str()).await, "{status}");
    }
    for status in ["duplicate", "ACCEPTED"] {
        let sql = "UPDATE events SET status = $1";
        assert!(!accepts(&store, sql, status).await, "{status:?}");
    }
}

store_test!(the_database_accepts_only_target_keys_and_link_kinds_of_a_known_kind);
async fn the_database_accepts_only_target_keys_and_link_kinds_of_a_known_kind(store: Store) {
    store
        .ingest(None, &[item("evt_1", 1000, org("E1"), "plan", "pro")], 5)
        .await
        .unwrap();
    let sql = "UPDATE jobs SET target_key = $1";
    for key in [
        "org:E1",
        "user:U1",
        "link:org:stripe_customer:cus_1",
        "link:user:x:y",
    ] {
        assert!(accepts(&store, sql, key).await, "{key}");
    }
    for key in ["E1", "organization:E1", "link:team:x:y"] {
        assert!(!accepts(&store, sql, key).await, "{key}");
    }
    let sql = "INSERT INTO links (kind, link, key, external_id, version_ms, version_seq)
               VALUES ($1, 'stripe_customer', 'cus_1', 'E1', 1, 1)";
    for kind in [TargetKind::Organization, TargetKind::User] {
        assert!(accepts(&store, sql, kind.prefix()).await, "{kind}");
    }
    assert!(!accepts(&store, sql, "organization").await);
}
