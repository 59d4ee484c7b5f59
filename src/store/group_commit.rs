//! Group commit: one writer task turns the deliveries that arrive while it is writing into
//! ONE transaction, so one fsync serves many webhooks and concurrent requests never queue
//! on SQLite's busy timeout. Each delivery still gets its own report, and a delivery is
//! acknowledged only after the transaction holding it committed.

use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use super::ingest::{IngestItem, IngestReport, PendingRaw, RawDelivery, ingest_one};

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
pub(super) fn spawn(pool: SqlitePool) -> mpsc::Sender<Request> {
    let (sender, mut receiver) = mpsc::channel::<Request>(QUEUE);
    tokio::spawn(async move {
        while let Some(first) = receiver.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            commit(&pool, batch).await;
        }
    });
    sender
}

/// Writes a batch; if the shared transaction fails, each delivery is tried alone so one
/// bad delivery cannot fail the others.
async fn commit(pool: &SqlitePool, batch: Vec<Request>) {
    if batch.len() > 1 {
        if let Ok(reports) = write(pool, &batch).await {
            for (request, report) in batch.into_iter().zip(reports) {
                let _ = request.reply.send(Ok(report));
            }
            return;
        }
    }
    for request in batch {
        let result = write(pool, std::slice::from_ref(&request))
            .await
            .map(|mut r| r.remove(0));
        // The caller may have gone (client disconnected): the events are stored anyway and a
        // redelivery is acknowledged as a duplicate.
        let _ = request.reply.send(result);
    }
}

async fn write(pool: &SqlitePool, batch: &[Request]) -> Result<Vec<IngestReport>, StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut reports = Vec::with_capacity(batch.len());
    for request in batch {
        let mut report = IngestReport::default();
        let mut raw = PendingRaw {
            raw: request.raw.as_ref(),
            id: None,
        };
        for item in &request.items {
            report
                .events
                .push(ingest_one(&mut tx, item, &mut raw, request.now_ms).await?);
        }
        reports.push(report);
    }
    tx.commit().await?;
    Ok(reports)
}
