//! The replay page: the filters of `orgsync replay`; a dry run lists what the current rules
//! make of each selected event, and the diff against live Scalekit, before
//! anything is enqueued; a second button enqueues for real.

use std::sync::Arc;

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::response::Html;
use serde::Deserialize;

use super::auth::{OriginCheck, Session};
use super::diff::{DiffView, NO_CREDENTIALS};
use super::views::{Chrome, given, time_field};
use super::{ConsoleError, render};
use crate::http::AppState;
use crate::model::{EventId, Normalized};
use crate::replay::{Collected, ReplayReport};
use crate::store::{EventStatus, ReplayFilter};

/// Events a replay selects when the form names no limit (as the CLI).
const DEFAULT_LIMIT: i64 = 100_000;
/// The most per-event outcomes a dry run shows.
const MAX_OUTCOMES: usize = 500;

/// The form; blank fields do not filter.
#[derive(Debug, Default, Deserialize)]
pub struct ReplayForm {
    /// This session's form token (absent on the blank form).
    #[serde(default)]
    csrf: String,
    /// Only events of this source.
    pub source: Option<String>,
    /// Only events of this type.
    pub event_type: Option<String>,
    /// Only events with this status.
    pub status: Option<String>,
    /// Received at or after.
    pub since: Option<String>,
    /// Received before.
    pub until: Option<String>,
    /// Only these event ids, comma-separated.
    pub ids: Option<String>,
    /// At most this many events, oldest first.
    pub limit: Option<String>,
    /// `dry_run` or `run`.
    pub action: Option<String>,
}

impl ReplayForm {
    /// The store filter, or what is wrong with the form.
    fn filter(&self) -> Result<ReplayFilter, ConsoleError> {
        let since_ms = time_field("since", &self.since)?;
        let until_ms = time_field("until", &self.until)?;
        if let (Some(s), Some(u)) = (since_ms, until_ms)
            && s >= u
        {
            return Err(ConsoleError::BadRequest(
                "since must be before until; nothing would be selected".into(),
            ));
        }
        let ids = given(&self.ids)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<EventId>().map_err(|_| {
                    ConsoleError::BadRequest(format!("event id {s:?} is not a whole number"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let limit = match given(&self.limit) {
            None => DEFAULT_LIMIT,
            Some(l) => match l.parse::<i64>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(ConsoleError::BadRequest(format!(
                        "limit {l:?} is out of range; use a whole number of 1 or more"
                    )));
                }
            },
        };
        Ok(ReplayFilter {
            source: given(&self.source),
            event_type: given(&self.event_type),
            status: given(&self.status)
                .map(|s| s.parse::<EventStatus>())
                .transpose()
                .map_err(ConsoleError::BadRequest)?,
            since_ms,
            until_ms,
            ids,
            limit,
        })
    }

    fn value<'a>(&self, v: &'a Option<String>) -> &'a str {
        v.as_deref().unwrap_or_default()
    }
}

/// One change of a dry run, for display.
pub struct ChangeView {
    /// The target as the operator reads it.
    pub target: String,
    /// The rule that made it.
    pub rule: String,
    /// `key = value` pairs it sets.
    pub set: Vec<(String, String)>,
    /// Keys it removes.
    pub unset: Vec<String>,
}

/// What the rules make of one event.
pub struct OutcomeView {
    /// The stored event.
    pub event_id: EventId,
    /// Its type.
    pub event_type: String,
    /// `matched`, `ignored` or `rejected: why`.
    pub verdict: String,
    /// The changes, when matched.
    pub changes: Vec<ChangeView>,
}

/// The replay page (form, and a result when one ran).
#[derive(Template)]
#[template(path = "console/replay.html")]
struct ReplayPage {
    chrome: Chrome,
    form: ReplayForm,
    sources: Vec<String>,
    report: Option<ReplayReport>,
    dry_run: bool,
    outcomes: Vec<OutcomeView>,
    truncated: bool,
    diff_title: &'static str,
    diff: Option<DiffView>,
    diff_unavailable: &'static str,
    diff_empty: &'static str,
}

/// `GET /admin/ui/replay`: the blank form.
pub async fn form(
    session: Session,
    State(state): State<Arc<AppState>>,
) -> Result<Html<String>, ConsoleError> {
    render(&page(&session, &state, ReplayForm::default()))
}

fn page(session: &Session, state: &AppState, form: ReplayForm) -> ReplayPage {
    ReplayPage {
        chrome: Chrome::new("replay", &session.csrf),
        form,
        sources: state.sources.keys().cloned().collect(),
        report: None,
        dry_run: true,
        outcomes: vec![],
        truncated: false,
        diff_title: "Diff against live Scalekit",
        diff: None,
        diff_unavailable: NO_CREDENTIALS,
        diff_empty: "The selected events change no organization or user.",
    }
}

/// `POST /admin/ui/replay`: a dry run (`action=dry_run`) or the replay (`action=run`).
pub async fn run(
    session: Session,
    State(state): State<Arc<AppState>>,
    origin: OriginCheck,
    form: Result<Form<ReplayForm>, FormRejection>,
) -> Result<Html<String>, ConsoleError> {
    let Form(form) = form.map_err(|e| ConsoleError::BadRequest(e.body_text()))?;
    session.check_post(&origin, &form.csrf)?;
    let dry_run = match form.action.as_deref() {
        Some("run") => false,
        Some("dry_run") | None => true,
        Some(other) => {
            return Err(ConsoleError::BadRequest(format!(
                "unknown action {other:?}; use dry_run or run"
            )));
        }
    };
    let filter = form.filter()?;
    // Its own task: a client hanging up does not stop a real replay halfway.
    let diff = match (dry_run, state.live_reader()) {
        (true, Some(mut reader)) => {
            let diffs =
                crate::replay::diff(&state.store, &state.rules, &filter, &mut reader).await?;
            Some(DiffView::of_replay(&diffs))
        }
        _ => None,
    };
    let task = tokio::spawn(replay(state.clone(), filter, dry_run));
    let Collected {
        report,
        outcomes,
        truncated,
    } = task
        .await
        .map_err(|e| ConsoleError::Internal(format!("the replay task failed: {e}")))??;
    if !dry_run {
        tracing::info!(
            events = report.events,
            jobs = report.jobs,
            "replay from the console"
        );
        state.wake.notify_waiters();
    }
    let page = ReplayPage {
        report: Some(report),
        diff,
        dry_run,
        outcomes,
        truncated,
        ..page(&session, &state, form)
    };
    render(&page)
}

/// Runs the replay, keeping the first outcomes of a dry run.
async fn replay(
    state: Arc<AppState>,
    filter: ReplayFilter,
    dry_run: bool,
) -> Result<Collected<OutcomeView>, ConsoleError> {
    let collected = state
        .replay_collecting(&filter, dry_run, MAX_OUTCOMES, |stored, normalized| {
            outcome(stored.id, &stored.event.event_type, normalized)
        })
        .await?;
    Ok(collected)
}

/// The view of one event's verdict.
fn outcome(event_id: EventId, event_type: &str, normalized: &Normalized) -> OutcomeView {
    let (verdict, changes) = match normalized {
        Normalized::Matched { changes, .. } => ("matched".to_owned(), changes.as_slice()),
        Normalized::Ignored => ("ignored: no rule handles it".to_owned(), &[][..]),
        Normalized::Rejected { reason } => (format!("rejected: {reason}"), &[][..]),
    };
    OutcomeView {
        event_id,
        event_type: event_type.to_owned(),
        verdict,
        changes: changes
            .iter()
            .map(|c| ChangeView {
                target: c.target.to_string(),
                rule: c.rule.clone(),
                set: c
                    .set
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
                unset: c.unset.iter().map(ToString::to_string).collect(),
            })
            .collect(),
    }
}
