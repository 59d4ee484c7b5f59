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

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use orgsync::app::{App, AppError};
use orgsync::clock::Clock;
use orgsync::config::Settings;
use orgsync::sources::stripe_signature_header;
use scalekit_standin::StandIn;
use serde_json::json;
use sqlx::{Connection, PgConnection};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "whsec_bench_secret";
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
        running.push(Replica::spawn(url, None, false).await);
    }
    let urls: Arc<Vec<String>> = Arc::new(running.iter().map(Replica::webhook_url).collect());
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
                post(&client, url, body).await;
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
            "p50_ms": round(pct(&latencies, 0.50)),
            "p99_ms": round(pct(&latencies, 0.99)),
        })
    );
    for replica in running {
        replica.stop().await;
    }
}

/// Open loop at `rate` events/s through two replicas with workers, to the 30 ms stand-in.
async fn end_to_end(url: &str, template: &str, rate: u64) {
    let standin = StandIn::start().await.expect("stand-in");
    standin.set_latency(SCALEKIT_LATENCY);
    for org in 0..ORGS {
        standin.create_organization(&format!("Org {org}"), Some(&org_id(org)), &[]);
    }
    let replicas = [
        Replica::spawn(url, Some(&standin), true).await,
        Replica::spawn(url, Some(&standin), true).await,
    ];
    let urls = [replicas[0].webhook_url(), replicas[1].webhook_url()];
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
            post(&client, &url, body).await;
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
    wait_until_applied(&standin, events).await;
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
            "p50_ms": round(pct(&acks, 0.50)),
            "p99_ms": round(pct(&acks, 0.99)),
            "patch_p50_ms": round(pct(&to_patch, 0.50)),
            "patch_p99_ms": round(pct(&to_patch, 0.99)),
            "calls_per_event": round(calls as f64 / events as f64),
        })
    );
    for replica in replicas {
        replica.stop().await;
    }
}

/// Waits until every organization shows the value of its newest event.
async fn wait_until_applied(standin: &StandIn, events: usize) {
    let newest: HashMap<usize, usize> = (0..events).map(|i| (i % ORGS, seats(i))).collect();
    let started = Instant::now();
    while !newest.iter().all(|(org, seats)| {
        standin
            .organization_by_external_id(&org_id(*org))
            .and_then(|o| o.metadata.get("seats").cloned())
            == Some(seats.to_string())
    }) {
        assert!(started.elapsed() < Duration::from_secs(300), "not applied");
        tokio::time::sleep(Duration::from_millis(10)).await;
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

/// A daemon on the shared database.
struct Replica {
    addr: SocketAddr,
    token: CancellationToken,
    handle: JoinHandle<Result<(), AppError>>,
}

impl Replica {
    /// Builds and runs a daemon with the default config; Scalekit credentials only with a
    /// stand-in.
    async fn spawn(url: &str, standin: Option<&StandIn>, run_workers: bool) -> Self {
        let mut env: HashMap<String, String> = HashMap::from([
            ("ORGSYNC_LISTEN".into(), "127.0.0.1:0".into()),
            ("ORGSYNC_DATABASE_URL".into(), url.to_owned()),
            ("STRIPE_WEBHOOK_SECRET".into(), SECRET.into()),
        ]);
        if let Some(standin) = standin {
            env.insert("SCALEKIT_ENVIRONMENT_URL".into(), standin.base_url());
            env.insert(
                "SCALEKIT_CLIENT_ID".into(),
                scalekit_standin::CLIENT_ID.into(),
            );
            env.insert(
                "SCALEKIT_CLIENT_SECRET".into(),
                scalekit_standin::CLIENT_SECRET.into(),
            );
        }
        let lookup = |name: &str| env.get(name).cloned();
        let settings =
            Settings::load(std::path::Path::new("config/orgsync.toml"), &lookup).expect("config");
        let app = App::build(settings, &lookup).await.expect("app");
        let addr = app.local_addr();
        let token = CancellationToken::new();
        let handle = tokio::spawn(app.run_until_stopped(token.clone(), run_workers));
        Self {
            addr,
            token,
            handle,
        }
    }

    fn webhook_url(&self) -> String {
        format!("http://{}/webhooks/stripe", self.addr)
    }

    async fn stop(self) {
        self.token.cancel();
        let _ = self.handle.await;
    }
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

/// POSTs a Stripe body signed now; panics unless it is acknowledged.
async fn post(client: &reqwest::Client, url: &str, body: String) {
    let signature =
        stripe_signature_header(SECRET, Clock::system().now_ms() / 1000, body.as_bytes());
    let response = client
        .post(url)
        .header("stripe-signature", signature)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("answer");
    assert!(response.status().is_success(), "{}", response.status());
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

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let Some(last) = sorted.len().checked_sub(1) else {
        return 0.0;
    };
    let index = ((sorted.len() as f64 * p) as usize).min(last);
    sorted[index].as_secs_f64() * 1000.0
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
