//! Serving one listener with every connection bounded: an accept loop over hyper's HTTP/1
//! connection builder with a timer (header read timeout), an idle keep-alive timeout, a
//! cap on open connections, and a shutdown that ends within the grace even when clients
//! stall.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::telemetry::Metrics;

/// How long the accept loop pauses after an accept error (out of file descriptors, say),
/// so it does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// At most one warning per this period about refused connections or accept errors.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The bounds on one listener's connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A request head (line and headers) must arrive within this, or the connection is
    /// closed; hyper starts this clock whenever it waits for a request.
    pub header_read_timeout: Duration,
    /// A connection that answered a request and has none in progress is closed after
    /// this; zero turns keep-alive off.
    pub keep_alive_timeout: Duration,
    /// Most connections open at once; one more is closed as soon as it is accepted.
    pub max_connections: usize,
    /// On shutdown, how long connections with a request in progress may take to finish;
    /// whatever is open then is dropped.
    pub shutdown_grace: Duration,
}

/// Serves `router` on `listener` until `token` is cancelled; then stops accepting, lets
/// requests in progress finish (idle connections close at once) and returns, at the
/// latest after `limits.shutdown_grace`. `name` labels logs and the connection metrics
/// (`orgsync_http_connections_open`, `orgsync_http_connections_refused_total`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    token: CancellationToken,
    name: &'static str,
    metrics: Arc<Metrics>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    let mut warnings = Throttle::default();
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => match slots.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let (router, token) = (router.clone(), token.clone());
                        let open = OpenGauge::new(&metrics, name);
                        connections.spawn(connection(stream, router, limits, token, permit, open, name));
                    }
                    Err(_) => {
                        drop(stream);
                        metrics.connection_refused(name);
                        if let Some(left_out) = warnings.allow() {
                            tracing::warn!(listener = name, max_connections = limits.max_connections, refused_since_last_warning = left_out,
                                "connection refused: the listener has server.max_connections open; raise it, or look for clients holding connections");
                        }
                    }
                },
                Err(e) => {
                    if let Some(left_out) = warnings.allow() {
                        tracing::warn!(listener = name, error = %e, errors_since_last_warning = left_out, "accepting a connection failed; pausing briefly");
                    }
                    tokio::select! {
                        _ = token.cancelled() => break,
                        _ = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
                    }
                }
            },
        }
    }
    drop(listener);
    drain(connections, limits.shutdown_grace, name).await;
}

/// Waits for the open connections to finish, at most `grace`; then drops the rest.
async fn drain(mut connections: JoinSet<()>, grace: Duration, name: &'static str) {
    let finished = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, finished).await.is_err() {
        let left = connections.len();
        connections.abort_all();
        while connections.join_next().await.is_some() {}
        tracing::warn!(
            listener = name,
            connections = left,
            "shutdown deadline passed: closed the connections still open"
        );
    }
}

/// Serves one connection until the client closes it, a timeout closes it, or shutdown.
async fn connection(
    stream: TcpStream,
    router: Router,
    limits: ConnectionLimits,
    token: CancellationToken,
    _permit: OwnedSemaphorePermit,
    _open: OpenGauge,
    name: &'static str,
) {
    // Small answers go out at once rather than waiting for the peer's delayed ACK.
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::default());
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let busy = activity.begin();
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await;
                drop(busy);
                response
            }
        })
    };
    let keep_alive = !limits.keep_alive_timeout.is_zero();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(keep_alive);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(listener = name, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = token.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = activity.idle_for(limits.keep_alive_timeout), if !closing && keep_alive => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Whether a connection has a request in progress, and when its last one ended.
#[derive(Default)]
struct Activity {
    /// Requests in progress, and when the last one ended (`None` before the first).
    state: Mutex<(usize, Option<Instant>)>,
    /// Woken whenever a request begins or ends.
    changed: Notify,
}

/// Marks a request in progress until dropped.
struct Busy(Arc<Activity>);

impl Activity {
    fn begin(self: &Arc<Self>) -> Busy {
        self.update(|state| state.0 += 1);
        Busy(self.clone())
    }

    fn update(&self, change: impl FnOnce(&mut (usize, Option<Instant>))) {
        change(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner));
        self.changed.notify_waiters();
    }

    /// Returns once the connection answered a request and then had none in progress for
    /// `timeout` (before its first request, hyper's header read timeout is the bound).
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let changed = self.changed.notified();
            let (busy, last) = *self.state.lock().unwrap_or_else(PoisonError::into_inner);
            match last {
                Some(last) if busy == 0 => {
                    let deadline = last + timeout;
                    if Instant::now() >= deadline {
                        return;
                    }
                    tokio::select! {
                        _ = changed => {}
                        _ = tokio::time::sleep_until(deadline) => {}
                    }
                }
                _ => changed.await,
            }
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.update(|state| {
            state.0 = state.0.saturating_sub(1);
            state.1 = Some(Instant::now());
        });
    }
}

/// Counts one open connection in `orgsync_http_connections_open` while it lives.
struct OpenGauge(Gauge);

impl OpenGauge {
    fn new(metrics: &Metrics, name: &'static str) -> Self {
        let gauge = metrics.connections_open(name);
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for OpenGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Lets one warning through per [`WARN_EVERY`] and counts the ones it held back.
#[derive(Default)]
struct Throttle {
    last: Option<Instant>,
    held_back: u64,
}

impl Throttle {
    /// `Some(number held back since the last one)` when a warning may be logged now.
    fn allow(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last {
            Some(last) if now.duration_since(last) < WARN_EVERY => {
                self.held_back += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.held_back))
            }
        }
    }
}
