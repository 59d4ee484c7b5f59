//! System benchmark: end-to-end latency from a signed Stripe delivery to the PATCH that
//! carries its value reaching Scalekit (the stand-in, on loopback), Scalekit calls per
//! event, and peak memory. Run with `cargo bench --bench end_to_end`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orgsync::app::App;
use orgsync::config::Settings;
use orgsync::sources::stripe_signature_header;
use orgsync::worker::now_ms;
use scalekit_standin::StandIn;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "whsec_bench_secret";
const ORGS: usize = 50;
const EVENTS: usize = 1000;
const CONCURRENCY: usize = 16;

#[tokio::main]
async fn main() {
    let standin = StandIn::start().await.expect("stand-in");
    for org in 0..ORGS {
        standin.create_organization(
            &format!("Org {org}"),
            Some(&format!("org_bench_{org}")),
            &[],
        );
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let env: HashMap<String, String> = [
        ("ORGSYNC_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "ORGSYNC_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("bench.db").display()),
        ),
        ("STRIPE_WEBHOOK_SECRET", SECRET.to_owned()),
        ("SCALEKIT_ENVIRONMENT_URL", standin.base_url()),
        ("SCALEKIT_CLIENT_ID", scalekit_standin::CLIENT_ID.to_owned()),
        (
            "SCALEKIT_CLIENT_SECRET",
            scalekit_standin::CLIENT_SECRET.to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let lookup = |name: &str| env.get(name).cloned();
    let settings =
        Settings::load(std::path::Path::new("config/orgsync.toml"), &lookup).expect("config");
    let app = App::build(settings, &lookup).await.expect("app");
    let url = format!("http://{}/webhooks/stripe", app.local_addr());
    let token = CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(token.clone(), true));

    let template =
        std::fs::read_to_string("tests/fixtures/stripe/event.customer.subscription.updated.json")
            .expect("run from the repository root");
    let sent: Arc<std::sync::Mutex<HashMap<(usize, u64), Instant>>> = Arc::default();
    let started = Instant::now();
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for worker in 0..CONCURRENCY {
        let (client, url, template, sent) =
            (client.clone(), url.clone(), template.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            for i in (worker..EVENTS).step_by(CONCURRENCY) {
                let (org, seats) = (i % ORGS, 100 + i as u64);
                let body = event(&template, i, org, seats);
                let signature = stripe_signature_header(SECRET, now_ms() / 1000, body.as_bytes());
                sent.lock().unwrap().insert((org, seats), Instant::now());
                let response = client
                    .post(&url)
                    .header("stripe-signature", signature)
                    .body(body)
                    .send()
                    .await;
                assert!(response.expect("answer").status().is_success());
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let acked = started.elapsed();
    // Wait until every organization shows its newest value.
    let newest: HashMap<usize, u64> = (0..EVENTS).map(|i| (i % ORGS, 100 + i as u64)).collect();
    while !newest.iter().all(|(org, seats)| {
        standin
            .organization_by_external_id(&format!("org_bench_{org}"))
            .and_then(|o| o.metadata.get("seats").cloned())
            == Some(seats.to_string())
    }) {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "not converged"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let converged = started.elapsed();

    // Latency: from sending an event to the first PATCH that carried its value (events
    // merged into a later PATCH count until that PATCH).
    let requests = standin.requests();
    let sent = sent.lock().unwrap().clone();
    let mut latencies: Vec<Duration> = Vec::new();
    for ((org, seats), at) in sent.iter() {
        let first = requests.iter().find(|r| {
            r.method == "PATCH"
                && r.at >= *at
                && r.body
                    .as_ref()
                    .and_then(|b| b["metadata"]["seats"].as_str())
                    .and_then(|s| s.parse::<u64>().ok())
                    .is_some_and(|s| s >= *seats && (s - 100) as usize % ORGS == *org)
        });
        if let Some(request) = first {
            latencies.push(request.at - *at);
        }
    }
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_secs_f64()
            * 1000.0
    };
    let api_calls = requests
        .iter()
        .filter(|r| r.path.starts_with("/api/"))
        .count();
    let patches = requests.iter().filter(|r| r.method == "PATCH").count();
    println!(
        "{EVENTS} events over {ORGS} organizations, {CONCURRENCY} concurrent senders, 4 workers"
    );
    println!(
        "  all acknowledged after {:.2} s; Scalekit converged after {:.2} s",
        acked.as_secs_f64(),
        converged.as_secs_f64()
    );
    println!(
        "  delivery → PATCH latency ({} events measured): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "  Scalekit API calls: {api_calls} ({:.2} per event), of which {patches} PATCHes ({:.2} per event); {} token requests",
        api_calls as f64 / EVENTS as f64,
        patches as f64 / EVENTS as f64,
        standin.token_requests()
    );
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(line) = status.lines().find(|l| l.starts_with("VmHWM")) {
            println!(
                "  peak RSS of the whole benchmark process (daemon + senders + stand-in): {}",
                line.trim_start_matches("VmHWM:").trim()
            );
        }
    }
    token.cancel();
    let _ = handle.await;
}

/// The fixture with its own event id, organization, seats and `created`.
fn event(template: &str, i: usize, org: usize, seats: u64) -> String {
    let mut value: serde_json::Value = serde_json::from_str(template).unwrap();
    value["id"] = format!("evt_e2e_{i}").into();
    value["created"] = (1_800_000_000 + i as i64).into();
    value["data"]["object"]["metadata"]["org_id"] = format!("org_bench_{org}").into();
    value["data"]["object"]["items"]["data"][0]["quantity"] = seats.into();
    value.to_string()
}
