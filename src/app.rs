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

use crate::config::{DatabaseSettings, ScalekitSettings, Settings};
use crate::http::{AppState, SourceSlot, WorkersStatus, router};
use crate::rules::{RuleError, RuleSet};
use crate::scalekit::{ScalekitClient, ScalekitConfig, ScalekitError};
use crate::sources::{Source, SourceConfigError};
use crate::store::{Backend, PruneReport, Store, StoreError};
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
    /// Serving failed.
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// A built, not yet running daemon.
pub struct App {
    listener: TcpListener,
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
        let sources = build_sources(&settings, env)?;
        let names: Vec<&str> = sources.keys().map(String::as_str).collect();
        let rules = RuleSet::compile(&settings.rules, &names)?;
        let store = Store::connect_for(&settings.database.url, settings.worker.concurrency).await?;
        let health = Arc::new(WorkerHealth::default());
        let (workers, status) = match scalekit_config(&settings.scalekit) {
            Ok(config) => {
                let client = ScalekitClient::new(config)?;
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
        let addr = settings.server.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| AppError::Bind { addr, source })?;
        let state = Arc::new(AppState {
            sources,
            rules,
            store,
            wake: Arc::new(Notify::new()),
            body_limit: settings.server.body_limit_bytes,
            workers: status,
            admin_token: settings.server.admin_token.clone(),
        });
        Ok(Self {
            listener,
            state,
            workers,
            settings,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.settings.server.listen)
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
        self,
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
                token,
            ));
        }
        let timeout = Duration::from_secs(self.settings.server.request_timeout_seconds);
        tracing::info!(addr = %self.local_addr(), "listening");
        let shutdown = token.clone();
        let served = axum::serve(self.listener, router(self.state.clone(), timeout))
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        token.cancel();
        let grace = Duration::from_secs(self.settings.worker.shutdown_grace_seconds);
        let finished = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, finished).await.is_err() {
            // Stop the passes still running before handing their jobs back, so none of them
            // can write to Scalekit after another process took the jobs over.
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            for worker in &self.workers {
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
        self.state.store.close().await;
        served.map_err(AppError::Serve)
    }
}

/// Deletes what the retention allows, now and then every `prune_interval_minutes`, until
/// `token` is cancelled.
async fn prune_periodically(store: Store, settings: DatabaseSettings, token: CancellationToken) {
    let interval = Duration::from_secs(settings.prune_interval_minutes.saturating_mul(60));
    let retention =
        i64::try_from(settings.retention_days.saturating_mul(86_400_000)).unwrap_or(i64::MAX);
    loop {
        match store
            .prune(worker::now_ms().saturating_sub(retention))
            .await
        {
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
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// Builds every configured source. A source whose secret variable is unset is kept as
/// "cannot receive" (answering 503, so nothing is lost) rather than stopping the daemon.
fn build_sources(
    settings: &Settings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, SourceSlot>, AppError> {
    let mut sources = BTreeMap::new();
    for config in &settings.sources {
        let slot = match Source::from_config(config, env) {
            Ok(source) => Ok(source),
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
