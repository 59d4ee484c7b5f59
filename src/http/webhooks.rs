//! `POST /webhooks/{source}`: verify, normalise, store in one transaction, then answer.
//! No network call happens here; the workers do the rest.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::trace::{self, RequestId};
use crate::sources::{Accepted, AckSummary, Delivery, ReplyFormat, Source, WebhookReply};
use crate::store::{IngestItem, RawDelivery};
use crate::telemetry::{Metrics, UNKNOWN_SOURCE};

/// Receives one delivery for the named source. It runs in the request span (see
/// [`super::trace`]), to which it adds the source and the outcome.
pub async fn receive(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let source = match find_source(&state, &name) {
        Ok(source) => source,
        Err(response) => return *response,
    };
    let metrics = &state.metrics;
    let Some(body) = super::read_limited(body, state.body_limit).await else {
        let message = format!("body larger than the limit of {} bytes", state.body_limit);
        refused(metrics, &name, "BodyTooLarge");
        return answer(StatusCode::PAYLOAD_TOO_LARGE, source.rejection(&message));
    };
    let started = Instant::now();
    let now = state.clock.now_ms();
    let delivery = Delivery {
        headers: &headers,
        query: query.as_deref(),
        body: &body,
        now_unix: now / 1000,
    };
    let response = match source.accept_bounded(&delivery).await {
        Ok(accepted) => ingest(&state, source, &name, &headers, accepted, now).await,
        Err(e) => {
            log_refusal(source, &e);
            refused(metrics, &name, e.kind());
            answer(
                refusal_status(source),
                source.refusal(&e, request_id.as_str()),
            )
        }
    };
    metrics.ingest_time(&name, started.elapsed());
    response
}

/// Normalises a verified delivery's events and stores them with the body to keep.
async fn ingest(
    state: &AppState,
    source: &Source,
    name: &str,
    headers: &HeaderMap,
    accepted: Accepted,
    now: i64,
) -> Response {
    if accepted.versions_capped > 0 {
        state
            .metrics
            .versions_capped(name, accepted.versions_capped);
    }
    let items: Vec<IngestItem> = accepted
        .events
        .into_iter()
        .map(|event| IngestItem {
            normalized: state.rules.normalize(&event),
            event,
        })
        .collect();
    let payload_is_body = accepted.payload_is_body;
    let raw = accepted.storable_body.map(|body| RawDelivery {
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body,
        payload_is_body,
    });
    store(state, source, name, raw, items, now).await
}

/// The configured source, or a bare answer for an unknown (404) or unusable (503) one:
/// nothing in it tells a caller which sources exist or what is missing (the startup log
/// names the missing setting).
fn find_source<'a>(state: &'a AppState, name: &str) -> Result<&'a Source, Box<Response>> {
    match state.sources.get(name) {
        Some(Ok(source)) => {
            trace::record_source(name);
            Ok(source)
        }
        Some(Err(_)) => {
            trace::record_source(name);
            tracing::debug!(source = %name, "delivery to a source that is not configured (see the startup warning)");
            count(&state.metrics, name, "unavailable");
            Err(Box::new(StatusCode::SERVICE_UNAVAILABLE.into_response()))
        }
        None => {
            count(&state.metrics, UNKNOWN_SOURCE, "unknown_source");
            Err(Box::new(StatusCode::NOT_FOUND.into_response()))
        }
    }
}

/// Commits the delivery, then acknowledges it; a store failure asks the sender to retry.
async fn store(
    state: &AppState,
    source: &Source,
    name: &str,
    raw: Option<RawDelivery>,
    items: Vec<IngestItem>,
    now: i64,
) -> Response {
    match state.store.ingest_owned(raw, items, now).await {
        Ok(report) => {
            wake_workers(&state.wake, &report);
            let summary = AckSummary {
                accepted: report.accepted(),
                duplicates: report.duplicates(),
            };
            tracing::info!(source = %name, accepted = summary.accepted, duplicates = summary.duplicates, "delivery stored");
            let duplicate = summary.accepted == 0 && summary.duplicates > 0;
            let outcome = if duplicate { "duplicate" } else { "accepted" };
            count(&state.metrics, name, outcome);
            answer(StatusCode::OK, source.acknowledgement(&summary))
        }
        Err(e) => {
            tracing::error!(source = %name, error = %e, "could not store a delivery; the sender will retry");
            count(&state.metrics, name, "store_error");
            let status = match source.reply_format() {
                ReplyFormat::Json => StatusCode::SERVICE_UNAVAILABLE,
                ReplyFormat::Soap => StatusCode::INTERNAL_SERVER_ERROR,
            };
            answer(
                status,
                source.failure("the event could not be stored; please retry"),
            )
        }
    }
}

/// Logs a refusal with its detail: a WARN line at most once per source, kind and
/// interval (saying how many were left out), the others at debug level.
fn log_refusal(source: &Source, e: &crate::sources::SourceError) {
    let (name, kind) = (source.name(), e.kind());
    match source.refusal_log_line(kind, Instant::now()) {
        Some(0) => tracing::warn!(source = %name, kind, error = %e, "delivery refused"),
        Some(left_out) => tracing::warn!(
            source = %name, kind, error = %e, left_out,
            "delivery refused (and {left_out} more of this kind since the last such line)"
        ),
        None => tracing::debug!(source = %name, kind, error = %e, "delivery refused"),
    }
}

/// Stripe, HMAC and Standard Webhooks senders get 400 for a refused delivery; a SOAP fault
/// goes with 500 (SOAP 1.1).
fn refusal_status(source: &Source) -> StatusCode {
    match source.reply_format() {
        ReplyFormat::Json => StatusCode::BAD_REQUEST,
        ReplyFormat::Soap => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn answer(status: StatusCode, answer: WebhookReply) -> Response {
    let mut response = (status, answer.body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(answer.content_type),
    );
    response
}

/// Counts one answered delivery of `source` (a configured name, never the raw path) and
/// records the outcome in the request span.
fn count(metrics: &Metrics, source: &str, outcome: &'static str) {
    trace::record_outcome(outcome);
    metrics.delivery(source, outcome);
}

/// Counts one refused delivery, with the reason.
fn refused(metrics: &Metrics, source: &str, kind: &'static str) {
    count(metrics, source, "refused");
    metrics.refusal(source, kind);
}

/// Wakes one idle worker per new job (a worker that finds nothing goes back to sleep),
/// instead of every worker for every delivery.
fn wake_workers(wake: &tokio::sync::Notify, report: &crate::store::IngestReport) {
    let jobs: usize = report.events.iter().map(|e| e.jobs).sum();
    for _ in 0..jobs.min(64) {
        wake.notify_one();
    }
}
