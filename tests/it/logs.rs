//! Request spans in the logs: every line logged while a delivery is handled carries that
//! request's id (the one the answer's `x-request-id` names), its source and, once known,
//! its outcome. The daemon's own subscriber (`telemetry::dispatch`) is installed for this
//! test's thread only; `#[tokio::test]` runs the app's tasks on that thread.

use std::sync::{Arc, LazyLock, Mutex};

use orgsync::config::LogFormat;
use orgsync::sources::stripe_signature_header;
use serde_json::Value;
use tracing::Dispatch;
use tracing::subscriber::NoSubscriber;

use crate::helpers::*;

/// What the handlers, the sources and the tracing layer log at debug level.
const FILTER: &str = "info,orgsync=debug,tower_http=debug";

/// The log lines written so far.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Kept registered for the whole test binary. While a single dispatcher is registered,
/// tracing-core decides a callsite's interest with the *calling thread's* dispatcher: a
/// callsite first reached on another test's thread (which has none) would then be off for
/// good, and this test's lines would vanish. With a second one registered, every decision
/// asks all of them.
static SECOND_DISPATCH: LazyLock<Dispatch> =
    LazyLock::new(|| Dispatch::new(NoSubscriber::default()));

/// Runs an accepted and a refused Stripe delivery with logs in `format` captured; returns
/// the log text and the two answers' `x-request-id`s.
async fn two_deliveries(format: LogFormat) -> (String, [String; 2]) {
    let buffer = Capture::default();
    let writer = buffer.clone();
    LazyLock::force(&SECOND_DISPATCH);
    let dispatch = orgsync::telemetry::dispatch(format, FILTER, false, move || writer.clone());
    let guard = tracing::dispatcher::set_default(&dispatch);
    tracing::callsite::rebuild_interest_cache();
    let app = spawn_app().await;
    let body = fixture("stripe/event.customer.created.json");
    let accepted = app.post_stripe(&body).await;
    assert_eq!(accepted.status(), 200);
    let forged = stripe_signature_header("whsec_other", now_ms() / 1000, &body);
    let refused = app.post_stripe_with(&body, &forged).await;
    assert_eq!(refused.status(), 400);
    app.stop().await;
    drop(guard);
    let id = |response: &reqwest::Response| {
        let header = &response.headers()["x-request-id"];
        header.to_str().unwrap().to_owned()
    };
    let ids = [id(&accepted), id(&refused)];
    assert_ne!(ids[0], ids[1]);
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    (text, ids)
}

#[tokio::test]
async fn every_line_of_a_delivery_carries_its_request_id_source_and_outcome() {
    let (text, ids) = two_deliveries(LogFormat::Json).await;
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let expected = [
        (&ids[0], "accepted", "delivery stored", 200),
        (&ids[1], "refused", "delivery refused", 400),
    ];
    for (id, outcome, message, status) in expected {
        let mine: Vec<&Value> = lines
            .iter()
            .filter(|line| line["span"]["request_id"] == id.as_str())
            .collect();
        let find = |wanted: &str| {
            mine.iter()
                .find(|line| line["message"] == wanted)
                .unwrap_or_else(|| panic!("no {wanted:?} line for {id} in\n{text}"))
        };
        find("started processing request");
        let logged = find(message);
        assert_eq!(logged["span"]["source"], "stripe", "{logged}");
        let finished = find("finished processing request");
        assert_eq!(finished["status"], status, "{finished}");
        assert_eq!(finished["span"]["outcome"], outcome, "{finished}");
        assert_eq!(finished["span"]["path"], "/webhooks/stripe", "{finished}");
    }
    // No line of the delivery-handling code was logged outside a request span (the
    // listener's connection lines are per connection, not per request).
    let handling = [
        "tower_http::",
        "orgsync::http::webhooks",
        "orgsync::sources::",
    ];
    for line in &lines {
        let target = line["target"].as_str().unwrap_or_default();
        if handling.iter().any(|prefix| target.starts_with(prefix)) {
            let id = line["span"]["request_id"].as_str().unwrap_or_default();
            assert!(ids.iter().any(|known| known == id), "{line}");
        }
    }
}

#[tokio::test]
async fn text_lines_name_the_request_id_too() {
    let (text, ids) = two_deliveries(LogFormat::Text).await;
    let stored = text
        .lines()
        .find(|line| line.contains("delivery stored"))
        .unwrap_or_else(|| panic!("no stored line in\n{text}"));
    for field in [
        format!(
            "request{{method=POST path=/webhooks/stripe request_id={}",
            ids[0]
        ),
        "source=stripe}".to_owned(),
    ] {
        assert!(stored.contains(&field), "{field} not in {stored}");
    }
    let refused = text
        .lines()
        .find(|line| line.contains("delivery refused"))
        .unwrap_or_else(|| panic!("no refused line in\n{text}"));
    let field = format!("request_id={} source=stripe}}", ids[1]);
    assert!(refused.contains(&field), "{field} not in {refused}");
    let finished = text
        .lines()
        .find(|line| line.contains("finished processing request") && line.contains(&ids[1]))
        .unwrap_or_else(|| panic!("no finished line in\n{text}"));
    assert!(finished.contains("outcome=refused}"), "{finished}");
}
