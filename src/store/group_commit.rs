//! Group commit: a writer turns the deliveries that arrive while it is writing into ONE
//! transaction, so one fsync serves many webhooks and concurrent requests never queue on
//! SQLite's busy timeout. Each delivery still gets its own report, and is acknowledged
//! only after the transaction holding it committed. SQLite has one writer, on its own
//! thread; PostgreSQL several per replica (see `spawn`).
//!
//! On PostgreSQL the writers of every replica run their transactions at the same time,
//! with no lock shared by all of them. They cannot deadlock, by construction: a
//! transaction locks rows in one global order, in three phases, and never goes back to an
//! earlier phase.
//! 1. Event rows, in (source, provider event id) order: the insert of a new event (a
//!    unique-index entry: a second transaction inserting the same id waits for the first)
//!    then the duplicate counts of stored ones (see `event_rows` for why a multi-row
//!    INSERT keeps that order). The deliveries' raw bodies are new rows nobody else sees:
//!    written before the events (whose rows name them), deleted again at the end of the
//!    phase when none of a delivery's events was new.
//! 2. Links, in (kind, link, key) order, then the jobs waiting for the links that changed,
//!    locked in id order by one statement (see `links::record_links`).
//! 3. New job rows (nobody else can see them), in arrival order.
//!
//! A transaction waiting for a row holds only rows that come earlier in that order, and
//! the holder of that row never waits for an earlier one; so no cycle of waits can form.
//! Replay follows the same order (one event row, its links, its jobs). The workers never
//! make an ingest wait in a cycle either: a claim skips locked rows instead of waiting, and
//! a finishing worker updates its own running jobs, which no ingest statement matches. (A
//! worker that follows an external-id rename, which is rare, also rewrites links; should
//! that ever meet an ingest in a deadlock, PostgreSQL aborts one of the two and nothing is
//! lost: the delivery is written again alone or its sender retries, or the jobs run
//! again.)
//!
//! The price: the events of one batch get their row ids (the tie-breaker between equal
//! versions) in key order rather than in arrival order. Requests that share a batch
//! arrived concurrently, so their order was a race anyway; the notifications of one
//! Salesforce message are ordered by their `SystemModstamp` first when they carry one.

use std::sync::Arc;

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::batch_phases::statements;
use super::body::BodyEncoding;
use super::checkpoint::Checkpoints;
use super::ingest::{IngestItem, IngestReport, RawDelivery};
use super::writer_connection::{Open, Own, WriterConnection};
use super::{Backend, StoreError, WriteLock};

/// The most deliveries merged into one transaction.
const MAX_BATCH: usize = 256;

/// How many deliveries may wait for the writer before senders wait too.
const QUEUE: usize = 4096;

/// One delivery waiting to be written.
pub(super) struct Request {
    /// Its raw body, when the caller keeps it, in its stored encoding.
    pub raw: Option<RawDelivery>,
    /// How `raw`'s body is encoded (see `body`).
    pub body_encoding: BodyEncoding,
    /// Its events.
    pub items: Vec<IngestItem>,
    /// Arrival time.
    pub now_ms: i64,
    /// Where its report goes.
    pub reply: oneshot::Sender<Reply>,
}

/// A writer's answer to one delivery: its report, and its items and body handed back, so
/// that the caller's task frees them rather than the writer, which every delivery waits
/// for (freeing memory another thread allocated is slow enough to show in its profile).
pub(super) type Reply = (
    Result<IngestReport, StoreError>,
    Vec<IngestItem>,
    Option<RawDelivery>,
);

/// How many writers a PostgreSQL store runs at once: while one waits for its commit to
/// be flushed, the next is already writing its batch, and the server flushes the commits
/// that arrive together with one WAL write. One writer at a time gathers and writes a
/// batch (it holds the queue until its commit): writers that each took the queue as soon
/// as they were free wrote most deliveries alone, a transaction each (BENCHMARKS.md,
/// session 5). Their transactions cannot deadlock (the lock order above), exactly as
/// those of several replicas.
const POSTGRES_WRITERS: u32 = 3;

/// The queue of deliveries waiting for a writer; the PostgreSQL writers take turns on it.
type Queue = Arc<tokio::sync::Mutex<mpsc::Receiver<Request>>>;

/// A writer's turn on the queue, held from gathering a batch until its statements are
/// written (given up before the commit).
type QueueTurn<'a> = Option<tokio::sync::MutexGuard<'a, mpsc::Receiver<Request>>>;

/// A SQLite file's writer: the file, written through a connection of the writer's own,
/// and the checkpointer its commits are counted for (see `checkpoint`).
pub(super) struct SqliteFile {
    /// The file's path.
    pub path: String,
    /// Has the WAL checkpointed.
    pub checkpoints: Checkpoints,
}

/// Starts the writer(s); they end when every sender is gone. `writer` is the in-process
/// SQLite write turn. After a commit that stored something new a writer asks `announcer`
/// to tell the other replicas (see `notify`). A SQLite file (`file`) is written through
/// the writer's own connection, which leaves checkpoints to the checkpointer; `:memory:`
/// through the pool's one connection.
///
/// The writers run on a thread of their own, with connections of their own opened there:
/// the path that every delivery waits for has no task of the shared runtime, where a task
/// woken from another thread waits behind every HTTP connection's task before it runs
/// again. SQLite has one writer, which runs its statements itself (no hop to sqlx's
/// thread either); PostgreSQL [`POSTGRES_WRITERS`].
pub(super) fn spawn(
    pool: AnyPool,
    backend: Backend,
    writer: WriteLock,
    announcer: mpsc::Sender<()>,
    file: Option<SqliteFile>,
) -> Result<mpsc::Sender<Request>, std::io::Error> {
    let (sender, receiver) = mpsc::channel::<Request>(QUEUE);
    let queue: Queue = Arc::new(tokio::sync::Mutex::new(receiver));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let writers: Vec<_> = match backend {
        Backend::Sqlite => {
            let (own, checkpoints) = match file {
                Some(SqliteFile { path, checkpoints }) => {
                    (Some(Own::SqliteFile(path)), Some(checkpoints))
                }
                None => (None, None),
            };
            let followers = Followers {
                announcer,
                checkpoints,
            };
            let connection = WriterConnection::new(pool, own);
            vec![run(connection, backend, writer, followers, queue)]
        }
        Backend::Postgres => (0..POSTGRES_WRITERS)
            .map(|_| {
                let followers = Followers {
                    announcer: announcer.clone(),
                    checkpoints: None,
                };
                let connection = WriterConnection::new(pool.clone(), Some(Own::Server));
                run(
                    connection,
                    backend,
                    writer.clone(),
                    followers,
                    queue.clone(),
                )
            })
            .collect(),
    };
    std::thread::Builder::new()
        .name("orgsync-ingest-writer".into())
        .spawn(move || {
            runtime.block_on(async move {
                let mut running = tokio::task::JoinSet::new();
                for writer in writers {
                    running.spawn(writer);
                }
                while running.join_next().await.is_some() {}
            });
        })?;
    Ok(sender)
}

/// Who hears of a writer's commits.
struct Followers {
    /// Tells the other replicas of new jobs (see `notify`).
    announcer: mpsc::Sender<()>,
    /// Has the SQLite WAL checkpointed (see `checkpoint`).
    checkpoints: Option<Checkpoints>,
}

/// One writer: takes the next delivery and those queued behind it, writes them in one
/// transaction, answers each; until the queue's senders are all gone.
async fn run(
    mut connection: WriterConnection,
    backend: Backend,
    writer: WriteLock,
    mut followers: Followers,
    queue: Queue,
) {
    let closing = connection.close_event();
    tokio::pin!(closing);
    loop {
        let mut receiver = tokio::select! {
            biased;
            () = &mut closing, if connection.is_held() => {
                connection.release();
                continue;
            }
            receiver = queue.lock() => receiver,
        };
        let first = tokio::select! {
            biased;
            () = &mut closing, if connection.is_held() => {
                connection.release();
                continue;
            }
            first = receiver.recv() => match first {
                Some(first) => first,
                None => break,
            },
        };
        // Deliveries arriving while this waits for its turn join the batch.
        let turn = writer.acquire().await;
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        // The queue stays taken until the batch's statements are written: the next writer
        // (PostgreSQL) then gathers what arrived meanwhile, while this one's commit is
        // flushed.
        let mut queue_turn = Some(receiver);
        let stored = commit(&mut connection, backend, batch, &mut queue_turn).await;
        drop(turn);
        // Full: a notification is about to go out already, and covers this commit.
        if stored {
            let _ = followers.announcer.try_send(());
        }
        if let Some(checkpoints) = &mut followers.checkpoints {
            checkpoints.committed();
        }
    }
}

/// Writes a batch. If one delivery's statements fail, each delivery is tried alone so a
/// bad one cannot fail the others; if the database itself refuses (locked, disk full), every
/// delivery gets that answer at once instead of waiting its turn to fail the same way.
/// Returns true when something new was stored.
async fn commit(
    connection: &mut WriterConnection,
    backend: Backend,
    batch: Vec<Request>,
    queue_turn: &mut QueueTurn<'_>,
) -> bool {
    let mut stored = false;
    let mut answer = |request: Request, result: Result<IngestReport, StoreError>| {
        stored |= matches!(&result, Ok(report) if report.accepted() > 0);
        // The caller may have gone (client disconnected): the events are stored anyway and
        // a redelivery is acknowledged as a duplicate.
        let Request {
            raw, items, reply, ..
        } = request;
        let _ = reply.send((result, items, raw));
    };
    let written = write(connection, backend, &batch, queue_turn).await;
    connection.done(matches!(written, Err(WriteFailure::Database(_))));
    match written {
        Ok(reports) => {
            for (request, report) in batch.into_iter().zip(reports) {
                answer(request, Ok(report));
            }
        }
        Err(WriteFailure::Database(e)) => {
            let message = e.to_string();
            for request in batch {
                answer(request, Err(StoreError::WriteRefused(message.clone())));
            }
        }
        Err(WriteFailure::Delivery(e)) if batch.len() == 1 => {
            if let Some(request) = batch.into_iter().next() {
                answer(request, Err(e));
            }
        }
        Err(WriteFailure::Delivery(_)) => {
            for request in batch {
                let single = std::slice::from_ref(&request);
                let written = write(connection, backend, single, queue_turn).await;
                connection.done(matches!(written, Err(WriteFailure::Database(_))));
                let result = match written {
                    Ok(mut reports) => Ok(reports.remove(0)),
                    Err(WriteFailure::Database(e) | WriteFailure::Delivery(e)) => Err(e),
                };
                answer(request, result);
            }
        }
    }
    stored
}

/// Where a batch write failed.
enum WriteFailure {
    /// Opening or committing the transaction: the database as a whole refused.
    Database(StoreError),
    /// A statement of one delivery.
    Delivery(StoreError),
}

async fn write(
    connection: &mut WriterConnection,
    backend: Backend,
    batch: &[Request],
    queue_turn: &mut QueueTurn<'_>,
) -> Result<Vec<IngestReport>, WriteFailure> {
    let open = connection
        .begin(backend)
        .await
        .map_err(WriteFailure::Database)?;
    let reports = match open {
        Open::Pooled(mut tx) => {
            let reports = statements(&mut *tx, backend, batch)
                .await
                .map_err(WriteFailure::Delivery)?;
            queue_turn.take();
            tx.commit()
                .await
                .map_err(|e| WriteFailure::Database(e.into()))?;
            reports
        }
        Open::Direct(sqlite) => match statements(&mut *sqlite, backend, batch).await {
            Ok(reports) => {
                queue_turn.take();
                sqlite.run("COMMIT").map_err(WriteFailure::Database)?;
                reports
            }
            Err(e) => {
                sqlite.run("ROLLBACK").map_err(WriteFailure::Database)?;
                return Err(WriteFailure::Delivery(e));
            }
        },
    };
    Ok(reports)
}
