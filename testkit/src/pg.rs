//! A fresh PostgreSQL database per test on the server `ORGSYNC_TEST_DATABASE_URL` names, so
//! tests running in parallel never see each other's rows; dropped when the test ends (even
//! when it fails). Without the variable (a local run) the PostgreSQL tests are skipped with
//! one note; with it (CI sets it) an unreachable server fails the test.

use std::env::VarError;
use std::io::Write;
use std::sync::Once;

use sqlx::{Connection, PgConnection};

/// The variable naming the PostgreSQL server tests use.
pub const TEST_DATABASE_VAR: &str = "ORGSYNC_TEST_DATABASE_URL";

/// Prints the skip note once per test process, not once per test.
static SKIP_NOTE: Once = Once::new();

/// A database created for one test.
pub struct TestDb {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDb {
    /// Creates `orgsync_t_<random>` on the server [`TEST_DATABASE_VAR`] names; `None` when
    /// the variable is not set (a local run: the note says so once). Panics when it is set
    /// but the server cannot be reached or the database cannot be made: a run that expects
    /// PostgreSQL must fail rather than pass without it.
    pub async fn create() -> Option<Self> {
        match std::env::var(TEST_DATABASE_VAR) {
            Ok(admin_url) => Some(Self::create_on(admin_url).await),
            Err(VarError::NotPresent) => {
                // Straight to stderr: the test harness would hide an `eprintln!` of a
                // passing test.
                SKIP_NOTE.call_once(|| {
                    let _ = writeln!(
                        std::io::stderr(),
                        "note: {TEST_DATABASE_VAR} is not set; the PostgreSQL tests are \
                         skipped (set it, as .ci/run does, to run them)"
                    );
                });
                None
            }
            Err(VarError::NotUnicode(_)) => panic!("{TEST_DATABASE_VAR} is not valid UTF-8"),
        }
    }

    /// Creates a fresh database on the server at `admin_url`, panicking when it cannot.
    async fn create_on(admin_url: String) -> Self {
        let name = format!("orgsync_t_{:016x}", rand::random::<u64>());
        let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "{TEST_DATABASE_VAR} is set but its server cannot be reached: {e}; start \
                     PostgreSQL, or unset {TEST_DATABASE_VAR} to skip the PostgreSQL tests"
            )
        });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("creating the test database {name}: {e}"));
        // Closing is a courtesy; the database exists either way.
        let _ = admin.close().await;
        let url = database_url(&admin_url, &name);
        Self {
            admin_url,
            name,
            url,
        }
    }

    /// The URL of the test's database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// `admin_url` with its database replaced by `name`, its query kept.
fn database_url(admin_url: &str, name: &str) -> String {
    let (base, query) = admin_url.split_once('?').unwrap_or((admin_url, ""));
    let server = match base.split_once("://") {
        Some((_, rest)) if rest.contains('/') => base.rsplit_once('/').map_or(base, |(s, _)| s),
        _ => base,
    };
    if query.is_empty() {
        format!("{server}/{name}")
    } else {
        format!("{server}/{name}?{query}")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime: use a thread with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime
                .block_on(async {
                    let mut admin = PgConnection::connect(&admin_url).await?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut admin)
                        .await?;
                    admin.close().await
                })
                .map_err(std::io::Error::other)
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("note: could not drop the test database {}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_replaces_the_admin_database_and_the_query_stays() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/test", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            database_url("postgres://u:p@h/test?sslmode=require", "t1"),
            "postgres://u:p@h/t1?sslmode=require"
        );
        assert_eq!(
            database_url("postgres://u@h:5432", "t1"),
            "postgres://u@h:5432/t1"
        );
    }

    #[tokio::test]
    #[should_panic(expected = "ORGSYNC_TEST_DATABASE_URL is set but its server cannot be reached")]
    async fn an_unreachable_server_fails_the_test() {
        // Port 1 (tcpmux) has no PostgreSQL server: the connection is refused.
        TestDb::create_on("postgres://postgres@127.0.0.1:1/test".to_owned()).await;
    }
}
