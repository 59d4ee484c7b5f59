//! Wiring: [`App::build`] binds the listener and prepares store, sources, rules and
//! workers; [`App::run_until_stopped`] serves and works until the token is cancelled.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{DatabaseSettings, ScalekitSettings, Settings};
use crate::http::{self, AppState, ConnectionLimits, SourceSlot, WorkersStatus};
use crate::rules::{RuleError, RuleSet};
use crate::scalekit::{ScalekitClient, ScalekitConfig, ScalekitError};
use crate::sources::{Source, SourceConfigError};
use crate::store::{Backend, PruneReport, Store, StoreError};
use crate::telemetry::Metrics;
use crate::worker::{self, Worker, WorkerHealth};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address tried.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The store could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A rule is invalid.
    #[error("invalid rules: {0}")]
    Rules(#[from] RuleError),
    /// A source is configured wrongly (not merely missing its secret).
    #[error(transparent)]
    Source(#[from] SourceConfigError),
    /// The Scalekit settings are unusable.
    #[error(transparent)]
    Scalekit(#[from] ScalekitError),
    /// A listener's task failed (a bug); the cause.
    #[error("the HTTP server failed: {0}")]
    Serve(String),
}

/// A built, not yet running daemon.
pub struct App {
    /// The public listener, until it is served.
    listener: Option<TcpListener>,
    /// The operator's listener (`/metrics`, `/admin`), when `server.admin_listen` is set.
    admin_listener: Option<TcpListener>,
    /// Where the public listener is bound.
    addr: SocketAddr,
    /// Where the admin listener is bound.
    admin_addr: Option<SocketAddr>,
    state: Arc<AppState>,
    workers: Vec<Arc<Worker>>,
    settings: Settings,
}

impl App {
    /// Opens the store, compiles sources and rules, creates the Scalekit client when
    /// credentials are present, and binds the listener (port 0 picks a free port).
    pub async fn build(
        settings: Settings,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, AppError> {
        Self::build_with_clock(settings, env, Clock::system()).await
    }

    /// [`App::build`] with the time taken from `clock` everywhere (tests pass a manual one).
    pub async fn build_with_clock(
        settings: Settings,
        env: &dyn Fn(&str) -> Option<String>,
        clock: Clock,
    ) -> Result<Self, AppError> {
        let names: Vec<&str> = settings.sources.iter().map(|s| s.name.as_str()).collect();
        let rules = RuleSet::compile(&settings.rules, &names)?;
        let sources = build_sources(&settings, env, &rules)?;
        let store = Store::connect_for(&settings.database.url, settings.worker.concurrency).await?;
        let health = Arc::new(WorkerHealth::default());
        let metrics = Arc::new(Metrics::new());
        let mut scalekit = None;
        let (workers, status) = match scalekit_config(&settings.scalekit) {
            Ok(config) => {
                let client = ScalekitClient::with_metrics(config, clock.clone(), metrics.clone())?;
                scalekit = Some(client.clone());
                let process = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
                let workers = (0..settings.worker.concurrency)
                    .map(|task| {
                        let owner = format!("{process}-{task}");
                        let (store, client) = (store.clone(), client.clone());
                        Arc::new(Worker::new(
                            store,
                            client,
                            &settings.worker,
                            owner,
                            health.clone(),
                            clock.clone(),
                            metrics.clone(),
                        ))
                    })
                    .collect();
                (workers, WorkersStatus::Running(health))
            }
            Err(missing) => (
                Vec::new(),
                WorkersStatus::Paused(format!(
                    "{missing} not set; events are stored, and applied once they are set"
                )),
            ),
        };
        let (listener, addr) = bind(settings.server.listen).await?;
        let (admin_listener, admin_addr) = match settings.server.admin_listen {
            Some(addr) => {
                let (listener, addr) = bind(addr).await?;
                (Some(listener), Some(addr))
            }
            None => (None, None),
        };
        let state = Arc::new(AppState {
            sources,
            rules,
            store,
            wake: Arc::new(Notify::new()),
            body_limit: settings.server.body_limit_bytes,
            workers: status,
            admin_token: settings.server.admin_token.clone(),
            scalekit,
            drift: settings.drift.clone(),
            clock,
            metrics,
        });
        Ok(Self {
            listener: Some(listener),
            admin_listener,
            addr,
            admin_addr,
            state,
            workers,
            settings,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin listener's bound address, when `server.admin_listen` is set.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The store the app uses.
    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// The first worker, when Scalekit credentials are configured (tests drive it directly
    /// with [`Worker::process_next`]).
    pub fn worker(&self) -> Option<Arc<Worker>> {
        self.workers.first().cloned()
    }

    /// Serves HTTP and runs `worker.concurrency` worker tasks (unless `run_workers` is
    /// false) until `token` is cancelled; then stops accepting, lets in-flight requests and
    /// batches finish, and returns.
    pub async fn run_until_stopped(
        mut self,
        token: CancellationToken,
        run_workers: bool,
    ) -> Result<(), AppError> {
        let mut tasks = JoinSet::new();
        match &self.state.workers {
            WorkersStatus::Running(_) if run_workers => {
                let poll = Duration::from_millis(self.settings.worker.poll_interval_ms);
                for worker in &self.workers {
                    let (worker, wake, token) =
                        (worker.clone(), self.state.wake.clone(), token.clone());
                    tasks.spawn(worker::run(worker, wake, poll, token));
                }
                tracing::info!(tasks = self.workers.len(), "workers running");
                if self.state.store.backend() == Backend::Postgres {
                    // Jobs other replicas commit wake these workers too.
                    let url = self.settings.database.url.clone();
                    let (wake, token) = (self.state.wake.clone(), token.clone());
                    let store = self.state.store.clone();
                    tasks.spawn(store.relay_job_notifications(url, wake, token));
                }
            }
            WorkersStatus::Paused(reason) => tracing::warn!("workers paused: {reason}"),
            WorkersStatus::Running(_) => {}
        }
        if self.settings.database.retention_days > 0 {
            let (store, token) = (self.state.store.clone(), token.clone());
            tasks.spawn(prune_periodically(
                store,
                self.settings.database.clone(),
                self.state.clock.clone(),
                token,
            ));
        }
        if let (Some(client), 1..) = (&self.state.scalekit, self.settings.drift.interval_minutes) {
            tasks.spawn(crate::drift::run_periodically(
                self.state.store.clone(),
                client.clone(),
                self.state.rules.clone(),
                self.settings.drift.clone(),
                self.state.clock.clone(),
                self.state.metrics.clone(),
                token.clone(),
            ));
        }
        let mut servers = self.serve(&token);
        token.cancelled().await;
        let grace = Duration::from_secs(self.settings.worker.shutdown_grace_seconds);
        stop_workers(tasks, &self.workers, grace).await;
        let mut served = Ok(());
        while let Some(result) = servers.join_next().await {
            if let Err(e) = result {
                served = Err(AppError::Serve(e.to_string()));
            }
        }
        self.state.store.close().await;
        served
    }

    /// Starts the listeners: the public one with every route, or, with an admin
    /// listener, the webhooks there and `/metrics` and `/admin` on the admin one. Each
    /// ends within the shutdown grace once `token` is cancelled.
    fn serve(&mut self, token: &CancellationToken) -> JoinSet<()> {
        let server = &self.settings.server;
        let timeout = Duration::from_secs(server.request_timeout_seconds);
        let limits = ConnectionLimits {
            header_read_timeout: Duration::from_millis(server.header_read_timeout_ms),
            keep_alive_timeout: Duration::from_millis(server.keep_alive_timeout_ms),
            max_connections: server.max_connections,
            shutdown_grace: Duration::from_secs(self.settings.worker.shutdown_grace_seconds),
        };
        let mut servers = JoinSet::new();
        let state = self.state.clone();
        let public = match &self.admin_listener {
            Some(_) => http::public_router(state.clone(), timeout),
            None => http::router(state.clone(), timeout),
        };
        if let Some(listener) = self.listener.take() {
            tracing::info!(addr = %self.addr, "listening");
            servers.spawn(http::serve(
                listener,
                public,
                limits,
                token.clone(),
                "public",
                state.metrics.clone(),
            ));
        }
        if let Some(listener) = self.admin_listener.take() {
            tracing::info!(addr = ?self.admin_addr, "admin listener: /metrics and /admin");
            let metrics = state.metrics.clone();
            let admin = http::admin_router(state, timeout);
            servers.spawn(http::serve(
                listener,
                admin,
                limits,
                token.clone(),
                "admin",
                metrics,
            ));
        }
        servers
    }
}

/// Binds `addr`; returns the listener and the address it got (port 0 picks one).
async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), AppError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Bind { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    Ok((listener, bound))
}

/// Waits for the worker and pruning tasks, at most `grace`; past it, stops them and hands
/// the jobs they held back to the queue.
async fn stop_workers(mut tasks: JoinSet<()>, workers: &[Arc<Worker>], grace: Duration) {
    let finished = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, finished).await.is_ok() {
        return;
    }
    // Stop the passes still running before handing their jobs back, so none of them can
    // write to Scalekit after another process took the jobs over.
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    for worker in workers {
        match worker.release().await {
            Ok(n) => tracing::warn!(
                jobs = n,
                "shutdown deadline passed: released the jobs still in progress; they run again at once"
            ),
            Err(e) => {
                tracing::error!(error = %e, "shutdown deadline passed and releasing the jobs failed; they run again when their lease ends")
            }
        }
    }
}

/// Deletes what the retention allows, now and then every `prune_interval_minutes` of
/// `clock`'s time, until `token` is cancelled.
async fn prune_periodically(
    store: Store,
    settings: DatabaseSettings,
    clock: Clock,
    token: CancellationToken,
) {
    let interval = Duration::from_secs(settings.prune_interval_minutes.saturating_mul(60));
    let retention =
        i64::try_from(settings.retention_days.saturating_mul(86_400_000)).unwrap_or(i64::MAX);
    loop {
        match store.prune(clock.now_ms().saturating_sub(retention)).await {
            Ok(report) if report != PruneReport::default() => tracing::info!(
                jobs = report.jobs,
                events = report.events,
                deliveries = report.deliveries,
                "pruned what is older than the retention"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "pruning failed; trying again later"),
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = clock.sleep(interval) => {}
        }
    }
}

/// Builds every configured source, each building of its payloads only what the `rules`
/// read (see `PayloadFields`). A source whose secret variable is unset is kept as "cannot
/// receive" (answering 503, so nothing is lost) rather than stopping the daemon.
fn build_sources(
    settings: &Settings,
    env: &dyn Fn(&str) -> Option<String>,
    rules: &RuleSet,
) -> Result<BTreeMap<String, SourceSlot>, AppError> {
    let mut sources = BTreeMap::new();
    for config in &settings.sources {
        let read = rules.payload_fields(&config.name);
        let slot = match Source::from_config_reading(config, env, read) {
            Ok(source) => {
                for warning in source.warnings() {
                    tracing::warn!(source = %config.name, "{warning}");
                }
                Ok(source)
            }
            Err(e @ SourceConfigError::MissingEnv { .. }) => {
                tracing::warn!(source = %config.name, "{e}; the source answers 503 until it is set");
                Err(e.to_string())
            }
            Err(e) => return Err(e.into()),
        };
        sources.insert(config.name.clone(), slot);
    }
    Ok(sources)
}

/// The client settings, or the names of the missing credential variables.
pub fn scalekit_config(settings: &ScalekitSettings) -> Result<ScalekitConfig, String> {
    match (
        &settings.environment_url,
        &settings.client_id,
        &settings.client_secret,
    ) {
        (Some(url), Some(id), Some(secret)) => Ok(ScalekitConfig {
            environment_url: url.clone(),
            client_id: id.clone(),
            client_secret: secret.expose_secret().to_owned().into(),
            request_timeout: Duration::from_secs(settings.request_timeout_seconds),
            requests_per_second: NonZeroU32::new(settings.requests_per_second),
            max_retry_after: Duration::from_secs(settings.max_retry_after_seconds),
        }),
        _ => Err(settings.missing_credentials().join(", ")),
    }
}
