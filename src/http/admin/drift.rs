//! `GET /admin/drift`: the values orgsync wrote compared with the live Scalekit objects;
//! `POST /admin/drift/repair`: the same check, then jobs that write orgsync's values back.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

use super::{Admin, AdminError, query};
use crate::drift::{DriftOptions, DriftReport, LiveReader, RepairSummary};
use crate::http::AppState;

/// Targets a check reads when the request names no `limit`.
const DEFAULT_LIMIT: i64 = 1000;

/// The query of both routes; every field narrows the check.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DriftQuery {
    /// Only targets orgsync wrote from this source's events.
    source: Option<String>,
    /// Only this target (`org:EXT`, `user:EXT`).
    target: Option<String>,
    /// At most this many targets (default 1000).
    limit: Option<i64>,
}

/// The answer of a repair: the check, and what was enqueued.
#[derive(Debug, Serialize)]
pub(super) struct RepairAnswer {
    /// The check the repair is based on.
    report: DriftReport,
    /// The jobs enqueued.
    repair: RepairSummary,
}

/// `GET /admin/drift?source=&target=&limit=`.
pub(super) async fn check(
    _: Admin,
    State(state): State<Arc<AppState>>,
    q: Result<Query<DriftQuery>, QueryRejection>,
) -> Result<Json<DriftReport>, AdminError> {
    Ok(Json(run_check(&state, query(q)?).await?))
}

/// `POST /admin/drift/repair?source=&target=&limit=`.
pub(super) async fn repair(
    _: Admin,
    State(state): State<Arc<AppState>>,
    q: Result<Query<DriftQuery>, QueryRejection>,
) -> Result<Json<RepairAnswer>, AdminError> {
    let report = run_check(&state, query(q)?).await?;
    let repair = crate::drift::repair(&state.store, &report, state.clock.now_ms()).await?;
    if repair.jobs > 0 {
        tracing::info!(
            jobs = repair.jobs,
            keys = repair.keys,
            "drift repair enqueued at the operator's request"
        );
        state.wake.notify_waiters();
    }
    Ok(Json(RepairAnswer { report, repair }))
}

/// Runs a check; it only reads, so it stops (with its Scalekit reads) when the client or
/// the request timeout gives up. A check of every target also updates the drift metrics.
async fn run_check(state: &Arc<AppState>, q: DriftQuery) -> Result<DriftReport, AdminError> {
    let mut reader = live_reader(state)?;
    let unfiltered = q.source.is_none() && q.target.is_none();
    let options = DriftOptions {
        source: q.source,
        target: q.target,
        limit: q.limit.unwrap_or(DEFAULT_LIMIT),
    };
    let limit = usize::try_from(options.limit).unwrap_or(usize::MAX);
    let report = state
        .check_drift(&mut reader, &options, AdminError::BadRequest)
        .await?;
    if unfiltered && report.targets_checked < limit {
        crate::drift::record_metrics(&state.metrics, &report);
    }
    Ok(report)
}

/// A reader of live objects, or 503 when orgsync has no Scalekit credentials.
pub(super) fn live_reader(state: &AppState) -> Result<LiveReader, AdminError> {
    state.live_reader().ok_or_else(|| {
        AdminError::Unavailable(
            "Scalekit credentials are not set: live objects cannot be read".to_owned(),
        )
    })
}
