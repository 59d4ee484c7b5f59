//! Stripe deliveries over real HTTP: verification, storage, duplicates, limits.

use orgsync::sources::stripe_signature_header;
use orgsync::store::EventStatus;
use serde_json::Value;

use crate::helpers::*;

async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn every_fixture_is_acknowledged_and_stored_once() {
    let app = spawn_app().await;
    for name in stripe_fixtures() {
        let response = app.post_stripe(&fixture(&format!("stripe/{name}"))).await;
        assert_eq!(response.status(), 200, "{name}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["received"], true);
        assert_eq!(body["accepted"], 1, "{name}");
    }
    let stored = events(&app).await;
    assert_eq!(stored.len(), stripe_fixtures().len());
    // The exact bytes are kept with each event.
    let first = app.store.event(stored[0].id).await.unwrap().unwrap();
    let body = String::from_utf8(fixture(&format!("stripe/{}", stripe_fixtures()[0]))).unwrap();
    assert_eq!(first.raw_body.as_deref(), Some(body.as_str()));
    app.stop().await;
}

#[tokio::test]
async fn bad_signatures_are_refused_with_their_reason_and_nothing_is_stored() {
    let app = spawn_app().await;
    let body = fixture("stripe/event.customer.created.json");
    let now = now_ms() / 1000;
    let cases = [
        (
            stripe_signature_header("whsec_other", now, &body),
            "NoMatchingSignature",
        ),
        (
            stripe_signature_header(STRIPE_SECRET, now - 301, &body),
            "TimestampTooOld",
        ),
        (
            stripe_signature_header(STRIPE_SECRET, now + 120, &body),
            "TimestampInFuture",
        ),
        (format!("t={now},v0=abc"), "NoV1Signature"),
        ("v1=abc".to_owned(), "MalformedHeader"),
        (String::new(), "MissingHeader"),
    ];
    for (header, kind) in cases {
        let (status, error) = error_of(app.post_stripe_with(&body, &header).await).await;
        assert_eq!(status, 400, "{kind}");
        assert!(error.contains(kind), "{kind}: {error}");
    }
    // The exact manifest header, at today's clock, is authentic but far too old.
    let manifest: Value = serde_json::from_slice(&fixture("stripe/signatures.json")).unwrap();
    let header = manifest["files"][0]["stripe_signature"].as_str().unwrap();
    let (_, error) = error_of(
        app.post_stripe_with(&fixture("stripe/event.customer.created.json"), header)
            .await,
    )
    .await;
    assert!(error.contains("TimestampTooOld"), "{error}");
    // A body changed after signing.
    let signed = stripe_signature_header(STRIPE_SECRET, now, &body);
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    let (_, error) = error_of(app.post_stripe_with(&tampered, &signed).await).await;
    assert!(error.contains("NoMatchingSignature"), "{error}");
    assert!(events(&app).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn rotated_secrets_are_all_accepted() {
    let app = spawn_app_with(TestOptions {
        env: vec![
            ("STRIPE_WEBHOOK_SECRET", "whsec_old_one".into()),
            ("STRIPE_WEBHOOK_SECRET_PREVIOUS", STRIPE_SECRET.into()),
        ],
        ..Default::default()
    })
    .await;
    let now = now_ms() / 1000;
    for (secret, name) in [
        ("whsec_old_one", "customer.created"),
        (STRIPE_SECRET, "customer.updated"),
    ] {
        let body = fixture(&format!("stripe/event.{name}.json"));
        let response = app
            .post_stripe_with(&body, &stripe_signature_header(secret, now, &body))
            .await;
        assert_eq!(response.status(), 200);
    }
    app.stop().await;
}

#[tokio::test]
async fn thin_events_oversized_bodies_and_unknown_sources_are_refused() {
    let app = spawn_app().await;
    let (status, error) = error_of(
        app.post_stripe(&fixture(
            "stripe/thin_event.v1.billing.meter.error_report_triggered.json",
        ))
        .await,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        error.contains("ThinEvent") && error.contains("snapshot"),
        "{error}"
    );

    let mut big = br#"{"id":"evt_big","object":"event","type":"customer.updated","created":1,"data":{"object":{"pad":""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 1024 * 1024));
    big.extend(br#""}}}"#);
    assert_eq!(app.post_stripe(&big).await.status(), 413);

    let response = app
        .http
        .post(app.url("/webhooks/nope"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.text().await.unwrap(),
        "",
        "a bare 404: nothing tells which sources exist"
    );

    let body = b"{not json".to_vec();
    let (status, error) = error_of(app.post_stripe(&body).await).await;
    assert_eq!(status, 400);
    assert!(!error.is_empty());
    assert!(events(&app).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn the_same_event_on_many_connections_at_once_is_stored_once() {
    let app = spawn_app().await;
    let body = fixture("stripe/event.customer.subscription.updated.json");
    let signature = stripe_signature_header(STRIPE_SECRET, now_ms() / 1000, &body);
    let sends = (0..16).map(|_| {
        app.http
            .post(app.url("/webhooks/stripe"))
            .header("stripe-signature", &signature)
            .body(body.clone())
            .send()
    });
    let responses = futures_join_all(sends).await;
    let mut accepted = 0;
    for response in responses {
        let response = response.unwrap();
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        accepted += answer["accepted"].as_u64().unwrap();
    }
    assert_eq!(accepted, 1);
    let stored = events(&app).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].duplicates, 15);
    assert_eq!(app.jobs(None).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn without_scalekit_credentials_events_are_stored_and_readyz_says_why() {
    let app = spawn_app_with(TestOptions {
        scalekit: false,
        ..Default::default()
    })
    .await;
    assert!(app.worker.is_none());
    let response = app
        .post_stripe(&fixture("stripe/event.customer.created.json"))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(events(&app).await.len(), 1);
    let ready: Value = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    let workers = ready["workers"].as_str().unwrap();
    assert!(
        workers.starts_with("paused") && workers.contains("SCALEKIT_ENVIRONMENT_URL"),
        "{workers}"
    );
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn a_source_without_its_secret_answers_503_so_the_sender_retries() {
    let app = spawn_app_with(TestOptions {
        env: vec![("STRIPE_WEBHOOK_SECRET", UNSET.into())],
        ..Default::default()
    })
    .await;
    let response = app
        .post_stripe(&fixture("stripe/event.customer.created.json"))
        .await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.text().await.unwrap(),
        "",
        "a bare 503: the sender is not told which setting is missing"
    );
    app.stop().await;
}

#[tokio::test]
async fn unmatched_and_incomplete_events_are_acknowledged_and_kept_with_their_status() {
    let app = spawn_app().await;
    let mut event: Value =
        serde_json::from_slice(&fixture("stripe/event.customer.subscription.updated.json"))
            .unwrap();
    event["id"] = "evt_no_target".into();
    event["data"]["object"]["metadata"] = serde_json::json!({});
    event["data"]["object"]["customer"] = Value::Null;
    let response = app.post_stripe(event.to_string().as_bytes()).await;
    assert_eq!(
        response.status(),
        200,
        "retrying cannot help, so it is acknowledged"
    );
    let mut other: Value =
        serde_json::from_slice(&fixture("stripe/event.customer.created.json")).unwrap();
    other["id"] = "evt_unhandled".into();
    other["type"] = "payout.paid".into();
    assert_eq!(
        app.post_stripe(other.to_string().as_bytes()).await.status(),
        200
    );
    let stored = events(&app).await;
    let status_of = |id: &str| {
        stored
            .iter()
            .find(|e| e.provider_event_id == id)
            .map(|e| (e.status, e.reason.clone()))
    };
    let (status, reason) = status_of("evt_no_target").unwrap();
    assert_eq!(status, EventStatus::Rejected);
    assert!(
        reason
            .unwrap()
            .contains("stripe subscription → organization")
    );
    assert_eq!(status_of("evt_unhandled").unwrap().0, EventStatus::Ignored);
    assert!(app.jobs(None).await.is_empty());
    app.stop().await;
}

/// Runs futures concurrently (no extra crate needed for a test).
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = vec![];
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}
