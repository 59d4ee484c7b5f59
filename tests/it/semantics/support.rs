//! Shared by the semantics, process and convergence tests: synthetic Stripe events, a
//! signed POST, storing an event "in the past", a daemon built from adjusted settings, and
//! a bounded wait for a condition.

use std::time::{Duration, Instant};

use orgsync::config::Settings;
use orgsync::rules::RuleSet;
use orgsync::sources::{parse_unverified, stripe_signature_header};
use orgsync::store::{IngestItem, Store};
use serde_json::Value;

use crate::helpers::*;

/// `created` of the synthetic events (2026-02-02).
pub(crate) const BASE: i64 = 1_770_000_000;

/// A signed-ready `customer.subscription.updated` event for `org`, built from the fixture
/// with its own `id`, `created`, status and seat count.
pub(crate) fn subscription(id: &str, created: i64, org: &str, status: &str, seats: u64) -> Vec<u8> {
    let mut event: Value =
        serde_json::from_slice(&fixture("stripe/event.customer.subscription.updated.json"))
            .unwrap();
    event["id"] = id.into();
    event["created"] = created.into();
    let object = &mut event["data"]["object"];
    object["metadata"]["org_id"] = org.into();
    object["customer"] = format!("cus_{org}").into();
    object["status"] = status.into();
    object["items"]["data"][0]["quantity"] = seats.into();
    serde_json::to_vec(&event).unwrap()
}

/// POSTs a Stripe body to `addr`, signed now.
pub(crate) async fn post_signed(
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

/// Stores `body` as if it had arrived at `now_ms` (the test's way to age a job).
pub(crate) async fn ingest_at(store: &Store, body: &[u8], now_ms: i64) {
    let settings = Settings::load(&config_path(), &|_| None).unwrap();
    let names: Vec<&str> = settings.sources.iter().map(|s| s.name.as_str()).collect();
    let rules = RuleSet::compile(&settings.rules, &names).unwrap();
    let config = settings
        .sources
        .iter()
        .find(|s| s.name == "stripe")
        .unwrap();
    let event = parse_unverified(config, body).unwrap().remove(0);
    let normalized = rules.normalize(&event);
    store
        .ingest(None, &[IngestItem { event, normalized }], now_ms)
        .await
        .unwrap();
}

/// Waits (a bounded real time) until `done` holds; the daemon's clock does not move.
pub(crate) async fn settle(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let limit = Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(Instant::now() < limit, "{what}: not reached");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
