//! The target page: one organization or user by external id: the metadata keys orgsync
//! owns with their versions and the values it last wrote, its jobs, and, when asked, its
//! drift against live Scalekit.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Html;
use serde::Deserialize;

use super::auth::Session;
use super::diff::{DiffView, NO_CREDENTIALS};
use super::events::JobView;
use super::views::{Chrome, given, time};
use super::{ConsoleError, render};
use crate::http::AppState;
use crate::model::{Change, EventId, ExternalId, TargetKey, TargetKind};
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
    /// Present (`1`) when the operator asked to compare with live Scalekit.
    pub drift: Option<String>,
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
    pub event_id: Option<EventId>,
}

/// The target page.
#[derive(Template)]
#[template(path = "console/target.html")]
struct TargetPage {
    chrome: Chrome,
    kind: String,
    external_id: String,
    target_key: Option<TargetKey>,
    owned: Vec<OwnedRow>,
    jobs: Vec<JobView>,
    /// Whether the operator asked for the drift section.
    drift_asked: bool,
    diff_title: &'static str,
    diff: Option<DiffView>,
    diff_unavailable: &'static str,
    diff_empty: &'static str,
}

/// `GET /admin/ui/target?kind=organization&external_id=…`.
pub async fn page(
    session: Session,
    State(state): State<Arc<AppState>>,
    q: Result<Query<TargetQuery>, QueryRejection>,
) -> Result<Html<String>, ConsoleError> {
    let Query(q) = q.map_err(|e| ConsoleError::BadRequest(e.body_text()))?;
    let kind = given(&q.kind).unwrap_or_else(|| "organization".to_owned());
    let target_kind = match kind.as_str() {
        "organization" => TargetKind::Organization,
        "user" => TargetKind::User,
        other => {
            return Err(ConsoleError::BadRequest(format!(
                "unknown target kind {other:?}; use organization or user"
            )));
        }
    };
    let external_id = given(&q.external_id);
    let target_key = external_id
        .as_deref()
        .map(|id| {
            let id = ExternalId::parse(id).map_err(|e| ConsoleError::BadRequest(e.to_string()))?;
            Ok::<_, ConsoleError>(TargetKey::external(target_kind, &id))
        })
        .transpose()?;
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
    let drift_asked = given(&q.drift).is_some();
    let diff = match (&target_key, drift_asked) {
        (Some(key), true) => drift(&state, key).await?,
        _ => None,
    };
    let page = TargetPage {
        chrome: Chrome::new("target", &session.csrf),
        kind,
        external_id: external_id.unwrap_or_default(),
        target_key,
        owned,
        jobs,
        drift_asked,
        diff_title: "Drift against live Scalekit",
        diff,
        diff_unavailable: NO_CREDENTIALS,
        diff_empty: "No drift: every key orgsync wrote has the value it wrote.",
    };
    render(&page)
}

/// The target's drift against live Scalekit, read now; `None` without credentials.
async fn drift(state: &AppState, target_key: &TargetKey) -> Result<Option<DiffView>, ConsoleError> {
    let Some(mut reader) = state.live_reader() else {
        return Ok(None);
    };
    let options = crate::drift::DriftOptions {
        source: None,
        target: Some(target_key.to_string()),
        limit: 1,
    };
    let report = crate::drift::check(
        &state.store,
        &mut reader,
        &state.rules,
        &options,
        state.clock.now_ms(),
    )
    .await
    .map_err(|e| match e {
        crate::drift::DriftError::Store(e) => ConsoleError::Store(e),
        other => ConsoleError::BadRequest(other.to_string()),
    })?;
    Ok(Some(DiffView::of_drift(&report)))
}

/// Per key, the value the newest applied change wrote (`None`: removed) and its event.
/// `changes` come newest first.
fn last_written(changes: &[AppliedChange]) -> BTreeMap<String, (Option<String>, EventId)> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::console::diff::{DiffRow, DiffTarget};
    use crate::model::JobId;

    fn page(diff: Option<DiffView>) -> String {
        TargetPage {
            chrome: Chrome::new("target", "token"),
            kind: "organization".into(),
            external_id: "org_1".into(),
            target_key: Some(TargetKey::parse("org:org_1").unwrap()),
            owned: vec![],
            jobs: vec![],
            drift_asked: true,
            diff_title: "Drift against live Scalekit",
            diff,
            diff_unavailable: NO_CREDENTIALS,
            diff_empty: "No drift.",
        }
        .render()
        .unwrap()
    }

    #[test]
    fn the_drift_section_renders_plain_rows_or_says_why_there_are_none() {
        assert!(page(None).contains(NO_CREDENTIALS));
        assert!(page(Some(DiffView::default())).contains("No drift."));
        let row = DiffRow {
            key: "plan_type".into(),
            live: Some("free<b>".into()),
            after: None,
            verdict: "drifted".into(),
        };
        let view = DiffView {
            targets: vec![DiffTarget {
                target: "organization org_1".into(),
                rows: vec![row],
                note: None,
            }],
        };
        let html = page(Some(view));
        assert!(html.contains("<code>plan_type</code>") && html.contains("free&#60;b&#62;"));
        assert!(html.contains("drifted") && !html.contains(NO_CREDENTIALS));
    }

    #[test]
    fn the_last_written_value_is_the_newest_changes() {
        let change = |id, set: &str| {
            AppliedChange {
            job_id: JobId(id),
            event_id: EventId(id),
            change: serde_json::from_str(&format!(
                r#"{{"rule": "r", "target": {{"by": "external", "kind": "organization", "external_id": "o"}}, {set}}}"#
            ))
            .unwrap(),
        }
        };
        let written = last_written(&[
            change(2, r#""set": {"plan_type": "pro"}, "unset": ["seats"]"#),
            change(1, r#""set": {"plan_type": "free", "seats": "3"}"#),
        ]);
        assert_eq!(written["plan_type"], (Some("pro".to_owned()), EventId(2)));
        assert_eq!(written["seats"], (None, EventId(2)));
    }
}
