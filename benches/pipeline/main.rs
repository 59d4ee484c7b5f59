//! System benchmark of the whole pipeline (`cargo bench --bench pipeline [SCENARIO…]`, or
//! `ORGSYNC_BENCH_SCENARIOS=a,b`): one JSON object per scenario on stdout. Real HTTP over
//! loopback, real signatures, a real SQLite file (and PostgreSQL for `ingest_postgres`);
//! Scalekit is the stand-in with an injected latency. Numbers go to BENCHMARKS.md by hand;
//! they are measurements, never pass/fail tests.
//!
//! Scenarios: `ingest_sqlite`, `ingest_postgres`, `end_to_end`, `burst`, `drain`,
//! `memory`, `storage` (see each module).

mod apply;
mod ingest;
mod memory;
mod support;

const ALL: [&str; 7] = [
    "ingest_sqlite",
    "ingest_postgres",
    "end_to_end",
    "burst",
    "drain",
    "memory",
    "storage",
];

#[tokio::main]
async fn main() {
    let wanted = wanted();
    for scenario in ALL {
        if !wanted.is_empty() && !wanted.iter().any(|w| w == scenario) {
            continue;
        }
        let line = match scenario {
            "ingest_sqlite" => ingest::sqlite().await,
            "ingest_postgres" => ingest::postgres().await,
            "end_to_end" => apply::end_to_end().await,
            "burst" => apply::burst().await,
            "drain" => apply::drain().await,
            "memory" => memory::memory().await,
            _ => ingest::storage().await,
        };
        println!("{line}");
    }
}

/// The scenarios named on the command line (cargo's own `--bench` flag aside) or in
/// `ORGSYNC_BENCH_SCENARIOS`; empty means all.
fn wanted() -> Vec<String> {
    let mut names: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if let Ok(list) = std::env::var("ORGSYNC_BENCH_SCENARIOS") {
        names.extend(list.split(',').map(|s| s.trim().to_owned()));
    }
    names.retain(|n| !n.is_empty());
    names
}
