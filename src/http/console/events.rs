//! The events pages: a filtered list, and one event with its payload, raw body,
//! verification, and the jobs (changes) the rules made of it.

use std::sync::Arc;

use askama::Template;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::Html;
use serde::Deserialize;

use super::auth::Session;
use super::views::{Chrome, given, pretty, time, time_field};
use super::{ConsoleError, render};
use crate::http::AppState;
use crate::model::{Change, EventId};
use crate::store::{ConsoleEventFilter, ConsoleJobFilter, EventRow, EventStatus, JobRow};

/// The most events a list shows.
const LIST_LIMIT: i64 = 200;
/// The most jobs an event's page lists.
const JOBS_LIMIT: i64 = 500;

/// The list's filters, echoed back into the form.
#[derive(Debug, Default, Deserialize)]
pub struct EventsQuery {
    /// Only this source.
    pub source: Option<String>,
    /// Only this event type.
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// Only this status.
    pub status: Option<String>,
    /// Received at or after (RFC 3339 or `datetime-local`, UTC).
    pub since: Option<String>,
    /// Received before.
    pub until: Option<String>,
}

/// The events list page.
#[derive(Template)]
#[template(path = "console/events.html")]
struct EventsPage {
    chrome: Chrome,
    q: EventsQuery,
    sources: Vec<String>,
    statuses: [&'static str; 3],
    events: Vec<EventRow>,
    limit: i64,
}

impl EventsPage {
    fn time(&self, ms: &i64) -> String {
        time(*ms)
    }

    fn value<'a>(&self, v: &'a Option<String>) -> &'a str {
        v.as_deref().unwrap_or_default()
    }

    fn selected(&self, v: &Option<String>, option: &str) -> bool {
        v.as_deref() == Some(option)
    }
}

/// `GET /admin/ui/events?source=&type=&status=&since=&until=`.
pub async fn list(
    session: Session,
    State(state): State<Arc<AppState>>,
    q: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Html<String>, ConsoleError> {
    let Query(q) = q.map_err(|e| ConsoleError::BadRequest(e.body_text()))?;
    let status = given(&q.status)
        .map(|s| s.parse::<EventStatus>())
        .transpose()
        .map_err(ConsoleError::BadRequest)?;
    let filter = ConsoleEventFilter {
        source: given(&q.source),
        event_type: given(&q.event_type),
        status,
        since_ms: time_field("since", &q.since)?,
        until_ms: time_field("until", &q.until)?,
        limit: LIST_LIMIT,
    };
    let events = state.store.console_events(&filter).await?;
    let page = EventsPage {
        chrome: Chrome::new("events", &session.csrf),
        q,
        sources: state.sources.keys().cloned().collect(),
        statuses: EventStatus::ALL.map(EventStatus::as_str),
        events,
        limit: LIST_LIMIT,
    };
    render(&page)
}

/// One event's page.
#[derive(Template)]
#[template(path = "console/event.html")]
struct EventPage {
    chrome: Chrome,
    event: EventRow,
    received: String,
    occurred: Option<String>,
    payload: String,
    jobs: Vec<JobView>,
}

/// A job as an event's page shows it.
pub struct JobView {
    /// The job row.
    pub job: JobRow,
    /// Its change, indented.
    pub change: String,
    /// Its next run time.
    pub run_at: String,
    /// What it sets and removes, one line per key (empty when unreadable).
    pub summary: Vec<String>,
}

impl JobView {
    /// The view of a job row.
    pub fn of(job: JobRow) -> Self {
        let summary = serde_json::from_value::<Change>(job.change.clone())
            .map(|c| {
                let set = c.set.iter().map(|(k, v)| format!("{k} = {v}"));
                set.chain(c.unset.iter().map(|k| format!("{k} removed")))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            summary,
            change: pretty(&job.change),
            run_at: time(job.run_at_ms),
            job,
        }
    }
}

/// `GET /admin/ui/events/{id}`.
pub async fn detail(
    session: Session,
    State(state): State<Arc<AppState>>,
    id: Result<Path<EventId>, PathRejection>,
) -> Result<Html<String>, ConsoleError> {
    let Path(id) = id.map_err(|_| ConsoleError::NotFound("event ids are whole numbers".into()))?;
    let event = state
        .store
        .event(id)
        .await?
        .ok_or_else(|| ConsoleError::NotFound(format!("no event with id {id}")))?;
    let filter = ConsoleJobFilter {
        event_id: Some(id),
        limit: JOBS_LIMIT,
        ..ConsoleJobFilter::default()
    };
    let jobs = state.store.console_jobs(&filter).await?;
    let page = EventPage {
        chrome: Chrome::new("events", &session.csrf),
        received: time(event.received_at_ms),
        occurred: event.occurred_at_ms.map(time),
        payload: event.payload.as_ref().map(pretty).unwrap_or_default(),
        jobs: jobs.into_iter().map(JobView::of).collect(),
        event,
    };
    render(&page)
}
