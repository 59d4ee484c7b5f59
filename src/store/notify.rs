//! Wake-ups across replicas (PostgreSQL): a transaction that makes jobs runnable sends a
//! `NOTIFY` on [`CHANNEL`] (PostgreSQL delivers it at commit, and drops it with a
//! rollback), and every replica LISTENs and wakes its own workers, so a job stored by one
//! replica is picked up by the others at once instead of at their next poll. The poll stays
//! the safety net: a notification lost while a listener reconnects delays a job, never
//! loses it.

use std::sync::Arc;
use std::time::Duration;

use sqlx::AnyConnection;
use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Backend, Store};

/// The channel the notifications travel on (one per database: the replicas of one
/// deployment share it).
const CHANNEL: &str = "orgsync_jobs";

/// The first pause before connecting again after a failure; it grows with each failure in
/// a row, up to [`MAX_RECONNECT_PAUSE`].
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

/// The longest pause between two connection attempts.
const MAX_RECONNECT_PAUSE: Duration = Duration::from_secs(30);

/// Queues a notification from the store `origin` in the open transaction `tx` (sent when
/// it commits); nothing on SQLite, whose only process wakes its workers itself.
pub(super) async fn announce_jobs(
    tx: &mut AnyConnection,
    backend: Backend,
    origin: &str,
) -> Result<(), sqlx::Error> {
    if backend == Backend::Postgres {
        // PostgreSQL folds identical notifications of one transaction into one.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(origin)
            .execute(tx)
            .await?;
    }
    Ok(())
}

impl Store {
    /// Notifies the replicas after jobs were made runnable outside a transaction (an
    /// operator's retry). A failure is only logged: the replicas' poll finds the jobs.
    pub(super) async fn announce_committed_jobs(&self) {
        if self.backend != Backend::Postgres {
            return;
        }
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(&*self.origin)
            .execute(&self.pool)
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "could not notify the other replicas; they find the jobs at their next poll");
        }
    }
}

impl Store {
    /// Wakes `wake`'s waiters whenever another replica commits runnable jobs to the
    /// PostgreSQL database at `url` (this store's own notifications are skipped: the code
    /// that stored the jobs woke the workers already), until `token` is cancelled.
    /// Reconnects after a failure, with a growing pause, and wakes the workers after each
    /// (re)connection, since notifications sent meanwhile are lost.
    pub async fn relay_job_notifications(
        self,
        url: String,
        wake: Arc<Notify>,
        token: CancellationToken,
    ) {
        let mut failures: u32 = 0;
        loop {
            let error = tokio::select! {
                _ = token.cancelled() => return,
                result = listen(&url, &self.origin, &wake, &mut failures) => match result {
                    Ok(never) => match never {},
                    Err(e) => e,
                },
            };
            failures = failures.saturating_add(1);
            let pause = RECONNECT_PAUSE
                .saturating_mul(failures)
                .min(MAX_RECONNECT_PAUSE);
            tracing::warn!(error = %error, retry_in = ?pause, "listening for the jobs of other replicas failed; they are found by polling meanwhile");
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// Connects, listens, and forwards notifications until an error.
async fn listen(
    url: &str,
    origin: &str,
    wake: &Notify,
    failures: &mut u32,
) -> Result<std::convert::Infallible, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    *failures = 0;
    // After connecting: anything committed while nobody listened.
    wake.notify_waiters();
    loop {
        match listener.try_recv().await? {
            Some(notification) if notification.payload() == origin => {}
            Some(_) => wake.notify_waiters(),
            // The connection dropped, and the listener connected and listened again
            // already (eager reconnect): wake the workers for what was sent in between.
            None => wake.notify_waiters(),
        }
    }
}
