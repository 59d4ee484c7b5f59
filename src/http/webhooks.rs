//! `POST /webhooks/{source}`: verify, normalise, store in one transaction, then answer.
//! No network call happens here; the workers do the rest.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::sources::{AckSummary, Answer, AnswerFormat, Delivery, Source};
use crate::store::{IngestItem, RawDelivery};
use crate::worker::now_ms;

/// Receives one delivery for the named source.
pub async fn receive(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let source = match state.sources.get(&name) {
        Some(Ok(source)) => source,
        Some(Err(reason)) => {
            tracing::warn!(source = %name, %reason, "delivery to a source that is not configured");
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("source {name:?} cannot receive yet: {reason}"),
            );
        }
        None => {
            let known: Vec<&str> = state.sources.keys().map(String::as_str).collect();
            return json_error(
                StatusCode::NOT_FOUND,
                &format!(
                    "unknown source {name:?}; configured sources: {}",
                    known.join(", ")
                ),
            );
        }
    };
    let Ok(body) = axum::body::to_bytes(body, state.body_limit).await else {
        let message = format!("body larger than the limit of {} bytes", state.body_limit);
        return answer(StatusCode::PAYLOAD_TOO_LARGE, source.rejection(&message));
    };
    let now = now_ms();
    let delivery = Delivery {
        headers: &headers,
        query: query.as_deref(),
        body: &body,
        now_unix: now / 1000,
    };
    let events = match source.receive(&delivery) {
        Ok(events) => events,
        Err(e) => {
            tracing::warn!(source = %name, kind = e.kind(), error = %e, "delivery refused");
            return answer(
                refusal_status(source),
                source.rejection(&format!("{}: {e}", e.kind())),
            );
        }
    };
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
    match state.store.ingest(Some(raw), &items, now).await {
        Ok(report) => {
            state.wake.notify_waiters();
            let summary = AckSummary {
                accepted: report.accepted(),
                duplicates: report.duplicates(),
            };
            tracing::info!(source = %name, accepted = summary.accepted, duplicates = summary.duplicates, "delivery stored");
            answer(StatusCode::OK, source.acknowledgement(&summary))
        }
        Err(e) => {
            tracing::error!(source = %name, error = %e, "could not store a delivery; the sender will retry");
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

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}
