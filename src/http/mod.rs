//! The HTTP surface: `POST /webhooks/{source}`, `GET /healthz`, `GET /readyz`,
//! `GET /metrics`, and the admin API under `/admin/…` when a token is set; with an admin
//! listener, the last two move there ([`public_router`], [`admin_router`]). [`serve`] runs
//! a listener with bounded connections. This is the only layer that knows status codes.

mod admin;
mod console;
mod health;
mod metrics;
mod serve;
mod trace;
mod webhooks;

pub use serve::{ConnectionLimits, serve};
pub use trace::RequestId;

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
    /// Where "now" comes from (what the store records and signatures are checked at).
    pub clock: crate::clock::Clock,
    /// This app's metrics registry (`GET /metrics` renders it).
    pub metrics: Arc<crate::telemetry::Metrics>,
}

impl AppState {
    /// A reader of live Scalekit objects at the drift read rate (diffs, drift checks);
    /// `None` without Scalekit credentials.
    pub fn live_reader(&self) -> Option<crate::drift::LiveReader> {
        let client = self.scalekit.clone()?;
        let rate = std::num::NonZeroU32::new(self.drift.reads_per_second);
        Some(crate::drift::LiveReader::new(client, rate))
    }

    /// A replay (see [`crate::replay::replay_collecting`]) with this app's store, rules
    /// and clock, keeping a dry run's first `max` outcomes as `view` makes them.
    pub async fn replay_collecting<T>(
        &self,
        filter: &crate::store::ReplayFilter,
        dry_run: bool,
        max: usize,
        view: impl FnMut(&crate::store::StoredEvent, &crate::model::Normalized) -> T,
    ) -> Result<crate::replay::Collected<T>, crate::store::StoreError> {
        let now_ms = self.clock.now_ms();
        crate::replay::replay_collecting(
            &self.store,
            &self.rules,
            filter,
            dry_run,
            now_ms,
            max,
            view,
        )
        .await
    }

    /// A drift check with this app's store, rules and clock. A store failure becomes the
    /// caller's store error; a check that cannot run as asked (a bad target or limit)
    /// becomes what `bad_request` makes of its message.
    pub async fn check_drift<E: From<crate::store::StoreError>>(
        &self,
        reader: &mut crate::drift::LiveReader,
        options: &crate::drift::DriftOptions,
        bad_request: impl FnOnce(String) -> E,
    ) -> Result<crate::drift::DriftReport, E> {
        let now_ms = self.clock.now_ms();
        crate::drift::check(&self.store, reader, &self.rules, options, now_ms)
            .await
            .map_err(|e| match e {
                crate::drift::DriftError::Store(e) => E::from(e),
                other => bad_request(other.to_string()),
            })
    }
}

/// The workers' state as `/readyz` reports it.
pub enum WorkersStatus {
    /// No Scalekit credentials: events are stored, nothing is applied; the reason.
    Paused(String),
    /// Running; the health tells of a problem such as refused credentials.
    Running(Arc<WorkerHealth>),
}

/// Every route on one listener: what the daemon serves when no admin listener is set.
pub fn router(state: Arc<AppState>, request_timeout: Duration) -> Router {
    let routes = public_routes().merge(operator_routes(&state));
    finish(routes, state, request_timeout)
}

/// The routes for the internet: `POST /webhooks/{source}` and the probes. With an admin
/// listener, this is all the public listener serves.
pub fn public_router(state: Arc<AppState>, request_timeout: Duration) -> Router {
    finish(public_routes(), state, request_timeout)
}

/// The operator's listener (`server.admin_listen`): `/metrics`, the admin API when a
/// token is set, and the probes.
pub fn admin_router(state: Arc<AppState>, request_timeout: Duration) -> Router {
    let routes = probe_routes().merge(operator_routes(&state));
    finish(routes, state, request_timeout)
}

/// The webhook route and the probes.
fn public_routes() -> Router<Arc<AppState>> {
    probe_routes().route("/webhooks/{source}", post(webhooks::receive))
}

/// `/healthz` and `/readyz`, served on every listener.
fn probe_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
}

/// What only an operator should reach: `/metrics` and, with a token, `/admin/…`. More
/// operator routes (a console under `/admin/ui`, say) are added here.
fn operator_routes(state: &AppState) -> Router<Arc<AppState>> {
    let routes = Router::new().route("/metrics", get(metrics::render));
    match state.admin_token {
        Some(_) => routes
            .nest("/admin", admin::routes())
            .merge(console::routes()),
        None => routes,
    }
}

/// The whole body, or `None` when it is larger than `limit`. A declared `Content-Length`
/// over the limit is refused before a byte is read, so the sender gets its 413 at once
/// instead of the server waiting for a body it will not take.
async fn read_limited(body: axum::body::Body, limit: usize) -> Option<axum::body::Bytes> {
    let declared = axum::body::HttpBody::size_hint(&body).lower();
    if declared > u64::try_from(limit).unwrap_or(u64::MAX) {
        return None;
    }
    axum::body::to_bytes(body, limit).await.ok()
}

/// Adds the request timeout, the request span and id ([`trace`]), and the state.
fn finish(
    routes: Router<Arc<AppState>>,
    state: Arc<AppState>,
    request_timeout: Duration,
) -> Router {
    routes
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(trace::layer())
        .layer(axum::middleware::from_fn(trace::assign_request_id))
        .with_state(state)
}
