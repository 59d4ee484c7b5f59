//! Several replicas' group commits at once on one PostgreSQL database (skipped without
//! one): overlapping events (redeliveries, in a different order in each delivery) and
//! overlapping links, round after round. Nothing may deadlock, every event is stored once
//! with exactly one report saying "new", every link ends at its newest version, and the
//! raw body of each delivery is kept only when one of its events was new, and named by
//! those events only.

use std::collections::{BTreeMap, BTreeSet};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use tokio::task::JoinSet;

use super::*;

/// Stores sharing the database, each with its own group-commit writer.
const REPLICAS: usize = 6;
/// Rounds; each sends every replica its deliveries at once.
const ROUNDS: usize = 20;
/// Distinct events per round, which the deliveries pick from.
const EVENTS: usize = 10;
/// Deliveries per replica and round.
const DELIVERIES: usize = 3;
/// Events per delivery (several, like a Salesforce message).
const ITEMS: usize = 4;
/// Stripe customers whose links every round moves.
const CUSTOMERS: usize = 4;

/// Event `k` of `round`: a version unique to it, two links among the shared customers
/// (in a different order for odd and even `k`), one round-local link learned by half the
/// events, and a change to the organization behind that round-local link (a pending link
/// job until some transaction learns it).
fn event(round: usize, k: usize) -> (IngestItem, Vec<LinkUpdate>) {
    let at_ms = i64::try_from(1_000_000 + round * 100 + k).unwrap_or(0);
    let link = |key: String| LinkUpdate {
        kind: TargetKind::Organization,
        link: "stripe_customer".into(),
        key,
        external_id: ExternalId::parse(&format!("org_{round}_{k}")).unwrap(),
    };
    let (a, b) = ((round + k) % CUSTOMERS, (round + k + 1) % CUSTOMERS);
    let mut links = vec![link(format!("cus_{a}")), link(format!("cus_{b}"))];
    if k % 2 == 1 {
        links.reverse();
    }
    if k >= EVENTS / 2 {
        links.push(link(format!("cus_r{round}_{}", k % 2)));
    }
    let target = TargetRef::Link {
        kind: TargetKind::Organization,
        link: "stripe_customer".into(),
        key: format!("cus_r{round}_{}", k % 2),
    };
    let mut item = item(&format!("evt_{round}_{k}"), at_ms, target, "plan", "pro");
    if let Normalized::Matched { links: learned, .. } = &mut item.normalized {
        learned.clone_from(&links);
    }
    (item, links)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_group_commits_of_many_replicas_never_deadlock_nor_lose_an_event() {
    let Some(db) = orgsync_testkit::TestDb::create().await else {
        return;
    };
    let mut stores = vec![Store::connect(db.url()).await.unwrap()];
    for _ in 1..REPLICAS {
        stores.push(Store::connect(db.url()).await.unwrap());
    }
    let mut rng = StdRng::seed_from_u64(8);
    let (mut sent, mut accepted) = (0, BTreeMap::<String, usize>::new());
    let mut kept_bodies = 0;
    // Per link key: the newest (version, external id) sent.
    let mut newest: BTreeMap<String, (i64, String)> = BTreeMap::new();
    for round in 0..ROUNDS {
        let mut tasks = JoinSet::new();
        for store in &stores {
            for _ in 0..DELIVERIES {
                let mut picks: Vec<usize> = (0..EVENTS).collect();
                picks.shuffle(&mut rng);
                let mut items = Vec::new();
                for &k in &picks[..ITEMS] {
                    let (item, links) = event(round, k);
                    let at = item.event.occurred_at_ms.unwrap_or(0);
                    for link in links {
                        let entry = newest.entry(link.key).or_insert((at, String::new()));
                        if at >= entry.0 {
                            *entry = (at, link.external_id.as_str().to_owned());
                        }
                    }
                    items.push(item);
                }
                sent += items.len();
                // The body lists the delivery's events (a Salesforce message of several).
                let ids: Vec<&str> = items
                    .iter()
                    .map(|i| i.event.provider_event_id.as_str())
                    .collect();
                let raw = RawDelivery {
                    content_type: None,
                    body: ids.join(",").into_bytes(),
                    payload_is_body: false,
                };
                let store = store.clone();
                tasks.spawn(async move {
                    let report = store.ingest(Some(raw), &items, 1).await;
                    (items, report)
                });
            }
        }
        while let Some(joined) = tasks.join_next().await {
            let (items, report) = joined.unwrap();
            let report = report.unwrap_or_else(|e| panic!("round {round}: {e}"));
            kept_bodies += usize::from(report.accepted() > 0);
            for (item, event) in items.iter().zip(&report.events) {
                let id = item.event.provider_event_id.clone();
                *accepted.entry(id).or_default() += usize::from(!event.duplicate);
            }
        }
    }
    let distinct = accepted.len();
    assert!(
        accepted.values().all(|&n| n == 1),
        "each event accepted exactly once: {accepted:?}"
    );
    let pool = &stores[0].pool;
    let (events, duplicates): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), CAST(SUM(duplicates) AS BIGINT) FROM events")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(
        usize::try_from(events).unwrap(),
        distinct,
        "one row per event"
    );
    assert_eq!(usize::try_from(duplicates).unwrap(), sent - distinct);
    let jobs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(
        usize::try_from(jobs).unwrap(),
        distinct,
        "one job per event"
    );
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT key, external_id, version_ms FROM links")
            .fetch_all(pool)
            .await
            .unwrap();
    let stored: BTreeMap<String, (i64, String)> =
        rows.into_iter().map(|(k, e, v)| (k, (v, e))).collect();
    assert_eq!(stored, newest, "every link at its newest version");
    let bodies: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(usize::try_from(bodies).unwrap(), kept_bodies, "bodies kept");
    let named: Vec<(String, Vec<u8>, String)> = sqlx::query_as(
        "SELECT e.provider_event_id, d.body, d.body_encoding
         FROM events e JOIN deliveries d ON d.id = e.delivery_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(named.len(), distinct, "every event names a body");
    for (id, body, encoding) in named {
        let body = crate::store::body::decode(0, Some(&encoding), Some(body))
            .unwrap()
            .unwrap();
        let body = String::from_utf8(body).unwrap();
        assert!(body.split(',').any(|e| e == id), "{id} named {body:?}");
    }
    let keys: BTreeSet<&String> = newest.keys().collect();
    assert!(keys.len() > CUSTOMERS, "round-local links were learned too");
    for store in stores {
        store.close().await;
    }
}
