//! The admin API under `/admin/…`: list and show events and jobs, retry dead jobs, start a
//! replay (or a dry run, or a diff against live Scalekit), check and repair drift. Every handler takes [`Admin`], the bearer-token guard; the router
//! only mounts these routes when `ORGSYNC_ADMIN_TOKEN` is set, so without it they do not
//! exist (404).

mod drift;
mod replay;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::model::{EventId, JobId};
use crate::store::{EventFilter, EventRow, EventStatus, JobRow, JobState, StoreError};

/// Rows a list returns when the caller names no `limit`.
const DEFAULT_LIMIT: i64 = 50;
/// The largest `limit` a list accepts.
const MAX_LIMIT: i64 = 1000;

/// The admin routes, relative to `/admin`; every handler checks the bearer token.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/events", get(list_events))
        .route("/events/{id}", get(show_event))
        .route("/jobs", get(list_jobs))
        .route("/jobs/counts", get(job_counts))
        .route("/jobs/retry-dead", post(retry_dead))
        .route("/jobs/{id}/retry", post(retry_job))
        .route("/replay", post(replay::start))
        .route("/drift", get(drift::check))
        .route("/drift/repair", post(drift::repair))
}

/// Why an admin request failed; the only place these become status codes.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No `Authorization` header, or not a bearer token.
    #[error(
        "missing admin token: send the header `Authorization: Bearer <token>` with the value of ORGSYNC_ADMIN_TOKEN"
    )]
    MissingToken,
    /// A bearer token that is not the configured one.
    #[error(
        "wrong admin token in the `Authorization: Bearer` header; use the value of ORGSYNC_ADMIN_TOKEN"
    )]
    WrongToken,
    /// The request itself is malformed (a bad query value, body field or time).
    #[error("{0}")]
    BadRequest(String),
    /// The event or job named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The job exists but is in a state the operation does not apply to.
    #[error("{0}")]
    Conflict(String),
    /// What the request needs is not configured (Scalekit credentials).
    #[error("{0}")]
    Unavailable(String),
    /// The store failed; the cause is logged, not sent.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A background task failed (a bug); the cause is logged, not sent.
    #[error("the operation stopped unexpectedly: {0}")]
    Internal(String),
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = match &self {
            AdminError::MissingToken | AdminError::WrongToken => StatusCode::UNAUTHORIZED,
            AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::Conflict(_) => StatusCode::CONFLICT,
            AdminError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::Store(_) | AdminError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match &self {
            AdminError::Store(e) => {
                tracing::error!(error = %e, "admin request failed in the store");
                "the store failed; see the daemon's log".to_owned()
            }
            AdminError::Internal(e) => {
                tracing::error!(error = %e, "admin request failed");
                "internal error; see the daemon's log".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = (status, Json(json!({ "error": message }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Proof that the request carried the admin token; a handler taking it is guarded.
pub struct Admin;

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = AdminError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        // The routes are only mounted with a token; refuse rather than open if that changes.
        let Some(expected) = &state.admin_token else {
            return Err(AdminError::WrongToken);
        };
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer)
            .ok_or(AdminError::MissingToken)?;
        if token_matches(presented, expected.expose_secret()) {
            Ok(Admin)
        } else {
            tracing::warn!("admin request refused: wrong bearer token");
            Err(AdminError::WrongToken)
        }
    }
}

/// The token of a `Bearer <token>` header value (the scheme is case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Compares in constant time; hashing first hides the expected token's length too.
fn token_matches(presented: &str, expected: &str) -> bool {
    let (a, b) = (
        Sha256::digest(presented.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.ct_eq(&b).into()
}

/// A `limit` query value, defaulted and bounded.
fn limit(requested: Option<i64>) -> Result<i64, AdminError> {
    match requested.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(n),
        n => Err(AdminError::BadRequest(format!(
            "limit {n} is out of range; use 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})"
        ))),
    }
}

/// An optional state or status name, or a JSON 400 naming the ones that exist.
fn parsed<T: std::str::FromStr<Err = String>>(name: Option<&str>) -> Result<Option<T>, AdminError> {
    name.map(str::parse)
        .transpose()
        .map_err(AdminError::BadRequest)
}

/// A path id, or a JSON 400 saying what was wrong with it.
fn path_id<Id>(path: Result<Path<Id>, PathRejection>) -> Result<Id, AdminError> {
    path.map(|Path(id)| id)
        .map_err(|e| AdminError::BadRequest(format!("{}; ids are whole numbers", e.body_text())))
}

/// A query string, or a JSON 400 saying what was wrong with it.
fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, AdminError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| AdminError::BadRequest(e.body_text()))
}

/// `GET /admin/events` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    /// Only this source.
    source: Option<String>,
    /// Only this status.
    status: Option<String>,
    /// At most this many (default 50).
    limit: Option<i64>,
}

/// `GET /admin/events?source=&status=&limit=`: events, newest first, without payloads.
async fn list_events(
    _: Admin,
    State(state): State<Arc<AppState>>,
    q: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<Vec<EventRow>>, AdminError> {
    let q = query(q)?;
    let filter = EventFilter {
        status: parsed::<EventStatus>(q.status.as_deref())?,
        source: q.source,
        limit: limit(q.limit)?,
    };
    Ok(Json(state.store.list_events(&filter).await?))
}

/// `GET /admin/events/{id}`: one event with its payload and raw body.
async fn show_event(
    _: Admin,
    State(state): State<Arc<AppState>>,
    id: Result<Path<EventId>, PathRejection>,
) -> Result<Json<EventRow>, AdminError> {
    let id = path_id(id)?;
    match state.store.event(id).await? {
        Some(event) => Ok(Json(event)),
        None => Err(AdminError::NotFound(format!("no event with id {id}"))),
    }
}

/// `GET /admin/jobs` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobsQuery {
    /// Only jobs in this state.
    state: Option<String>,
    /// At most this many (default 50).
    limit: Option<i64>,
}

/// `GET /admin/jobs?state=&limit=`: jobs, newest first.
async fn list_jobs(
    _: Admin,
    State(state): State<Arc<AppState>>,
    q: Result<Query<JobsQuery>, QueryRejection>,
) -> Result<Json<Vec<JobRow>>, AdminError> {
    let q = query(q)?;
    let job_state = parsed::<JobState>(q.state.as_deref())?;
    let limit = limit(q.limit)?;
    Ok(Json(state.store.list_jobs(job_state, limit).await?))
}

/// `GET /admin/jobs/counts`: how many jobs are in each state (every state listed).
async fn job_counts(
    _: Admin,
    State(state): State<Arc<AppState>>,
) -> Result<Json<BTreeMap<String, i64>>, AdminError> {
    let counts = state.store.job_counts().await?;
    Ok(Json(
        counts
            .into_iter()
            .map(|(s, n)| (s.as_str().to_owned(), n))
            .collect(),
    ))
}

/// `POST /admin/jobs/{id}/retry`: a dead or skipped job runs again now.
async fn retry_job(
    _: Admin,
    State(state): State<Arc<AppState>>,
    id: Result<Path<JobId>, PathRejection>,
) -> Result<Json<Value>, AdminError> {
    let id = path_id(id)?;
    if state.store.retry_job(id, state.clock.now_ms()).await? {
        tracing::info!(job = id.get(), "job retried by the operator");
        state.wake.notify_waiters();
        return Ok(Json(json!({ "retried": id })));
    }
    match state.store.job(id).await? {
        None => Err(AdminError::NotFound(format!("no job with id {id}"))),
        Some(job) => Err(AdminError::Conflict(format!(
            "job {id} is {}; only dead or skipped jobs can be retried",
            job.state
        ))),
    }
}

/// `POST /admin/jobs/retry-dead`: every dead job runs again now.
async fn retry_dead(
    _: Admin,
    State(state): State<Arc<AppState>>,
) -> Result<Json<Value>, AdminError> {
    let retried = state.store.retry_dead(state.clock.now_ms()).await?;
    if retried > 0 {
        tracing::info!(jobs = retried, "dead jobs retried by the operator");
        state.wake.notify_waiters();
    }
    Ok(Json(json!({ "retried": retried })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_takes_the_token_of_a_bearer_header_only() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("abc"), None);
    }

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cre", "s3cret"));
        assert!(!token_matches("", "s3cret"));
    }

    #[test]
    fn limit_defaults_and_is_bounded() {
        assert_eq!(limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit(Some(1000)).unwrap(), 1000);
        assert!(limit(Some(0)).is_err());
        assert!(
            limit(Some(1001))
                .unwrap_err()
                .to_string()
                .contains("1 to 1000")
        );
    }
}
