//! `spawn_app()` and typed helpers that sign, send and drive the worker.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use orgsync::app::{App, AppError};
use orgsync::clock::{Clock, ManualClock};
use orgsync::config::Settings;
use orgsync::sources::stripe_signature_header;
use orgsync::store::{EventFilter, EventRow, JobRow, JobState, Store};
use orgsync::worker::{BatchReport, PassOutcome, Worker};
use scalekit_standin::StandIn;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use orgsync_testkit::{TestDb, wait_for, wait_for_blocking, wait_for_ok};

/// The organization the fixtures name (`metadata.org_id`, `client_reference_id`,
/// `Org_Id__c`).
pub const ORG: &str = "org_01HZX5K9M3ABCDEF";

/// The Stripe signing secret the tests configure.
pub const STRIPE_SECRET: &str = "whsec_test_secret";

/// The Salesforce URL token the tests configure (`SALESFORCE_WEBHOOK_TOKEN`).
pub const SF_TOKEN: &str = "sf-test-token-0123456789abcdef0123456789";

/// An `env` override value that removes the variable.
pub const UNSET: &str = "<unset>";

/// A change to the loaded settings.
pub type Tune = Box<dyn FnOnce(&mut Settings) + Send>;

/// How the test daemon is set up.
pub struct TestOptions {
    /// Give the daemon the stand-in's credentials (else the workers stay paused).
    pub scalekit: bool,
    /// Run the worker tasks (else tests drive `process_next` themselves).
    pub run_workers: bool,
    /// Reuse this folder's database (a restart).
    pub data_dir: Option<Arc<tempfile::TempDir>>,
    /// Reuse this stand-in (a restart keeps Scalekit's state).
    pub standin: Option<StandIn>,
    /// Extra environment variables.
    pub env: Vec<(&'static str, String)>,
    /// TOML appended to the default config (extra `[[sources]]` and `[[rules]]`).
    pub extra_config: Option<String>,
    /// Adjusts the loaded settings (knobs with no environment variable).
    pub tune: Option<Tune>,
    /// Runs the daemon on this clock, which moves only when the test advances it (else
    /// on the wall clock).
    pub clock: Option<ManualClock>,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            scalekit: true,
            run_workers: false,
            data_dir: None,
            standin: None,
            env: vec![],
            extra_config: None,
            tune: None,
            clock: None,
        }
    }
}

/// A running daemon and its surroundings.
pub struct TestApp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where the admin listener listens, when `ORGSYNC_ADMIN_LISTEN` is set.
    pub admin_addr: Option<SocketAddr>,
    /// Its store (the same SQLite file).
    pub store: Store,
    /// The Scalekit stand-in it talks to.
    pub standin: StandIn,
    /// The shared worker, when credentials are configured.
    pub worker: Option<Arc<Worker>>,
    /// The folder holding the SQLite file.
    pub data_dir: Arc<tempfile::TempDir>,
    /// An HTTP client.
    pub http: reqwest::Client,
    /// The daemon's clock (what deliveries are signed at).
    pub clock: Clock,
    /// The hands of that clock, when it is a manual one.
    hand: Option<ManualClock>,
    token: CancellationToken,
    handle: JoinHandle<Result<(), AppError>>,
}

/// The test environment: the real default config file plus overrides.
pub fn test_env(
    data_dir: &Path,
    standin: &StandIn,
    options: &TestOptions,
) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = HashMap::new();
    env.insert("ORGSYNC_LISTEN".into(), "127.0.0.1:0".into());
    env.insert(
        "ORGSYNC_DATABASE_URL".into(),
        format!("sqlite://{}", data_dir.join("orgsync.db").display()),
    );
    env.insert("STRIPE_WEBHOOK_SECRET".into(), STRIPE_SECRET.into());
    env.insert(
        "SALESFORCE_ORGANIZATION_ID".into(),
        "00D5g000004XkQmEAK".into(),
    );
    env.insert("SALESFORCE_WEBHOOK_TOKEN".into(), SF_TOKEN.into());
    if options.scalekit {
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
    for (k, v) in &options.env {
        env.insert((*k).into(), v.clone());
    }
    env.retain(|_, v| v != UNSET);
    env
}

/// Starts the daemon with the default options.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(TestOptions::default()).await
}

/// Starts the daemon as `options` say.
pub async fn spawn_app_with(options: TestOptions) -> TestApp {
    let standin = match options.standin.clone() {
        Some(standin) => standin,
        None => StandIn::start().await.expect("stand-in starts"),
    };
    let data_dir = options
        .data_dir
        .clone()
        .unwrap_or_else(|| Arc::new(tempfile::tempdir().unwrap()));
    let env = test_env(data_dir.path(), &standin, &options);
    let lookup = |name: &str| env.get(name).cloned();
    let path = match &options.extra_config {
        Some(extra) => {
            let text = std::fs::read_to_string(config_path()).unwrap() + "\n" + extra;
            let path = data_dir.path().join("orgsync.toml");
            std::fs::write(&path, text).unwrap();
            path
        }
        None => config_path(),
    };
    let mut settings = Settings::load(&path, &lookup).expect("the config loads");
    settings.worker.retry_initial_seconds = 1;
    settings.worker.retry_max_seconds = 1;
    settings.worker.poll_interval_ms = 50;
    if let Some(tune) = options.tune {
        tune(&mut settings);
    }
    let clock = options
        .clock
        .as_ref()
        .map_or_else(Clock::system, ManualClock::clock);
    let app = App::build_with_clock(settings, &lookup, clock.clone())
        .await
        .expect("the app builds");
    let addr = app.local_addr();
    let admin_addr = app.admin_addr();
    let store = app.store().clone();
    let worker = app.worker();
    let token = CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(token.clone(), options.run_workers));
    TestApp {
        addr,
        admin_addr,
        store,
        standin,
        worker,
        data_dir,
        http: reqwest::Client::new(),
        clock,
        hand: options.clock,
        token,
        handle,
    }
}

/// The wall clock now, in unix milliseconds.
pub fn now_ms() -> i64 {
    Clock::system().now_ms()
}

/// The committed default config.
pub fn config_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/orgsync.toml")
}

/// A fixture file's bytes, e.g. `stripe/event.customer.created.json`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every Stripe event fixture (not the thin event).
pub fn stripe_fixtures() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stripe");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("event.") && n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

impl TestApp {
    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `http://ADMIN_ADDR{path}` on the admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        let addr = self.admin_addr.expect("the app has an admin listener");
        format!("http://{addr}{path}")
    }

    /// The text of `/metrics`, from the admin listener when there is one.
    pub async fn metrics_text(&self) -> String {
        let url = match self.admin_addr {
            Some(addr) => format!("http://{addr}/metrics"),
            None => self.url("/metrics"),
        };
        let answer = self.http.get(url).send().await.expect("the daemon answers");
        answer.text().await.expect("a metrics body")
    }

    /// POSTs `body` to `/webhooks/stripe`, signed now with the test secret.
    pub async fn post_stripe(&self, body: &[u8]) -> reqwest::Response {
        let header = stripe_signature_header(STRIPE_SECRET, self.clock.now_ms() / 1000, body);
        self.post_stripe_with(body, &header).await
    }

    /// POSTs `body` to `/webhooks/stripe` with the given `Stripe-Signature`.
    pub async fn post_stripe_with(&self, body: &[u8], signature: &str) -> reqwest::Response {
        self.http
            .post(self.url("/webhooks/stripe"))
            .header("stripe-signature", signature)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .expect("the daemon answers")
    }

    /// The jobs in `state` (all when `None`), newest first.
    pub async fn jobs(&self, state: Option<JobState>) -> Vec<JobRow> {
        self.store
            .list_jobs(state, 100_000)
            .await
            .expect("listing jobs")
    }

    /// Runs the worker step until nothing is runnable; returns what each pass did.
    pub async fn drain(&self) -> Vec<BatchReport> {
        let worker = self
            .worker
            .as_ref()
            .expect("the app has Scalekit credentials");
        let mut reports = vec![];
        while let PassOutcome::Processed(report) = worker.process_next().await.expect("worker pass")
        {
            reports.push(report);
        }
        reports
    }

    /// Runs the worker step until `done()` holds, failing after `limit`. In between it
    /// waits for due retries: on a manual clock by moving it 100 ms at a time, else by
    /// waiting for the wall clock.
    pub async fn drain_until(&self, limit: Duration, done: impl Fn() -> bool) {
        wait_for(limit, "the drained state", async || {
            done() || {
                if self.drain().await.is_empty()
                    && let Some(hand) = &self.hand
                {
                    _ = hand.advance(Duration::from_millis(100));
                }
                done()
            }
        })
        .await;
    }

    /// Stops the daemon and waits for it to finish.
    pub async fn stop(self) -> (Arc<tempfile::TempDir>, StandIn) {
        self.stop_within(Duration::from_secs(60)).await
    }

    /// Stops the daemon and waits for it to finish, failing when that takes over `limit`.
    pub async fn stop_within(self, limit: Duration) -> (Arc<tempfile::TempDir>, StandIn) {
        self.token.cancel();
        tokio::time::timeout(limit, self.handle)
            .await
            .unwrap_or_else(|_| panic!("the daemon did not stop within {limit:?}"))
            .expect("join")
            .expect("clean stop");
        (self.data_dir, self.standin)
    }
}

/// The bodies of every PATCH the stand-in received, checking that each went to the by-id
/// path under `path_prefix` and sent only the complete `metadata` map.
pub fn metadata_patches(standin: &StandIn, path_prefix: &str) -> Vec<serde_json::Value> {
    let patches: Vec<_> = standin
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    patches
        .into_iter()
        .map(|request| {
            assert!(request.path.starts_with(path_prefix), "{}", request.path);
            let body = request.body.expect("a JSON body");
            let keys: Vec<&String> = body.as_object().expect("an object").keys().collect();
            assert_eq!(keys, vec!["metadata"], "only the metadata map is sent");
            body
        })
        .collect()
}

/// A stand-in holding the fixtures' organization, with one key orgsync does not own.
pub async fn standin_with_org() -> StandIn {
    let standin = StandIn::start().await.expect("stand-in starts");
    standin.create_organization("Acme Corp", Some(ORG), &[("managed_by", "dashboard")]);
    standin
}

/// Starts the daemon against [`standin_with_org`].
pub async fn spawn_app_with_org() -> TestApp {
    let standin = Some(standin_with_org().await);
    spawn_app_with(TestOptions {
        standin,
        ..Default::default()
    })
    .await
}

/// POSTs a Stripe body to the daemon at `addr`, signed now; the answer's status.
pub async fn post_signed(
    http: &reqwest::Client,
    addr: &str,
    body: &[u8],
) -> Result<u16, reqwest::Error> {
    let header = stripe_signature_header(STRIPE_SECRET, now_ms() / 1000, body);
    let response = http
        .post(format!("http://{addr}/webhooks/stripe"))
        .header("stripe-signature", header)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await?;
    Ok(response.status().as_u16())
}

/// Every stored event, oldest first.
pub async fn events(app: &TestApp) -> Vec<EventRow> {
    let mut rows = app
        .store
        .list_events(&EventFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("listing events");
    rows.reverse();
    rows
}

/// Fails when any job is dead or still pending.
pub async fn no_dead_or_pending(app: &TestApp) {
    for state in [JobState::Dead, JobState::Pending] {
        let jobs = app.jobs(Some(state)).await;
        assert!(jobs.is_empty(), "{state:?} jobs: {jobs:?}");
    }
}
