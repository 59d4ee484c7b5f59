//! From webhook to Scalekit, with the stand-in answering after 30 ms: end-to-end latency
//! under an open-loop rate, Scalekit calls per event under a burst, and the drain rate
//! of a backlog stored while the workers were paused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orgsync::store::JobState;
use scalekit_standin::StandIn;
use serde_json::json;

use crate::support::{
    Daemon, Template, closed_loop, converge, pct_ms, round, send, sqlite_url, standin,
};

const LATENCY: Duration = Duration::from_millis(30);

/// `end_to_end`: 200 events/s for 20 s over 50 organizations, each a new `seats` value;
/// latency from each event's scheduled send time to the first PATCH carrying its value or
/// a newer one.
pub async fn end_to_end() -> String {
    const RATE: u64 = 200;
    const ORGS: u64 = 50;
    const EVENTS: u64 = RATE * 20;
    let standin = standin(ORGS, LATENCY).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::start(&sqlite_url(&dir), Some(&standin), true).await;
    let (url, template, client) = (
        daemon.stripe_url(),
        Arc::new(Template::load()),
        reqwest::Client::new(),
    );
    let scheduled: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let start = Instant::now() + Duration::from_millis(100);
    let mut tasks = Vec::new();
    for n in 0..EVENTS {
        let at = start + Duration::from_micros(n * 1_000_000 / RATE);
        scheduled.lock().expect("lock").insert(n, at);
        let (client, url, template) = (client.clone(), url.clone(), template.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            send(
                &client,
                &url,
                template.event(n, &format!("org_bench_{}", n % ORGS), 100 + n),
            )
            .await;
        }));
    }
    for task in tasks {
        task.await.expect("sender");
    }
    converge(&standin, ORGS, EVENTS).await;
    let scheduled = scheduled.lock().expect("lock").clone();
    let mut latencies = patch_latencies(&standin, &scheduled, ORGS);
    latencies.sort();
    daemon.stop().await;
    json!({
        "scenario": "end_to_end",
        "rate": RATE,
        "organizations": ORGS,
        "events": EVENTS,
        "measured": latencies.len(),
        "scalekit_latency_ms": LATENCY.as_millis() as u64,
        "p50_ms": pct_ms(&latencies, 0.5),
        "p99_ms": pct_ms(&latencies, 0.99),
        "max_ms": pct_ms(&latencies, 1.0),
        "calls_per_event": round(api_calls(&standin) as f64 / EVENTS as f64),
    })
    .to_string()
}

/// `burst`: 1000 events over 50 organizations (20 each) from 32 connections as fast as
/// possible; Scalekit API calls (lookups, PATCHes) per event once converged.
pub async fn burst() -> String {
    const ORGS: u64 = 50;
    const EVENTS: u64 = 1000;
    let standin = standin(ORGS, LATENCY).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::start(&sqlite_url(&dir), Some(&standin), true).await;
    let started = Instant::now();
    let template = Arc::new(Template::load());
    closed_loop(
        &daemon.stripe_url(),
        template,
        32,
        Duration::from_secs(600),
        EVENTS,
        ORGS,
    )
    .await;
    let acked = started.elapsed();
    converge(&standin, ORGS, EVENTS).await;
    let converged = started.elapsed();
    daemon.stop().await;
    let calls = api_calls(&standin);
    json!({
        "scenario": "burst",
        "events": EVENTS,
        "organizations": ORGS,
        "scalekit_latency_ms": LATENCY.as_millis() as u64,
        "calls": calls,
        "calls_per_event": round(calls as f64 / EVENTS as f64),
        "acked_s": round(acked.as_secs_f64()),
        "converged_s": round(converged.as_secs_f64()),
    })
    .to_string()
}

/// `drain`: 20 000 events over 10 000 organizations stored with the workers paused, then
/// a daemon with the default config drains them; targets per second until no job is left
/// (or until 180 s, reported as not drained).
pub async fn drain() -> String {
    const ORGS: u64 = 10_000;
    const EVENTS: u64 = 20_000;
    let standin = standin(ORGS, LATENCY).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = sqlite_url(&dir);
    let paused = Daemon::start(&url, None, false).await;
    let template = Arc::new(Template::load());
    closed_loop(
        &paused.stripe_url(),
        template,
        32,
        Duration::from_secs(600),
        EVENTS,
        ORGS,
    )
    .await;
    paused.stop().await;
    let daemon = Daemon::start(&url, Some(&standin), true).await;
    let jobs = open_jobs(&daemon).await;
    let started = Instant::now();
    let mut left = jobs;
    while left > 0 && started.elapsed() < Duration::from_secs(180) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        left = open_jobs(&daemon).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let targets = patched_targets(&standin);
    daemon.stop().await;
    json!({
        "scenario": "drain",
        "jobs": jobs,
        "targets": ORGS,
        "drained": left == 0,
        "seconds": round(elapsed),
        "scalekit_latency_ms": LATENCY.as_millis() as u64,
        "targets_per_s": round(targets as f64 / elapsed),
        "jobs_per_s": round((jobs - left) as f64 / elapsed),
    })
    .to_string()
}

/// Jobs not finished yet (pending or running).
async fn open_jobs(daemon: &Daemon) -> u64 {
    let counts = daemon.store.job_counts().await.expect("count");
    [JobState::Pending, JobState::Running]
        .iter()
        .map(|s| counts.get(s).copied().unwrap_or(0) as u64)
        .sum()
}

/// Distinct organizations that received a PATCH.
fn patched_targets(standin: &StandIn) -> usize {
    let mut paths: Vec<String> = standin
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.path)
        .collect();
    paths.sort();
    paths.dedup();
    paths.len()
}

/// Scalekit API calls (token requests aside).
fn api_calls(standin: &StandIn) -> usize {
    standin
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/api/"))
        .count()
}

/// For each event (`n` → scheduled time): the delay to the first PATCH of its
/// organization carrying its `seats` or a newer one.
fn patch_latencies(
    standin: &StandIn,
    scheduled: &HashMap<u64, Instant>,
    orgs: u64,
) -> Vec<Duration> {
    let mut by_org: HashMap<u64, Vec<(Instant, u64)>> = HashMap::new();
    for r in standin
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
    {
        let seats = r
            .body
            .as_ref()
            .and_then(|b| b["metadata"]["seats"].as_str()?.parse::<u64>().ok());
        if let Some(seats) = seats {
            by_org
                .entry((seats - 100) % orgs)
                .or_default()
                .push((r.at, seats));
        }
    }
    scheduled
        .iter()
        .filter_map(|(n, at)| {
            let patches = by_org.get(&(n % orgs))?;
            let first = patches
                .iter()
                .find(|(when, seats)| *seats >= 100 + n && when >= at)?;
            Some(first.0 - *at)
        })
        .collect()
}
