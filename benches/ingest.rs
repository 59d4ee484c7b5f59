//! System benchmark: webhook ingest throughput and latency of the real daemon (SQLite file,
//! verification, rules, one transaction per delivery) against a bare axum + Stripe
//! signature check baseline measured in the same run. Run with `cargo bench`; results go
//! to BENCHMARKS.md by hand. Traffic stays on loopback.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use orgsync::app::App;
use orgsync::config::Settings;
use orgsync::sources::{Delivery, Source, stripe_signature_header};
use orgsync::worker::now_ms;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "whsec_bench_secret";
const REQUESTS: usize = 4000;
const CONCURRENCY: usize = 32;

#[tokio::main]
async fn main() {
    let template =
        std::fs::read_to_string("tests/fixtures/stripe/event.customer.subscription.updated.json")
            .expect("run from the repository root");
    let env: HashMap<String, String> = [
        ("ORGSYNC_LISTEN", "127.0.0.1:0".to_owned()),
        ("STRIPE_WEBHOOK_SECRET", SECRET.to_owned()),
        ("ORGSYNC_LOG", "warn".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let lookup = |name: &str| env.get(name).cloned();

    let baseline = spawn_baseline(&lookup).await;
    let base = run(
        "baseline: axum + Stripe signature check, no store",
        baseline,
        &template,
    )
    .await;

    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings =
        Settings::load(std::path::Path::new("config/orgsync.toml"), &lookup).expect("config");
    // ORGSYNC_BENCH_DATABASE_URL points the run at another (empty) database, e.g. PostgreSQL.
    settings.database.url = std::env::var("ORGSYNC_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let backend = settings
        .database
        .url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let app = App::build(settings, &lookup).await.expect("app");
    let addr = app.local_addr();
    let token = CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(token.clone(), false));
    let label = format!("orgsync: verify + rules + {backend} transaction (group commit)");
    let daemon = run(&label, addr, &template).await;
    token.cancel();
    let _ = handle.await;

    println!(
        "\nratio: orgsync throughput is {:.0}% of the baseline; p50 latency {:.2} ms vs {:.2} ms",
        100.0 * daemon.throughput / base.throughput,
        daemon.p50_ms,
        base.p50_ms
    );
}

struct Measured {
    throughput: f64,
    p50_ms: f64,
}

async fn spawn_baseline(env: &dyn Fn(&str) -> Option<String>) -> std::net::SocketAddr {
    let settings =
        Settings::parse(&std::fs::read_to_string("config/orgsync.toml").unwrap()).unwrap();
    let config = settings
        .sources
        .iter()
        .find(|s| s.name == "stripe")
        .unwrap();
    let source = Arc::new(Source::from_config(config, env).unwrap());
    async fn verify(
        State(source): State<Arc<Source>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        let delivery = Delivery {
            headers: &headers,
            query: None,
            body: &body,
            now_unix: now_ms() / 1000,
        };
        match source.receive(&delivery) {
            Ok(_) => StatusCode::OK,
            Err(_) => StatusCode::BAD_REQUEST,
        }
    }
    let router = Router::new()
        .route("/webhooks/stripe", post(verify))
        .with_state(source);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

async fn run(label: &str, addr: std::net::SocketAddr, template: &str) -> Measured {
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/webhooks/stripe");
    let bodies: Vec<Vec<u8>> = (0..REQUESTS)
        .map(|i| {
            template
                .replacen("evt_", &format!("evt_bench{i}_"), 1)
                .into_bytes()
        })
        .collect();
    let bodies = Arc::new(bodies);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..CONCURRENCY {
        let (client, url, bodies) = (client.clone(), url.clone(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for body in bodies.iter().skip(worker).step_by(CONCURRENCY) {
                let signature = stripe_signature_header(SECRET, now_ms() / 1000, body);
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .header("stripe-signature", signature)
                    .body(body.clone())
                    .send()
                    .await
                    .expect("answer");
                assert!(
                    response.status().is_success(),
                    "status {}",
                    response.status()
                );
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_secs_f64()
            * 1000.0
    };
    let throughput = REQUESTS as f64 / elapsed.as_secs_f64();
    println!(
        "{label}\n  {REQUESTS} requests, {CONCURRENCY} concurrent: {throughput:.0} req/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
    Measured {
        throughput,
        p50_ms: pct(0.50),
    }
}
