//! Wake-ups across replicas (PostgreSQL): after a commit that made jobs runnable, the
//! store sends a `NOTIFY` on [`CHANNEL`], and every replica LISTENs and wakes its own
//! workers, so a job stored by one replica is picked up by the others at once instead of
//! at their next poll. The poll stays
//! the safety net: a notification lost while a listener reconnects delays a job, never
//! loses it.

use std::sync::Arc;
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::{Backend, Store};

/// The channel the notifications travel on (one per database: the replicas of one
/// deployment share it).
const CHANNEL: &str = "orgsync_jobs";

/// The shortest time between two notifications of one replica: the commits made
/// meanwhile fold into the next. One notification per group commit (300 a second under
/// load) was a transaction of its own and a wake-up of every listener; the two server
/// processes that sent and relayed them took 1.9 % of the machine during ingest
/// (BENCHMARKS.md, session 8). This delays another replica's pickup by at most as much,
/// against its 1 s poll.
const ANNOUNCE_INTERVAL: Duration = Duration::from_millis(20);

/// The first pause before connecting again after a failure; it grows with each failure in
/// a row, up to [`MAX_RECONNECT_PAUSE`].
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

/// The longest pause between two connection attempts.
const MAX_RECONNECT_PAUSE: Duration = Duration::from_secs(30);

/// Starts the task that announces the commits of the store `origin` (group commits,
/// replays, an operator's retries): each message on the returned channel sends one
/// notification, and since the channel holds one message, the commits made while a
/// notification is on its way fold into the next. It ends when every sender is gone.
///
/// The notification is not sent inside the ingest transaction: PostgreSQL serialises the
/// commits of all notifying transactions of a cluster (to queue the notifications in
/// commit order), so the replicas' ingest commits, fsync included, would take turns again.
/// Sent from here, after the commit, it costs the writer nothing, and a replay of many
/// events sends a few notifications, not one per event.
pub(super) fn spawn_announcer(
    pool: AnyPool,
    backend: Backend,
    origin: Arc<str>,
) -> mpsc::Sender<()> {
    let (sender, mut receiver) = mpsc::channel::<()>(1);
    tokio::spawn(async move {
        if backend == Backend::Postgres {
            paced(receiver, ANNOUNCE_INTERVAL, || {
                announce_jobs(&pool, &origin)
            })
            .await;
        } else {
            // SQLite's only process wakes its workers itself.
            while receiver.recv().await.is_some() {}
        }
    });
    sender
}

/// Runs `announce` after each message of `receiver`, at most once per `interval`: what
/// arrives meanwhile waits in the channel (one message) and is covered by the next run.
async fn paced<F: Future<Output = ()>>(
    mut receiver: mpsc::Receiver<()>,
    interval: Duration,
    mut announce: impl FnMut() -> F,
) {
    while receiver.recv().await.is_some() {
        let next = tokio::time::Instant::now() + interval;
        announce().await;
        tokio::time::sleep_until(next).await;
    }
}

/// Tells every replica listening on the database that `origin` committed runnable jobs.
/// A failure is only logged: the replicas' poll finds the jobs.
async fn announce_jobs(pool: &AnyPool, origin: &str) {
    // A notification needs no durability: its commit does not wait for a WAL flush.
    let sent =
        sqlx::query("SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(origin)
            .execute(pool)
            .await;
    if let Err(e) = sent {
        tracing::warn!(error = %e, "could not notify the other replicas; they find the jobs at their next poll");
    }
}

impl Store {
    /// Has the other replicas notified (soon, without waiting) after this store committed
    /// runnable jobs.
    pub(super) fn announce_committed_jobs(&self) {
        // Full: a notification is about to go out already, and covers these jobs.
        let _ = self.announcer.try_send(());
    }

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
            // One worker per commit elsewhere: it keeps claiming while there is work, and
            // waking every idle worker of every replica for each commit would make the
            // others' passes mostly idle claims.
            Some(_) => wake.notify_one(),
            // The connection dropped, and the listener connected and listened again
            // already (eager reconnect): wake the workers for what was sent in between.
            None => wake.notify_waiters(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use tokio::sync::mpsc;

    use super::paced;

    #[tokio::test(start_paused = true)]
    async fn announcements_are_paced_and_the_last_commit_is_always_announced() {
        let interval = Duration::from_millis(20);
        let (sender, receiver) = mpsc::channel::<()>(1);
        let sent = Arc::new(AtomicU32::new(0));
        let counter = sent.clone();
        let task = tokio::spawn(paced(receiver, interval, move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async {}
        }));
        // A commit every millisecond for 100 ms (virtual time).
        for _ in 0..100 {
            let _ = sender.try_send(());
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let during = sent.load(Ordering::SeqCst);
        assert!(
            (5..=6).contains(&during),
            "{during} announcements in 100 ms"
        );
        // The commits after the last announcement are announced once the interval is up.
        tokio::time::sleep(interval).await;
        assert_eq!(sent.load(Ordering::SeqCst), during + 1);
        drop(sender);
        task.await.unwrap();
    }
}
