//! Checkpoints of the SQLite write-ahead log, off the ingest writer's path.
//!
//! SQLite copies the WAL back into the database file (a checkpoint) in the commit that
//! makes the WAL pass 1 000 pages, on the committing connection. For the group-commit
//! writer, which every delivery waits for, that was a twentieth of the machine's CPU and
//! its longest commits (BENCHMARKS.md, session 5). So the writer's connection does not
//! checkpoint (`wal_autocheckpoint = 0`); after every [`COMMITS_PER_CHECKPOINT`] of its
//! commits this task checkpoints on a connection of its own, in parallel with the
//! writer's next batches (a `PASSIVE` checkpoint takes no lock a writer or reader waits
//! for).
//!
//! The WAL starts again from its beginning only when a write transaction begins with every
//! page of it copied back; under a steady load the writer commits during every checkpoint,
//! so that moment may never come and the file would grow without bound. So when the WAL
//! has grown past [`RESTART_FRAMES`] pages, the checkpoint is repeated with the writer's
//! turn held (a short pause: it copies only what was committed during the first pass).
//! Durability does not change: a commit is durable in the WAL, checkpointed or not.

use sqlx::AnyPool;
use tokio::sync::mpsc;

use super::WriteLock;

/// How many of the writer's commits go between two checkpoints.
pub(super) const COMMITS_PER_CHECKPOINT: u32 = 16;

/// The WAL size (pages) past which a checkpoint holds the writer's turn so the WAL can
/// start again from its beginning (16 MiB of 4 KiB pages).
pub(super) const RESTART_FRAMES: i64 = 4096;

/// What the writer tells of its commits: every [`COMMITS_PER_CHECKPOINT`]th asks the
/// checkpointer for a checkpoint.
pub(super) struct Checkpoints {
    checkpointer: mpsc::Sender<()>,
    commits: u32,
}

impl Checkpoints {
    /// Counts one commit of the writer.
    pub(super) fn committed(&mut self) {
        self.commits += 1;
        if self.commits >= COMMITS_PER_CHECKPOINT {
            self.commits = 0;
            // Full: a checkpoint is running, and the one already asked for covers these
            // commits too.
            let _ = self.checkpointer.try_send(());
        }
    }
}

/// Starts the checkpointer of a SQLite store; it ends when the writer is gone.
pub(super) fn spawn_checkpointer(pool: AnyPool, writer: WriteLock) -> Checkpoints {
    let (checkpointer, mut asked) = mpsc::channel::<()>(1);
    tokio::spawn(async move {
        while asked.recv().await.is_some() {
            if pool.is_closed() {
                continue;
            }
            if let Err(e) = checkpoint(&pool, &writer).await {
                // The next checkpoint here, or the next commit of a connection that
                // checkpoints by itself (the workers'), copies the pages.
                tracing::warn!(error = %e, "checkpointing the SQLite write-ahead log failed");
            }
        }
    });
    Checkpoints {
        checkpointer,
        commits: 0,
    }
}

/// Copies the WAL into the database file, then once more with the writer's turn held when
/// the WAL is large (see the module doc).
async fn checkpoint(pool: &AnyPool, writer: &WriteLock) -> Result<(), sqlx::Error> {
    let wal_frames = passive(&mut *pool.acquire().await?).await?;
    if wal_frames >= RESTART_FRAMES {
        // The turn first, then a connection: the order the workers take them in.
        let _turn = writer.acquire().await;
        passive(&mut *pool.acquire().await?).await?;
    }
    Ok(())
}

/// One `PASSIVE` checkpoint; returns the WAL's size in pages.
async fn passive(connection: &mut sqlx::AnyConnection) -> Result<i64, sqlx::Error> {
    let (_busy, wal_frames, _copied): (i64, i64, i64) =
        sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&mut *connection)
            .await?;
    Ok(wal_frames)
}
