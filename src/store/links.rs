//! Learned aliases: `stripe_customer cus_X → external id E`, and `renamed OLD → NEW` after a
//! rule changed an external id, so late events for the old id reach the renamed object.

use sqlx::AnyConnection;

use super::resolve::KnownRenames;
use super::statements::{Arg, Statements};
use super::values_list::values_sql;
use super::{Backend, StoreError, encode_json};
use crate::model::{ExternalId, LinkUpdate, TargetKey, TargetKind, TargetRef, Version};

/// The link kind that records external-id renames.
pub(super) const RENAMED: &str = "renamed";

/// A target whose external id a batch changed: its field versions, links and waiting jobs
/// follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    /// Organization or user.
    pub kind: TargetKind,
    /// The old external id.
    pub from: ExternalId,
    /// The new external id.
    pub to: ExternalId,
}

/// Records (or moves forward) links, then wakes the jobs that waited for the ones that
/// changed: the worker moves them to the real target key on its next pass.
///
/// Deadlock freedom (PostgreSQL, several replicas): the links are upserted in one global
/// order, (kind, link, key), whatever order the events carried them in, and the woken jobs
/// are locked in id order by one statement after the last link. Every transaction that
/// writes links (ingest, replay) does this after writing its event rows (see
/// `group_commit`) and writes no link or event afterwards, so no two of them can each hold
/// a row the other waits for.
///
/// Returns what the statements learned of the renames on the way (see [`KnownRenames`]).
pub(super) async fn record_links(
    tx: &mut impl Statements,
    backend: Backend,
    mut links: Vec<(&LinkUpdate, Version)>,
) -> Result<KnownRenames, StoreError> {
    links.sort_by(|(a, _), (b, _)| {
        (a.kind.prefix(), &a.link, &a.key).cmp(&(b.kind.prefix(), &b.link, &b.key))
    });
    // Of several updates of one link (a burst of one customer's events), only the newest
    // can win: the others would be written and overwritten within this transaction.
    links.dedup_by(|later, kept| {
        let same =
            later.0.kind == kept.0.kind && later.0.link == kept.0.link && later.0.key == kept.0.key;
        if same && later.1 > kept.1 {
            *kept = *later;
        }
        same
    });
    let mut news = Vec::new();
    let mut renamed_kinds = Vec::new();
    for chunk in links.chunks(LINKS_PER_STATEMENT) {
        for (kind, link, key) in upsert_links(tx, backend, chunk).await? {
            let Some(key) = key else {
                renamed_kinds.push(kind);
                continue;
            };
            let wanted = (kind.as_str(), link.as_str(), key.as_str());
            let Ok(at) = chunk.binary_search_by(|(l, _)| {
                (l.kind.prefix(), l.link.as_str(), l.key.as_str()).cmp(&wanted)
            }) else {
                continue;
            };
            let update = chunk[at].0;
            let waiting = TargetRef::Link {
                kind: update.kind,
                link: update.link.clone(),
                key: update.key.clone(),
            };
            news.push(waiting.key());
        }
    }
    news.sort();
    news.dedup();
    wake_waiting(tx, backend, &news).await?;
    Ok(match backend {
        Backend::Postgres if !links.is_empty() => KnownRenames::answered(&renamed_kinds),
        _ => KnownRenames::default(),
    })
}

/// The most links one statement looks up or writes (6 values each, far below both
/// databases' parameter limits).
const LINKS_PER_STATEMENT: usize = 500;

/// A link's identity as stored: (kind prefix, link, key); or, with no key, a kind of
/// target with at least one rename recorded (PostgreSQL, see [`upsert_links`]).
type LinkId = (String, String, Option<String>);

/// The upsert of `upsert_links`: a link moves only to a newer version.
const UPSERT_LINKS: &str = " ON CONFLICT (kind, link, key) DO UPDATE
      SET external_id = excluded.external_id, version_ms = excluded.version_ms,
          version_seq = excluded.version_seq
      WHERE (excluded.version_ms, excluded.version_seq) > (links.version_ms, links.version_seq)";

/// Records (or moves forward) `links`, each once and in (kind, link, key) order: the
/// rows of a `VALUES` list are written, and so locked (PostgreSQL), in its order.
/// Returns the links whose external id this changed (new ones included): only news wakes
/// anyone, since re-stating a known link must not cut the backoff of the jobs that wait
/// on it for another reason.
///
/// Only those rows come back (usually none): each row a statement returns is a wake-up
/// of the writer on SQLite (sqlx hands rows over from its thread one by one) and network
/// traffic on PostgreSQL. PostgreSQL compares with what the links named before in the
/// upsert's own statement (all parts of a statement see the data as it was when it
/// began); SQLite, which has no `INSERT` in `WITH`, asks which would change first, under
/// its write lock.
///
/// PostgreSQL's statement also tells, in rows without a key, which kinds of target have a
/// rename recorded: the jobs written next need to know (see [`KnownRenames`]), and a
/// question of its own was a round trip more in every group commit, which holds the
/// queue of deliveries while it waits (BENCHMARKS.md, session 8).
async fn upsert_links(
    tx: &mut impl Statements,
    backend: Backend,
    links: &[(&LinkUpdate, Version)],
) -> Result<Vec<LinkId>, StoreError> {
    const INSERT: &str =
        "INSERT INTO links (kind, link, key, external_id, version_ms, version_seq) VALUES ";
    let mut args = Vec::with_capacity(links.len() * 6);
    for (link, version) in links {
        args.extend([
            Arg::from(link.kind.prefix()),
            link.link.as_str().into(),
            link.key.as_str().into(),
            link.external_id.as_str().into(),
            version.at_ms.into(),
            version.seq.into(),
        ]);
    }
    match backend {
        Backend::Postgres => {
            let prefix = format!("WITH up AS ({INSERT}");
            let suffix = format!(
                "{UPSERT_LINKS} RETURNING kind, link, key, external_id)
                 SELECT up.kind, up.link, up.key FROM up LEFT JOIN links AS before USING (kind, link, key)
                 WHERE before.external_id IS DISTINCT FROM up.external_id
                 UNION ALL (SELECT kind, link, NULL FROM links
                            WHERE kind = '{org}' AND link = '{RENAMED}' LIMIT 1)
                 UNION ALL (SELECT kind, link, NULL FROM links
                            WHERE kind = '{user}' AND link = '{RENAMED}' LIMIT 1)",
                org = TargetKind::Organization.prefix(),
                user = TargetKind::User.prefix(),
            );
            let sql = values_sql(backend, &prefix, links.len(), 6, &suffix);
            tx.fetch(&sql, &args).await
        }
        Backend::Sqlite => {
            let changing = values_sql(
                backend,
                "SELECT new.column1, new.column2, new.column3 FROM (VALUES ",
                links.len(),
                6,
                ") AS new LEFT JOIN links AS old
                   ON old.kind = new.column1 AND old.link = new.column2 AND old.key = new.column3
                 WHERE old.external_id IS NULL
                    OR (old.external_id <> new.column4
                        AND (new.column5, new.column6) > (old.version_ms, old.version_seq))",
            );
            let news = tx.fetch(&changing, &args).await?;
            let upsert = values_sql(backend, INSERT, links.len(), 6, UPSERT_LINKS);
            tx.execute(&upsert, &args).await?;
            Ok(news)
        }
    }
}

/// [`wake_waiting`] on SQLite: each half of the condition searches its own index (an `OR`
/// of the two, or `state` in the outer query, made SQLite walk every pending job of the
/// backlog instead, once per group commit that learned a link).
pub(super) const WAKE_WAITING_SQLITE: &str = "UPDATE jobs SET run_at_ms = 0 WHERE id IN (
    SELECT id FROM jobs
     WHERE target_key IN (SELECT value FROM json_each($1)) AND state = 'pending'
    UNION ALL
    SELECT id FROM jobs
     WHERE waits_for IS NOT NULL AND waits_for IN (SELECT value FROM json_each($1))
       AND +state = 'pending')";

/// Makes the pending jobs that target one of the `links` keys, or wait for one to create
/// a user, runnable now. One statement locks them in id order (PostgreSQL), so two
/// transactions waking overlapping sets cannot deadlock.
async fn wake_waiting(
    tx: &mut impl Statements,
    backend: Backend,
    links: &[TargetKey],
) -> Result<(), StoreError> {
    if links.is_empty() {
        return Ok(());
    }
    // The keys travel as one JSON array.
    let sql = match backend {
        Backend::Sqlite => WAKE_WAITING_SQLITE,
        Backend::Postgres => {
            "UPDATE jobs SET run_at_ms = 0 WHERE id IN (
               SELECT id FROM jobs WHERE state = 'pending'
                 AND (target_key = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))
                      OR waits_for = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb))))
               ORDER BY id FOR UPDATE)"
        }
    };
    tx.execute(sql, &[encode_json(&links).as_str().into()])
        .await
}

/// Points the renamed target's links at the new id and remembers the rename, so late
/// events for the old id reach the renamed object.
async fn record_rename(tx: &mut AnyConnection, rename: &Rename) -> Result<(), StoreError> {
    let prefix = rename.kind.prefix();
    sqlx::query("UPDATE links SET external_id = $3 WHERE kind = $1 AND external_id = $2")
        .bind(prefix)
        .bind(rename.from.as_str())
        .bind(rename.to.as_str())
        .execute(&mut *tx)
        .await?;
    // The new id is a live one again: drop any older rename away from it (no cycles).
    sqlx::query("DELETE FROM links WHERE kind = $1 AND link = $2 AND key = $3")
        .bind(prefix)
        .bind(RENAMED)
        .bind(rename.to.as_str())
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO links (kind, link, key, external_id, version_ms, version_seq)
         VALUES ($1, $2, $3, $4, 0, 0)
         ON CONFLICT (kind, link, key) DO UPDATE SET external_id = excluded.external_id",
    )
    .bind(prefix)
    .bind(RENAMED)
    .bind(rename.from.as_str())
    .bind(rename.to.as_str())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Moves a renamed target's field versions and waiting jobs to its new key, points its
/// links at the new external id, and remembers the rename for late events.
pub(super) async fn follow_rename(
    tx: &mut AnyConnection,
    backend: Backend,
    rename: &Rename,
) -> Result<(), StoreError> {
    let key = |id: &ExternalId| {
        TargetRef::External {
            kind: rename.kind,
            external_id: id.clone(),
        }
        .key()
    };
    let (from, to) = (key(&rename.from), key(&rename.to));
    sqlx::query(
        "INSERT INTO field_versions (target_key, field, version_ms, version_seq, written, written_value)
         SELECT $2, field, version_ms, version_seq, written, written_value
         FROM field_versions WHERE target_key = $1
         ON CONFLICT (target_key, field) DO UPDATE
           SET version_ms = excluded.version_ms, version_seq = excluded.version_seq,
               written = excluded.written, written_value = excluded.written_value
           WHERE (excluded.version_ms, excluded.version_seq)
               > (field_versions.version_ms, field_versions.version_seq)",
    )
    .bind(&from)
    .bind(&to)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM field_versions WHERE target_key = $1")
        .bind(&from)
        .execute(&mut *tx)
        .await?;
    record_rename(tx, rename).await?;
    // The change is stored as JSON text; PostgreSQL edits it as jsonb.
    let new_change = match backend {
        Backend::Sqlite => "json_set(change, '$.target.external_id', $3)",
        Backend::Postgres => {
            "jsonb_set(change::jsonb, '{target,external_id}', to_jsonb($3::text))::text"
        }
    };
    sqlx::query(&format!(
        "UPDATE jobs SET target_key = $2, change = {new_change}
         WHERE target_key = $1 AND state = 'pending'"
    ))
    .bind(&from)
    .bind(&to)
    .bind(rename.to.as_str())
    .execute(&mut *tx)
    .await?;
    Ok(())
}
