//! The group-commit writer's connection (see `group_commit`).

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Connection as _, Transaction};

use super::Backend;

/// The writer's connection, kept from one batch to the next. A pool connection taken
/// anew for each batch is, in turn, each of the pool's connections: on SQLite each has
/// its own page cache, which the writes made through the others made stale (every batch
/// re-read the pages it touched), and on PostgreSQL every take costs a ping round trip.
/// It is given back when the pool closes (`Pool::close` waits for every connection taken
/// from it: holding one for good would make closing a store hang) and after a failure of the
/// database as a whole (a broken connection is not used again). A single-connection pool
/// (`:memory:`) is never held: the other users of the store need that connection.
pub(super) struct WriterConnection {
    /// Where connections come from.
    pool: AnyPool,
    /// The connection between batches, when kept.
    held: Option<PoolConnection<Any>>,
    /// Whether the pool has connections to spare for holding one.
    keep: bool,
    /// Whether the held connection leaves SQLite's checkpoints to the checkpointer.
    checkpoints_elsewhere: bool,
}

impl WriterConnection {
    /// A writer's connection from `pool`; see `checkpoint` for `checkpoints_elsewhere`.
    pub(super) fn new(pool: AnyPool, checkpoints_elsewhere: bool) -> Self {
        let keep = pool.options().get_max_connections() > 1;
        Self {
            pool,
            held: None,
            keep,
            checkpoints_elsewhere: checkpoints_elsewhere && keep,
        }
    }

    /// Opens a write transaction on the kept connection (taking one first if needed).
    pub(super) async fn begin(
        &mut self,
        backend: Backend,
    ) -> Result<Transaction<'_, Any>, sqlx::Error> {
        let connection = match self.held.take() {
            Some(connection) => connection,
            None => {
                let mut connection = self.pool.acquire().await?;
                if self.checkpoints_elsewhere {
                    sqlx::query("PRAGMA wal_autocheckpoint = 0")
                        .execute(&mut *connection)
                        .await?;
                }
                connection
            }
        };
        let connection = self.held.insert(connection);
        connection.begin_with(backend.begin()).await
    }

    /// Whether a connection is kept between batches now.
    pub(super) fn is_held(&self) -> bool {
        self.held.is_some()
    }

    /// Gives the connection back to the pool; or closes it, when it no longer checkpoints
    /// (the pool's other users must).
    pub(super) fn release(&mut self) {
        if let Some(connection) = self.held.take()
            && self.checkpoints_elsewhere
        {
            drop(connection.detach());
        }
    }

    /// After a batch: keeps the connection when allowed and sound.
    pub(super) fn done(&mut self, database_failed: bool) {
        if !self.keep || database_failed || self.pool.is_closed() {
            self.release();
        }
    }
}
