//! Multi-row `VALUES` lists, the shape of every statement that writes a whole batch.

use std::fmt::Write as _;

use super::Backend;

/// `{head}(…), (…){tail}`: `rows` rows of `per_row` parameters, bound row by row.
///
/// SQLite gets anonymous `?` parameters, PostgreSQL numbered `$n`. SQLite files a `$n`
/// (or `?n`) parameter under its name, and both preparing the statement and sqlx's binding
/// look names up in a list one by one: quadratic in the parameters, and the writer's
/// thread spent several percent of the machine on it with batches of a few hundred events
/// (BENCHMARKS.md, session 6). An anonymous parameter is simply the next one.
pub(super) fn values_sql(
    backend: Backend,
    head: &str,
    rows: usize,
    per_row: usize,
    tail: &str,
) -> String {
    let mut sql = String::with_capacity(head.len() + tail.len() + rows * per_row * 7);
    sql.push_str(head);
    let mut number = 0;
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for value in 0..per_row {
            if value > 0 {
                sql.push_str(", ");
            }
            number += 1;
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    // Writing to a String cannot fail.
                    let _ = write!(sql, "${number}");
                }
            }
        }
        sql.push(')');
    }
    sql.push_str(tail);
    sql
}

#[cfg(test)]
mod tests {
    use super::values_sql;
    use crate::store::Backend;

    #[test]
    fn postgres_rows_bind_their_own_numbered_values() {
        let sql = values_sql(
            Backend::Postgres,
            "INSERT INTO t (a, b) VALUES ",
            3,
            2,
            " RETURNING id",
        );
        assert_eq!(
            sql,
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4), ($5, $6) RETURNING id"
        );
    }

    #[test]
    fn sqlite_rows_bind_anonymous_values_in_order() {
        let sql = values_sql(Backend::Sqlite, "INSERT INTO t (a, b) VALUES ", 2, 3, "");
        assert_eq!(sql, "INSERT INTO t (a, b) VALUES (?, ?, ?), (?, ?, ?)");
    }
}
