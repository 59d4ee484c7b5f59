//! `GET /metrics`: the Prometheus text exposition format.
//!
//! Counters and histograms come from the process's recorder
//! ([`crate::telemetry::metrics_handle`]). The gauges that describe this daemon's store and
//! workers (`orgsync_jobs{state}`, `orgsync_workers_paused`) are read at scrape time and
//! written here, from this app's own state, so they are never stale or shared.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::{AppState, WorkersStatus};
use crate::telemetry;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`: the recorded metrics plus the scrape-time gauges.
pub async fn render(State(state): State<Arc<AppState>>) -> Response {
    let mut body = telemetry::metrics_handle().render();
    let paused = matches!(state.workers, WorkersStatus::Paused(_));
    write_gauge(
        &mut body,
        "orgsync_workers_paused",
        "1 when the workers are paused (no Scalekit credentials), else 0.",
        [(None::<(&str, &str)>, i64::from(paused))],
    );
    match state.store.job_counts().await {
        Ok(counts) => write_gauge(
            &mut body,
            "orgsync_jobs",
            "Jobs in the store by state.",
            counts
                .into_iter()
                .map(|(s, n)| (Some(("state", s.as_str())), n)),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: could not count the jobs; orgsync_jobs is left out")
        }
    }
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

/// Appends one gauge family: `# HELP`, `# TYPE` and a line per (label, value).
fn write_gauge<L: AsRef<str>>(
    out: &mut String,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (Option<(&'static str, L)>, i64)>,
) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (label, value) in series {
        match label {
            Some((key, v)) => {
                let v = escape(v.as_ref());
                let _ = writeln!(out, "{name}{{{key}=\"{v}\"}} {value}");
            }
            None => {
                let _ = writeln!(out, "{name} {value}");
            }
        }
    }
}

/// Escapes a label value (backslash, double quote, newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_render_in_the_text_format() {
        let mut out = String::from("x_total 1");
        write_gauge(&mut out, "g", "A gauge.", [(Some(("state", "a\"b")), 2)]);
        write_gauge(&mut out, "h", "Another.", [(None::<(&str, &str)>, 0)]);
        assert_eq!(
            out,
            "x_total 1\n# HELP g A gauge.\n# TYPE g gauge\ng{state=\"a\\\"b\"} 2\n\
             # HELP h Another.\n# TYPE h gauge\nh 0\n"
        );
    }
}
