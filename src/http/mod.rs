//! The HTTP surface: `POST /webhooks/{source}`, `GET /healthz`, `GET /readyz`,
//! `GET /metrics`, and the admin API under `/admin/…` when a token is set. This is the only
//! layer that knows status codes.

mod admin;
mod health;
mod metrics;
mod webhooks;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tokio::sync::Notify;
use tower_http::timeout::TimeoutLayer;

use crate::rules::RuleSet;
use crate::sources::Source;
use crate::store::Store;
use crate::worker::WorkerHealth;

/// A configured source, or why it cannot receive (a missing secret, say). An unusable
/// source answers 503, so its sender keeps retrying until the operator fixes the config.
pub type SourceSlot = Result<Source, String>;

/// What the handlers share.
pub struct AppState {
    /// Sources by name.
    pub sources: BTreeMap<String, SourceSlot>,
    /// The compiled mapping rules.
    pub rules: RuleSet,
    /// The durable store.
    pub store: Store,
    /// Wakes idle workers when new jobs were committed.
    pub wake: Arc<Notify>,
    /// Largest accepted body, in bytes.
    pub body_limit: usize,
    /// Whether the workers run (shown by `/readyz`).
    pub workers: WorkersStatus,
    /// The admin API's bearer token; `None` leaves the `/admin` routes out entirely.
    pub admin_token: Option<secrecy::SecretString>,
    /// The Scalekit client, when credentials are set (drift and diff read live objects).
    pub scalekit: Option<crate::scalekit::ScalekitClient>,
    /// `[drift]`: the read cap of drift checks and diffs.
    pub drift: crate::config::DriftSettings,
}

/// The workers' state as `/readyz` reports it.
pub enum WorkersStatus {
    /// No Scalekit credentials: events are stored, nothing is applied; the reason.
    Paused(String),
    /// Running; the health tells of a problem such as refused credentials.
    Running(Arc<WorkerHealth>),
}

/// The router with every route; callers add nothing but a listener.
pub fn router(state: Arc<AppState>, request_timeout: Duration) -> Router {
    crate::telemetry::metrics_handle(); // records from the first request on
    let admin = match state.admin_token {
        Some(_) => Router::new().nest("/admin", admin::routes()),
        None => Router::new(),
    };
    Router::new()
        .merge(admin)
        .route("/webhooks/{source}", post(webhooks::receive))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::render))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .with_state(state)
}
