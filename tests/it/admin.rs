//! The admin API: off without a token, guarded by it, and each endpoint on real data.

use orgsync::store::JobState;
use reqwest::{Method, StatusCode};
use scalekit_standin::{Fault, StandIn};
use serde_json::{Value, json};

use crate::helpers::*;

const TOKEN: &str = "admin-test-token-0123456789abcdef";
const SUBSCRIPTION: &str = "stripe/event.customer.subscription.updated.json";

/// A daemon with the admin token and a stand-in holding the fixtures' organization.
async fn admin_app() -> TestApp {
    let standin = StandIn::start().await.unwrap();
    standin.create_organization("Acme Corp", Some(ORG), &[]);
    spawn_app_with(TestOptions {
        standin: Some(standin),
        env: vec![("ORGSYNC_ADMIN_TOKEN", TOKEN.into())],
        ..Default::default()
    })
    .await
}

/// Sends an authorised admin request; returns the status and the JSON body.
async fn admin(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.http.request(method, app.url(path)).bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the daemon answers");
    let status = response.status();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, json)
}

async fn get(app: &TestApp, path: &str) -> (StatusCode, Value) {
    admin(app, Method::GET, path, None).await
}

async fn post(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    admin(app, Method::POST, path, Some(body)).await
}

fn error(body: &Value) -> &str {
    body["error"].as_str().expect("an error message")
}

fn plan_type(app: &TestApp) -> Option<String> {
    app.standin
        .organization_by_external_id(ORG)
        .unwrap()
        .metadata
        .get("plan_type")
        .cloned()
}

const ROUTES: [(&str, &str); 7] = [
    ("GET", "/admin/events"),
    ("GET", "/admin/events/1"),
    ("GET", "/admin/jobs"),
    ("GET", "/admin/jobs/counts"),
    ("POST", "/admin/jobs/1/retry"),
    ("POST", "/admin/jobs/retry-dead"),
    ("POST", "/admin/replay"),
];

#[tokio::test]
async fn without_the_token_the_admin_routes_do_not_exist() {
    let app = spawn_app().await;
    for (method, path) in ROUTES {
        let response = app
            .http
            .request(method.parse().unwrap(), app.url(path))
            .bearer_auth(TOKEN)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_refused_on_every_route() {
    let app = admin_app().await;
    for (method, path) in ROUTES {
        let request = || {
            app.http
                .request(method.parse().unwrap(), app.url(path))
                .json(&json!({}))
        };
        let missing = request().send().await.unwrap();
        assert_eq!(
            missing.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
        assert_eq!(missing.headers()["www-authenticate"], "Bearer");
        let body: Value = missing.json().await.unwrap();
        assert!(error(&body).contains("Authorization: Bearer"), "{body}");
        let wrong = request().bearer_auth("not-the-token").send().await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        let body: Value = wrong.json().await.unwrap();
        assert!(error(&body).starts_with("wrong admin token"), "{body}");
        assert!(
            !body.to_string().contains(TOKEN),
            "the token is never echoed"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn events_are_listed_filtered_and_shown_with_their_payload() {
    let app = admin_app().await;
    app.post_stripe(&fixture(SUBSCRIPTION)).await;
    app.post_stripe(&fixture("stripe/event.customer.created.json"))
        .await;

    let (status, events) = get(&app, "/admin/events?source=stripe").await;
    assert_eq!(status, StatusCode::OK);
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert!(
        events[0]["id"].as_i64() > events[1]["id"].as_i64(),
        "newest first"
    );
    assert!(
        events[0].get("payload").is_none(),
        "lists leave payloads out"
    );
    let (_, one) = get(&app, "/admin/events?limit=1").await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    let (_, none) = get(&app, "/admin/events?source=salesforce").await;
    assert_eq!(none, json!([]));

    let id = events[1]["id"].as_i64().unwrap();
    let (status, event) = get(&app, &format!("/admin/events/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(event["event_type"], "customer.subscription.updated");
    assert_eq!(event["status"], "accepted");
    assert_eq!(event["payload"]["type"], "customer.subscription.updated");
    assert!(
        event["raw_body"]
            .as_str()
            .unwrap()
            .contains("customer.subscription.updated")
    );

    let (status, body) = get(&app, "/admin/events/9999").await;
    assert_eq!(
        (status, error(&body)),
        (StatusCode::NOT_FOUND, "no event with id 9999")
    );
    let (status, body) = get(&app, "/admin/events/abc").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = get(&app, "/admin/events?status=done").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error(&body).contains("accepted, ignored or rejected"),
        "{body}"
    );
    let (status, body) = get(&app, "/admin/events?limit=5000").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error(&body).contains("1 to 1000"), "{body}");
    let (status, body) = get(&app, "/admin/events?sauce=stripe").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error(&body).contains("sauce"), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn dead_jobs_are_listed_counted_and_retried_through_the_api() {
    let app = admin_app().await;
    app.standin.fail_next(1, Fault::Status(403));
    app.post_stripe(&fixture(SUBSCRIPTION)).await;
    app.drain().await;

    let (status, dead) = get(&app, "/admin/jobs?state=dead").await;
    assert_eq!(status, StatusCode::OK);
    let dead = dead.as_array().unwrap().clone();
    assert!(!dead.is_empty());
    assert!(
        dead[0]["last_error"].as_str().unwrap().contains("403"),
        "{dead:?}"
    );
    let (_, counts) = get(&app, "/admin/jobs/counts").await;
    assert_eq!(counts["dead"], dead.len());
    assert_eq!(counts["pending"], 0);
    let (status, body) = get(&app, "/admin/jobs?state=failed").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error(&body).contains("pending, running, done, skipped or dead"),
        "{body}"
    );

    let id = dead[0]["id"].as_i64().unwrap();
    let (status, body) = post(&app, &format!("/admin/jobs/{id}/retry"), json!({})).await;
    assert_eq!((status, &body), (StatusCode::OK, &json!({ "retried": id })));
    let (status, body) = post(&app, &format!("/admin/jobs/{id}/retry"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        error(&body).contains("is pending; only dead or skipped"),
        "{body}"
    );
    let (status, body) = post(&app, "/admin/jobs/9999/retry", json!({})).await;
    assert_eq!(
        (status, error(&body)),
        (StatusCode::NOT_FOUND, "no job with id 9999")
    );
    let (_, rest) = post(&app, "/admin/jobs/retry-dead", json!({})).await;
    assert_eq!(rest["retried"], dead.len() - 1);
    app.drain().await;
    assert_eq!(plan_type(&app).as_deref(), Some("pro_monthly"));
    let (_, counts) = get(&app, "/admin/jobs/counts").await;
    assert_eq!(
        (counts["dead"].as_i64(), counts["pending"].as_i64()),
        (Some(0), Some(0))
    );

    // A second failure, retried in bulk.
    app.standin.fail_next(1, Fault::Status(403));
    app.post_stripe(&fixture(
        "stripe/event.customer.subscription.updated.quantity.json",
    ))
    .await;
    app.drain().await;
    let dead = app.jobs(Some(JobState::Dead)).await.len();
    assert!(dead > 0);
    let (status, body) = post(&app, "/admin/jobs/retry-dead", json!({})).await;
    assert_eq!(
        (status, &body),
        (StatusCode::OK, &json!({ "retried": dead }))
    );
    app.drain().await;
    assert!(app.jobs(Some(JobState::Dead)).await.is_empty());
    let (_, done) = get(&app, "/admin/jobs?state=done&limit=1000").await;
    assert!(!done.as_array().unwrap().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_replay_dry_runs_then_runs_through_the_api() {
    let app = admin_app().await;
    app.post_stripe(&fixture(SUBSCRIPTION)).await;
    app.drain().await;
    assert_eq!(plan_type(&app).as_deref(), Some("pro_monthly"));
    let (_, events) = get(&app, "/admin/events").await;
    let event_id = events[0]["id"].as_i64().unwrap();

    let (status, dry) = post(
        &app,
        "/admin/replay",
        json!({ "source": "stripe", "since": "2000-01-01T00:00:00Z", "dry_run": true }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(
        (dry["dry_run"].as_bool(), dry["events"].as_u64()),
        (Some(true), Some(1))
    );
    assert_eq!(dry["matched"], 1);
    let outcome = &dry["outcomes"][0];
    assert_eq!(outcome["event_id"], event_id);
    assert_eq!(outcome["event_type"], "customer.subscription.updated");
    assert!(
        outcome["provider_event_id"]
            .as_str()
            .unwrap()
            .starts_with("evt_")
    );
    assert_eq!(outcome["outcome"]["outcome"], "matched");
    assert!(!outcome["outcome"]["changes"].as_array().unwrap().is_empty());
    assert!(
        app.jobs(Some(JobState::Pending)).await.is_empty(),
        "a dry run stores nothing"
    );

    let (status, run) = post(&app, "/admin/replay", json!({ "ids": [event_id] })).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(
        (run["dry_run"].as_bool(), run["events"].as_u64()),
        (Some(false), Some(1))
    );
    assert!(run.get("outcomes").is_none());
    let jobs = run["jobs"].as_u64().unwrap();
    assert!(jobs > 0);
    assert_eq!(app.jobs(Some(JobState::Pending)).await.len() as u64, jobs);
    app.drain().await;
    assert!(app.jobs(Some(JobState::Pending)).await.is_empty());
    assert_eq!(plan_type(&app).as_deref(), Some("pro_monthly"));

    let (_, nothing) = post(
        &app,
        "/admin/replay",
        json!({ "until": "2000-01-01T00:00:00Z" }),
    )
    .await;
    assert_eq!(nothing["events"], 0);
    app.stop().await;
}

#[tokio::test]
async fn a_bad_replay_request_says_what_is_wrong() {
    let app = admin_app().await;
    let (status, body) = post(&app, "/admin/replay", json!({ "dryrun": true })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error(&body).contains("unknown field `dryrun`"), "{body}");
    let (status, body) = post(&app, "/admin/replay", json!({ "since": "last tuesday" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error(&body).starts_with("since:"), "{body}");
    assert!(error(&body).contains("RFC 3339"), "{body}");
    let response = app
        .http
        .post(app.url("/admin/replay"))
        .bearer_auth(TOKEN)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(error(&body).contains("Content-Type"), "{body}");
    app.stop().await;
}
