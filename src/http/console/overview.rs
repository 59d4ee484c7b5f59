//! The overview: deliveries per source, jobs by state, queue lag, the workers' state, and a
//! chart of events received and jobs applied per minute over the last 24 hours.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::response::Html;

use super::auth::Session;
use super::views::{Chrome, duration};
use super::{ConsoleError, render};
use crate::http::{AppState, WorkersStatus};
use crate::store::{JobState, SourceCounts};

/// Minutes the chart covers.
const CHART_MINUTES: usize = 24 * 60;
/// The chart's drawing height, in SVG units.
const CHART_HEIGHT: f64 = 120.0;

/// One line of the chart.
pub struct Series {
    /// The polyline's points.
    pub points: String,
    /// The total over the window.
    pub total: i64,
    /// The busiest minute.
    pub peak: i64,
}

/// The overview page.
#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    chrome: Chrome,
    /// `running`, `paused` or `failing`.
    workers_state: &'static str,
    /// Why paused or failing.
    workers_reason: Option<String>,
    /// Jobs per state, every state listed.
    job_counts: Vec<(&'static str, i64)>,
    /// Dead jobs.
    dead: i64,
    /// Age of the oldest runnable job, if any is waiting.
    lag: Option<String>,
    /// Events in the last 24 h per source.
    sources: Vec<SourceCounts>,
    /// Events received per minute.
    received: Series,
    /// Jobs applied per minute.
    applied: Series,
    /// The chart's height in SVG units.
    height: f64,
    /// The chart's width in SVG units (one per minute).
    width: usize,
}

/// `GET /admin/ui/`: the overview.
pub async fn page(
    session: Session,
    State(state): State<Arc<AppState>>,
) -> Result<Html<String>, ConsoleError> {
    let now = state.clock.now_ms();
    // The window ends with the current minute.
    let first = now / 60_000 - (CHART_MINUTES as i64 - 1);
    let since = first * 60_000;
    let store = &state.store;
    let counts = store.job_counts().await?;
    let job_counts: Vec<(&'static str, i64)> =
        counts.iter().map(|(s, n)| (s.as_str(), *n)).collect();
    let (workers_state, workers_reason) = match &state.workers {
        WorkersStatus::Paused(reason) => ("paused", Some(reason.clone())),
        WorkersStatus::Running(health) => match health.problem() {
            Some(problem) => ("failing", Some(problem)),
            None => ("running", None),
        },
    };
    let received = buckets(&store.events_per_minute(since).await?, first, CHART_MINUTES);
    let applied = buckets(
        &store.applied_per_minute(since).await?,
        first,
        CHART_MINUTES,
    );
    let scale = received.iter().chain(&applied).copied().max().unwrap_or(0);
    let page = OverviewPage {
        chrome: Chrome::new("overview", &session.csrf),
        workers_state,
        workers_reason,
        dead: counts.get(&JobState::Dead).copied().unwrap_or(0),
        job_counts,
        lag: store
            .oldest_runnable_ms(now)
            .await?
            .map(|oldest| duration(now - oldest)),
        sources: store.deliveries_by_source(since).await?,
        received: series(&received, scale),
        applied: series(&applied, scale),
        height: CHART_HEIGHT,
        width: CHART_MINUTES,
    };
    render(&page)
}

/// Per-minute counts, one slot per minute from `first_minute`, zero where no row exists;
/// rows outside the window are dropped.
pub fn buckets(rows: &[(i64, i64)], first_minute: i64, minutes: usize) -> Vec<i64> {
    let mut counts = vec![0i64; minutes];
    for &(minute, count) in rows {
        if let Some(slot) = usize::try_from(minute - first_minute)
            .ok()
            .and_then(|i| counts.get_mut(i))
        {
            *slot += count;
        }
    }
    counts
}

/// Counts as polyline points, one x unit per minute, `scale` reaching the top.
pub fn series(counts: &[i64], scale: i64) -> Series {
    let top = scale.max(1) as f64;
    let points = counts
        .iter()
        .enumerate()
        .map(|(x, &c)| {
            let y = CHART_HEIGHT - (c as f64 / top) * (CHART_HEIGHT - 10.0);
            format!("{x},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ");
    Series {
        points,
        total: counts.iter().sum(),
        peak: counts.iter().copied().max().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_fills_missing_minutes_with_zero_and_drops_rows_outside() {
        let counts = buckets(&[(101, 2), (103, 4), (99, 7), (200, 1)], 100, 4);
        assert_eq!(counts, vec![0, 2, 0, 4]);
        let s = series(&counts, 4);
        assert_eq!((s.total, s.peak), (6, 4));
        assert_eq!(s.points, "0,120.0 1,65.0 2,120.0 3,10.0");
        assert_eq!(series(&[4], 8).points, "0,65.0");
    }
}
