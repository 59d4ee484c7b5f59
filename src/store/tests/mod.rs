//! Store tests, each run on a real SQLite file and, when `ORGSYNC_TEST_DATABASE_URL` names
//! a PostgreSQL server, on a fresh database of its own there.

use serde_json::json;

use super::*;
use crate::model::*;

/// Declares a test body `async fn NAME(store: Store)` as two tests, `NAME::sqlite` and
/// `NAME::postgres` (the latter skipped, with a note, when `ORGSYNC_TEST_DATABASE_URL` is unset).
macro_rules! store_test {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (store, _dir) = crate::store::tests::sqlite_store().await;
                super::$name(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = orgsync_testkit::TestDb::create().await else {
                    return;
                };
                let store = crate::store::Store::connect(db.url()).await.unwrap();
                super::$name(store.clone()).await;
                store.close().await;
            }
        }
    };
}

pub(crate) async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("orgsync.db").display());
    (Store::connect(&url).await.unwrap(), dir)
}

#[tokio::test]
async fn a_relative_sqlite_url_is_below_the_working_directory() {
    // A folder below the working directory (removed at the end), named by a relative URL.
    let dir = tempfile::Builder::new()
        .prefix(".store-test-")
        .tempdir_in(".")
        .unwrap();
    let name = dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let store = Store::connect(&format!("sqlite://{name}/Data/orgsync.db"))
        .await
        .unwrap();
    store.ping().await.unwrap();
    store.close().await;
    assert!(dir.path().join("Data/orgsync.db").exists());
}

pub(super) fn key(text: &str) -> TargetKey {
    TargetKey::parse(text).unwrap()
}

pub(super) fn org(id: &str) -> TargetRef {
    TargetRef::External {
        kind: TargetKind::Organization,
        external_id: ExternalId::parse(id).unwrap(),
    }
}

pub(super) fn item(
    event_id: &str,
    at_ms: i64,
    target: TargetRef,
    key: &str,
    value: &str,
) -> IngestItem {
    let mut set = std::collections::BTreeMap::new();
    set.insert(MetadataKey::parse(key).unwrap(), value.to_owned());
    IngestItem {
        event: InboundEvent {
            source: "stripe".into(),
            provider_event_id: event_id.into(),
            event_type: "customer.updated".into(),
            occurred_at_ms: Some(at_ms),
            payload: json!({"id": event_id}),
            verification: "test".into(),
        },
        normalized: Normalized::Matched {
            changes: vec![Change {
                rule: "r".into(),
                target,
                set,
                unset: Default::default(),
                new_external_id: None,
                on_missing: OnMissing::Retry,
                create: None,
                replayed: false,
            }],
            links: vec![],
        },
    }
}

mod batches;
mod checkpoints;
mod claims;
mod closed_sets;
mod links;
mod queue;
mod replicas;
mod storage;
mod written;

#[tokio::test]
async fn sqlite_connections_are_durable_and_wait_instead_of_failing() {
    let (store, _dir) = sqlite_store().await;
    // Every pooled connection gets the settings, not only the first.
    let mut conns = Vec::new();
    for _ in 0..3 {
        conns.push(store.pool.acquire().await.unwrap());
    }
    for conn in conns.iter_mut() {
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        let keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        assert_eq!(
            (journal.as_str(), synchronous, busy, keys),
            ("wal", 2, 30_000, 1)
        );
    }
}
