//! Durable state: events, jobs, field versions and links. All SQL of the crate lives here.
//!
//! SQLite is the embedded default (one process, one writer: write transactions start with
//! `BEGIN IMMEDIATE` or with a write, so they queue on the busy timeout instead of
//! failing). The methods are backend-neutral so that a PostgreSQL backend can sit behind
//! the same type.

mod events;
mod group_commit;
mod ingest;
mod job_views;
mod jobs;
mod links;
mod prune;
mod replay;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

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
        "unsupported database URL {0:?}: use sqlite://PATH (PostgreSQL support comes with the postgres backend)"
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

/// The store handle; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    /// The group-commit writer's queue.
    ingest_queue: tokio::sync::mpsc::Sender<group_commit::Request>,
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
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| {
                StoreError::UnsupportedUrl(url.split(':').next().unwrap_or_default().to_owned())
            })?;
        let path = path.split('?').next().unwrap_or(path);
        if let Some(dir) = Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged webhook survives a power cut, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(u32::try_from(workers + 4).unwrap_or(u32::MAX).max(8))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let ingest_queue = group_commit::spawn(pool.clone());
        Ok(Self { pool, ingest_queue })
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
