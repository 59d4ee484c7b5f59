//! `GET /metrics`: this app's registry ([`crate::telemetry::Metrics`]) in the Prometheus
//! text format. The gauges that describe the store and the workers (`orgsync_jobs{state}`,
//! `orgsync_workers_paused`) are read from this app's state at scrape time and set in the
//! registry just before it renders, so they are never stale or shared.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{AppState, WorkersStatus};
use crate::telemetry::metrics::{CONTENT_TYPE, ScrapeState};

/// `GET /metrics`: the recorded metrics plus the scrape-time gauges.
pub async fn render(State(state): State<Arc<AppState>>) -> Response {
    // The store lists every state, 0 when no job is in it.
    let jobs = match state.store.job_counts().await {
        Ok(counts) => Some(
            counts
                .into_iter()
                .map(|(s, n)| (s.as_str().to_owned(), n))
                .collect(),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: could not count the jobs; orgsync_jobs is left out");
            None
        }
    };
    let scrape = ScrapeState {
        workers_paused: matches!(state.workers, WorkersStatus::Paused(_)),
        jobs,
    };
    match state.metrics.render(&scrape) {
        Ok(body) => {
            let mut response = body.into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "metrics: the registry could not be rendered");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
