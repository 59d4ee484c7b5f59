//! Many claimers at once (several workers, or replicas sharing PostgreSQL): a target is
//! never held by two of them, and every job is claimed exactly once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use super::*;

/// The targets claimers hold now, and what went wrong (a target handed to two at once, a
/// lease lost).
#[derive(Default)]
struct Holds {
    now: HashSet<TargetKey>,
    shared: Vec<String>,
}

/// Claims and finishes until no job is left; returns the ids it claimed. A target handed
/// out twice is recorded (not a panic: a claimer that stopped would leave its jobs leased
/// and the others waiting forever).
async fn drain(store: Store, owner: String, held: Arc<Mutex<Holds>>) -> Vec<i64> {
    let mut claimed = Vec::new();
    loop {
        let Some(batch) = store.claim(&owner, 10, 60_000, 3).await.unwrap() else {
            let counts = store.job_counts().await.unwrap();
            if counts[&JobState::Pending] == 0 && counts[&JobState::Running] == 0 {
                return claimed;
            }
            tokio::task::yield_now().await;
            continue;
        };
        {
            let mut held = held.lock().unwrap();
            if !held.now.insert(batch.target_key.clone()) {
                held.shared.push(batch.target_key.to_string());
            }
        }
        tokio::task::yield_now().await;
        claimed.extend(batch.jobs.iter().map(|j| j.id.get()));
        let result = BatchResult {
            outcomes: batch
                .jobs
                .iter()
                .map(|j| (j.id, JobVerdict::Done))
                .collect(),
            ..Default::default()
        };
        held.lock().unwrap().now.remove(&batch.target_key);
        let changed = store
            .finish(&owner, &batch.target_key, &result, 11)
            .await
            .unwrap();
        if changed != batch.jobs.len() as u64 {
            let lost = format!("{owner} lost its lease on {}", batch.target_key);
            held.lock().unwrap().shared.push(lost);
        }
    }
}

store_test!(concurrent_claimers_never_share_a_target);
async fn concurrent_claimers_never_share_a_target(store: Store) {
    let mut items = Vec::new();
    for n in 0..240 {
        let target = org(&format!("E{}", n % 8));
        items.push(item(&format!("evt_{n}"), 1000 + n, target, "plan", "x"));
    }
    store.ingest(None, &items, 1).await.unwrap();
    let held = Arc::new(Mutex::new(Holds::default()));
    let claimers: Vec<_> = (0..8)
        .map(|w| tokio::spawn(drain(store.clone(), format!("w{w}"), held.clone())))
        .collect();
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    let shared = std::mem::take(&mut held.lock().unwrap().shared);
    assert!(shared.is_empty(), "{shared:?}");
    all.sort_unstable();
    let before = all.len();
    all.dedup();
    assert_eq!(before, all.len(), "a job was claimed twice");
    assert_eq!(all.len(), 240);
    assert_eq!(store.job_counts().await.unwrap()[&JobState::Done], 240);
}
