//! Logging: one `tracing` subscriber, text or JSON, written to a writer the caller picks
//! (stderr in the daemon, a sink in tests). Metrics: the Prometheus recorder behind
//! `GET /metrics` ([`metrics_handle`]) and the names of the metrics orgsync records.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// Installs the global subscriber with `filter` (e.g. `info`, `orgsync=debug`); `ansi`
/// colours text lines (for a terminal). Returns false when one was already installed.
pub fn init<W>(format: LogFormat, filter: &str, ansi: bool, writer: W) -> bool
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.try_init().is_ok(),
        LogFormat::Json => builder.json().flatten_event(true).try_init().is_ok(),
    }
}

/// `orgsync_webhook_deliveries_total{source, outcome}`: deliveries by how they were
/// answered (`accepted`, `duplicate`, `refused`, `unknown_source`, `unavailable`,
/// `store_error`).
pub const WEBHOOK_DELIVERIES: &str = "orgsync_webhook_deliveries_total";
/// `orgsync_webhook_refusals_total{source, kind}`: refused deliveries by reason.
pub const WEBHOOK_REFUSALS: &str = "orgsync_webhook_refusals_total";
/// `orgsync_versions_capped_total{source}`: events whose version (Stripe `created`,
/// `SystemModstamp`, `occurred_at`) lay beyond the future skew and was capped at arrival.
pub const VERSIONS_CAPPED: &str = "orgsync_versions_capped_total";
/// `orgsync_webhook_ingest_seconds{source}`: from the body read to the answer.
pub const WEBHOOK_INGEST_SECONDS: &str = "orgsync_webhook_ingest_seconds";
/// `orgsync_jobs_processed_total{outcome}`: jobs by what a worker pass did with them.
pub const JOBS_PROCESSED: &str = "orgsync_jobs_processed_total";
/// `orgsync_batches_total{wrote}`: processed batches, by whether Scalekit was written to.
pub const BATCHES: &str = "orgsync_batches_total";
/// `orgsync_scalekit_requests_total{operation, status}`: Scalekit calls by HTTP status
/// (or `transport` when no answer came).
pub const SCALEKIT_REQUESTS: &str = "orgsync_scalekit_requests_total";
/// `orgsync_scalekit_request_seconds{operation}`: Scalekit call latency.
pub const SCALEKIT_REQUEST_SECONDS: &str = "orgsync_scalekit_request_seconds";
/// The `source` label of a delivery to a source that is not configured (the path segment
/// is never used as a label: anyone can choose it).
pub const UNKNOWN_SOURCE: &str = "(unknown)";

/// Histogram buckets for the latency metrics, in seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The process's Prometheus recorder. The `metrics` facade has one global recorder per
/// process, so the first call builds it, installs it globally, describes the metrics and
/// starts the upkeep thread; every later call returns the same handle. The router and the
/// worker loop call this, so metrics are recorded from the first request or pass on.
/// (If some other recorder was installed first, ours stays empty and a warning is logged.)
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let builder = match builder.set_buckets(&LATENCY_BUCKETS) {
            Ok(builder) => builder,
            Err(_) => PrometheusBuilder::new(),
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics shows only gauges");
        }
        describe_metrics();
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("orgsync-metrics".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no metrics upkeep thread; histograms are folded at scrape time only");
        }
        handle
    })
}

fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_counter!(
        WEBHOOK_DELIVERIES,
        "Webhook deliveries by source and outcome."
    );
    describe_counter!(
        WEBHOOK_REFUSALS,
        "Refused webhook deliveries by source and reason."
    );
    describe_counter!(
        VERSIONS_CAPPED,
        "Events whose version was in the future and was capped at the arrival time."
    );
    describe_histogram!(
        WEBHOOK_INGEST_SECONDS,
        Unit::Seconds,
        "Time from reading a webhook body to answering it."
    );
    describe_counter!(JOBS_PROCESSED, "Jobs processed by the workers, by outcome.");
    describe_counter!(
        BATCHES,
        "Batches processed, by whether Scalekit was written to."
    );
    describe_counter!(
        SCALEKIT_REQUESTS,
        "Scalekit API calls by operation and status."
    );
    describe_histogram!(
        SCALEKIT_REQUEST_SECONDS,
        Unit::Seconds,
        "Scalekit API call latency by operation."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorder_is_built_once_and_renders_what_is_recorded() {
        let first: *const PrometheusHandle = metrics_handle();
        assert!(std::ptr::eq(first, metrics_handle()));
        metrics::counter!(BATCHES, "wrote" => "telemetry-test").increment(2);
        metrics::histogram!(SCALEKIT_REQUEST_SECONDS, "operation" => "telemetry-test")
            .record(0.003);
        let text = metrics_handle().render();
        assert!(
            text.contains("# TYPE orgsync_batches_total counter"),
            "{text}"
        );
        assert!(
            text.contains(r#"orgsync_batches_total{wrote="telemetry-test"} 2"#),
            "{text}"
        );
        let bucket =
            r#"orgsync_scalekit_request_seconds_bucket{operation="telemetry-test",le="0.005"} 1"#;
        assert!(text.contains(bucket), "{text}");
    }
}
