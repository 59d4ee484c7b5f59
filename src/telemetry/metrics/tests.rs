use super::*;

fn render(metrics: &Metrics) -> String {
    let state = ScrapeState {
        workers_paused: false,
        jobs: None,
    };
    metrics.render(&state).expect("renders")
}

/// The value of the series written exactly as `series`, if the text has it.
fn value(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(str::to_owned)
}

#[test]
fn each_registry_counts_only_what_was_recorded_on_it() {
    let (mine, other) = (Metrics::new(), Metrics::new());
    for _ in 0..3 {
        mine.delivery("stripe", "accepted");
    }
    other.delivery("stripe", "accepted");
    mine.refusal("stripe", "NoMatchingSignature");
    mine.versions_capped("salesforce", 2);
    let text = render(&mine);
    let accepted = r#"orgsync_webhook_deliveries_total{source="stripe",outcome="accepted"}"#;
    assert_eq!(value(&text, accepted).as_deref(), Some("3"), "{text}");
    assert_eq!(value(&render(&other), accepted).as_deref(), Some("1"));
    let refused = r#"orgsync_webhook_refusals_total{source="stripe",kind="NoMatchingSignature"}"#;
    assert_eq!(value(&text, refused).as_deref(), Some("1"), "{text}");
    let capped = r#"orgsync_versions_capped_total{source="salesforce"}"#;
    assert_eq!(value(&text, capped).as_deref(), Some("2"), "{text}");
}

/// (A family no series was recorded in is left out of the text, as before.)
#[test]
fn names_help_texts_and_types_are_the_documented_ones() {
    let metrics = Metrics::new();
    metrics.batch(true);
    metrics.jobs_processed("done", 4);
    metrics.delivery("stripe", "accepted");
    metrics.ingest_time("stripe", Duration::from_millis(1));
    metrics.scalekit_call("token", Some(200), Duration::from_millis(1));
    let state = ScrapeState {
        workers_paused: false,
        jobs: Some(BTreeMap::from([("done".to_owned(), 0)])),
    };
    let text = metrics.render(&state).unwrap();
    for line in [
        "# HELP orgsync_webhook_deliveries_total Webhook deliveries by source and outcome.",
        "# TYPE orgsync_webhook_deliveries_total counter",
        "# HELP orgsync_batches_total Batches processed, by whether Scalekit was written to.",
        "# TYPE orgsync_webhook_ingest_seconds histogram",
        "# TYPE orgsync_scalekit_request_seconds histogram",
        "# HELP orgsync_jobs Jobs in the store by state.",
        "# TYPE orgsync_jobs gauge",
        r#"orgsync_batches_total{wrote="true"} 1"#,
        r#"orgsync_jobs_processed_total{outcome="done"} 4"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
}

#[test]
fn latencies_fall_into_their_buckets() {
    let metrics = Metrics::new();
    metrics.scalekit_call("token", Some(200), Duration::from_millis(3));
    metrics.scalekit_call("token", None, Duration::from_millis(30));
    metrics.ingest_time("stripe", Duration::from_micros(700));
    let text = render(&metrics);
    for (series, expected) in [
        (
            r#"orgsync_scalekit_requests_total{operation="token",status="200"}"#,
            "1",
        ),
        (
            r#"orgsync_scalekit_requests_total{operation="token",status="transport"}"#,
            "1",
        ),
        (
            r#"orgsync_scalekit_request_seconds_bucket{operation="token",le="0.005"}"#,
            "1",
        ),
        (
            r#"orgsync_scalekit_request_seconds_bucket{operation="token",le="0.05"}"#,
            "2",
        ),
        (
            r#"orgsync_scalekit_request_seconds_count{operation="token"}"#,
            "2",
        ),
        (
            r#"orgsync_webhook_ingest_seconds_bucket{source="stripe",le="0.0005"}"#,
            "0",
        ),
        (
            r#"orgsync_webhook_ingest_seconds_bucket{source="stripe",le="0.001"}"#,
            "1",
        ),
    ] {
        assert_eq!(
            value(&text, series).as_deref(),
            Some(expected),
            "{series} in\n{text}"
        );
    }
}

#[test]
fn scrape_time_gauges_show_this_scrape_only() {
    let metrics = Metrics::new();
    let first = ScrapeState {
        workers_paused: true,
        jobs: Some(BTreeMap::from([
            ("done".to_owned(), 3),
            ("odd".to_owned(), 1),
        ])),
    };
    let text = metrics.render(&first).unwrap();
    assert_eq!(value(&text, "orgsync_workers_paused").as_deref(), Some("1"));
    assert_eq!(
        value(&text, r#"orgsync_jobs{state="done"}"#).as_deref(),
        Some("3")
    );
    assert_eq!(
        value(&text, r#"orgsync_jobs{state="odd"}"#).as_deref(),
        Some("1")
    );
    let second = ScrapeState {
        workers_paused: false,
        jobs: Some(BTreeMap::from([("done".to_owned(), 5)])),
    };
    let text = metrics.render(&second).unwrap();
    assert_eq!(value(&text, "orgsync_workers_paused").as_deref(), Some("0"));
    assert_eq!(
        value(&text, r#"orgsync_jobs{state="done"}"#).as_deref(),
        Some("5")
    );
    assert_eq!(value(&text, r#"orgsync_jobs{state="odd"}"#), None, "{text}");
}

#[test]
fn open_connections_go_up_and_down() {
    let metrics = Metrics::new();
    let (a, b) = (
        metrics.connections_open("public"),
        metrics.connections_open("public"),
    );
    a.inc();
    b.inc();
    a.dec();
    metrics.connection_refused("admin");
    let text = render(&metrics);
    let open = r#"orgsync_http_connections_open{listener="public"}"#;
    assert_eq!(value(&text, open).as_deref(), Some("1"), "{text}");
    let refused = r#"orgsync_http_connections_refused_total{listener="admin"}"#;
    assert_eq!(value(&text, refused).as_deref(), Some("1"), "{text}");
}

#[test]
fn drift_gauges_appear_with_the_first_full_check() {
    let metrics = Metrics::new();
    assert!(!render(&metrics).contains("orgsync_drift"));
    metrics.drift_checked(3, 1_700_000_000_500);
    let text = render(&metrics);
    assert_eq!(
        value(&text, "orgsync_drifted_keys").as_deref(),
        Some("3"),
        "{text}"
    );
    let at = value(&text, "orgsync_drift_last_check_timestamp_seconds").unwrap();
    assert_eq!(at.parse::<f64>().unwrap(), 1_700_000_000.5);
    assert!(text.contains("# TYPE orgsync_drifted_keys gauge"), "{text}");
}
