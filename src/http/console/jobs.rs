//! The jobs page: jobs by state and target with attempts, next run and last error; a retry
//! button on each dead or skipped job, and a bulk retry of the dead jobs matching the filter
//! behind a confirmation step.

use std::sync::Arc;

use askama::Template;
use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::auth::{OriginCheck, Session};
use super::events::JobView;
use super::views::{Chrome, given};
use super::{BASE, ConsoleError, render};
use crate::http::AppState;
use crate::model::{JobId, TargetKey};
use crate::store::{ConsoleJobFilter, JobState};

/// The most jobs the list shows.
const LIST_LIMIT: i64 = 200;

/// The list's filters (and the one-line result of the last action).
#[derive(Debug, Default, Deserialize)]
pub struct JobsQuery {
    /// Only jobs in this state.
    pub state: Option<String>,
    /// Only jobs of this target key.
    pub target: Option<String>,
    /// What the last action did, shown once.
    pub done: Option<String>,
}

/// The jobs page.
#[derive(Template)]
#[template(path = "console/jobs.html")]
struct JobsPage {
    chrome: Chrome,
    state: String,
    target: String,
    done: Option<String>,
    states: [&'static str; 5],
    jobs: Vec<JobView>,
    dead_matching: i64,
    limit: i64,
}

/// `GET /admin/ui/jobs?state=&target=`.
pub async fn list(
    session: Session,
    State(app): State<Arc<AppState>>,
    q: Result<Query<JobsQuery>, QueryRejection>,
) -> Result<Html<String>, ConsoleError> {
    let Query(q) = q.map_err(|e| ConsoleError::BadRequest(e.body_text()))?;
    let state = given(&q.state)
        .map(|s| s.parse::<JobState>())
        .transpose()
        .map_err(ConsoleError::BadRequest)?;
    let target = given(&q.target);
    let key = target_key(&target)?;
    let filter = ConsoleJobFilter {
        state,
        target_key: key.clone(),
        event_id: None,
        limit: LIST_LIMIT,
    };
    let jobs = app.store.console_jobs(&filter).await?;
    let page = JobsPage {
        chrome: Chrome::new("jobs", &session.csrf),
        dead_matching: app.store.count_dead(key.as_ref()).await?,
        state: state.map(|s| s.as_str().to_owned()).unwrap_or_default(),
        target: target.unwrap_or_default(),
        done: given(&q.done),
        states: JobState::ALL.map(JobState::as_str),
        jobs: jobs.into_iter().map(JobView::of).collect(),
        limit: LIST_LIMIT,
    };
    render(&page)
}

/// A retry form: the token and the list filter to return to.
#[derive(Debug, Deserialize)]
pub struct RetryForm {
    /// This session's form token.
    csrf: String,
    /// The list's state filter, to return to.
    #[serde(default)]
    state: Option<String>,
    /// The target filter (the bulk retry's selection too).
    #[serde(default)]
    target: Option<String>,
    /// `yes` once the operator confirmed a bulk retry.
    #[serde(default)]
    confirm: Option<String>,
}

/// The list URL for a form's filter, with a one-line result.
fn back(form: &RetryForm, done: &str) -> Redirect {
    let mut url = format!("{BASE}/jobs?done={}", encode(done));
    for (name, value) in [("state", &form.state), ("target", &form.target)] {
        if let Some(v) = given(value) {
            url.push_str(&format!("&{name}={}", encode(&v)));
        }
    }
    Redirect::to(&url)
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `POST /admin/ui/jobs/{id}/retry`: a dead or skipped job runs again now.
pub async fn retry_one(
    session: Session,
    State(app): State<Arc<AppState>>,
    origin: OriginCheck,
    id: Result<Path<JobId>, PathRejection>,
    form: Result<Form<RetryForm>, FormRejection>,
) -> Result<Redirect, ConsoleError> {
    let Form(form) = form.map_err(|e| ConsoleError::BadRequest(e.body_text()))?;
    session.check_post(&origin, &form.csrf)?;
    let Path(id) = id.map_err(|_| ConsoleError::NotFound("job ids are whole numbers".into()))?;
    if app.store.retry_job(id, app.clock.now_ms()).await? {
        tracing::info!(job = id.get(), "job retried from the console");
        app.wake.notify_waiters();
        return Ok(back(&form, &format!("job {id} will run again now")));
    }
    match app.store.job(id).await? {
        None => Err(ConsoleError::NotFound(format!("no job with id {id}"))),
        Some(job) => Err(ConsoleError::Conflict(format!(
            "job {id} is {}; only dead or skipped jobs can be retried",
            job.state
        ))),
    }
}

/// The bulk retry's confirmation step.
#[derive(Template)]
#[template(path = "console/confirm.html")]
struct ConfirmPage {
    chrome: Chrome,
    count: i64,
    target: String,
    state: String,
}

/// `POST /admin/ui/jobs/retry-dead`: first shows how many dead jobs match the target
/// filter and asks; with `confirm=yes` runs them all again now.
pub async fn retry_dead(
    session: Session,
    State(app): State<Arc<AppState>>,
    origin: OriginCheck,
    form: Result<Form<RetryForm>, FormRejection>,
) -> Result<Response, ConsoleError> {
    let Form(form) = form.map_err(|e| ConsoleError::BadRequest(e.body_text()))?;
    session.check_post(&origin, &form.csrf)?;
    let target = given(&form.target);
    let key = target_key(&target)?;
    if form.confirm.as_deref() != Some("yes") {
        let page = ConfirmPage {
            chrome: Chrome::new("jobs", &session.csrf),
            count: app.store.count_dead(key.as_ref()).await?,
            target: target.unwrap_or_default(),
            state: given(&form.state).unwrap_or_default(),
        };
        return Ok(render(&page)?.into_response());
    }
    let retried = app
        .store
        .retry_dead_matching(key.as_ref(), app.clock.now_ms())
        .await?;
    if retried > 0 {
        tracing::info!(jobs = retried, "dead jobs retried from the console");
        app.wake.notify_waiters();
    }
    Ok(back(&form, &format!("{retried} dead jobs will run again now")).into_response())
}

/// The target filter as a key, or a 400 saying what a key looks like.
fn target_key(target: &Option<String>) -> Result<Option<TargetKey>, ConsoleError> {
    target
        .as_deref()
        .map(TargetKey::parse)
        .transpose()
        .map_err(|e| ConsoleError::BadRequest(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("org:a b&c"), "org:a%20b%26c");
    }
}
