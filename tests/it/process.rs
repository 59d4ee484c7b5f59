//! The real binary: SIGKILL while a stream of signed events arrives (leases, durability,
//! idempotent re-runs), and SIGTERM (stop accepting, finish or hand back, exit 0).

mod daemon;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orgsync::store::{EventFilter, JobState, Store};
use scalekit_standin::StandIn;

use crate::helpers::{post_signed, wait_for};
use crate::semantics::support::{BASE, subscription};
use daemon::{Daemon, config_file, daemon_log, db_url, free_port};

const STATUSES: [&str; 4] = ["trialing", "active", "past_due", "canceled"];

/// One event of the stream: organization `i % orgs`, `created` and seats growing with `i`.
fn stream_event(i: usize, orgs: usize) -> Vec<u8> {
    let (id, org) = (format!("evt_kill_{i}"), format!("org_kill_{}", i % orgs));
    subscription(&id, BASE + i as i64, &org, STATUSES[i % 4], i as u64 + 1)
}

/// What each organization must end with: its newest event's seats and status.
fn model(n: usize, orgs: usize) -> BTreeMap<String, (String, String)> {
    (0..n)
        .map(|i| {
            (
                format!("org_kill_{}", i % orgs),
                ((i + 1).to_string(), STATUSES[i % 4].to_owned()),
            )
        })
        .collect()
}

fn observed(standin: &StandIn, orgs: usize) -> BTreeMap<String, (String, String)> {
    (0..orgs)
        .filter_map(|o| {
            let org = format!("org_kill_{o}");
            let m = standin.organization_by_external_id(&org)?.metadata;
            Some((
                org,
                (
                    m.get("seats")?.clone(),
                    m.get("subscription_status")?.clone(),
                ),
            ))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_stream_loses_no_acknowledged_event_and_restart_converges() {
    const N: usize = 200;
    const ORGS: usize = 5;
    let standin = StandIn::start().await.unwrap();
    for o in 0..ORGS {
        standin.create_organization("Kill", Some(&format!("org_kill_{o}")), &[]);
    }
    standin.set_latency(Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    config_file(dir.path(), 8);
    let port = free_port();
    let mut daemon = Daemon::start(dir.path(), port, &standin).await;

    // Four senders stream the events, about 200 a second; SIGKILL at half of them acked.
    let acked = Arc::new(Mutex::new(vec![false; N]));
    let next = Arc::new(AtomicUsize::new(0));
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (acked, next, addr) = (acked.clone(), next.clone(), daemon.addr.clone());
        senders.spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= N {
                    break;
                }
                if let Ok(200) = post_signed(&http, &addr, &stream_event(i, ORGS)).await {
                    acked.lock().unwrap()[i] = true;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
    let count = |acked: &Mutex<Vec<bool>>| acked.lock().unwrap().iter().filter(|a| **a).count();
    wait_for(
        Duration::from_secs(30),
        "half the events acked",
        async || count(&acked) >= N / 2,
    )
    .await;
    daemon.child.kill().unwrap();
    daemon.child.wait().unwrap();
    senders.join_all().await;
    let acked_first: Vec<bool> = acked.lock().unwrap().clone();

    // Every acknowledged event is in the store; some jobs were in flight.
    let store = Store::connect(&db_url(dir.path())).await.unwrap();
    let stored: HashSet<String> = store
        .list_events(&EventFilter {
            limit: 10_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.provider_event_id)
        .collect();
    for (i, acked) in acked_first.iter().enumerate() {
        assert!(
            !acked || stored.contains(&format!("evt_kill_{i}")),
            "event {i} was acked but not stored"
        );
    }
    let counts = store.job_counts().await.unwrap();
    let in_flight = counts.get(&JobState::Running).copied().unwrap_or(0);
    eprintln!(
        "SIGKILL after {} of {N} acked ({} stored); jobs at the kill: {counts:?}",
        count(&acked),
        stored.len()
    );
    assert!(
        in_flight > 0,
        "no job was in flight at the kill: {counts:?}"
    );

    // Restart on the same store; redeliver what was not acked (as Stripe does) and a few
    // acked events (duplicates).
    standin.set_latency(Duration::from_millis(20));
    let daemon = Daemon::start(dir.path(), port, &standin).await;
    let http = reqwest::Client::new();
    let redeliver = (0..N).filter(|i| !acked_first[*i] || i % 20 == 0);
    for i in redeliver {
        assert_eq!(
            post_signed(&http, &daemon.addr, &stream_event(i, ORGS))
                .await
                .unwrap(),
            200,
            "event {i}"
        );
    }
    let want = model(N, ORGS);
    wait_for(Duration::from_secs(60), "the model's state", async || {
        observed(&standin, ORGS) == want
    })
    .await;
    wait_for(Duration::from_secs(30), "an empty queue", async || {
        let counts = store.job_counts().await.unwrap();
        counts.iter().all(|(s, n)| *s == JobState::Done || *n == 0)
    })
    .await;
    assert_eq!(
        store
            .list_jobs(Some(JobState::Done), 10_000)
            .await
            .unwrap()
            .len(),
        N
    );

    // No organization was ever written an older value after a newer one.
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    for r in standin
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.status == Some(200))
    {
        let seats: u64 = r.body.as_ref().unwrap()["metadata"]["seats"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let before = last.insert(r.path.clone(), seats).unwrap_or(0);
        assert!(
            seats > before,
            "{} went from {before} seats back to {seats}",
            r.path
        );
    }
    eprintln!(
        "PATCHes: {}",
        standin
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH")
            .count()
    );
    drop(daemon);
    store.close().await;
}

/// Posts one event per organization and waits until Scalekit sees every lookup.
async fn start_batches(daemon: &Daemon, standin: &StandIn, orgs: &[&str]) {
    let http = reqwest::Client::new();
    for (i, org) in orgs.iter().enumerate() {
        let body = subscription(&format!("evt_term_{i}"), BASE, org, "active", 9);
        assert_eq!(post_signed(&http, &daemon.addr, &body).await.unwrap(), 200);
    }
    let lookups = || {
        standin
            .requests()
            .iter()
            .filter(|r| r.method == "GET")
            .count()
    };
    wait_for(
        Duration::from_secs(10),
        "every lookup in flight",
        async || lookups() == orgs.len(),
    )
    .await;
}

/// After SIGTERM, new connections are refused while the process still finishes its work
/// (the stand-in holds the answers its batches wait for).
async fn refuses_new_deliveries(daemon: &mut Daemon) {
    let http = reqwest::Client::new();
    let body = subscription("evt_term_late", BASE, "org_term_late", "active", 1);
    wait_for(
        Duration::from_secs(30),
        "refusing deliveries after SIGTERM",
        async || post_signed(&http, &daemon.addr, &body).await.is_err(),
    )
    .await;
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "exited before its batches finished"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_accepting_finishes_the_batches_in_progress_and_exits_0() {
    let orgs = ["org_term_0", "org_term_1", "org_term_2"];
    let standin = StandIn::start().await.unwrap();
    for org in orgs {
        standin.create_organization(org, Some(org), &[]);
    }
    // The batches' answers are held until the daemon refuses new deliveries; then they
    // finish well inside the 8 s grace.
    standin.hold_answers(true);
    let dir = tempfile::tempdir().unwrap();
    config_file(dir.path(), 8);
    let mut daemon = Daemon::start(dir.path(), free_port(), &standin).await;
    start_batches(&daemon, &standin, &orgs).await;
    daemon.terminate();
    refuses_new_deliveries(&mut daemon).await;
    standin.hold_answers(false);
    let status = daemon.wait(Duration::from_secs(30)).await;
    assert!(status.success(), "{status}: {}", daemon_log(dir.path()));
    for org in orgs {
        let seats = standin
            .organization_by_external_id(org)
            .unwrap()
            .metadata
            .get("seats")
            .cloned();
        assert_eq!(seats.as_deref(), Some("9"), "{org}");
    }
    let store = Store::connect(&db_url(dir.path())).await.unwrap();
    // The batches in progress finished. A probe delivery that arrived before the signal
    // took effect may have been accepted: it is kept, pending, for the next start.
    let jobs = store.list_jobs(None, 100).await.unwrap();
    let done = jobs.iter().filter(|j| j.state == JobState::Done).count();
    assert_eq!(done, 3, "{jobs:?}");
    assert!(
        jobs.iter()
            .filter(|j| j.state != JobState::Done)
            .all(|j| j.state == JobState::Pending && j.target_key == "org:org_term_late"),
        "{jobs:?}"
    );
    assert!(daemon_log(dir.path()).contains("stopped"));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_past_the_grace_hands_the_jobs_back_and_exits_0() {
    let orgs = ["org_term_a", "org_term_b"];
    let standin = StandIn::start().await.unwrap();
    for org in orgs {
        standin.create_organization(org, Some(org), &[]);
    }
    // Answers held past the 1 s grace: the lookups are still out when it ends, and the
    // process exits without them.
    standin.hold_answers(true);
    let dir = tempfile::tempdir().unwrap();
    config_file(dir.path(), 1);
    let port = free_port();
    let mut daemon = Daemon::start(dir.path(), port, &standin).await;
    start_batches(&daemon, &standin, &orgs).await;
    daemon.terminate();
    refuses_new_deliveries(&mut daemon).await;
    // It exits while the answers are still held.
    let status = daemon.wait(Duration::from_secs(30)).await;
    assert!(status.success(), "{status}: {}", daemon_log(dir.path()));
    let store = Store::connect(&db_url(dir.path())).await.unwrap();
    // Every job is pending and due: the two in progress were handed back (a probe
    // delivery that arrived before the signal took effect may be pending too).
    let jobs = store.list_jobs(None, 10).await.unwrap();
    assert!(
        jobs.iter()
            .all(|j| j.state == JobState::Pending && j.run_at_ms <= crate::helpers::now_ms()),
        "released, not left running: {jobs:?}"
    );
    let released = jobs
        .iter()
        .filter(|j| j.target_key != "org:org_term_late")
        .count();
    assert_eq!(released, 2, "{jobs:?}");
    assert!(
        daemon_log(dir.path()).contains("released"),
        "{}",
        daemon_log(dir.path())
    );

    // Pending and due (above), not leased: a new process takes them at once.
    standin.hold_answers(false);
    let _daemon = Daemon::start(dir.path(), port, &standin).await;
    wait_for(Duration::from_secs(30), "both applied", async || {
        orgs.iter().all(|org| {
            standin
                .organization_by_external_id(org)
                .unwrap()
                .metadata
                .contains_key("seats")
        })
    })
    .await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_within_the_grace_with_silent_and_stalled_connections_open() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let standin = StandIn::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    config_file(dir.path(), 1);
    let mut daemon = Daemon::start(dir.path(), free_port(), &standin).await;
    // One connection that never sends a byte, one stalled in the middle of a body.
    let mut silent = tokio::net::TcpStream::connect(&daemon.addr).await.unwrap();
    let mut stalled = tokio::net::TcpStream::connect(&daemon.addr).await.unwrap();
    stalled
        .write_all(b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{")
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let probe = format!("http://{}/healthz", daemon.addr);
    assert_eq!(http.get(probe).send().await.unwrap().status(), 200);
    daemon.terminate();
    // Far below the 10 s request timeout that would otherwise end the stalled request.
    let status = daemon.wait(Duration::from_secs(8)).await;
    assert!(status.success(), "{status}: {}", daemon_log(dir.path()));
    let mut rest = Vec::new();
    for stream in [&mut silent, &mut stalled] {
        let _ = stream.read_to_end(&mut rest).await;
    }
}
