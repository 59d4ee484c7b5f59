//! The target page: one organization or user by external id: the metadata keys orgsync
//! owns with their versions and the values it last wrote, its jobs, and, when asked, its
//! drift against live Scalekit.

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
use crate::model::{EventId, ExternalId, TargetKey, TargetKind};
use crate::store::{ConsoleJobFilter, Store, StoreError, WrittenField, WrittenFilter};

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
    /// The value orgsync last wrote (`None`: see `note`).
    pub value: Option<String>,
    /// Why there is no value: orgsync removed the key, or applied it before values were
    /// kept (migration 0005).
    pub note: &'static str,
    /// The event the value came from (its version's arrival sequence); it may have been
    /// pruned since.
    pub event_id: EventId,
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
            let owned = owned(&state.store, key).await?;
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
    let report = state
        .check_drift(&mut reader, &options, ConsoleError::BadRequest)
        .await?;
    Ok(Some(DiffView::of_drift(&report)))
}

/// The keys orgsync owns on `key`, with the values it last wrote as recorded when each
/// was applied (not as the target's jobs say: a done job's value may have lost to a newer
/// one, and jobs are pruned).
async fn owned(store: &Store, key: &TargetKey) -> Result<Vec<OwnedRow>, StoreError> {
    let filter = WrittenFilter {
        target_key: Some(key.clone()),
        source: None,
        limit: 1,
    };
    let fields = store.written_fields(&filter).await?;
    Ok(fields.into_iter().map(OwnedRow::of).collect())
}

impl OwnedRow {
    /// The row of one recorded field.
    fn of(field: WrittenField) -> Self {
        let (value, note) = match field.written {
            Some(Some(value)) => (Some(value), ""),
            Some(None) => (None, "removed"),
            None => (None, "not recorded (applied before orgsync kept values)"),
        };
        OwnedRow {
            key: field.field,
            version: time(field.version.at_ms),
            seq: field.version.seq,
            value,
            note,
            event_id: EventId(field.version.seq),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::console::diff::{DiffRow, DiffTarget};
    use crate::store::JobVerdict;

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

    /// Event `id` for organization `o` with its version (`created`) and one change.
    fn item(id: &str, at_ms: i64, change: &str) -> crate::store::IngestItem {
        let change = format!(
            r#"{{"rule": "r", "target": {{"by": "external", "kind": "organization", "external_id": "o"}}, {change}}}"#
        );
        crate::store::IngestItem {
            event: crate::model::InboundEvent {
                source: "stripe".into(),
                provider_event_id: id.into(),
                event_type: "customer.updated".into(),
                occurred_at_ms: Some(at_ms),
                payload: serde_json::json!({ "id": id }),
                verification: "test".into(),
            },
            normalized: crate::model::Normalized::Matched {
                changes: vec![serde_json::from_str(&change).unwrap()],
                links: vec![],
            },
        }
    }

    /// Claims the runnable jobs at `now_ms` and finishes them done, recording `applied`
    /// (key, value; `None`: removed) at the newest claimed version.
    async fn apply(store: &Store, now_ms: i64, applied: &[(&str, Option<&str>)]) {
        let batch = store
            .claim("w", now_ms, 60_000, 100)
            .await
            .unwrap()
            .unwrap();
        let version = batch.jobs.iter().map(|j| j.version).max().unwrap();
        let fields = applied
            .iter()
            .map(|(field, value)| crate::store::AppliedField {
                field: (*field).into(),
                version,
                value: value.map(str::to_owned),
            });
        let result = crate::store::BatchResult {
            outcomes: batch
                .jobs
                .iter()
                .map(|j| (j.id, JobVerdict::Done))
                .collect(),
            applied_fields: fields.collect(),
            ..Default::default()
        };
        let finished = store.finish("w", &batch.target_key, &result, now_ms);
        assert_eq!(finished.await.unwrap(), batch.jobs.len() as u64);
    }

    /// The value a finished batch recorded wins over what the remaining done jobs say: a
    /// late, older event's job outlives the newer job it lost to once retention pruned
    /// that one, yet its stale value was never written.
    #[tokio::test]
    async fn the_last_written_value_is_the_newest_changes() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("orgsync.db").display());
        let store = Store::connect(&url).await.unwrap();
        store
            .ingest(
                None,
                &[item("b", 2000, r#""set": {"plan_type": "pro"}"#)],
                1,
            )
            .await
            .unwrap();
        apply(&store, 1, &[("plan_type", Some("pro"))]).await;
        let late = [
            item("a", 1000, r#""set": {"plan_type": "free", "seats": "3"}"#),
            item("c", 3000, r#""set": {}, "unset": ["seats"]"#),
        ];
        store.ingest(None, &late, 5).await.unwrap();
        // "a" is older than "b": only its seats would be written, and "c" removes them.
        apply(&store, 5, &[("seats", None)]).await;
        assert_eq!(store.prune(3).await.unwrap().jobs, 1, "b's job is pruned");
        let key = TargetKey::parse("org:o").unwrap();
        let rows = owned(&store, &key).await.unwrap();
        let shown: Vec<(&str, Option<&str>)> = rows
            .iter()
            .map(|r| (r.key.as_str(), r.value.as_deref()))
            .collect();
        assert_eq!(shown, vec![("plan_type", Some("pro")), ("seats", None)]);
        assert_eq!((rows[0].event_id, rows[1].note), (EventId(1), "removed"));
        store.close().await;
    }

    #[test]
    fn a_field_applied_before_values_were_kept_says_so() {
        let field = WrittenField {
            kind: TargetKind::Organization,
            external_id: ExternalId::parse("o").unwrap(),
            field: "seats".into(),
            version: crate::model::Version { at_ms: 0, seq: 4 },
            written: None,
        };
        let row = OwnedRow::of(field);
        assert_eq!((row.value, row.event_id), (None, EventId(4)));
        assert!(row.note.starts_with("not recorded"), "{}", row.note);
    }
}
