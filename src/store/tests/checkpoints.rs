//! The SQLite WAL is checkpointed off the ingest writer's path, and stays bounded under a
//! steady load (see `checkpoint`).

use std::path::Path;

use super::*;
use crate::store::RawDelivery;

/// A delivery of one event with a body of `len` bytes that LZ4 cannot shrink.
fn incompressible(n: u64, len: usize) -> (RawDelivery, IngestItem) {
    let mut state = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let body = (0..len)
        .map(|_| {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let raw = RawDelivery {
        content_type: Some("application/octet-stream".into()),
        body,
        payload_is_body: false,
    };
    (
        raw,
        item(&format!("evt_{n}"), 1_000, org("org_a"), "plan", "pro"),
    )
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writers_commits_are_checkpointed_by_the_checkpointer() {
    let (store, dir) = sqlite_store().await;
    let database = dir.path().join("orgsync.db");
    let migrated = file_len(&database);
    // Far fewer pages than SQLite's own threshold (1 000): only the checkpointer, asked
    // after this many commits, copies them into the database file.
    for n in 0..super::super::checkpoint::COMMITS_PER_CHECKPOINT as u64 {
        let (raw, item) = incompressible(n, 4_000);
        store.ingest(Some(raw), &[item], 5).await.unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while file_len(&database) <= migrated {
        assert!(
            std::time::Instant::now() < deadline,
            "the database file never grew: nothing was checkpointed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded_under_a_steady_load() {
    const SENDERS: u64 = 8;
    const PER_SENDER: u64 = 100;
    const BODY: usize = 128 * 1024;
    let (store, dir) = sqlite_store().await;
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let store = store.clone();
        senders.push(tokio::spawn(async move {
            for i in 0..PER_SENDER {
                let (raw, item) = incompressible(s * PER_SENDER + i, BODY);
                store.ingest(Some(raw), &[item], 5).await.unwrap();
            }
        }));
    }
    for sender in senders {
        sender.await.unwrap();
    }
    // 100 MiB went through the WAL; it never held more than a few checkpoints' worth.
    let written = SENDERS * PER_SENDER * BODY as u64;
    let wal = file_len(&dir.path().join("orgsync.db-wal"));
    let bound = 3 * super::super::checkpoint::RESTART_FRAMES as u64 * 4_120;
    assert!(
        wal <= bound,
        "the WAL grew to {wal} bytes for {written} written (bound {bound})"
    );
    store.close().await;
}
