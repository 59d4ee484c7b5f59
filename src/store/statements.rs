//! The statements of an ingest transaction, on either kind of connection that writes
//! them: a connection of sqlx's pools ([`AnyConnection`]: PostgreSQL, SQLite `:memory:`,
//! the workers), or the SQLite group-commit writer's own connection, driven directly on
//! its thread ([`DirectSqlite`]). The writing code (`event_rows`, `links`, `new_jobs`) is
//! written once, against [`Statements`].
//!
//! Why a direct connection: sqlx runs each SQLite connection on a thread of its own, and
//! every statement, and every row it returns, is a hand-over between that thread and the
//! caller with a wake-up each way. The group-commit writer, which every delivery waits
//! for, spent about half of its cycle on those hand-overs (BENCHMARKS.md, session 6).

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Decode, Row as _, Type};

use super::StoreError;

/// A value bound to a statement. Text and integers carry their type even when NULL:
/// PostgreSQL types every parameter.
#[derive(Debug, Clone, Copy)]
pub(super) enum Arg<'a> {
    /// An integer, or NULL.
    Int(Option<i64>),
    /// A text, or NULL.
    Text(Option<&'a str>),
    /// Bytes.
    Blob(&'a [u8]),
}

impl From<i64> for Arg<'_> {
    fn from(value: i64) -> Self {
        Arg::Int(Some(value))
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(value: Option<i64>) -> Self {
        Arg::Int(value)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(value: &'a str) -> Self {
        Arg::Text(Some(value))
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(value: Option<&'a str>) -> Self {
        Arg::Text(value)
    }
}

impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(value: &'a [u8]) -> Self {
        Arg::Blob(value)
    }
}

/// A column type the statements read back: both drivers decode it.
pub(super) trait Column:
    Sized + for<'r> Decode<'r, Any> + Type<Any> + rusqlite::types::FromSql
{
}

impl Column for i64 {}
impl Column for String {}
impl Column for Option<String> {}

/// A row the statements read back, as a tuple of [`Column`]s.
pub(super) trait FromColumns: Sized {
    /// Decodes a row of sqlx's `Any` driver.
    fn from_any(row: &AnyRow) -> Result<Self, sqlx::Error>;
    /// Decodes a row of the direct SQLite connection.
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
}

/// Implements [`FromColumns`] for a tuple of columns, numbered from 0.
macro_rules! from_columns {
    ($($column:ident $index:tt),+) => {
        impl<$($column: Column),+> FromColumns for ($($column,)+) {
            fn from_any(row: &AnyRow) -> Result<Self, sqlx::Error> {
                Ok(($(row.try_get::<$column, _>($index)?,)+))
            }
            fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                Ok(($(row.get::<_, $column>($index)?,)+))
            }
        }
    };
}

from_columns!(A 0);
from_columns!(A 0, B 1, C 2);

/// A connection inside a write transaction, as the ingest statements use it.
pub(super) trait Statements {
    /// Runs a statement; the rows it returns, if any, are dropped.
    async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<(), StoreError>;

    /// Runs a statement and returns its rows.
    async fn fetch<R: FromColumns>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<R>, StoreError>;
}

impl Statements for AnyConnection {
    async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<(), StoreError> {
        bound(sql, args).execute(self).await?;
        Ok(())
    }

    async fn fetch<R: FromColumns>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<R>, StoreError> {
        let rows = bound(sql, args).fetch_all(self).await?;
        Ok(rows.iter().map(R::from_any).collect::<Result<_, _>>()?)
    }
}

impl Statements for sqlx::Transaction<'_, Any> {
    async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<(), StoreError> {
        (**self).execute(sql, args).await
    }

    async fn fetch<R: FromColumns>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<R>, StoreError> {
        (**self).fetch(sql, args).await
    }
}

/// An sqlx query with `args` bound in order.
fn bound<'q>(sql: &'q str, args: &'q [Arg<'q>]) -> Query<'q, Any, AnyArguments<'q>> {
    args.iter().fold(sqlx::query(sql), |query, arg| match *arg {
        Arg::Int(value) => query.bind(value),
        Arg::Text(value) => query.bind(value),
        Arg::Blob(value) => query.bind(value),
    })
}

/// The SQLite group-commit writer's connection, driven on the writer's own thread.
pub(super) struct DirectSqlite(rusqlite::Connection);

/// How many prepared statements the direct connection keeps. A batch's statements differ
/// by their number of rows: with 32 senders, the writer's six multi-row statements come
/// in some 30 sizes each, and with room for only 64 of them, parsing SQL was a tenth of
/// the writer's time (BENCHMARKS.md, session 7). A statement takes a few KiB.
const CACHED_STATEMENTS: usize = 256;

impl DirectSqlite {
    /// Opens the SQLite file at `path` (already created and migrated) for writing: WAL,
    /// `synchronous = FULL` (an acknowledged webhook survives a power cut), the busy
    /// timeout and foreign keys of the store's other connections, no checkpoints of its
    /// own (the checkpointer's, see `checkpoint`), and statement journals in memory (a
    /// multi-row statement keeps the pages it changed until it ends; past 64 KiB SQLite
    /// moved them to a temporary file, created and deleted every other commit).
    pub(super) fn open(path: &str) -> Result<Self, StoreError> {
        use rusqlite::OpenFlags;
        let connection = rusqlite::Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
             PRAGMA busy_timeout = 30000; PRAGMA foreign_keys = ON;
             PRAGMA wal_autocheckpoint = 0; PRAGMA temp_store = MEMORY;",
        )?;
        connection.set_prepared_statement_cache_capacity(CACHED_STATEMENTS);
        Ok(Self(connection))
    }

    /// Runs a statement without parameters or rows (`BEGIN IMMEDIATE`, `COMMIT`…).
    pub(super) fn run(&mut self, sql: &str) -> Result<(), StoreError> {
        self.0.execute_batch(sql)?;
        Ok(())
    }

    /// Prepares `sql` (from the cache when it was prepared before) and binds `args`: by
    /// number for `$n` and `?n` parameters, as sqlx does, else in order.
    fn prepare(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> rusqlite::Result<rusqlite::CachedStatement<'_>> {
        let mut statement = self.0.prepare_cached(sql)?;
        for index in 1..=statement.parameter_count() {
            let number = statement
                .parameter_name(index)
                .and_then(|name| name.get(1..)?.parse::<usize>().ok())
                .unwrap_or(index);
            let arg = number
                .checked_sub(1)
                .and_then(|at| args.get(at))
                .ok_or(rusqlite::Error::InvalidParameterCount(number, args.len()))?;
            match *arg {
                Arg::Int(value) => statement.raw_bind_parameter(index, value)?,
                Arg::Text(value) => statement.raw_bind_parameter(index, value)?,
                Arg::Blob(value) => statement.raw_bind_parameter(index, value)?,
            }
        }
        Ok(statement)
    }
}

impl Statements for DirectSqlite {
    async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<(), StoreError> {
        let mut statement = self.prepare(sql, args)?;
        let mut rows = statement.raw_query();
        while rows.next()?.is_some() {}
        Ok(())
    }

    async fn fetch<R: FromColumns>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<R>, StoreError> {
        let mut statement = self.prepare(sql, args)?;
        let mut rows = statement.raw_query();
        let mut found = Vec::new();
        while let Some(row) = rows.next()? {
            found.push(R::from_sqlite(row)?);
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::{Arg, DirectSqlite, Statements};

    fn direct() -> (tempfile::TempDir, DirectSqlite) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("direct.db");
        // The store creates the file before the writer opens it.
        rusqlite::Connection::open(&path).expect("create");
        let sqlite = DirectSqlite::open(path.to_str().expect("utf-8 path")).expect("open");
        (dir, sqlite)
    }

    #[tokio::test]
    async fn numbered_parameters_bind_by_their_number_and_anonymous_ones_in_order() {
        let (_dir, mut sqlite) = direct();
        let args = [Arg::from("first"), Arg::from(2), Arg::Text(None)];
        let numbered: Vec<(i64, String, String)> = sqlite
            .fetch("SELECT $2, $1, coalesce($3, 'null')", &args)
            .await
            .expect("numbered");
        assert_eq!(numbered, [(2, "first".into(), "null".into())]);
        let anonymous: Vec<(String, i64, String)> = sqlite
            .fetch("SELECT ?, ?, coalesce(?, 'null')", &args)
            .await
            .expect("anonymous");
        assert_eq!(anonymous, [("first".into(), 2, "null".into())]);
    }

    #[tokio::test]
    async fn a_missing_parameter_is_an_error_not_a_null() {
        let (_dir, mut sqlite) = direct();
        // Unbound, it would read as NULL.
        let missing = sqlite
            .fetch::<(i64,)>("SELECT $2 IS NULL", &[Arg::from(1)])
            .await;
        assert!(missing.is_err(), "{missing:?}");
        let zero = sqlite.fetch::<(i64,)>("SELECT ?0", &[Arg::from(1)]).await;
        assert!(zero.is_err(), "{zero:?}");
    }

    #[tokio::test]
    async fn a_rolled_back_transaction_leaves_nothing() {
        let (_dir, mut sqlite) = direct();
        sqlite.run("CREATE TABLE t (v BLOB)").expect("create");
        sqlite.run("BEGIN IMMEDIATE").expect("begin");
        sqlite
            .execute("INSERT INTO t (v) VALUES ($1)", &[Arg::from(&b"body"[..])])
            .await
            .expect("insert");
        sqlite.run("ROLLBACK").expect("rollback");
        let rows: Vec<(i64,)> = sqlite
            .fetch("SELECT count(*) FROM t", &[])
            .await
            .expect("count");
        assert_eq!(rows, [(0,)]);
    }
}
