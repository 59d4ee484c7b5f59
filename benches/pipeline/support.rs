//! What the scenarios share: the environment, the daemon, signed event bodies, load
//! generation and percentiles.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use orgsync::app::App;
use orgsync::clock::Clock;
use orgsync::config::Settings;
use orgsync::sources::stripe_signature_header;
use orgsync::store::Store;
use scalekit_standin::StandIn;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The Stripe signing secret of every run.
pub const SECRET: &str = "whsec_bench_secret";

/// The `customer.subscription.updated` fixture with placeholders for what varies.
pub struct Template(String);

impl Template {
    /// Loads the fixture (cargo runs benches from the package root).
    pub fn load() -> Self {
        let text = std::fs::read_to_string(
            "tests/fixtures/stripe/event.customer.subscription.updated.json",
        )
        .expect("run from the repository root");
        let mut value: serde_json::Value = serde_json::from_str(&text).expect("fixture");
        value["id"] = "EVT_ID".into();
        value["created"] = 1_111_111_111.into();
        value["data"]["object"]["metadata"]["org_id"] = "ORG_ID".into();
        // Each organization its own Stripe customer, as in a real account (one customer
        // moving between organizations with every event rewrites one link row each time).
        value["data"]["object"]["customer"] = "CUSTOMER_ID".into();
        value["data"]["object"]["items"]["data"][0]["quantity"] = 987_654_321.into();
        // Pretty, as Stripe sends it.
        Self(serde_json::to_string_pretty(&value).expect("json"))
    }

    /// Event `n` for organization `org` with `seats`.
    pub fn event(&self, n: u64, org: &str, seats: u64) -> String {
        self.0
            .replace("EVT_ID", &format!("evt_bench_{n}"))
            .replace("1111111111", &(1_800_000_000 + n).to_string())
            .replace("CUSTOMER_ID", &format!("cus_{org}"))
            .replace("ORG_ID", org)
            .replace("987654321", &seats.to_string())
    }
}

/// The settings of a daemon on `url`, Scalekit played by `standin` when given.
pub fn settings(url: &str, standin: Option<&StandIn>) -> (Settings, HashMap<String, String>) {
    let mut env: HashMap<String, String> = [
        ("ORGSYNC_LISTEN", "127.0.0.1:0".to_owned()),
        ("ORGSYNC_DATABASE_URL", url.to_owned()),
        ("STRIPE_WEBHOOK_SECRET", SECRET.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(standin) = standin {
        env.insert("SCALEKIT_ENVIRONMENT_URL".into(), standin.base_url());
        env.insert(
            "SCALEKIT_CLIENT_ID".into(),
            scalekit_standin::CLIENT_ID.into(),
        );
        env.insert(
            "SCALEKIT_CLIENT_SECRET".into(),
            scalekit_standin::CLIENT_SECRET.into(),
        );
    }
    let lookup = |name: &str| env.get(name).cloned();
    let settings =
        Settings::load(std::path::Path::new("config/orgsync.toml"), &lookup).expect("config");
    (settings, env)
}

/// A daemon running in this process.
pub struct Daemon {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its store.
    pub store: Store,
    token: CancellationToken,
    handle: JoinHandle<Result<(), orgsync::app::AppError>>,
}

impl Daemon {
    /// Starts the daemon with the default config on `url`.
    pub async fn start(url: &str, standin: Option<&StandIn>, run_workers: bool) -> Self {
        let (settings, env) = settings(url, standin);
        let lookup = |name: &str| env.get(name).cloned();
        let app = App::build(settings, &lookup).await.expect("app");
        let addr = app.local_addr();
        let store = app.store().clone();
        let token = CancellationToken::new();
        let handle = tokio::spawn(app.run_until_stopped(token.clone(), run_workers));
        Self {
            addr,
            store,
            token,
            handle,
        }
    }

    /// `http://ADDR/webhooks/stripe`.
    pub fn stripe_url(&self) -> String {
        format!("http://{}/webhooks/stripe", self.addr)
    }

    /// Stops it and waits.
    pub async fn stop(self) {
        self.token.cancel();
        let _ = self.handle.await;
        self.store.close().await;
    }
}

/// Sends one signed delivery; panics on anything but a 2xx (a benchmark must not measure
/// refusals).
pub async fn send(client: &reqwest::Client, url: &str, body: String) {
    let signature =
        stripe_signature_header(SECRET, Clock::system().now_ms() / 1000, body.as_bytes());
    let response = client
        .post(url)
        .header("stripe-signature", signature)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("answer");
    assert!(
        response.status().is_success(),
        "status {}",
        response.status()
    );
}

/// Closed-loop load: `connections` senders post unique events to `url` for `duration`
/// (or until `limit` events); returns every request's latency and the elapsed time.
pub async fn closed_loop(
    url: &str,
    template: Arc<Template>,
    connections: usize,
    duration: Duration,
    limit: u64,
    orgs: u64,
) -> (Vec<Duration>, Duration) {
    // Events 0, 1, 2… of this run: organization n % orgs, seats 100 + n.
    let next = Arc::new(AtomicU64::new(0));
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, url, template) = (client.clone(), url.to_owned(), template.clone());
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while started.elapsed() < duration {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= limit {
                    break;
                }
                let org = format!("org_bench_{}", n % orgs);
                let body = template.event(n, &org, 100 + n);
                let sent = Instant::now();
                send(&client, &url, body).await;
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("sender"));
    }
    let elapsed = started.elapsed();
    latencies.sort();
    (latencies, elapsed)
}

/// The `p` quantile of sorted `values`, in milliseconds.
pub fn pct_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
    round(sorted[i].as_secs_f64() * 1000.0)
}

/// Two decimals are plenty.
pub fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A stand-in with `orgs` organizations `org_bench_N` and a latency.
pub async fn standin(orgs: u64, latency: Duration) -> StandIn {
    let standin = StandIn::start().await.expect("stand-in");
    for org in 0..orgs {
        standin.create_organization(
            &format!("Org {org}"),
            Some(&format!("org_bench_{org}")),
            &[],
        );
    }
    standin.set_latency(latency);
    standin
}

/// A fresh SQLite URL in `dir`.
pub fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("bench.db").display())
}

/// Waits until every organization shows the newest `seats` of the `events` sent.
pub async fn converge(standin: &StandIn, orgs: u64, events: u64) {
    let newest: HashMap<u64, u64> = (0..events).map(|n| (n % orgs, 100 + n)).collect();
    let started = Instant::now();
    while !newest.iter().all(|(org, seats)| {
        standin
            .organization_by_external_id(&format!("org_bench_{org}"))
            .and_then(|o| o.metadata.get("seats").cloned())
            == Some(seats.to_string())
    }) {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "not converged"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
