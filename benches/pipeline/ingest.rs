//! Ingest: unique signed Stripe events from 32 keep-alive connections for 10 s, against
//! a bare axum route doing the same signature check (the baseline, measured in the same
//! run); and storage: database growth per event against its raw body.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use orgsync::clock::Clock;
use orgsync::config::Settings;
use orgsync::sources::{Delivery, Source};
use serde_json::json;
use sqlx::Connection;
use tokio::sync::OnceCell;

use crate::support::{Daemon, Template, closed_loop, pct_ms, round, settings, sqlite_url};

const CONNECTIONS: usize = 32;
const DURATION: Duration = Duration::from_secs(10);

/// Throughput and latency of one load run.
#[derive(Clone, Copy)]
struct Run {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn load(url: &str) -> Run {
    let (latencies, elapsed) = closed_loop(
        url,
        Arc::new(Template::load()),
        CONNECTIONS,
        DURATION,
        u64::MAX,
        1000,
    )
    .await;
    Run {
        rps: round(latencies.len() as f64 / elapsed.as_secs_f64()),
        p50_ms: pct_ms(&latencies, 0.5),
        p99_ms: pct_ms(&latencies, 0.99),
    }
}

/// The baseline, measured once per benchmark process.
async fn baseline() -> Run {
    static BASELINE: OnceCell<Run> = OnceCell::const_new();
    *BASELINE
        .get_or_init(|| async {
            let url = spawn_baseline().await;
            load(&url).await
        })
        .await
}

fn line(scenario: &str, run: Run, base: Run) -> String {
    json!({
        "scenario": scenario,
        "rps": run.rps,
        "baseline_rps": base.rps,
        "ratio": round(run.rps / base.rps),
        "p50_ms": run.p50_ms,
        "p99_ms": run.p99_ms,
        "baseline_p99_ms": base.p99_ms,
    })
    .to_string()
}

/// `ingest_sqlite`: the daemon on a fresh SQLite file, workers off.
pub async fn sqlite() -> String {
    let base = baseline().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::start(&sqlite_url(&dir), None, false).await;
    let run = load(&daemon.stripe_url()).await;
    daemon.stop().await;
    line("ingest_sqlite", run, base)
}

/// `ingest_postgres`: the daemon on a fresh database of the server at
/// `ORGSYNC_BENCH_DATABASE_URL` (default: the local server), dropped afterwards.
pub async fn postgres() -> String {
    let server = std::env::var("ORGSYNC_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    sqlx::any::install_default_drivers();
    let mut admin = match sqlx::AnyConnection::connect(&server).await {
        Ok(conn) => conn,
        Err(e) => {
            return json!({"scenario": "ingest_postgres", "skipped": format!("{server}: {e}")})
                .to_string();
        }
    };
    let name = format!("orgsync_bench_{}", std::process::id());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create database");
    let (prefix, _) = server
        .split('?')
        .next()
        .unwrap_or(&server)
        .rsplit_once('/')
        .expect("url");
    let url = format!("{prefix}/{name}");
    let base = baseline().await;
    let daemon = Daemon::start(&url, None, false).await;
    let run = load(&daemon.stripe_url()).await;
    daemon.stop().await;
    let _ = sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await;
    line("ingest_postgres", run, base)
}

/// `storage`: 3000 events ingested into a fresh SQLite file; the growth of the database
/// (pages in use, after a checkpoint) per event, against the raw body's length.
pub async fn storage() -> String {
    const EVENTS: u64 = 3000;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = sqlite_url(&dir);
    let daemon = Daemon::start(&url, None, false).await;
    let before = used_bytes(&url).await;
    let template = Arc::new(Template::load());
    let raw = template.event(1, "org_bench_1", 101).len() as f64;
    let (latencies, _) = closed_loop(
        &daemon.stripe_url(),
        template,
        CONNECTIONS,
        Duration::from_secs(600),
        EVENTS,
        1000,
    )
    .await;
    daemon.stop().await;
    let after = used_bytes(&url).await;
    let stored = (after - before) as f64 / latencies.len() as f64;
    json!({
        "scenario": "storage",
        "events": latencies.len(),
        "raw_bytes_per_event": round(raw),
        "stored_bytes_per_event": round(stored),
        "ratio": round(stored / raw),
    })
    .to_string()
}

/// Bytes in use in the SQLite file once the WAL is checkpointed into it.
async fn used_bytes(url: &str) -> i64 {
    let mut conn = sqlx::SqliteConnection::connect(url).await.expect("sqlite");
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await
        .expect("checkpoint");
    let pages: (i64,) = sqlx::query_as("PRAGMA page_count")
        .fetch_one(&mut conn)
        .await
        .expect("pages");
    let free: (i64,) = sqlx::query_as("PRAGMA freelist_count")
        .fetch_one(&mut conn)
        .await
        .expect("free");
    let size: (i64,) = sqlx::query_as("PRAGMA page_size")
        .fetch_one(&mut conn)
        .await
        .expect("size");
    (pages.0 - free.0) * size.0
}

/// A bare axum route that runs the Stripe source's signature check and answers 200.
async fn spawn_baseline() -> String {
    let (settings, env): (Settings, _) = settings("sqlite::memory:", None);
    let lookup = |name: &str| env.get(name).cloned();
    let config = settings
        .sources
        .iter()
        .find(|s| s.name == "stripe")
        .expect("stripe source");
    let source = Arc::new(Source::from_config(config, &lookup).expect("source"));
    async fn verify(
        State(source): State<Arc<Source>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        let delivery = Delivery {
            headers: &headers,
            query: None,
            body: &body,
            now_unix: Clock::system().now_ms() / 1000,
        };
        match source.receive(&delivery) {
            Ok(_) => StatusCode::OK,
            Err(_) => StatusCode::BAD_REQUEST,
        }
    }
    let router = Router::new()
        .route("/webhooks/stripe", post(verify))
        .with_state(source);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/webhooks/stripe")
}
