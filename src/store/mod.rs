//! Durable state: events, jobs, field versions and links. All SQL of the crate lives here.
//!
//! Two backends behind one [`Store`], chosen by the URL scheme and reached through sqlx's
//! `Any` driver (the store binds and reads only i64, text, bytes and their `Option`s, all of
//! which it carries): SQLite is the embedded default (one process, one writer: the hot
//! writes take this process's write turn, and every write transaction starts with
//! `BEGIN IMMEDIATE` or with a write, so other writers queue on the busy timeout instead
//! of failing); PostgreSQL lets several replicas share one database. The
//! SQL text is shared where both accept it; [`Backend`] picks the few statements that
//! differ.

mod batch_phases;
mod body;
mod checkpoint;
mod claim;
mod console;
mod event_rows;
mod events;
mod group_commit;
mod ingest;
mod job_views;
mod jobs;
mod links;
mod new_jobs;
mod notify;
mod prune;
mod replay;
mod resolve;
mod statements;
mod values_list;
mod writer_connection;
mod written;

use std::path::Path;
use std::sync::Arc;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, Executor, Transaction};

pub use crate::model::{EventStatus, JobState};
pub use console::{ConsoleEventFilter, ConsoleJobFilter, SourceCounts};
pub use events::{EventFilter, EventRow};
pub use ingest::{IngestItem, IngestReport, IngestedEvent, RawDelivery};
pub use job_views::JobRow;
pub use jobs::{BatchResult, ClaimedBatch, ClaimedJob, JobVerdict};
pub use links::Rename;
pub use prune::PruneReport;
pub use replay::{ReplayFilter, StoredEvent};
pub use written::{AppliedField, RepairJob, WrittenField, WrittenFilter};

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
    /// PostgreSQL could not set up the TLS the URL's `sslmode` asks for; nothing was sent
    /// in cleartext.
    #[error(
        "cannot connect to PostgreSQL over TLS ({reason}); the URL asks for TLS with sslmode={mode}: \
         turn TLS on at the server (ssl = on, with a certificate), and for verify-ca or verify-full \
         name the CA that signed the server's certificate with sslrootcert=/path/to/ca.pem unless a \
         public CA did; only on a network you trust, use sslmode=disable"
    )]
    Tls {
        /// The `sslmode` of the URL.
        mode: String,
        /// What failed (the server has no TLS, the certificate is not trusted…).
        reason: String,
    },
    /// Applying the embedded migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A statement of the SQLite group-commit writer's own connection failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
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
    /// The workers' bookkeeping writes (claim, lease, finish). On SQLite its connections
    /// commit with `synchronous = NORMAL`: no fsync of their own. The WAL is appended in
    /// commit order and every ingest commit (FULL) fsyncs it, so a power cut can lose only
    /// the last few claims/finishes since then, and their jobs run again (applying is
    /// idempotent); events, jobs and their raw bodies stay FULL. One fsync per claim and
    /// per finish was what capped the whole pipeline (see BENCHMARKS.md). The same pool as
    /// `pool` on PostgreSQL and for `:memory:`.
    work_pool: AnyPool,
    backend: Backend,
    /// The group-commit writer's queue.
    ingest_queue: tokio::sync::mpsc::Sender<group_commit::Request>,
    /// Taken around every hot write on SQLite (group commit, claim, finish, lease), so this
    /// process's writers queue in FIFO order on a wake-up instead of on SQLite's busy
    /// handler, which polls in sleeps of up to 100 ms.
    writer: WriteLock,
    /// A random id naming this store in its job notifications, so its own relay can skip
    /// them (its workers were woken already).
    origin: Arc<str>,
    /// Asks for a job notification to the other replicas (see `notify`).
    announcer: tokio::sync::mpsc::Sender<()>,
}

/// The in-process SQLite write lock (see [`Store`]); `None` on PostgreSQL.
#[derive(Clone, Debug)]
pub(crate) struct WriteLock(Option<Arc<tokio::sync::Mutex<()>>>);

impl WriteLock {
    fn for_backend(backend: Backend) -> Self {
        Self((backend == Backend::Sqlite).then(|| Arc::new(tokio::sync::Mutex::new(()))))
    }

    /// Waits for this process's turn to write (at once on PostgreSQL).
    pub(crate) async fn acquire(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match &self.0 {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        }
    }
}

impl Store {
    /// Opens (creating when needed) the database at `url` and applies the migrations, with
    /// a pool sized for a few users (the CLI, tests).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_for(url, 0).await
    }

    /// Like [`Store::connect`], with enough connections for `workers` worker tasks plus
    /// readiness checks and the like (the ingest writers of a PostgreSQL server or a
    /// SQLite file open connections of their own).
    pub async fn connect_for(url: &str, workers: usize) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let max = u32::try_from(workers + 4).unwrap_or(u32::MAX).max(8);
        let pool = match backend {
            Backend::Sqlite => sqlite_pool(url, max, "FULL").await?,
            // The ingest writers open connections of their own (see `group_commit`).
            Backend::Postgres => AnyPoolOptions::new()
                .max_connections(max)
                .connect(url)
                .await
                .map_err(|e| postgres_connect_error(e, url))?,
        };
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        let work_pool = if backend == Backend::Sqlite && !sqlite_in_memory(url) {
            let max = u32::try_from(workers + 2).unwrap_or(u32::MAX);
            sqlite_pool(url, max, "NORMAL").await?
        } else {
            pool.clone()
        };
        let writer = WriteLock::for_backend(backend);
        let origin: Arc<str> = format!("{:016x}", rand::random::<u64>()).into();
        let announcer = notify::spawn_announcer(pool.clone(), backend, origin.clone());
        // A SQLite file (`work_pool` is then a pool of its own).
        let file = match backend == Backend::Sqlite && !sqlite_in_memory(url) {
            true => Some(group_commit::SqliteFile {
                path: sqlite_file(url)?,
                checkpoints: checkpoint::spawn_checkpointer(work_pool.clone(), writer.clone()),
            }),
            false => None,
        };
        let ingest_queue = group_commit::spawn(
            pool.clone(),
            backend,
            writer.clone(),
            announcer.clone(),
            file,
        )
        .map_err(sqlx::Error::Io)?;
        Ok(Self {
            pool,
            work_pool,
            backend,
            ingest_queue,
            writer,
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

    /// Opens a write transaction for the workers' bookkeeping (see `work_pool`).
    async fn begin_work(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(self.work_pool.begin_with(self.backend.begin()).await?)
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
        self.work_pool.close().await;
        self.pool.close().await;
    }
}

/// A TLS failure while connecting as [`StoreError::Tls`], with what to do; other errors
/// as they are. The URL's `sslmode` decides: `prefer` (sqlx's default) falls back to
/// cleartext on its own, `require`, `verify-ca` and `verify-full` never do.
fn postgres_connect_error(error: sqlx::Error, url: &str) -> StoreError {
    let mode = url
        .split_once('?')
        .into_iter()
        .flat_map(|(_, query)| query.split('&'))
        .find_map(|pair| pair.strip_prefix("sslmode="))
        .unwrap_or("prefer");
    let tls_failed = match &error {
        sqlx::Error::Tls(_) => true,
        // rustls reports handshake and certificate failures as invalid data.
        sqlx::Error::Io(e) => e.kind() == std::io::ErrorKind::InvalidData,
        _ => false,
    };
    if tls_failed && matches!(mode, "require" | "verify-ca" | "verify-full") {
        let reason = match &error {
            sqlx::Error::Tls(e) => e.to_string(),
            other => other.to_string(),
        };
        return StoreError::Tls {
            mode: mode.to_owned(),
            reason,
        };
    }
    error.into()
}

/// Whether a SQLite URL names an in-memory database (one connection, one pool).
fn sqlite_in_memory(url: &str) -> bool {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    path.ends_with(":memory:") || query.split('&').any(|p| p == "mode=memory")
}

/// The path of the SQLite file a URL names, exactly as sqlx reads it (percent-decoded).
fn sqlite_file(url: &str) -> Result<String, StoreError> {
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse()?;
    Ok(options.get_filename().to_string_lossy().into_owned())
}

/// Opens a SQLite file (creating it and its folder): WAL, and `synchronous` FULL so an
/// acknowledged webhook survives a power cut, not only a crash (NORMAL for the workers'
/// bookkeeping, see [`Store`]).
async fn sqlite_pool(
    url: &str,
    max: u32,
    synchronous: &'static str,
) -> Result<AnyPool, StoreError> {
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
    let options = AnyPoolOptions::new().after_connect(move |conn, _| {
        Box::pin(async move {
            conn.execute(
                format!(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous};
                     PRAGMA busy_timeout = 30000; PRAGMA foreign_keys = ON;"
                )
                .as_str(),
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
