//! `GET /metrics`: the Prometheus text format, counters that move with deliveries and worker
//! passes, and the scrape-time gauges. Counters are process-wide and other tests run in the
//! same process, so the assertions compare two scrapes and ask for "at least".

use std::collections::{BTreeMap, HashMap};

use orgsync::sources::stripe_signature_header;
use orgsync::store::JobState;
use scalekit_standin::StandIn;

use crate::helpers::*;

/// One scrape: `name{k="v",...}` (labels sorted) → value.
struct Scrape(HashMap<String, f64>);

impl Scrape {
    /// The value of the series `name` with exactly `labels`, 0 when absent.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.0
            .get(&series_key(name, &labels))
            .copied()
            .unwrap_or(0.0)
    }

    /// Whether some series of `name` exists.
    fn has(&self, name: &str) -> bool {
        self.0
            .keys()
            .any(|key| key == name || key.starts_with(&format!("{name}{{")))
    }
}

fn series_key(name: &str, labels: &BTreeMap<String, String>) -> String {
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{name}{{{}}}", labels.join(","))
}

/// Parses the text format (no escaped quotes or commas in our label values).
fn parse(text: &str) -> Scrape {
    let mut series = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (key, value) = line.rsplit_once(' ').expect("a series line has a value");
        let (name, labels) = match key.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}')),
            None => (key, ""),
        };
        let labels: BTreeMap<String, String> = labels
            .split(',')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').expect("label=value");
                (k.to_owned(), v.trim_matches('"').to_owned())
            })
            .collect();
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
        series.insert(series_key(name, &labels), value);
    }
    Scrape(series)
}

async fn scrape(app: &TestApp) -> (String, Scrape) {
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    let parsed = parse(&text);
    (text, parsed)
}

#[tokio::test]
async fn deliveries_and_worker_passes_show_up_as_metrics() {
    let standin = StandIn::start().await.unwrap();
    standin.create_organization("Acme", Some("org_01HZX5K9M3ABCDEF"), &[]);
    let app = spawn_app_with(TestOptions {
        standin: Some(standin),
        ..Default::default()
    })
    .await;
    let (_, before) = scrape(&app).await;
    let fixtures = stripe_fixtures();
    for name in &fixtures {
        let response = app.post_stripe(&fixture(&format!("stripe/{name}"))).await;
        assert_eq!(response.status(), 200, "{name}");
    }
    let body = fixture("stripe/event.customer.created.json");
    assert_eq!(app.post_stripe(&body).await.status(), 200);
    let forged = stripe_signature_header("whsec_other", now_ms() / 1000, &body);
    assert_eq!(app.post_stripe_with(&body, &forged).await.status(), 400);
    let unknown = app.http.post(app.url("/webhooks/evt_nope")).body("{}");
    assert_eq!(unknown.send().await.unwrap().status(), 404);
    let done: usize = app.drain().await.iter().map(|r| r.done).sum();
    assert!(done > 0, "the fixtures make some jobs succeed");

    let (text, after) = scrape(&app).await;
    let delta =
        |name: &str, labels: &[(&str, &str)]| after.get(name, labels) - before.get(name, labels);
    let deliveries = "orgsync_webhook_deliveries_total";
    let stripe = ("source", "stripe");
    assert!(delta(deliveries, &[stripe, ("outcome", "accepted")]) >= fixtures.len() as f64);
    assert!(delta(deliveries, &[stripe, ("outcome", "duplicate")]) >= 1.0);
    assert!(delta(deliveries, &[stripe, ("outcome", "refused")]) >= 1.0);
    let unknown = [("source", "(unknown)"), ("outcome", "unknown_source")];
    assert!(delta(deliveries, &unknown) >= 1.0);
    let refusals = [stripe, ("kind", "NoMatchingSignature")];
    assert!(delta("orgsync_webhook_refusals_total", &refusals) >= 1.0);
    let ingested = delta("orgsync_webhook_ingest_seconds_count", &[stripe]);
    assert!(ingested >= fixtures.len() as f64 + 2.0, "{ingested}");
    assert!(after.has("orgsync_webhook_ingest_seconds_bucket"));

    let processed = delta("orgsync_jobs_processed_total", &[("outcome", "done")]);
    assert!(processed >= done as f64, "{processed} < {done}");
    assert!(after.has("orgsync_batches_total"));
    let tokens = [("operation", "token"), ("status", "200")];
    assert!(delta("orgsync_scalekit_requests_total", &tokens) >= 1.0);
    assert!(after.has("orgsync_scalekit_request_seconds_bucket"));

    // The gauges are this app's store, exactly.
    for state in [JobState::Done, JobState::Pending, JobState::Dead] {
        let in_store = app.jobs(Some(state)).await.len() as f64;
        assert_eq!(
            after.get("orgsync_jobs", &[("state", state.as_str())]),
            in_store
        );
    }
    assert_eq!(after.get("orgsync_workers_paused", &[]), 0.0);
    // No label carries an event, customer or path id.
    for id in ["evt_", "cus_", "sub_", "nope"] {
        assert!(!text.contains(id), "{id} in\n{text}");
    }
    app.stop().await;
}

#[tokio::test]
async fn paused_workers_and_an_empty_store_are_reported() {
    let app = spawn_app_with(TestOptions {
        scalekit: false,
        ..Default::default()
    })
    .await;
    let (text, metrics) = scrape(&app).await;
    assert_eq!(metrics.get("orgsync_workers_paused", &[]), 1.0);
    for state in ["pending", "running", "done", "skipped", "dead"] {
        assert_eq!(
            metrics.get("orgsync_jobs", &[("state", state)]),
            0.0,
            "{state}"
        );
    }
    assert!(text.contains("# TYPE orgsync_jobs gauge"), "{text}");
    app.stop().await;
}
