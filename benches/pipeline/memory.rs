//! Memory: the release daemon as its own process (so only its RSS is counted), idle on an
//! empty store, then on a store holding a backlog of one million pending jobs (inserted
//! directly with SQL, 10 per organization) while it drains against the 30 ms stand-in.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Connection;

use crate::support::{SECRET, round, sqlite_url, standin};

const JOBS: u64 = 1_000_000;
const ORGS: u64 = 100_000;
/// How long the draining daemon is watched (`ORGSYNC_BENCH_MEMORY_SECONDS`, default 60).
fn sample_for() -> Duration {
    let secs = std::env::var("ORGSYNC_BENCH_MEMORY_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

/// `memory`.
pub async fn memory() -> String {
    let standin = standin(ORGS, Duration::from_millis(30)).await;
    let idle_dir = tempfile::tempdir().expect("temp dir");
    let mut idle = spawn(&sqlite_url(&idle_dir), &standin.base_url());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_rss = rss_mb(&idle);
    stop(&mut idle);

    let dir = tempfile::tempdir().expect("temp dir");
    let url = sqlite_url(&dir);
    orgsync::store::Store::connect(&url)
        .await
        .expect("migrate")
        .close()
        .await;
    fill(&url).await;
    let mut daemon = spawn(&url, &standin.base_url());
    let started = Instant::now();
    let mut samples = Vec::new();
    let sample_for = sample_for();
    while started.elapsed() < sample_for {
        tokio::time::sleep(Duration::from_secs(1)).await;
        samples.push(rss_mb(&daemon));
    }
    stop(&mut daemon);
    let patches = standin
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    let peak = samples.iter().copied().fold(0.0, f64::max);
    json!({
        "scenario": "memory",
        "idle_rss_mb": idle_rss,
        "backlog_jobs": JOBS,
        "backlog_rss_mb": peak,
        "first_rss_mb": samples.first(),
        "last_rss_mb": samples.last(),
        "sampled_s": sample_for.as_secs(),
        "every_10s_mb": samples.iter().step_by(10).collect::<Vec<_>>(),
        "targets_patched": patches,
    })
    .to_string()
}

/// Starts `target/release/orgsync serve` (the binary cargo built for this bench).
fn spawn(url: &str, scalekit: &str) -> Child {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    Command::new(env!("CARGO_BIN_EXE_orgsync"))
        .arg("serve")
        .env("ORGSYNC_CONFIG", "config/orgsync.toml")
        .env("ORGSYNC_LISTEN", format!("127.0.0.1:{port}"))
        .env("ORGSYNC_DATABASE_URL", url)
        .env("ORGSYNC_LOG", "warn")
        .env("STRIPE_WEBHOOK_SECRET", SECRET)
        .env("SCALEKIT_ENVIRONMENT_URL", scalekit)
        .env("SCALEKIT_CLIENT_ID", scalekit_standin::CLIENT_ID)
        .env("SCALEKIT_CLIENT_SECRET", scalekit_standin::CLIENT_SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the release binary starts")
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The child's resident set in MB (VmRSS).
fn rss_mb(child: &Child) -> f64 {
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN);
    round(kb / 1024.0)
}

/// One event per organization and ten pending jobs each, due now.
async fn fill(url: &str) {
    let mut conn = sqlx::SqliteConnection::connect(url).await.expect("sqlite");
    let now = orgsync::clock::Clock::system().now_ms();
    let events = format!(
        "INSERT INTO events (source, provider_event_id, event_type, occurred_at_ms,
                             received_at_ms, payload, verification, status)
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {ORGS} - 1)
         SELECT 'stripe', 'evt_mem_' || i, 'customer.subscription.updated', {now}, {now},
                '{{}}', 'stripe signature', 'accepted' FROM n"
    );
    let jobs = format!(
        "INSERT INTO jobs (event_id, target_key, change, version_ms, version_seq, state,
                           run_at_ms, window_start_ms, created_at_ms, updated_at_ms)
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {JOBS} - 1)
         SELECT (i % {ORGS}) + 1, 'org:org_bench_' || (i % {ORGS}),
                '{{\"rule\":\"bench\",\"target\":{{\"by\":\"external\",\"kind\":\"organization\",\"external_id\":\"org_bench_' || (i % {ORGS}) || '\"}},\"set\":{{\"seats\":\"' || i || '\"}},\"unset\":[],\"on_missing\":\"retry\"}}',
                {now} + i, i + 1, 'pending', {now}, {now}, {now}, {now} FROM n"
    );
    for sql in [events, jobs] {
        sqlx::query(&sql)
            .execute(&mut conn)
            .await
            .expect("backlog insert");
    }
    conn.close().await.expect("close");
}
