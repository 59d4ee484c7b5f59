//! A fresh PostgreSQL database per test on the server `ORGSYNC_TEST_DATABASE_URL` names,
//! dropped when the test ends (even when it fails).

use sqlx::{Connection, PgConnection};

/// The variable naming the PostgreSQL server tests may use.
const VAR: &str = "ORGSYNC_TEST_DATABASE_URL";

/// A database created for one test.
pub struct TestDb {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDb {
    /// Creates `orgsync_t_<random>` on the server `ORGSYNC_TEST_DATABASE_URL` names, or
    /// returns `None` (with a note) when the variable is not set.
    pub async fn create() -> Option<Self> {
        let Ok(admin_url) = std::env::var(VAR) else {
            eprintln!("note: {VAR} is not set; skipping the PostgreSQL run of this test");
            return None;
        };
        let name = format!("orgsync_t_{:016x}", rand::random::<u64>());
        let mut admin = PgConnection::connect(&admin_url).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        let (base, query) = admin_url
            .split_once('?')
            .map_or((admin_url.as_str(), ""), |(b, q)| (b, q));
        let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
        let url = if query.is_empty() {
            format!("{server}/{name}")
        } else {
            format!("{server}/{name}?{query}")
        };
        Some(Self {
            admin_url,
            name,
            url,
        })
    }

    /// The URL of the test's database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime: use a thread with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await?;
                admin.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("note: could not drop the test database {}", self.name);
        }
    }
}
