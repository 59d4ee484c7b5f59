//! A store made by an earlier release migrates in place: `tests/fixtures/store/v0.1-0001.db`
//! (schema 0001, made by the 0.1 daemon with the workers paused) is opened by the current
//! code, keeps every event, raw body and job, and its jobs apply exactly as the same
//! deliveries received by a fresh store do.

use std::sync::Arc;

use orgsync::store::{EventFilter, JobState, ReplayFilter, Store};

use crate::delivery::metadata;
use crate::helpers::*;

const FIXTURE_DB: &str = "tests/fixtures/store/v0.1-0001.db";
const ACCOUNT: &str = "salesforce/outbound_message.account.constructed.xml";

/// The daemon on a copy of the 0.1 store (migrated when it opens).
async fn spawn_on_old_store() -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE_DB);
    std::fs::copy(source, dir.path().join("orgsync.db")).unwrap();
    spawn_app_with(TestOptions {
        standin: Some(standin_with_org().await),
        data_dir: Some(dir),
        ..Default::default()
    })
    .await
}

/// What the 0.1 daemon was sent to make the fixture, in order.
async fn send_fixture_deliveries(app: &TestApp) {
    for name in stripe_fixtures() {
        let answer = app.post_stripe(&fixture(&format!("stripe/{name}"))).await;
        assert!(answer.status().is_success(), "{name}");
    }
    let again = app
        .post_stripe(&fixture("stripe/event.customer.subscription.updated.json"))
        .await;
    assert!(again.status().is_success());
    let answer = app
        .http
        .post(app.url(&format!("/webhooks/salesforce?token={SF_TOKEN}")))
        .header("content-type", "text/xml; charset=utf-8")
        .header("soapaction", "\"\"")
        .body(fixture(ACCOUNT))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
}

#[tokio::test]
async fn a_store_made_by_the_first_schema_keeps_its_events_raw_bodies_and_jobs() {
    let app = spawn_on_old_store().await;
    let filter = EventFilter {
        limit: 100,
        ..Default::default()
    };
    let events = app.store.list_events(&filter).await.unwrap();
    assert_eq!(events.len(), 16);
    let mut raw_bodies = 0;
    for listed in &events {
        let event = app.store.event(listed.id).await.unwrap().unwrap();
        let payload = event.payload.expect("the payload is readable");
        if let Some(raw) = event.raw_body {
            raw_bodies += 1;
            if event.source == "stripe" {
                let parsed: serde_json::Value = serde_json::from_str(&raw).unwrap();
                assert_eq!(parsed, payload, "event {}", event.provider_event_id);
            }
        }
    }
    assert_eq!(raw_bodies, 16, "every event still has its raw delivery");
    let replayable = app
        .store
        .events_to_replay(&ReplayFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(replayable.len(), 16);
    let duplicates: i64 = events.iter().map(|e| e.duplicates).sum();
    assert_eq!(duplicates, 1);
    assert_eq!(app.jobs(Some(JobState::Pending)).await.len(), 15);
}

#[tokio::test]
async fn the_jobs_of_a_migrated_store_apply_as_a_fresh_store_applies_the_same_deliveries() {
    let old = spawn_on_old_store().await;
    let reports = old.drain().await;
    assert!(!reports.is_empty());
    assert_eq!(old.jobs(Some(JobState::Pending)).await.len(), 0);
    assert_eq!(old.jobs(Some(JobState::Dead)).await.len(), 0);
    let fresh = spawn_app_with_org().await;
    send_fixture_deliveries(&fresh).await;
    fresh.drain().await;
    assert_eq!(metadata(&old.standin), metadata(&fresh.standin));
    // The Salesforce Account notification's fields (the Stripe ones end removed by the
    // customer.deleted event).
    assert!(metadata(&old.standin).contains_key("crm_account_id"));
    // The migrated store takes new deliveries too.
    send_fixture_deliveries(&old).await;
    let filter = EventFilter {
        limit: 100,
        ..Default::default()
    };
    let events = old.store.list_events(&filter).await.unwrap();
    assert_eq!(events.len(), 16);
    // 15 Stripe deliveries and the 2 notifications of the Salesforce message, again.
    assert_eq!(events.iter().map(|e| e.duplicates).sum::<i64>(), 1 + 17);
}

/// The same on PostgreSQL: `v0.1-0001.postgres.sql` is a `pg_dump --inserts` of a database
/// the 0.1 daemon made from the same deliveries (skipped without a test server).
#[tokio::test]
async fn a_postgres_store_made_by_the_first_schema_migrates_and_applies() {
    use sqlx::Connection;
    let Some(db) = TestDb::create().await else {
        return;
    };
    let dump = fixture("store/v0.1-0001.postgres.sql");
    let mut conn = sqlx::PgConnection::connect(db.url()).await.unwrap();
    sqlx::raw_sql(std::str::from_utf8(&dump).unwrap())
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let app = spawn_app_with(TestOptions {
        standin: Some(standin_with_org().await),
        env: vec![("ORGSYNC_DATABASE_URL", db.url().to_owned())],
        ..Default::default()
    })
    .await;
    let filter = EventFilter {
        limit: 100,
        ..Default::default()
    };
    let events = app.store.list_events(&filter).await.unwrap();
    assert_eq!(events.len(), 16);
    for listed in &events {
        let event = app.store.event(listed.id).await.unwrap().unwrap();
        assert!(event.payload.is_some() && event.raw_body.is_some());
    }
    assert_eq!(app.jobs(Some(JobState::Pending)).await.len(), 15);
    app.drain().await;
    assert_eq!(app.jobs(Some(JobState::Pending)).await.len(), 0);
    assert_eq!(app.jobs(Some(JobState::Dead)).await.len(), 0);
    assert!(metadata(&app.standin).contains_key("crm_account_id"));
    app.stop().await;
}

/// Migration 0006 rebuilds `events` and `jobs` on SQLite; their AUTOINCREMENT counters
/// survive it, so the id of a pruned newest event is never handed out again (event ids
/// are the arrival sequence that breaks version ties).
#[tokio::test]
async fn rebuilding_the_tables_keeps_their_id_counters() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orgsync.db");
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE_DB);
    std::fs::copy(source, &path).unwrap();
    let url = format!("sqlite://{}", path.display());
    let counters = async || {
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT name, seq FROM sqlite_sequence WHERE name IN ('events', 'jobs') ORDER BY name",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
        rows
    };
    let before = counters().await;
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    // The newest event (the Salesforce message's second notification) made no job.
    sqlx::query("DELETE FROM events WHERE id = (SELECT MAX(id) FROM events)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let store = Store::connect(&url).await.unwrap();
    store.close().await;
    assert_eq!(
        counters().await,
        before,
        "the counters are those of the 0.1 store"
    );
    assert_eq!(before, [("events".to_owned(), 17), ("jobs".to_owned(), 15)]);
}
