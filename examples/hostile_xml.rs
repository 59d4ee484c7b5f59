//! Measures what the largest hostile Outbound Message the XML reader accepts costs: the
//! parse time of one, and the `/healthz` latency while two are checked at once against a
//! running daemon. Not a test: run `cargo run --release --example hostile_xml`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use orgsync::app::App;
use orgsync::config::Settings;
use orgsync::sources::soap::{self, MAX_ATTRIBUTES, MAX_DEPTH, MAX_NAMESPACE_DECLARATIONS};
use tokio_util::sync::CancellationToken;

/// The URL token the daemon is given.
const TOKEN: &str = "hostile-bench-token-0123456789abcdef0123";
/// The default body limit.
const BODY_LIMIT: usize = 1024 * 1024;

/// Nested elements declaring the most prefixes allowed, then leaves whose attributes
/// all use the outermost prefixes (the longest binding lookups), up to the body limit.
fn attribute_heavy() -> String {
    let depth = MAX_DEPTH - 1;
    let mut body = nesting(depth);
    let leaf: String = {
        let attrs: String = (0..MAX_ATTRIBUTES)
            .map(|i| format!(" p0_{i}:nil=\"\""))
            .collect();
        format!("<p0_0:e{attrs}/>")
    };
    let close = "</w>".repeat(depth);
    while body.len() + leaf.len() + close.len() < BODY_LIMIT {
        body.push_str(&leaf);
    }
    body + &close
}

/// The same nesting, then as many empty prefixed elements as allowed.
fn element_heavy() -> String {
    let depth = MAX_DEPTH - 1;
    let mut body = nesting(depth);
    let close = "</w>".repeat(depth);
    let leaf = "<p0_0:e/>";
    let mut count = depth;
    while count < soap::MAX_ELEMENTS && body.len() + leaf.len() + close.len() < BODY_LIMIT {
        body.push_str(leaf);
        count += 1;
    }
    body + &close
}

/// `depth` open elements; the outer ones declare the most prefixes allowed.
fn nesting(depth: usize) -> String {
    let declaring = MAX_NAMESPACE_DECLARATIONS / MAX_ATTRIBUTES;
    (0..depth)
        .map(|level| {
            let decls: String = (0..MAX_ATTRIBUTES)
                .filter(|_| level < declaring)
                .map(|i| format!(" xmlns:p{level}_{i}=\"u{i}\""))
                .collect();
            format!("<w{decls}>")
        })
        .collect()
}

/// The median and the largest of `samples`.
fn summary(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (samples[samples.len() / 2], samples[samples.len() - 1])
}

#[tokio::main]
async fn main() {
    let mut worst = (String::new(), Duration::ZERO);
    for (name, body) in [
        ("attribute-heavy", attribute_heavy()),
        ("element-heavy", element_heavy()),
    ] {
        let runs: Vec<Duration> = (0..5)
            .map(|_| {
                let started = Instant::now();
                soap::parse(body.as_bytes()).expect("accepted by the reader");
                started.elapsed()
            })
            .collect();
        let (p50, max) = summary(runs);
        println!(
            "{name}: {} bytes, parse p50 {p50:?}, max {max:?}",
            body.len()
        );
        if p50 > worst.1 {
            worst = (body, p50);
        }
    }

    // The body of the issue: one element with 60 000 attributes, now refused at the cap.
    let flood: String = (0..60_000).map(|i| format!(" a{i}=\"\"")).collect();
    let flood = format!("<x{flood}/>");
    let started = Instant::now();
    let refused = soap::parse(flood.as_bytes()).is_err();
    println!(
        "60 000 attributes on one element ({} bytes): refused = {refused} in {:?}",
        flood.len(),
        started.elapsed()
    );

    let dir = tempfile::tempdir().expect("a temp dir");
    let env: HashMap<String, String> = [
        ("ORGSYNC_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "ORGSYNC_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("o.db").display()),
        ),
        ("ORGSYNC_LOG", "error".to_owned()),
        ("STRIPE_WEBHOOK_SECRET", "whsec_bench".to_owned()),
        (
            "SALESFORCE_ORGANIZATION_ID",
            "00D5g000004XkQmEAK".to_owned(),
        ),
        ("SALESFORCE_WEBHOOK_TOKEN", TOKEN.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let lookup = |name: &str| env.get(name).cloned();
    let settings = Settings::load(std::path::Path::new("config/orgsync.toml"), &lookup)
        .expect("the config loads");
    let app = App::build(settings, &lookup).await.expect("the app builds");
    let addr = app.local_addr();
    let token = CancellationToken::new();
    let running = tokio::spawn(app.run_until_stopped(token.clone(), false));
    let http = reqwest::Client::new();
    let healthz = format!("http://{addr}/healthz");
    let idle: Vec<Duration> = {
        let mut samples = Vec::new();
        for _ in 0..50 {
            let started = Instant::now();
            http.get(&healthz).send().await.expect("healthz");
            samples.push(started.elapsed());
        }
        samples
    };
    let url = format!("http://{addr}/webhooks/salesforce?token={TOKEN}");
    let body = worst.0;
    let senders: Vec<_> = (0..2)
        .map(|_| {
            let (http, url, body) = (http.clone(), url.clone(), body.clone());
            tokio::spawn(async move {
                let mut checked = 0;
                let until = Instant::now() + Duration::from_secs(3);
                while Instant::now() < until {
                    let response = http.post(&url).body(body.clone()).send().await;
                    if response.is_ok() {
                        checked += 1;
                    }
                }
                checked
            })
        })
        .collect();
    let mut busy = Vec::new();
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let started = Instant::now();
        http.get(&healthz).send().await.expect("healthz");
        busy.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut checked = 0;
    for sender in senders {
        checked += sender.await.unwrap_or(0);
    }
    let (idle_p50, idle_max) = summary(idle);
    let (busy_p50, busy_max) = summary(busy);
    println!("/healthz idle: p50 {idle_p50:?}, max {idle_max:?}");
    println!(
        "/healthz while 2 senders post the worst body back to back ({checked} bodies checked in 3 s): p50 {busy_p50:?}, max {busy_max:?}"
    );
    token.cancel();
    let _ = running.await;
}
