//! The app's Prometheus registry ([`Metrics`]): created with the app and handed to what
//! records (the webhook handler, the workers, the Scalekit client, the listeners, the drift
//! check), so every app — and every test's app — counts only its own work. Recording goes
//! through typed label sets; `GET /metrics` renders the registry in the Prometheus text
//! format after setting the gauges that are read at scrape time.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The content type of what [`Metrics::render`] writes (the text format, version 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The `source` label of a delivery to a source that is not configured (the path segment
/// is never used as a label: anyone can choose it).
pub const UNKNOWN_SOURCE: &str = "(unknown)";

/// Histogram buckets for the latency metrics, in seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A histogram family with [`LATENCY_BUCKETS`].
type Latency<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceOutcome {
    source: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceKind {
    source: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WroteLabel {
    wrote: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    operation: &'static str,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabel {
    listener: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

/// What `GET /metrics` reads from the app just before rendering.
pub struct ScrapeState {
    /// Whether the workers are paused (no Scalekit credentials).
    pub workers_paused: bool,
    /// Jobs in the store per state; `None` when they could not be counted (then
    /// `orgsync_jobs` has no series in this scrape rather than stale ones).
    pub jobs: Option<BTreeMap<String, i64>>,
}

/// One app's metrics: the registry and a typed handle on every family in it.
pub struct Metrics {
    registry: Registry,
    deliveries: Family<SourceOutcome, Counter>,
    refusals: Family<SourceKind, Counter>,
    versions_capped: Family<SourceLabel, Counter>,
    ingest_seconds: Latency<SourceLabel>,
    jobs_processed: Family<OutcomeLabel, Counter>,
    batches: Family<WroteLabel, Counter>,
    scalekit_requests: Family<CallLabels, Counter>,
    scalekit_seconds: Latency<OperationLabel>,
    connections_refused: Family<ListenerLabel, Counter>,
    connections_open: Family<ListenerLabel, Gauge>,
    jobs: Family<StateLabel, Gauge>,
    workers_paused: Gauge,
    drift: std::sync::Arc<DriftGauges>,
    /// Held while one scrape sets the scrape-time gauges and renders, so two concurrent
    /// scrapes never render each other's half-set gauges.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry with every orgsync metric registered, all empty.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let deliveries = Family::default();
        // Counters get their `_total` suffix and units their `_seconds` from the library;
        // it also ends every help text with a full stop.
        registry.register(
            "orgsync_webhook_deliveries",
            "Webhook deliveries by source and outcome",
            deliveries.clone(),
        );
        let refusals = Family::default();
        registry.register(
            "orgsync_webhook_refusals",
            "Refused webhook deliveries by source and reason",
            refusals.clone(),
        );
        let versions_capped = Family::default();
        registry.register(
            "orgsync_versions_capped",
            "Events whose version was in the future and was capped at the arrival time",
            versions_capped.clone(),
        );
        let ingest_seconds: Latency<SourceLabel> = Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "orgsync_webhook_ingest",
            "Time from reading a webhook body to answering it",
            Unit::Seconds,
            ingest_seconds.clone(),
        );
        let jobs_processed = Family::default();
        registry.register(
            "orgsync_jobs_processed",
            "Jobs processed by the workers, by outcome",
            jobs_processed.clone(),
        );
        let batches = Family::default();
        registry.register(
            "orgsync_batches",
            "Batches processed, by whether Scalekit was written to",
            batches.clone(),
        );
        let scalekit_requests = Family::default();
        registry.register(
            "orgsync_scalekit_requests",
            "Scalekit API calls by operation and status",
            scalekit_requests.clone(),
        );
        let scalekit_seconds: Latency<OperationLabel> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "orgsync_scalekit_request",
            "Scalekit API call latency by operation",
            Unit::Seconds,
            scalekit_seconds.clone(),
        );
        let connections_refused = Family::default();
        registry.register(
            "orgsync_http_connections_refused",
            "Connections refused because the listener had server.max_connections open",
            connections_refused.clone(),
        );
        let connections_open = Family::default();
        registry.register(
            "orgsync_http_connections_open",
            "Connections open now, per listener",
            connections_open.clone(),
        );
        let workers_paused = Gauge::default();
        registry.register(
            "orgsync_workers_paused",
            "1 when the workers are paused (no Scalekit credentials), else 0",
            workers_paused.clone(),
        );
        let jobs = Family::default();
        registry.register("orgsync_jobs", "Jobs in the store by state", jobs.clone());
        let drift = std::sync::Arc::new(DriftGauges::default());
        registry.register_collector(Box::new(drift.clone()));
        Self {
            registry,
            deliveries,
            refusals,
            versions_capped,
            ingest_seconds,
            jobs_processed,
            batches,
            scalekit_requests,
            scalekit_seconds,
            connections_refused,
            connections_open,
            jobs,
            workers_paused,
            drift,
            scrape: Mutex::new(()),
        }
    }

    /// Counts one answered delivery in `orgsync_webhook_deliveries_total{source, outcome}`
    /// (`accepted`, `duplicate`, `refused`, `unknown_source`, `unavailable`,
    /// `store_error`); `source` is a configured name or [`UNKNOWN_SOURCE`].
    pub fn delivery(&self, source: &str, outcome: &'static str) {
        let labels = SourceOutcome {
            source: source.to_owned(),
            outcome,
        };
        self.deliveries.get_or_create(&labels).inc();
    }

    /// Counts one refused delivery in `orgsync_webhook_refusals_total{source, kind}`.
    pub fn refusal(&self, source: &str, kind: &'static str) {
        let labels = SourceKind {
            source: source.to_owned(),
            kind,
        };
        self.refusals.get_or_create(&labels).inc();
    }

    /// Adds `events` to `orgsync_versions_capped_total{source}`: events whose version
    /// (Stripe `created`, `SystemModstamp`, `occurred_at`) lay beyond the future skew.
    pub fn versions_capped(&self, source: &str, events: u64) {
        let labels = SourceLabel {
            source: source.to_owned(),
        };
        self.versions_capped.get_or_create(&labels).inc_by(events);
    }

    /// Records `orgsync_webhook_ingest_seconds{source}`: from the body read to the answer.
    pub fn ingest_time(&self, source: &str, elapsed: Duration) {
        let labels = SourceLabel {
            source: source.to_owned(),
        };
        let histogram = self.ingest_seconds.get_or_create(&labels);
        histogram.observe(elapsed.as_secs_f64());
    }

    /// Adds `jobs` to `orgsync_jobs_processed_total{outcome}`: jobs by what a worker pass
    /// did with them.
    pub fn jobs_processed(&self, outcome: &'static str, jobs: u64) {
        let counter = self.jobs_processed.get_or_create(&OutcomeLabel { outcome });
        counter.inc_by(jobs);
    }

    /// Counts one processed batch in `orgsync_batches_total{wrote}`.
    pub fn batch(&self, wrote: bool) {
        self.batches.get_or_create(&WroteLabel { wrote }).inc();
    }

    /// Counts one Scalekit call in `orgsync_scalekit_requests_total{operation, status}`
    /// (status `transport` when no answer came) and its duration in
    /// `orgsync_scalekit_request_seconds{operation}`.
    pub fn scalekit_call(&self, operation: &'static str, status: Option<u16>, took: Duration) {
        let status = status.map_or_else(|| "transport".to_owned(), |s| s.to_string());
        let labels = CallLabels { operation, status };
        self.scalekit_requests.get_or_create(&labels).inc();
        let histogram = self
            .scalekit_seconds
            .get_or_create(&OperationLabel { operation });
        histogram.observe(took.as_secs_f64());
    }

    /// Counts one connection in `orgsync_http_connections_refused_total{listener}`, closed
    /// because the listener had `max_connections` open.
    pub fn connection_refused(&self, listener: &'static str) {
        let labels = ListenerLabel { listener };
        self.connections_refused.get_or_create(&labels).inc();
    }

    /// The gauge `orgsync_http_connections_open{listener}`: a connection increments it
    /// when it opens and decrements it when it closes.
    pub fn connections_open(&self, listener: &'static str) -> Gauge {
        let labels = ListenerLabel { listener };
        self.connections_open.get_or_create_owned(&labels)
    }

    /// Publishes a full drift check: `orgsync_drifted_keys` and
    /// `orgsync_drift_last_check_timestamp_seconds` (both absent until the first one).
    pub fn drift_checked(&self, drifted_keys: u64, checked_at_ms: i64) {
        let mut last = self.drift.0.lock().unwrap_or_else(PoisonError::into_inner);
        *last = Some(DriftCheck {
            drifted_keys: i64::try_from(drifted_keys).unwrap_or(i64::MAX),
            checked_at: checked_at_ms as f64 / 1000.0,
        });
    }

    /// Sets the scrape-time gauges from `state` and renders every metric in the Prometheus
    /// text format ([`CONTENT_TYPE`]).
    pub fn render(&self, state: &ScrapeState) -> Result<String, std::fmt::Error> {
        let _scrape = self.scrape.lock().unwrap_or_else(PoisonError::into_inner);
        self.workers_paused.set(i64::from(state.workers_paused));
        // A state that emptied or vanished must not keep its last value.
        self.jobs.clear();
        for (state, count) in state.jobs.iter().flatten() {
            let labels = StateLabel {
                state: state.clone(),
            };
            self.jobs.get_or_create(&labels).set(*count);
        }
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// The result of the last full drift check.
#[derive(Debug, Clone, Copy)]
struct DriftCheck {
    drifted_keys: i64,
    checked_at: f64,
}

/// Renders the drift gauges from the last full check, and nothing before the first one:
/// "0 drifted keys" would claim a check that never ran.
#[derive(Debug, Default)]
struct DriftGauges(Mutex<Option<DriftCheck>>);

impl Collector for DriftGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let last = *self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(check) = last else {
            return Ok(());
        };
        let keys = ConstGauge::new(check.drifted_keys);
        keys.encode(encoder.encode_descriptor(
            "orgsync_drifted_keys",
            "Keys whose live Scalekit value differed from orgsync's at the last full drift check.",
            None,
            keys.metric_type(),
        )?)?;
        let at = ConstGauge::new(check.checked_at);
        at.encode(encoder.encode_descriptor(
            "orgsync_drift_last_check_timestamp_seconds",
            "When the last full drift check ran (unix seconds).",
            None,
            at.metric_type(),
        )?)
    }
}

#[cfg(test)]
mod tests;
