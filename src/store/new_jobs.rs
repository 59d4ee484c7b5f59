//! New pending jobs: each change's target resolved through the links and renames known
//! now, then all the jobs of a transaction written by a few multi-row INSERTs (one
//! statement per [`ROWS_PER_INSERT`] jobs instead of one per job).

use super::resolve::{KnownRenames, resolve_target};
use super::statements::{Arg, Statements};
use super::values_list::values_sql;
use super::{Backend, StoreError, encode_json};
use crate::model::{Change, EventId, TargetKey, TargetRef, Version};

/// The most jobs one INSERT writes: 11 bound values each, far below SQLite's 32 766 and
/// PostgreSQL's 65 535 parameters per statement.
const ROWS_PER_INSERT: usize = 500;

/// The values bound per job row.
const VALUES_PER_ROW: usize = 11;

/// One job row to insert.
struct Row {
    event_id: EventId,
    target_key: TargetKey,
    change: String,
    version: Version,
    now_ms: i64,
    waits_for: Option<TargetKey>,
}

/// The jobs a transaction writes, gathered in arrival order and inserted together.
pub(super) struct NewJobs {
    rows: Vec<Row>,
    renames: KnownRenames,
}

impl NewJobs {
    /// No jobs yet; `renames` is what the transaction's link upsert learned of renames.
    pub(super) fn new(renames: KnownRenames) -> Self {
        Self {
            rows: Vec::new(),
            renames,
        }
    }

    /// Adds one pending job per change of the event `event_id`, its targets resolved now
    /// (the event's own links included: record them first). Returns how many.
    pub(super) async fn add(
        &mut self,
        tx: &mut impl Statements,
        event_id: EventId,
        version: Version,
        changes: &[Change],
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        for change in changes {
            let mut change = change.clone();
            change.target = resolve_target(tx, change.target, &mut self.renames).await?;
            if let Some(create) = change.create.as_mut()
                && let Some(org) = create.organization.take()
            {
                let org = resolve_target(tx, org, &mut self.renames).await?;
                create.organization = Some(org);
            }
            self.rows.push(Row {
                event_id,
                target_key: change.target.key(),
                waits_for: waits_for(&change),
                change: encode_json(&change),
                version,
                now_ms,
            });
        }
        Ok(changes.len())
    }

    /// Writes every job added, in the order added.
    pub(super) async fn insert(
        self,
        tx: &mut impl Statements,
        backend: Backend,
    ) -> Result<(), StoreError> {
        for chunk in self.rows.chunks(ROWS_PER_INSERT) {
            let sql = values_sql(
                backend,
                "INSERT INTO jobs (event_id, target_key, change, version_ms, version_seq,
                                   state, run_at_ms, window_start_ms, created_at_ms,
                                   updated_at_ms, waits_for)
                 VALUES ",
                chunk.len(),
                VALUES_PER_ROW,
                "",
            );
            let mut args = Vec::with_capacity(chunk.len() * VALUES_PER_ROW);
            for row in chunk {
                args.extend([
                    Arg::from(row.event_id.get()),
                    row.target_key.as_str().into(),
                    row.change.as_str().into(),
                    row.version.at_ms.into(),
                    row.version.seq.into(),
                    "pending".into(),
                    row.now_ms.into(),
                    row.now_ms.into(),
                    row.now_ms.into(),
                    row.now_ms.into(),
                    row.waits_for.as_ref().map(TargetKey::as_str).into(),
                ]);
            }
            tx.execute(&sql, &args).await?;
        }
        Ok(())
    }
}

/// The link a job's create step still needs (a user's organization known only by alias).
fn waits_for(change: &Change) -> Option<TargetKey> {
    match change.create.as_ref()?.organization.as_ref()? {
        link @ TargetRef::Link { .. } => Some(link.key()),
        TargetRef::External { .. } => None,
    }
}
