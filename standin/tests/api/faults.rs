//! Scripted faults and latency.

use std::time::Duration;

use crate::helpers::{self, Harness};
use scalekit_standin::Fault;
use serde_json::json;

#[tokio::test]
async fn rate_limits_with_and_without_retry_after_then_recovers() {
    let h = Harness::new().await;
    h.standin.create_organization("A", Some("X"), &[]);
    let uri = "/api/v1/organizations:external/X";
    h.standin.fail_next(
        1,
        Fault::RateLimited {
            retry_after_secs: Some(3),
        },
    );
    h.standin.fail_next(
        1,
        Fault::RateLimited {
            retry_after_secs: None,
        },
    );
    let first = h.get(uri).await;
    assert_eq!(first.status, 429);
    assert_eq!(
        first
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("3")
    );
    assert_eq!(first.json["code"], 8);
    assert_eq!(first.json["details"][0]["error_code"], "RATE_LIMITED");
    let second = h.get(uri).await;
    assert_eq!(second.status, 429);
    assert!(second.headers.get("retry-after").is_none());
    assert_eq!(h.get(uri).await.status, 200);
}

#[tokio::test]
async fn plain_text_429_and_status_faults() {
    let h = Harness::new().await;
    let id = h.standin.create_organization("A", Some("X"), &[]);
    h.standin.fail_next(1, Fault::RateLimitedPlainText);
    h.standin.fail_next(2, Fault::Status(503));
    let plain = h.get("/api/v1/organizations:external/X").await;
    assert_eq!((plain.status, plain.json.is_null()), (429, true));
    assert!(
        plain.headers["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/plain")
    );
    let patch = h
        .call(
            "PATCH",
            &format!("/api/v1/organizations/{id}"),
            Some(json!({"metadata": {"plan": "pro"}})),
        )
        .await;
    assert_eq!((patch.status, patch.json["code"].as_u64()), (503, Some(14)));
    assert!(
        h.standin
            .organization(&id)
            .expect("org")
            .metadata
            .is_empty(),
        "faulted call changed nothing"
    );
    assert_eq!(h.get("/api/v1/organizations:external/X").await.status, 503);
    assert_eq!(h.get("/api/v1/organizations:external/X").await.status, 200);
    let statuses: Vec<Option<u16>> = h.standin.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        vec![Some(200), Some(429), Some(503), Some(503), Some(200)]
    );
}

#[tokio::test]
async fn token_endpoint_faults_still_count() {
    let h = Harness::new().await;
    h.standin.fail_next_token_requests(1, Fault::Status(500));
    assert_eq!(
        helpers::token_request(&h.app, &helpers::good_form())
            .await
            .status,
        500
    );
    assert_eq!(
        helpers::token_request(&h.app, &helpers::good_form())
            .await
            .status,
        200
    );
    assert_eq!(h.standin.token_requests(), 3);
}

#[tokio::test]
async fn latency_delays_api_answers_after_the_change_is_made() {
    let h = Harness::new().await;
    let id = h.standin.create_organization("A", Some("X"), &[]);
    // Far longer than any test: an answer that comes at all was not delayed.
    h.standin.set_latency(Duration::from_secs(3600));
    let body = json!({"metadata": {"plan": "pro"}});
    let uri = format!("/api/v1/organizations/{id}");
    let gave_up =
        tokio::time::timeout(Duration::from_millis(30), h.call("PATCH", &uri, Some(body))).await;
    assert!(gave_up.is_err(), "the client timed out");
    let org = h.standin.organization(&id).expect("org");
    assert_eq!(
        org.metadata.get("plan").map(String::as_str),
        Some("pro"),
        "like a lost response"
    );
    let form = helpers::good_form();
    tokio::time::timeout(
        Duration::from_secs(30),
        helpers::token_request(&h.app, &form),
    )
    .await
    .expect("no latency outside /api");
}

#[tokio::test]
async fn held_answers_wait_for_the_release_after_the_change_is_made() {
    let h = Harness::new().await;
    let id = h.standin.create_organization("A", Some("X"), &[]);
    h.standin.hold_answers(true);
    let body = json!({"metadata": {"plan": "pro"}});
    let uri = format!("/api/v1/organizations/{id}");
    let standin = h.standin.clone();
    let patch = tokio::spawn(async move { h.call("PATCH", &uri, Some(body)).await.status });
    let limit = std::time::Instant::now() + Duration::from_secs(30);
    let handled = |r: &scalekit_standin::RecordedRequest| r.method == "PATCH" && r.status.is_some();
    while !standin.requests().iter().any(handled) {
        assert!(
            std::time::Instant::now() < limit,
            "the PATCH was never handled"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let org = standin.organization(&id).expect("org");
    assert_eq!(org.metadata.get("plan").map(String::as_str), Some("pro"));
    assert!(!patch.is_finished(), "the answer was not held");
    standin.hold_answers(false);
    assert_eq!(patch.await.unwrap(), 200);
}

#[tokio::test]
async fn pass_lets_a_call_through_so_a_later_one_fails() {
    let h = Harness::new().await;
    let id = h.standin.create_organization("A", Some("X"), &[]);
    h.standin.fail_next(1, Fault::Pass);
    h.standin.fail_next(1, Fault::Status(400));
    assert_eq!(h.get("/api/v1/organizations:external/X").await.status, 200);
    let body = json!({"metadata": {"plan": "pro"}});
    let refused = h
        .call("PATCH", &format!("/api/v1/organizations/{id}"), Some(body))
        .await;
    assert_eq!(
        (refused.status, refused.json["code"].as_u64()),
        (400, Some(3))
    );
    assert_eq!(h.get("/api/v1/organizations:external/X").await.status, 200);
}

#[tokio::test]
async fn lost_answers_apply_the_write_then_answer_504_and_are_counted() {
    let h = Harness::new().await;
    let id = h
        .standin
        .create_organization("A", Some("X"), &[("plan", "free")]);
    h.standin.lose_next_answers(1);
    // A read passes untouched and does not use up the switch.
    assert_eq!(h.get("/api/v1/organizations:external/X").await.status, 200);
    // A write that is refused was not applied: its answer is not lost either.
    let uri = format!("/api/v1/organizations/{id}");
    let refused = h.call("PATCH", &uri, Some(json!({"bogus": 1}))).await;
    assert_eq!(refused.status, 400);
    assert_eq!(h.standin.lost_answers(), 0);
    let body = json!({"metadata": {"plan": "pro"}});
    let lost = h.call("PATCH", &uri, Some(body.clone())).await;
    assert_eq!(lost.status, 504);
    assert_eq!(lost.json["code"], 4);
    assert_eq!(lost.json["details"][0]["error_code"], "DEADLINE_EXCEEDED");
    assert_eq!(h.standin.organization(&id).unwrap().metadata["plan"], "pro");
    assert_eq!(h.standin.lost_answers(), 1);
    let log = h.standin.requests();
    let flags: Vec<(u16, bool)> = log
        .iter()
        .filter(|r| r.path.starts_with("/api/"))
        .map(|r| (r.status.unwrap(), r.lost))
        .collect();
    assert_eq!(flags, [(200, false), (400, false), (504, true)]);
    // Only as many as scripted: the next write is answered.
    assert_eq!(h.call("PATCH", &uri, Some(body)).await.status, 200);
    assert_eq!(h.standin.lost_answers(), 1);
}
