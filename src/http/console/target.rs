//! The target page: one organization or user by external id: the metadata keys orgsync
//! owns with their versions and the values it last wrote, its jobs, and (once wired) its
//! drift against live Scalekit.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Html;
use serde::Deserialize;

use super::auth::Session;
use super::diff::{DiffView, NOT_WIRED};
use super::events::JobView;
use super::views::{Chrome, given, time};
use super::{ConsoleError, render};
use crate::http::AppState;
use crate::model::Change;
use crate::store::{AppliedChange, ConsoleJobFilter};

/// The most done changes read to find the last written values.
const CHANGES_LIMIT: i64 = 500;
/// The most jobs listed.
const JOBS_LIMIT: i64 = 200;

/// Which target.
#[derive(Debug, Default, Deserialize)]
pub struct TargetQuery {
    /// `organization` or `user`.
    pub kind: Option<String>,
    /// The external id.
    pub external_id: Option<String>,
}

/// A key orgsync owns on the target.
pub struct OwnedRow {
    /// The metadata key.
    pub key: String,
    /// The newest applied value's version time.
    pub version: String,
    /// The version's arrival sequence.
    pub seq: i64,
    /// The value orgsync last wrote (`None`: it removed the key or the job was pruned).
    pub value: Option<String>,
    /// The event whose job wrote it.
    pub event_id: Option<i64>,
}

/// The target page.
#[derive(Template)]
#[template(path = "console/target.html")]
struct TargetPage {
    chrome: Chrome,
    kind: String,
    external_id: String,
    target_key: Option<String>,
    owned: Vec<OwnedRow>,
    jobs: Vec<JobView>,
    diff_title: &'static str,
    diff: Option<DiffView>,
    diff_unavailable: &'static str,
}

/// `GET /admin/ui/target?kind=organization&external_id=…`.
pub async fn page(
    session: Session,
    State(state): State<Arc<AppState>>,
    q: Result<Query<TargetQuery>, QueryRejection>,
) -> Result<Html<String>, ConsoleError> {
    let Query(q) = q.map_err(|e| ConsoleError::BadRequest(e.body_text()))?;
    let kind = given(&q.kind).unwrap_or_else(|| "organization".to_owned());
    let prefix = match kind.as_str() {
        "organization" => "org",
        "user" => "user",
        other => {
            return Err(ConsoleError::BadRequest(format!(
                "unknown target kind {other:?}; use organization or user"
            )));
        }
    };
    let external_id = given(&q.external_id);
    let target_key = external_id.as_ref().map(|id| format!("{prefix}:{id}"));
    let (owned, jobs) = match &target_key {
        None => (vec![], vec![]),
        Some(key) => {
            let fields = state.store.owned_fields(key).await?;
            let written = last_written(&state.store.applied_changes(key, CHANGES_LIMIT).await?);
            let owned = fields
                .into_iter()
                .map(|f| {
                    let (value, event_id) = written.get(&f.field).cloned().unzip();
                    OwnedRow {
                        version: time(f.version_ms),
                        seq: f.version_seq,
                        value: value.flatten(),
                        event_id,
                        key: f.field,
                    }
                })
                .collect();
            let filter = ConsoleJobFilter {
                target_key: Some(key.clone()),
                limit: JOBS_LIMIT,
                ..ConsoleJobFilter::default()
            };
            let jobs = state.store.console_jobs(&filter).await?;
            (owned, jobs.into_iter().map(JobView::of).collect())
        }
    };
    let page = TargetPage {
        chrome: Chrome::new("target", &session.csrf),
        kind,
        external_id: external_id.unwrap_or_default(),
        target_key,
        owned,
        jobs,
        diff_title: "Drift against live Scalekit",
        diff: None,
        diff_unavailable: NOT_WIRED,
    };
    render(&page)
}

/// Per key, the value the newest applied change wrote (`None`: removed) and its event.
/// `changes` come newest first.
fn last_written(changes: &[AppliedChange]) -> BTreeMap<String, (Option<String>, i64)> {
    let mut out = BTreeMap::new();
    for applied in changes {
        let Ok(change) = serde_json::from_value::<Change>(applied.change.clone()) else {
            continue;
        };
        for (key, value) in &change.set {
            out.entry(key.to_string())
                .or_insert_with(|| (Some(value.clone()), applied.event_id));
        }
        for key in &change.unset {
            out.entry(key.to_string())
                .or_insert((None, applied.event_id));
        }
    }
    out
}
