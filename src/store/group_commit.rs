//! Group commit: one writer task turns the deliveries that arrive while it is writing into
//! ONE transaction, so one fsync serves many webhooks and concurrent requests never queue
//! on SQLite's busy timeout. On PostgreSQL each replica has its writer and their
//! transactions take turns on an advisory lock (see `INGEST_LOCK`). Each delivery still
//! gets its own report, and is acknowledged only after the transaction holding it
//! committed.

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::ingest::{IngestItem, IngestReport, PendingRaw, RawDelivery, ingest_one};
use super::{Backend, StoreError, WriteLock, lock_ingest};

/// The most deliveries merged into one transaction.
const MAX_BATCH: usize = 256;

/// How many deliveries may wait for the writer before senders wait too.
const QUEUE: usize = 4096;

/// One delivery waiting to be written.
pub(super) struct Request {
    /// Its raw body, when the caller keeps it.
    pub raw: Option<RawDelivery>,
    /// Its events.
    pub items: Vec<IngestItem>,
    /// Arrival time.
    pub now_ms: i64,
    /// Where its report goes.
    pub reply: oneshot::Sender<Result<IngestReport, StoreError>>,
}

/// Starts the writer; it ends when every sender is gone.
pub(super) fn spawn(pool: AnyPool, backend: Backend, writer: WriteLock) -> mpsc::Sender<Request> {
    let (sender, mut receiver) = mpsc::channel::<Request>(QUEUE);
    tokio::spawn(async move {
        while let Some(first) = receiver.recv().await {
            // Deliveries arriving while this waits for its turn join the batch.
            let turn = writer.acquire().await;
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            commit(&pool, backend, batch).await;
            drop(turn);
        }
    });
    sender
}

/// Writes a batch. If one delivery's statements fail, each delivery is tried alone so a
/// bad one cannot fail the others; if the database itself refuses (locked, disk full), every
/// delivery gets that answer at once instead of waiting its turn to fail the same way.
async fn commit(pool: &AnyPool, backend: Backend, batch: Vec<Request>) {
    let failure = match write(pool, backend, &batch).await {
        Ok(reports) => {
            for (request, report) in batch.into_iter().zip(reports) {
                // The caller may have gone (client disconnected): the events are stored
                // anyway and a redelivery is acknowledged as a duplicate.
                let _ = request.reply.send(Ok(report));
            }
            return;
        }
        Err(failure) => failure,
    };
    match failure {
        WriteFailure::Database(e) => {
            let message = e.to_string();
            for request in batch {
                let _ = request
                    .reply
                    .send(Err(StoreError::WriteRefused(message.clone())));
            }
        }
        WriteFailure::Delivery(e) if batch.len() == 1 => {
            if let Some(request) = batch.into_iter().next() {
                let _ = request.reply.send(Err(e));
            }
        }
        WriteFailure::Delivery(_) => {
            for request in batch {
                let result = match write(pool, backend, std::slice::from_ref(&request)).await {
                    Ok(mut reports) => Ok(reports.remove(0)),
                    Err(WriteFailure::Database(e) | WriteFailure::Delivery(e)) => Err(e),
                };
                let _ = request.reply.send(result);
            }
        }
    }
}

/// Where a batch write failed.
enum WriteFailure {
    /// Opening or committing the transaction: the database as a whole refused.
    Database(StoreError),
    /// A statement of one delivery.
    Delivery(StoreError),
}

async fn write(
    pool: &AnyPool,
    backend: Backend,
    batch: &[Request],
) -> Result<Vec<IngestReport>, WriteFailure> {
    let database = |e: sqlx::Error| WriteFailure::Database(e.into());
    let mut tx = pool.begin_with(backend.begin()).await.map_err(database)?;
    lock_ingest(&mut tx, backend).await.map_err(database)?;
    let mut reports = Vec::with_capacity(batch.len());
    for request in batch {
        let mut report = IngestReport::default();
        let mut raw = PendingRaw {
            raw: request.raw.as_ref(),
            id: None,
            body_json: None,
        };
        for item in &request.items {
            let event = ingest_one(&mut tx, item, &mut raw, request.now_ms).await;
            report.events.push(event.map_err(WriteFailure::Delivery)?);
        }
        reports.push(report);
    }
    tx.commit().await.map_err(database)?;
    Ok(reports)
}
