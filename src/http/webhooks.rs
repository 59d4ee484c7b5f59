//! `POST /webhooks/{source}`: verify, normalise, store in one transaction, then answer.
//! No network call happens here; the workers do the rest.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::sources::{AckSummary, Answer, AnswerFormat, Delivery, Source};
use crate::store::{IngestItem, RawDelivery};
use crate::telemetry;
use crate::worker::now_ms;

/// Receives one delivery for the named source.
pub async fn receive(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let source = match find_source(&state, &name) {
        Ok(source) => source,
        Err(response) => return *response,
    };
    let Ok(body) = axum::body::to_bytes(body, state.body_limit).await else {
        let message = format!("body larger than the limit of {} bytes", state.body_limit);
        refused(&name, "BodyTooLarge");
        return answer(StatusCode::PAYLOAD_TOO_LARGE, source.rejection(&message));
    };
    let started = Instant::now();
    let now = now_ms();
    let delivery = Delivery {
        headers: &headers,
        query: query.as_deref(),
        body: &body,
        now_unix: now / 1000,
    };
    let response = match source.receive(&delivery) {
        Ok(events) => {
            let items: Vec<IngestItem> = events
                .into_iter()
                .map(|event| IngestItem {
                    normalized: state.rules.normalize(&event),
                    event,
                })
                .collect();
            let raw = RawDelivery {
                content_type: headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                body: source.storable_body(&body).into_owned(),
            };
            store(&state, source, &name, raw, items, now).await
        }
        Err(e) => {
            tracing::warn!(source = %name, kind = e.kind(), error = %e, "delivery refused");
            refused(&name, e.kind());
            answer(
                refusal_status(source),
                source.rejection(&format!("{}: {e}", e.kind())),
            )
        }
    };
    timed(&name, started);
    response
}

/// The configured source, or the answer for an unknown (404) or unusable (503) one.
fn find_source<'a>(state: &'a AppState, name: &str) -> Result<&'a Source, Box<Response>> {
    match state.sources.get(name) {
        Some(Ok(source)) => Ok(source),
        Some(Err(reason)) => {
            tracing::warn!(source = %name, %reason, "delivery to a source that is not configured");
            count(name, "unavailable");
            let message = format!("source {name:?} cannot receive yet: {reason}");
            Err(Box::new(json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                &message,
            )))
        }
        None => {
            count(telemetry::UNKNOWN_SOURCE, "unknown_source");
            let known: Vec<&str> = state.sources.keys().map(String::as_str).collect();
            let message = format!(
                "unknown source {name:?}; configured sources: {}",
                known.join(", ")
            );
            Err(Box::new(json_error(StatusCode::NOT_FOUND, &message)))
        }
    }
}

/// Commits the delivery, then acknowledges it; a store failure asks the sender to retry.
async fn store(
    state: &AppState,
    source: &Source,
    name: &str,
    raw: RawDelivery,
    items: Vec<IngestItem>,
    now: i64,
) -> Response {
    match state.store.ingest_owned(Some(raw), items, now).await {
        Ok(report) => {
            wake_workers(&state.wake, &report);
            let summary = AckSummary {
                accepted: report.accepted(),
                duplicates: report.duplicates(),
            };
            tracing::info!(source = %name, accepted = summary.accepted, duplicates = summary.duplicates, "delivery stored");
            let duplicate = summary.accepted == 0 && summary.duplicates > 0;
            count(name, if duplicate { "duplicate" } else { "accepted" });
            answer(StatusCode::OK, source.acknowledgement(&summary))
        }
        Err(e) => {
            tracing::error!(source = %name, error = %e, "could not store a delivery; the sender will retry");
            count(name, "store_error");
            let status = match source.answer_format() {
                AnswerFormat::Json => StatusCode::SERVICE_UNAVAILABLE,
                AnswerFormat::Soap => StatusCode::INTERNAL_SERVER_ERROR,
            };
            answer(
                status,
                source.failure("the event could not be stored; please retry"),
            )
        }
    }
}

/// Stripe, HMAC and Standard Webhooks senders get 400 for a refused delivery; a SOAP fault
/// goes with 500 (SOAP 1.1).
fn refusal_status(source: &Source) -> StatusCode {
    match source.answer_format() {
        AnswerFormat::Json => StatusCode::BAD_REQUEST,
        AnswerFormat::Soap => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn answer(status: StatusCode, answer: Answer) -> Response {
    let mut response = (status, answer.body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(answer.content_type),
    );
    response
}

/// Counts one answered delivery of `source` (a configured name, never the raw path).
fn count(source: &str, outcome: &'static str) {
    let source = source.to_owned();
    metrics::counter!(telemetry::WEBHOOK_DELIVERIES, "source" => source, "outcome" => outcome)
        .increment(1);
}

/// Counts one refused delivery, with the reason.
fn refused(source: &str, kind: &'static str) {
    count(source, "refused");
    let source = source.to_owned();
    metrics::counter!(telemetry::WEBHOOK_REFUSALS, "source" => source, "kind" => kind).increment(1);
}

/// Records the time from the body read to the answer.
fn timed(source: &str, started: Instant) {
    let source = source.to_owned();
    metrics::histogram!(telemetry::WEBHOOK_INGEST_SECONDS, "source" => source)
        .record(started.elapsed());
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// Wakes one idle worker per new job (a worker that finds nothing goes back to sleep),
/// instead of every worker for every delivery.
fn wake_workers(wake: &tokio::sync::Notify, report: &crate::store::IngestReport) {
    let jobs: usize = report.events.iter().map(|e| e.jobs).sum();
    for _ in 0..jobs.min(64) {
        wake.notify_one();
    }
}
