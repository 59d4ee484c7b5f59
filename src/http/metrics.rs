//! `GET /metrics`: this app's registry ([`crate::telemetry::Metrics`]) in the Prometheus
//! text format. The gauges that describe the store and the workers (`orgsync_jobs{state}`,
//! `orgsync_workers_paused`) are read from this app's state at scrape time and set in the
//! registry just before it renders, so they are never stale or shared.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{AppState, WorkersStatus};
use crate::store::JobState;
use crate::telemetry::metrics::{CONTENT_TYPE, ScrapeState};

/// Every job state, shown even when no job is in it.
const STATES: [JobState; 5] = [
    JobState::Pending,
    JobState::Running,
    JobState::Done,
    JobState::Skipped,
    JobState::Dead,
];

/// `GET /metrics`: the recorded metrics plus the scrape-time gauges.
pub async fn render(State(state): State<Arc<AppState>>) -> Response {
    let jobs = match state.store.job_counts().await {
        Ok(counts) => Some(job_series(counts)),
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

/// One value per state: every known state (0 when empty) plus any other the store holds.
fn job_series(mut counts: HashMap<String, i64>) -> BTreeMap<String, i64> {
    let mut series: BTreeMap<String, i64> = STATES
        .iter()
        .map(|s| {
            (
                s.as_str().to_owned(),
                counts.remove(s.as_str()).unwrap_or(0),
            )
        })
        .collect();
    series.extend(counts);
    series
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_is_present_and_extra_states_are_kept() {
        let counts = HashMap::from([("done".to_owned(), 3), ("superseded".to_owned(), 1)]);
        let series = job_series(counts);
        assert_eq!(series["done"], 3);
        assert_eq!(series["pending"], 0);
        assert_eq!(series["superseded"], 1);
        assert_eq!(series.len(), 6);
    }
}
