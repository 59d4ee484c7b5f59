//! The group-commit writer's connection (see `group_commit`).

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, ConnectOptions as _, Connection as _, Transaction};

use super::statements::DirectSqlite;
use super::{Backend, StoreError};

/// The writer's connection, kept from one batch to the next. A pool connection taken
/// anew for each batch is, in turn, each of the pool's connections: on SQLite each has
/// its own page cache, which the writes made through the others made stale (every batch
/// re-read the pages it touched), and on PostgreSQL every take costs a ping round trip.
///
/// A SQLite file is written through a connection of the writer's own, driven on its
/// thread ([`DirectSqlite`]); PostgreSQL through one of its own too, opened on the
/// writers' thread ([`Own::Server`]); `:memory:` through one of the pool's.
///
/// It is given back (closed, for the writer's own) when the pool closes (`Pool::close`
/// waits for every connection taken from it: holding one for good would make closing a
/// store hang) and after a failure of the database as a whole (a broken connection is not
/// used again). A single-connection pool (`:memory:`) is never held: the other users of
/// the store need that connection.
pub(super) struct WriterConnection {
    /// Where connections come from; its closing closes the writer's own too.
    pool: AnyPool,
    /// The connection between batches, when kept.
    held: Option<Held>,
    /// The connection of its own the writer opens, if any.
    own: Option<Own>,
    /// Whether the pool has connections to spare for holding one.
    keep: bool,
}

/// A connection of the writer's own, outside the pool.
pub(super) enum Own {
    /// To the SQLite file at this path, driven directly ([`DirectSqlite`]).
    SqliteFile(String),
    /// To the pool's server (PostgreSQL), with the pool's options. Opened by the writer,
    /// so its socket is polled by the writers' own runtime: a reply wakes the writer
    /// there at once instead of queueing behind the HTTP connections' tasks on the
    /// shared runtime, and the writer holds the queue of deliveries during every round
    /// trip of its batch (BENCHMARKS.md, session 8).
    Server,
}

/// A connection kept between batches.
enum Held {
    /// One of the pool's.
    Pooled(PoolConnection<Any>),
    /// The writer's own SQLite connection.
    Direct(DirectSqlite),
    /// The writer's own server connection.
    Server(AnyConnection),
}

/// A write transaction the writer has open.
pub(super) enum Open<'c> {
    /// On one of sqlx's connections (committed by `Transaction::commit`).
    Pooled(Transaction<'c, Any>),
    /// On the writer's own connection, after `BEGIN IMMEDIATE`.
    Direct(&'c mut DirectSqlite),
}

impl WriterConnection {
    /// A writer's connection from `pool`, or of its own (`own`).
    pub(super) fn new(pool: AnyPool, own: Option<Own>) -> Self {
        let keep = own.is_some() || pool.options().get_max_connections() > 1;
        Self {
            pool,
            held: None,
            own,
            keep,
        }
    }

    /// Opens a write transaction on the kept connection (taking or opening one first if
    /// needed).
    pub(super) async fn begin(&mut self, backend: Backend) -> Result<Open<'_>, StoreError> {
        if self.pool.is_closed() {
            self.held = None;
            return Err(StoreError::Closed);
        }
        let held = match self.held.take() {
            Some(held) => held,
            None => match &self.own {
                Some(Own::SqliteFile(path)) => Held::Direct(DirectSqlite::open(path)?),
                Some(Own::Server) => Held::Server(self.pool.connect_options().connect().await?),
                None => Held::Pooled(self.pool.acquire().await?),
            },
        };
        match self.held.insert(held) {
            Held::Pooled(connection) => {
                Ok(Open::Pooled(connection.begin_with(backend.begin()).await?))
            }
            Held::Server(connection) => {
                Ok(Open::Pooled(connection.begin_with(backend.begin()).await?))
            }
            Held::Direct(connection) => {
                connection.run(backend.begin())?;
                Ok(Open::Direct(connection))
            }
        }
    }

    /// Resolves when the pool starts closing: the writer then lets its connection go.
    pub(super) fn close_event(&self) -> sqlx::pool::CloseEvent {
        self.pool.close_event()
    }

    /// Whether a connection is kept between batches now.
    pub(super) fn is_held(&self) -> bool {
        self.held.is_some()
    }

    /// Gives the connection back to the pool, or closes the writer's own.
    pub(super) fn release(&mut self) {
        self.held = None;
    }

    /// After a batch: keeps the connection when allowed and sound.
    pub(super) fn done(&mut self, database_failed: bool) {
        if !self.keep || database_failed || self.pool.is_closed() {
            self.release();
        }
    }
}
