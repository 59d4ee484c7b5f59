//! Resolving a job's target through what the links record: a link reference to the
//! external id it stands for, and a renamed external id to its new one.

use super::links::RENAMED;
use super::statements::Statements;
use super::{Store, StoreError};
use crate::model::{ExternalId, TargetKind, TargetRef};

/// How many renames in a row are followed (a guard against a cycle in hand-edited data).
const MAX_RENAME_HOPS: usize = 8;

impl Store {
    /// Looks up a learned link.
    pub async fn resolve_link(
        &self,
        kind: TargetKind,
        link: &str,
        key: &str,
    ) -> Result<Option<ExternalId>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        lookup(&mut *conn, kind, link, key).await
    }

    /// The external id an old one was renamed to (following several renames), if any.
    pub async fn renamed_to(
        &self,
        kind: TargetKind,
        external_id: &ExternalId,
    ) -> Result<Option<ExternalId>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        follow_renames(&mut *conn, kind, external_id).await
    }
}

async fn lookup(
    conn: &mut impl Statements,
    kind: TargetKind,
    link: &str,
    key: &str,
) -> Result<Option<ExternalId>, StoreError> {
    let found: Vec<(String,)> = conn
        .fetch(
            "SELECT external_id FROM links WHERE kind = $1 AND link = $2 AND key = $3",
            &[kind.prefix().into(), link.into(), key.into()],
        )
        .await?;
    Ok(found.first().and_then(|(id,)| ExternalId::parse(id).ok()))
}

async fn follow_renames(
    conn: &mut impl Statements,
    kind: TargetKind,
    external_id: &ExternalId,
) -> Result<Option<ExternalId>, StoreError> {
    let mut seen = vec![external_id.clone()];
    for _ in 0..MAX_RENAME_HOPS {
        let from = seen.last().unwrap_or(external_id);
        match lookup(conn, kind, RENAMED, from.as_str()).await? {
            // A cycle (only possible in hand-edited data) leads nowhere.
            Some(next) if seen.contains(&next) => return Ok(None),
            Some(next) => seen.push(next),
            None => break,
        }
    }
    Ok(seen.pop().filter(|last| last != external_id))
}

/// Whether any rename of a kind of target is recorded, asked at most once per
/// transaction: almost no store has any, and then no job's target needs a look-up of its
/// renames. PostgreSQL's link upsert answers it for both kinds on the way.
#[derive(Debug, Default)]
pub(super) struct KnownRenames {
    /// Organizations, once asked.
    organization: Option<bool>,
    /// Users, once asked.
    user: Option<bool>,
}

impl KnownRenames {
    /// The answer of PostgreSQL's link upsert: renames are recorded for exactly the kinds
    /// whose prefix is in `prefixes`.
    pub(super) fn answered(prefixes: &[String]) -> Self {
        let any = |kind: TargetKind| Some(prefixes.iter().any(|p| p == kind.prefix()));
        Self {
            organization: any(TargetKind::Organization),
            user: any(TargetKind::User),
        }
    }

    /// True when at least one rename of `kind` is recorded.
    async fn any(
        &mut self,
        tx: &mut impl Statements,
        kind: TargetKind,
    ) -> Result<bool, StoreError> {
        let slot = match kind {
            TargetKind::Organization => &mut self.organization,
            TargetKind::User => &mut self.user,
        };
        if let Some(known) = *slot {
            return Ok(known);
        }
        let found: Vec<(i64,)> = tx
            .fetch(
                "SELECT 1 FROM links WHERE kind = $1 AND link = $2 LIMIT 1",
                &[kind.prefix().into(), RENAMED.into()],
            )
            .await?;
        Ok(*slot.insert(!found.is_empty()))
    }
}

/// Replaces a link reference by the external id it stands for, and a renamed external id
/// by its new one, when they are known.
pub(super) async fn resolve_target(
    tx: &mut impl Statements,
    target: TargetRef,
    renames: &mut KnownRenames,
) -> Result<TargetRef, StoreError> {
    let (kind, external_id) = match &target {
        TargetRef::Link { kind, link, key } => match lookup(tx, *kind, link, key).await? {
            Some(external_id) => (*kind, external_id),
            None => return Ok(target),
        },
        TargetRef::External { kind, external_id } => (*kind, external_id.clone()),
    };
    if !renames.any(tx, kind).await? {
        return Ok(TargetRef::External { kind, external_id });
    }
    let external_id = follow_renames(tx, kind, &external_id)
        .await?
        .unwrap_or(external_id);
    Ok(TargetRef::External { kind, external_id })
}
