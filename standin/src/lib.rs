//! An in-memory stand-in for the Scalekit management REST API, strict to orgsync's
//! reference (`shared/reference/scalekit-api.md`), for tests and local runs.
//!
//! - [`StandIn`] (this file) is the handle tests hold: start, seed, read, script.
//! - `router` builds the axum app: routes, the auth/fault layers on `/api`, the request log.
//! - `auth` issues tokens (`POST /oauth/token`) and checks bearer tokens.
//! - `organizations`, `users`, `search` (U6) and `memberships` (U8) are the operations; `user_body` decodes user bodies and
//!   renders users; `validate` holds the body and metadata rules.
//! - `manual` is the demo's hand edit of metadata (`PATCH /_standin/…`);
//! - `control` is the test side of [`StandIn`]: seeding, snapshots, switches, faults.
//! - `errors` renders `google.rpc.Status` bodies; `faults` scripts failures and lost answers; `record` keeps
//!   the request log and adds latency; `state` is the data behind one mutex; `rfc3339`
//!   formats timestamps.

mod auth;
mod control;
mod errors;
mod faults;
mod manual;
mod memberships;
mod organizations;
mod record;
mod rfc3339;
mod router;
mod search;
mod state;
mod user_body;
mod users;
mod validate;

use std::net::SocketAddr;

pub use faults::Fault;
pub use record::RecordedRequest;
pub use state::{Membership, Organization, User};
pub use validate::{KEY_CHARS, ORG_MAX_PAIRS, USER_MAX_PAIRS, VALUE_CHARS};

/// The client id the stand-in accepts.
pub const CLIENT_ID: &str = "skc_58327482062864390";
/// The client secret the stand-in accepts (contains `+`, `/`, `=` to catch missing form encoding).
pub const CLIENT_SECRET: &str = "standin+secret/=";

/// A running (or router-only) stand-in; cheap to clone, all clones share one state.
#[derive(Clone, Debug, Default)]
pub struct StandIn {
    /// The state every handler and every clone shares.
    shared: state::Shared,
    /// Where it serves, when started with [`StandIn::start`] or [`StandIn::start_on`].
    addr: Option<SocketAddr>,
}

impl StandIn {
    /// A stand-in that does not listen; use [`StandIn::router`] with `oneshot`.
    pub fn new() -> StandIn {
        StandIn::default()
    }

    /// Binds `127.0.0.1:0` and serves in a spawned task until the runtime ends.
    pub async fn start() -> std::io::Result<StandIn> {
        StandIn::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Binds `addr` and serves in a spawned task until the runtime ends.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<StandIn> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let mut standin = StandIn::new();
        standin.addr = Some(listener.local_addr()?);
        let app = standin.router();
        tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                eprintln!("scalekit stand-in stopped serving: {err}");
            }
        });
        Ok(standin)
    }

    /// `http://127.0.0.1:PORT` (`http://127.0.0.1:0` when not listening).
    pub fn base_url(&self) -> String {
        let addr = self
            .addr
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        format!("http://{addr}")
    }

    /// The address it listens on, when started.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// The whole app over this stand-in's state, e.g. for `tower::ServiceExt::oneshot`.
    pub fn router(&self) -> axum::Router {
        router::build(self.shared.clone())
    }
}
