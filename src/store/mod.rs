//! Durable state: events, jobs, field versions and links. All SQL of the crate lives here.
//!
//! Two backends behind one [`Store`], chosen by the URL scheme and reached through sqlx's
//! `Any` driver (the store binds and reads only i64, text, bytes and their `Option`s, all of
//! which it carries): SQLite is the embedded default (one process, one writer: write
//! transactions start with `BEGIN IMMEDIATE` or with a write, so they queue on the busy
//! timeout instead of failing); PostgreSQL lets several replicas share one database. The
//! SQL text is shared where both accept it; [`Backend`] picks the few statements that
//! differ.

mod claim;
mod events;
mod group_commit;
mod ingest;
mod job_views;
mod jobs;
mod links;
mod notify;
mod prune;
mod replay;

use std::path::Path;
use std::sync::Arc;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, Executor, Transaction};

pub use events::{EventFilter, EventRow};
pub use ingest::{IngestItem, IngestReport, IngestedEvent, RawDelivery};
pub use job_views::{JobRow, JobState};
pub use jobs::{BatchResult, ClaimedBatch, ClaimedJob, JobOutcome};
pub use links::Rename;
pub use prune::PruneReport;
pub use replay::{ReplayFilter, StoredEvent};

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not one orgsync understands.
    #[error(
        "unsupported database URL scheme {0:?}: use sqlite://PATH or postgres://USER@HOST/DATABASE"
    )]
    UnsupportedUrl(String),
    /// The directory for the SQLite file could not be created.
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Applying the embedded migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The database refused a whole write (locked by another program, disk full…).
    #[error("the database refused the write: {0}")]
    WriteRefused(String),
    /// The store was closed (the daemon is stopping).
    #[error("the store is closed")]
    Closed,
    /// A stored row could not be decoded (a bug or a hand-edited database).
    #[error("stored {what} #{id} is unreadable: {reason}")]
    Corrupt {
        /// What kind of row.
        what: &'static str,
        /// Its id.
        id: i64,
        /// Why it could not be read.
        reason: String,
    },
}

/// The database kind behind a [`Store`], from the URL scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite://PATH`: one process, one writer.
    Sqlite,
    /// `postgres://…` or `postgresql://…`: several replicas may share it.
    Postgres,
}

impl Backend {
    /// The backend a database URL names.
    pub fn of_url(url: &str) -> Result<Self, StoreError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(StoreError::UnsupportedUrl(scheme.to_owned())),
        }
    }

    /// The statement that opens a write transaction: SQLite takes the write lock up front
    /// (a deferred transaction could fail to upgrade instead of waiting for it).
    fn begin(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }
}

/// The store handle; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The group-commit writer's queue.
    ingest_queue: tokio::sync::mpsc::Sender<group_commit::Request>,
    /// A random id naming this store in its job notifications, so its own relay can skip
    /// them (its workers were woken already).
    origin: Arc<str>,
    /// Asks for a job notification to the other replicas (see `notify`).
    announcer: tokio::sync::mpsc::Sender<()>,
}

impl Store {
    /// Opens (creating when needed) the database at `url` and applies the migrations, with
    /// a pool sized for a few users (the CLI, tests).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_for(url, 0).await
    }

    /// Like [`Store::connect`], with enough connections for `workers` worker tasks plus
    /// the ingest writer and readiness checks.
    pub async fn connect_for(url: &str, workers: usize) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let max = u32::try_from(workers + 4).unwrap_or(u32::MAX).max(8);
        let pool = match backend {
            Backend::Sqlite => sqlite_pool(url, max).await?,
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(max)
                    .connect(url)
                    .await?
            }
        };
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        let origin: Arc<str> = format!("{:016x}", rand::random::<u64>()).into();
        let announcer = notify::spawn_announcer(pool.clone(), backend, origin.clone());
        let ingest_queue = group_commit::spawn(pool.clone(), backend, announcer.clone());
        Ok(Self {
            pool,
            backend,
            ingest_queue,
            origin,
            announcer,
        })
    }

    /// Which database this store uses.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Opens a write transaction (see [`Backend::begin`]).
    async fn begin(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(self.pool.begin_with(self.backend.begin()).await?)
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Whether the ingest writer still takes deliveries (for `/readyz`).
    pub fn accepting_writes(&self) -> bool {
        !self.ingest_queue.is_closed()
    }

    /// Closes every connection (after the workers stopped).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Opens a SQLite file (creating it and its folder): WAL, and FULL sync so an acknowledged
/// webhook survives a power cut, not only a crash.
async fn sqlite_pool(url: &str, max: u32) -> Result<AnyPool, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = path == ":memory:" || query.split('&').any(|p| p == "mode=memory");
    if let Some(dir) = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !in_memory)
    {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let url = if in_memory || query.split('&').any(|p| p.starts_with("mode=")) {
        url.to_owned()
    } else if query.is_empty() {
        format!("{url}?mode=rwc")
    } else {
        format!("{url}&mode=rwc")
    };
    let options = AnyPoolOptions::new().after_connect(|conn, _| {
        Box::pin(async move {
            conn.execute(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
                 PRAGMA busy_timeout = 30000; PRAGMA foreign_keys = ON;",
            )
            .await?;
            Ok(())
        })
    });
    // Each connection to `:memory:` is its own database: keep exactly one, forever.
    let options = if in_memory {
        options
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        options.max_connections(max)
    };
    Ok(options.connect(&url).await?)
}

/// Decodes a JSON column, naming the row when it cannot be read.
fn decode_json<T: serde::de::DeserializeOwned>(
    what: &'static str,
    id: i64,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what,
        id,
        reason: e.to_string(),
    })
}

/// Encodes a value for a JSON column.
fn encode_json<T: serde::Serialize>(value: &T) -> String {
    // Serialising our own plain data types cannot fail (no maps with non-string keys).
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

#[cfg(test)]
mod tests;
