//! Shared by the semantics, process and convergence tests: synthetic Stripe events, a
//! signed POST, storing an event "in the past", a daemon built from adjusted settings, and
//! a bounded wait for a condition.

use orgsync::config::Settings;
use orgsync::rules::RuleSet;
use orgsync::sources::parse_unverified;
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
