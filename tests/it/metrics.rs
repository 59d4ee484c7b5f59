//! `GET /metrics`: the Prometheus text format, counters that move with deliveries and worker
//! passes, and the scrape-time gauges. Every test app has its own registry, so the counts
//! are exact.

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

    /// The sum of every series of `name` whose labels include `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        self.0
            .iter()
            .filter(|(key, _)| key.starts_with(&format!("{name}{{")))
            .filter(|(key, _)| wanted.iter().all(|pair| key.contains(pair.as_str())))
            .map(|(_, value)| value)
            .sum()
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
async fn three_accepted_deliveries_count_three() {
    let app = spawn_app().await;
    for name in stripe_fixtures().iter().take(3) {
        let response = app.post_stripe(&fixture(&format!("stripe/{name}"))).await;
        assert_eq!(response.status(), 200, "{name}");
    }
    let text = app.metrics_text().await;
    let line = r#"orgsync_webhook_deliveries_total{source="stripe",outcome="accepted"} 3"#;
    assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    app.stop().await;
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
    assert_eq!(before.sum("orgsync_webhook_deliveries_total", &[]), 0.0);
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
    let reports = app.drain().await;
    let done: usize = reports.iter().map(|r| r.done).sum();
    assert!(done > 0, "the fixtures make some jobs succeed");

    let (text, after) = scrape(&app).await;
    let deliveries = "orgsync_webhook_deliveries_total";
    let stripe = ("source", "stripe");
    let count = |outcome| after.get(deliveries, &[stripe, ("outcome", outcome)]);
    assert_eq!(count("accepted"), fixtures.len() as f64);
    assert_eq!(count("duplicate"), 1.0);
    assert_eq!(count("refused"), 1.0);
    let unknown = [("source", "(unknown)"), ("outcome", "unknown_source")];
    assert_eq!(after.get(deliveries, &unknown), 1.0);
    assert_eq!(after.sum(deliveries, &[]), fixtures.len() as f64 + 3.0);
    let refusals = [stripe, ("kind", "NoMatchingSignature")];
    assert_eq!(after.get("orgsync_webhook_refusals_total", &refusals), 1.0);
    assert_eq!(after.sum("orgsync_webhook_refusals_total", &[]), 1.0);
    let ingested = after.get("orgsync_webhook_ingest_seconds_count", &[stripe]);
    assert_eq!(ingested, fixtures.len() as f64 + 2.0);
    let inf = [stripe, ("le", "+Inf")];
    assert_eq!(
        after.get("orgsync_webhook_ingest_seconds_bucket", &inf),
        ingested
    );

    let processed = |outcome| after.get("orgsync_jobs_processed_total", &[("outcome", outcome)]);
    let total = |field: fn(&orgsync::worker::BatchReport) -> usize| {
        reports.iter().map(field).sum::<usize>() as f64
    };
    assert_eq!(processed("done"), done as f64);
    assert_eq!(processed("retried"), total(|r| r.retried));
    assert_eq!(processed("dead"), total(|r| r.dead));
    assert_eq!(processed("skipped"), total(|r| r.skipped));
    let wrote = reports.iter().filter(|r| r.wrote).count() as f64;
    let batches = |wrote| after.get("orgsync_batches_total", &[("wrote", wrote)]);
    assert_eq!(batches("true"), wrote);
    assert_eq!(batches("false"), reports.len() as f64 - wrote);
    // Every Scalekit call the stand-in saw (the token included), and no other, is counted.
    let calls = "orgsync_scalekit_requests_total";
    let tokens = [("operation", "token"), ("status", "200")];
    assert_eq!(
        after.get(calls, &tokens),
        app.standin.token_requests() as f64
    );
    assert_eq!(after.sum(calls, &[]), app.standin.requests().len() as f64);
    let timed = after.sum("orgsync_scalekit_request_seconds_count", &[]);
    assert_eq!(timed, after.sum(calls, &[]));

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
