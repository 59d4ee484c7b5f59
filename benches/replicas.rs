//! System benchmark: orgsync replicas sharing one PostgreSQL database. Run with
//! `cargo bench --bench replicas` (release build); prints one JSON object per line:
//! - `replicas_ingest`, for one and for two replicas: unique signed Stripe events from 32
//!   keep-alive connections spread over the replicas for 10 s, workers off;
//! - `replicas_end_to_end`: two replicas with their workers, the Scalekit stand-in
//!   answering after 30 ms, events over 50 organizations sent at a fixed rate (open loop,
//!   alternately to each replica); acknowledgement latency and latency to the first PATCH
//!   that carries the event's value or a newer one, both from the scheduled send time.
//!
//! `ORGSYNC_BENCH_DATABASE_URL` names the server (default: the local one); each scenario
//! uses a fresh database, dropped afterwards. `ORGSYNC_BENCH_RATE` changes the rate
//! (default 200 events/s). Traffic stays on loopback.

// The pipeline benchmark's helpers: the daemon, signed sends, the stand-in, waiting,
// percentiles. This benchmark uses some of them.
#[allow(dead_code)]
#[path = "pipeline/support.rs"]
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use scalekit_standin::StandIn;
use serde_json::json;
use sqlx::{Connection, PgConnection};

use support::{Daemon, converge, pct_ms, round, send, standin};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const CONNECTIONS: usize = 32;
const INGEST_SECONDS: u64 = 10;
const ORGS: usize = 50;
const END_TO_END_SECONDS: u64 = 10;
const SCALEKIT_LATENCY: Duration = Duration::from_millis(30);

#[tokio::main]
async fn main() {
    let admin = std::env::var("ORGSYNC_BENCH_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.into());
    if let Err(e) = PgConnection::connect(&admin).await {
        let why = format!("no PostgreSQL server reachable: {e}");
        println!("{}", json!({"scenario": "replicas_ingest", "skipped": why}));
        return;
    }
    let template =
        std::fs::read_to_string("tests/fixtures/stripe/event.customer.subscription.updated.json")
            .expect("run from the repository root");
    for replicas in [1, 2] {
        let db = Db::create(&admin).await;
        ingest(&db.url, &template, replicas).await;
        db.drop().await;
    }
    let rate: u64 = std::env::var("ORGSYNC_BENCH_RATE")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(200);
    let db = Db::create(&admin).await;
    end_to_end(&db.url, &template, rate).await;
    db.drop().await;
}

/// Closed loop: as many unique events as the replicas take, spread over them.
async fn ingest(url: &str, template: &str, replicas: usize) {
    let mut running = Vec::new();
    for _ in 0..replicas {
        running.push(Daemon::start(url, None, false).await);
    }
    let urls: Arc<Vec<String>> = Arc::new(running.iter().map(Daemon::stripe_url).collect());
    let (client, counter) = (reqwest::Client::new(), Arc::new(AtomicUsize::new(0)));
    let deadline = Instant::now() + Duration::from_secs(INGEST_SECONDS);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for connection in 0..CONNECTIONS {
        let (client, urls, counter) = (client.clone(), urls.clone(), counter.clone());
        let template = template.to_owned();
        tasks.push(tokio::spawn(async move {
            let url = &urls[connection % urls.len()];
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                let body = template.replacen("evt_", &format!("evt_r{i}_"), 1);
                let sent = Instant::now();
                send(&client, url, body).await;
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("sender"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "{}",
        json!({
            "scenario": "replicas_ingest",
            "replicas": replicas,
            "connections": CONNECTIONS,
            "seconds": INGEST_SECONDS,
            "requests": latencies.len(),
            "rps": round(latencies.len() as f64 / elapsed),
            "p50_ms": pct_ms(&latencies, 0.50),
            "p99_ms": pct_ms(&latencies, 0.99),
        })
    );
    for replica in running {
        replica.stop().await;
    }
}

/// Open loop at `rate` events/s through two replicas with workers, to the 30 ms stand-in.
async fn end_to_end(url: &str, template: &str, rate: u64) {
    let standin = standin(ORGS as u64, SCALEKIT_LATENCY).await;
    let replicas = [
        Daemon::start(url, Some(&standin), true).await,
        Daemon::start(url, Some(&standin), true).await,
    ];
    let urls = [replicas[0].stripe_url(), replicas[1].stripe_url()];
    let events = usize::try_from(rate * END_TO_END_SECONDS).unwrap_or(usize::MAX);
    let bodies: Vec<String> = (0..events).map(|i| event(template, i)).collect();
    let client = reqwest::Client::new();
    let start = Instant::now() + Duration::from_millis(100);
    let mut sends = Vec::with_capacity(events);
    for (i, body) in bodies.into_iter().enumerate() {
        let at = start + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(at.into()).await;
        let (client, url) = (client.clone(), urls[i % 2].clone());
        sends.push(tokio::spawn(async move {
            send(&client, &url, body).await;
            (at, at.elapsed())
        }));
    }
    let mut scheduled = Vec::with_capacity(events);
    let mut acks = Vec::with_capacity(events);
    for send in sends {
        let (at, ack) = send.await.expect("sender");
        scheduled.push(at);
        acks.push(ack);
    }
    let acked = start.elapsed().as_secs_f64();
    converge(&standin, ORGS as u64, events as u64).await;
    let mut to_patch = patch_latencies(&standin, &scheduled);
    acks.sort();
    to_patch.sort();
    let calls = standin
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/api/"))
        .count();
    println!(
        "{}",
        json!({
            "scenario": "replicas_end_to_end",
            "replicas": 2,
            "rate": rate,
            "organizations": ORGS,
            "scalekit_latency_ms": SCALEKIT_LATENCY.as_millis(),
            "events": events,
            "rps": round(events as f64 / acked),
            "p50_ms": pct_ms(&acks, 0.50),
            "p99_ms": pct_ms(&acks, 0.99),
            "patch_p50_ms": pct_ms(&to_patch, 0.50),
            "patch_p99_ms": pct_ms(&to_patch, 0.99),
            "calls_per_event": round(calls as f64 / events as f64),
        })
    );
    for replica in replicas {
        replica.stop().await;
    }
}

/// Per event: from its scheduled send time to the first PATCH of its organization that
/// carries its seat count or a newer one.
fn patch_latencies(standin: &StandIn, scheduled: &[Instant]) -> Vec<Duration> {
    let mut patches: HashMap<usize, Vec<(Instant, usize)>> = HashMap::new();
    for request in standin.requests() {
        let seats = request
            .body
            .as_ref()
            .and_then(|b| b["metadata"]["seats"].as_str()?.parse::<usize>().ok());
        if let (true, Some(seats)) = (request.method == "PATCH", seats) {
            let event = seats.saturating_sub(SEATS_BASE);
            patches
                .entry(event % ORGS)
                .or_default()
                .push((request.at, event));
        }
    }
    scheduled
        .iter()
        .enumerate()
        .filter_map(|(i, at)| {
            let first = patches
                .get(&(i % ORGS))?
                .iter()
                .filter(|(when, event)| *event >= i && when >= at)
                .map(|(when, _)| *when)
                .min()?;
            Some(first - *at)
        })
        .collect()
}

/// A fresh database on the benchmark server.
struct Db {
    admin: String,
    name: String,
    url: String,
}

impl Db {
    async fn create(admin: &str) -> Self {
        let name = format!("orgsync_bench_{:016x}", rand::random::<u64>());
        let mut conn = PgConnection::connect(admin).await.expect("server");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create database");
        let (base, query) = admin.split_once('?').unwrap_or((admin, ""));
        let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
        let url = match query {
            "" => format!("{server}/{name}"),
            query => format!("{server}/{name}?{query}"),
        };
        Self {
            admin: admin.to_owned(),
            name,
            url,
        }
    }

    async fn drop(self) {
        let mut conn = PgConnection::connect(&self.admin).await.expect("server");
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        sqlx::query(&sql).execute(&mut conn).await.expect("drop");
    }
}

fn org_id(org: usize) -> String {
    format!("org_bench_{org}")
}

/// Event `i` sets `seats` to this plus `i`: the value tells which event it came from.
const SEATS_BASE: usize = 100;

fn seats(i: usize) -> usize {
    SEATS_BASE + i
}

/// The fixture as event `i`: its own id, organization (`i % ORGS`), seats and `created`
/// (newer for higher `i`).
fn event(template: &str, i: usize) -> String {
    let mut value: serde_json::Value = serde_json::from_str(template).expect("fixture");
    value["id"] = format!("evt_replicas_{i}").into();
    value["created"] = (1_800_000_000 + i).into();
    value["data"]["object"]["metadata"]["org_id"] = org_id(i % ORGS).into();
    value["data"]["object"]["items"]["data"][0]["quantity"] = seats(i).into();
    value.to_string()
}
