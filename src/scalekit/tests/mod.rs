//! The client against the Scalekit stand-in: one stand-in per test, on port 0.

mod calls;
mod faults;

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use scalekit_standin::{CLIENT_ID, CLIENT_SECRET, RecordedRequest, StandIn};
use secrecy::SecretString;

use super::{ScalekitClient, ScalekitConfig};
use crate::clock::Clock;
use crate::model::ExternalId;

/// Settings pointing at `standin`, without a rate limit.
fn config(standin: &StandIn) -> ScalekitConfig {
    ScalekitConfig {
        environment_url: standin.base_url(),
        client_id: CLIENT_ID.to_owned(),
        client_secret: SecretString::from(CLIENT_SECRET),
        request_timeout: Duration::from_secs(5),
        requests_per_second: None,
        max_retry_after: Duration::from_secs(60),
    }
}

/// A started stand-in and a client for it.
async fn start() -> (StandIn, ScalekitClient) {
    start_with(|_| {}).await
}

/// A started stand-in and a client built from adjusted settings.
async fn start_with(adjust: impl FnOnce(&mut ScalekitConfig)) -> (StandIn, ScalekitClient) {
    start_on(Clock::system(), adjust).await
}

/// A started stand-in and a client on `clock`, built from adjusted settings.
async fn start_on(
    clock: Clock,
    adjust: impl FnOnce(&mut ScalekitConfig),
) -> (StandIn, ScalekitClient) {
    let standin = StandIn::start().await.unwrap();
    let mut settings = config(&standin);
    adjust(&mut settings);
    let client = ScalekitClient::new(settings, clock).unwrap();
    (standin, client)
}

/// An external id for tests.
fn eid(value: &str) -> ExternalId {
    ExternalId::parse(value).unwrap()
}

/// A metadata map from pairs.
fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The `/api` requests the stand-in received.
fn api_requests(standin: &StandIn) -> Vec<RecordedRequest> {
    standin
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/"))
        .collect()
}

/// Rate settings for tests.
fn per_second(n: u32) -> Option<NonZeroU32> {
    NonZeroU32::new(n)
}
