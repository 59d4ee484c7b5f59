//! The request log: every request as received, with its answer's status; plus the latency
//! added to `/api` answers, and the hold on them.

use std::time::Instant;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::errors::ApiError;
use crate::faults::LostAnswer;
use crate::state::{Shared, lock};

/// Largest request body the stand-in reads.
const MAX_BODY: usize = 1024 * 1024;

/// One request as the stand-in received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `PATCH`.
    pub method: String,
    /// The path exactly as received (still percent-encoded; the colon included).
    pub path: String,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    /// Request headers (names lower-case); values that are not UTF-8 are skipped.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON, when it is JSON.
    pub body: Option<serde_json::Value>,
    /// The body as text (lossy UTF-8), e.g. the token request's form.
    pub raw_body: String,
    /// The answer's status; `None` while the request is still being handled.
    pub status: Option<u16>,
    /// The call was applied but its answer lost: the client got a 504 instead of the 2xx.
    pub lost: bool,
    /// When the request arrived.
    pub at: Instant,
}

impl RecordedRequest {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Outermost middleware: logs the request, runs it, stores the status, then delays `/api`
/// answers by the configured latency and while they are held. The change is made before
/// the delay, so a client that times out meanwhile sees what a lost response looks like.
pub async fn record(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return ApiError::invalid("request body unreadable or larger than 1 MiB").into_response();
    };
    let entry = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body: serde_json::from_slice(&bytes).ok(),
        raw_body: String::from_utf8_lossy(&bytes).into_owned(),
        status: None,
        lost: false,
        at: Instant::now(),
    };
    let is_api = entry.path.starts_with("/api/");
    let index = {
        let mut inner = lock(&shared);
        inner.requests.push(entry);
        inner.requests.len() - 1
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (latency, mut held) = {
        let mut inner = lock(&shared);
        if let Some(entry) = inner.requests.get_mut(index) {
            entry.status = Some(response.status().as_u16());
            entry.lost = response.extensions().get::<LostAnswer>().is_some();
        }
        (inner.latency, inner.held.subscribe())
    };
    if is_api && !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if is_api {
        // The sender lives in the shared state, which outlives this request.
        let _ = held.wait_for(|held| !*held).await;
    }
    response
}
