//! `POST /admin/replay`: stored events through the current rules again, or a dry run that
//! shows what the rules make of each.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use serde::{Deserialize, Serialize};

use super::{Admin, AdminError};
use crate::drift::LiveReader;
use crate::http::AppState;
use crate::model::{EventId, Normalized};
use crate::replay::{ReplayReport, TargetDiff};
use crate::store::{EventStatus, ReplayFilter, StoreError};

/// Events a replay selects when the request names no `limit` (as the CLI).
const DEFAULT_LIMIT: i64 = 100_000;
/// The most per-event outcomes a dry run sends back.
const MAX_OUTCOMES: usize = 1000;

/// The request body; every field narrows the selection, `{}` selects every event.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReplayRequest {
    /// Only events of this source.
    source: Option<String>,
    /// Only events of this type.
    event_type: Option<String>,
    /// Only events with this status (`accepted`, `ignored`, `rejected`).
    status: Option<String>,
    /// Only events received at or after this RFC 3339 time.
    since: Option<String>,
    /// Only events received before this RFC 3339 time.
    until: Option<String>,
    /// Only these event ids (empty: any).
    #[serde(default)]
    ids: Vec<EventId>,
    /// At most this many events, oldest first.
    limit: Option<i64>,
    /// Only report what the rules make of each event; store nothing.
    #[serde(default)]
    dry_run: bool,
    /// With `dry_run`: read the live objects and answer, per target and key, the live
    /// value, the value after the replay and whether it would be written.
    #[serde(default)]
    diff: bool,
}

/// What the rules make of one event in a dry run.
#[derive(Debug, Serialize)]
pub(super) struct DryRunEvent {
    /// The stored event's id.
    event_id: EventId,
    /// The sender's event id.
    provider_event_id: String,
    /// The event type.
    event_type: String,
    /// The verdict: `{"outcome": "matched", "changes": …, "links": …}`, ignored or rejected.
    outcome: Normalized,
}

/// The answer: the report's counts, and for a dry run the first outcomes.
#[derive(Debug, Serialize)]
pub(super) struct ReplayAnswer {
    /// Whether nothing was stored.
    dry_run: bool,
    /// The counts.
    #[serde(flatten)]
    report: ReplayReport,
    /// A dry run's verdicts, the first [`MAX_OUTCOMES`] of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    outcomes: Option<Vec<DryRunEvent>>,
    /// Whether more events were selected than `outcomes` holds.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    outcomes_truncated: bool,
    /// With `diff`: one entry per target the selection changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<Vec<TargetDiff>>,
}

impl ReplayRequest {
    /// The store filter, or what is wrong with the request.
    fn filter(self) -> Result<ReplayFilter, AdminError> {
        let since_ms = self
            .since
            .as_deref()
            .map(|t| time_ms("since", t))
            .transpose()?;
        let until_ms = self
            .until
            .as_deref()
            .map(|t| time_ms("until", t))
            .transpose()?;
        if let (Some(since), Some(until)) = (since_ms, until_ms)
            && since >= until
        {
            return Err(AdminError::BadRequest(
                "since must be before until; nothing would be selected".to_owned(),
            ));
        }
        let status = super::parsed::<EventStatus>(self.status.as_deref())?;
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if limit < 1 {
            return Err(AdminError::BadRequest(format!(
                "limit {limit} is out of range; use 1 or more (default {DEFAULT_LIMIT})"
            )));
        }
        Ok(ReplayFilter {
            source: self.source,
            event_type: self.event_type,
            status,
            since_ms,
            until_ms,
            ids: self.ids,
            limit,
        })
    }
}

/// An RFC 3339 time as unix milliseconds; the error names the field.
fn time_ms(field: &str, text: &str) -> Result<i64, AdminError> {
    crate::replay::parse_time(text).map_err(|e| AdminError::BadRequest(format!("{field}: {e}")))
}

/// Runs the replay. A real replay runs in its own task, so a request timeout or a client
/// hanging up does not stop it halfway; the answer comes when it is done. A dry run (and
/// its diff) only reads, and stops with the request.
pub(super) async fn start(
    _: Admin,
    State(state): State<Arc<AppState>>,
    body: Result<Json<ReplayRequest>, JsonRejection>,
) -> Result<Json<ReplayAnswer>, AdminError> {
    let Json(request) = body.map_err(|e| AdminError::BadRequest(e.body_text()))?;
    let (dry_run, diff) = (request.dry_run, request.diff);
    if diff && !dry_run {
        return Err(AdminError::BadRequest(
            "diff needs dry_run: a diff only reads; send {\"dry_run\": true, \"diff\": true}"
                .to_owned(),
        ));
    }
    let reader = diff
        .then(|| super::drift::live_reader(&state))
        .transpose()?;
    let filter = request.filter()?;
    let answer = if dry_run {
        // Read-only: stops (with its Scalekit reads) when the client or the timeout gives up.
        run(state.clone(), filter, dry_run, reader).await?
    } else {
        tokio::spawn(run(state.clone(), filter, dry_run, reader))
            .await
            .map_err(|e| AdminError::Internal(format!("the replay task failed: {e}")))??
    };
    if !dry_run {
        tracing::info!(
            events = answer.report.events,
            jobs = answer.report.jobs,
            "replay done at the operator's request"
        );
        state.wake.notify_waiters();
    }
    Ok(Json(answer))
}

/// Replays what `filter` selects, keeping the first outcomes of a dry run; with a reader,
/// also the diff against the live objects.
async fn run(
    state: Arc<AppState>,
    filter: ReplayFilter,
    dry_run: bool,
    reader: Option<LiveReader>,
) -> Result<ReplayAnswer, StoreError> {
    let diff = match reader {
        Some(mut reader) => {
            Some(crate::replay::diff(&state.store, &state.rules, &filter, &mut reader).await?)
        }
        None => None,
    };
    let collected = state
        .replay_collecting(&filter, dry_run, MAX_OUTCOMES, |stored, normalized| {
            DryRunEvent {
                event_id: stored.id,
                provider_event_id: stored.event.provider_event_id.clone(),
                event_type: stored.event.event_type.clone(),
                outcome: normalized.clone(),
            }
        })
        .await?;
    Ok(ReplayAnswer {
        dry_run,
        report: collected.report,
        outcomes: dry_run.then_some(collected.outcomes),
        outcomes_truncated: collected.truncated,
        diff,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: &str) -> Result<ReplayFilter, AdminError> {
        serde_json::from_str::<ReplayRequest>(json)
            .map_err(|e| AdminError::BadRequest(e.to_string()))?
            .filter()
    }

    #[test]
    fn an_empty_body_selects_everything_up_to_the_default_limit() {
        let filter = request("{}").unwrap();
        assert_eq!(filter.limit, DEFAULT_LIMIT);
        assert!(filter.ids.is_empty() && filter.since_ms.is_none());
    }

    #[test]
    fn times_are_rfc3339_and_errors_name_the_field() {
        let filter =
            request(r#"{"since": "1970-01-01T00:00:01Z", "until": "1970-01-01T00:00:02.5Z"}"#)
                .unwrap();
        assert_eq!((filter.since_ms, filter.until_ms), (Some(1000), Some(2500)));
        let err = request(r#"{"until": "yesterday"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("until:"), "{err}");
        let err = request(r#"{"since": "1970-01-01T00:00:02Z", "until": "1970-01-01T00:00:01Z"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("before"), "{err}");
    }

    #[test]
    fn unknown_fields_and_bad_limits_are_refused() {
        let err = request(r#"{"dryrun": true}"#).unwrap_err().to_string();
        assert!(err.contains("unknown field `dryrun`"), "{err}");
        assert!(request(r#"{"limit": 0}"#).is_err());
    }
}
