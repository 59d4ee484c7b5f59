//! Many claimers at once (several workers, or replicas sharing PostgreSQL): a target is
//! never held by two of them, and every job is claimed exactly once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use super::*;

/// Claims and finishes until no job is left; returns the ids it claimed.
async fn drain(store: Store, owner: String, held: Arc<Mutex<HashSet<String>>>) -> Vec<i64> {
    let mut claimed = Vec::new();
    loop {
        let Some(batch) = store.claim(&owner, 10, 60_000, 3).await.unwrap() else {
            let counts = store.job_counts().await.unwrap();
            if !counts.contains_key("pending") && !counts.contains_key("running") {
                return claimed;
            }
            tokio::task::yield_now().await;
            continue;
        };
        assert!(
            held.lock().unwrap().insert(batch.target_key.clone()),
            "{} was handed to two claimers",
            batch.target_key
        );
        tokio::task::yield_now().await;
        claimed.extend(batch.jobs.iter().map(|j| j.id));
        let result = BatchResult {
            outcomes: batch.jobs.iter().map(|j| (j.id, JobOutcome::Done)).collect(),
            ..Default::default()
        };
        held.lock().unwrap().remove(&batch.target_key);
        let changed = store
            .finish(&owner, &batch.target_key, &result, 11)
            .await
            .unwrap();
        assert_eq!(changed, batch.jobs.len() as u64);
    }
}

store_test!(concurrent_claimers_never_share_a_target);
async fn concurrent_claimers_never_share_a_target(store: Store) {
    let mut items = Vec::new();
    for n in 0..60 {
        let target = org(&format!("E{}", n % 6));
        items.push(item(&format!("evt_{n}"), 1000 + n, target, "plan", "x"));
    }
    store.ingest(None, &items, 1).await.unwrap();
    let held = Arc::new(Mutex::new(HashSet::new()));
    let claimers: Vec<_> = (0..8)
        .map(|w| tokio::spawn(drain(store.clone(), format!("w{w}"), held.clone())))
        .collect();
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    all.sort_unstable();
    let before = all.len();
    all.dedup();
    assert_eq!(before, all.len(), "a job was claimed twice");
    assert_eq!(all.len(), 60);
    assert_eq!(store.job_counts().await.unwrap()["done"], 60);
}
