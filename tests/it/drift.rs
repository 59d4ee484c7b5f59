//! Drift and diff against the live stand-in: a key changed by hand shows as drift and a
//! repair puts it back (never over a newer event); keys orgsync does not own are never
//! touched; a replay diff only reads.

use std::num::NonZeroU32;
use std::time::Duration;

use orgsync::clock::Clock;
use orgsync::drift::{DriftKind, DriftOptions, DriftReport, LiveReader, check, repair};
use orgsync::rules::RuleSet;
use orgsync::scalekit::{ScalekitClient, ScalekitConfig};
use orgsync::store::JobState;
use reqwest::{Method, StatusCode};
use scalekit_standin::{Fault, StandIn};
use serde_json::{Value, json};

use crate::helpers::*;

mod diff;

const TOKEN: &str = "drift-test-token-0123456789abcdef";
const UPDATED: &str = "stripe/event.customer.subscription.updated.json";
const QUANTITY: &str = "stripe/event.customer.subscription.updated.quantity.json";
const TARGET: &str = "org:org_01HZX5K9M3ABCDEF";

/// The default rules.
fn rules() -> RuleSet {
    let text = std::fs::read_to_string(config_path()).unwrap();
    let settings = orgsync::config::Settings::parse(&text).unwrap();
    let names: Vec<&str> = settings.sources.iter().map(|s| s.name.as_str()).collect();
    RuleSet::compile(&settings.rules, &names).unwrap()
}

/// A reader of the stand-in's live objects, as the CLI builds it.
fn reader(standin: &StandIn) -> LiveReader {
    let config = ScalekitConfig {
        environment_url: standin.base_url(),
        client_id: scalekit_standin::CLIENT_ID.into(),
        client_secret: scalekit_standin::CLIENT_SECRET.to_owned().into(),
        request_timeout: Duration::from_secs(5),
        requests_per_second: None,
        max_retry_after: Duration::from_secs(1),
    };
    let client = ScalekitClient::new(config, Clock::system()).unwrap();
    LiveReader::new(client, NonZeroU32::new(50))
}

fn only_target() -> DriftOptions {
    DriftOptions {
        source: None,
        target: Some(TARGET.into()),
        limit: 10,
    }
}

/// A daemon with the admin token, after the subscription event was applied.
async fn app_after(fixtures: &[&str]) -> (TestApp, String) {
    let standin = standin_with_org().await;
    let app = spawn_app_with(TestOptions {
        standin: Some(standin),
        env: vec![("ORGSYNC_ADMIN_TOKEN", TOKEN.into())],
        ..Default::default()
    })
    .await;
    for name in fixtures {
        app.post_stripe(&fixture(name)).await;
    }
    app.drain().await;
    let org = app.standin.organization_by_external_id(ORG).unwrap().id;
    (app, org)
}

fn metadata(app: &TestApp) -> std::collections::BTreeMap<String, String> {
    app.standin
        .organization_by_external_id(ORG)
        .unwrap()
        .metadata
}

/// (key, kind) of every finding of the one target.
fn findings(report: &DriftReport) -> Vec<(String, DriftKind)> {
    report
        .targets
        .iter()
        .flat_map(|t| t.keys.iter().map(|k| (k.key.clone(), k.drift)))
        .collect()
}

/// Requests to Scalekit's API (not the token endpoint) since `from`.
fn api_methods(standin: &StandIn, from: usize) -> Vec<String> {
    standin.requests()[from..]
        .iter()
        .filter(|r| r.path.starts_with("/api/"))
        .map(|r| r.method.clone())
        .collect()
}

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
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_key_changed_by_hand_is_drift_and_repair_puts_it_back_leaving_foreign_keys() {
    let (app, org) = app_after(&[UPDATED]).await;
    let written = metadata(&app);
    assert_eq!(written["plan_type"], "pro_monthly");
    app.standin.edit_organization_metadata(
        &org,
        &[
            ("plan_type", Some("enterprise")),
            ("seats", None),
            ("managed_by", Some("someone")),
            ("crm_account_type", Some("Partner")),
        ],
    );
    let before = app.standin.requests().len();
    let mut reader = reader(&app.standin);
    let report = check(&app.store, &mut reader, &rules(), &only_target(), now_ms())
        .await
        .unwrap();
    assert_eq!(
        api_methods(&app.standin, before),
        vec!["GET"],
        "a check only reads"
    );
    assert_eq!(
        findings(&report),
        vec![
            ("crm_account_type".to_owned(), DriftKind::NeverWritten),
            ("plan_type".to_owned(), DriftKind::Changed),
            ("seats".to_owned(), DriftKind::Absent),
        ],
        "managed_by is no rule's key: never reported"
    );
    let plan = &report.targets[0].keys[1];
    assert_eq!(
        (plan.written.as_deref(), plan.live.as_deref()),
        (Some("pro_monthly"), Some("enterprise"))
    );
    assert_eq!(report.drifted_keys, 3);

    let summary = repair(&app.store, &report, now_ms()).await.unwrap();
    assert_eq!((summary.jobs, summary.keys), (1, 2));
    app.drain().await;
    let repaired = metadata(&app);
    assert_eq!(repaired["plan_type"], "pro_monthly");
    assert_eq!(repaired["seats"], written["seats"]);
    assert_eq!(
        repaired["managed_by"], "someone",
        "a foreign key is kept as edited"
    );
    assert_eq!(
        repaired["crm_account_type"], "Partner",
        "never written: not touched"
    );
    assert!(app.jobs(Some(JobState::Dead)).await.is_empty());

    let again = check(&app.store, &mut reader, &rules(), &only_target(), now_ms())
        .await
        .unwrap();
    assert_eq!(
        findings(&again),
        vec![("crm_account_type".to_owned(), DriftKind::NeverWritten)]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_repair_never_overrides_a_newer_event() {
    let (app, org) = app_after(&[UPDATED]).await;
    assert_eq!(metadata(&app)["seats"], "5");
    app.standin
        .edit_organization_metadata(&org, &[("seats", Some("99")), ("plan_type", Some("x_y"))]);
    let report = check(
        &app.store,
        &mut reader(&app.standin),
        &rules(),
        &only_target(),
        now_ms(),
    )
    .await
    .unwrap();
    assert_eq!(report.drifted_keys, 2);
    // A newer event (seats 8) arrives before the repair runs.
    app.post_stripe(&fixture(QUANTITY)).await;
    repair(&app.store, &report, now_ms()).await.unwrap();
    app.drain().await;
    let after = metadata(&app);
    assert_eq!(after["seats"], "8", "the newer event wins over the repair");
    assert_eq!(
        after["plan_type"], "pro_monthly",
        "the repaired key is back"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_admin_api_checks_and_repairs_drift() {
    let (app, org) = app_after(&[UPDATED]).await;
    app.standin
        .edit_organization_metadata(&org, &[("subscription_status", Some("canceled"))]);
    let path = format!("/admin/drift?target={TARGET}");
    let (status, report) = admin(&app, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["drifted_keys"], 1);
    let key = &report["targets"][0]["keys"][0];
    assert_eq!(
        (
            key["key"].clone(),
            key["drift"].clone(),
            key["written"].clone(),
            key["live"].clone()
        ),
        (
            json!("subscription_status"),
            json!("changed"),
            json!("active"),
            json!("canceled")
        )
    );
    let (status, bad) = admin(&app, Method::GET, "/admin/drift?target=nope", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");

    let (status, answer) = admin(
        &app,
        Method::POST,
        &format!("/admin/drift/repair?target={TARGET}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["repair"]["jobs"], 1);
    app.drain().await;
    assert_eq!(metadata(&app)["subscription_status"], "active");
    app.stop().await;
}

#[tokio::test]
async fn a_rate_limited_read_is_waited_out() {
    let (app, org) = app_after(&[UPDATED]).await;
    app.standin
        .edit_organization_metadata(&org, &[("seats", Some("6"))]);
    app.standin.fail_next(
        2,
        Fault::RateLimited {
            retry_after_secs: Some(0),
        },
    );
    let report = check(
        &app.store,
        &mut reader(&app.standin),
        &rules(),
        &only_target(),
        now_ms(),
    )
    .await
    .unwrap();
    assert!(report.targets[0].error.is_none(), "{report:?}");
    assert_eq!(
        findings(&report),
        vec![("seats".to_owned(), DriftKind::Changed)]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_users_metadata_changed_by_hand_is_drift_too() {
    use crate::salesforce::soap::*;
    let (app, _) = app_after(&[]).await;
    assert_ack(&post_soap(&app, fixture(ACCOUNT_FIXTURE), None).await);
    let contact = notification(
        "04l5g00000H0001",
        "Contact",
        &[
            ("AccountId", Some(ACCOUNT)),
            ("Department", Some("Engineering")),
            ("Email", Some("ada@acme.example")),
            ("Id", Some("0035g00000Kt7YpAAJ")),
            ("SystemModstamp", Some("2026-01-21T10:00:00.000Z")),
            ("Title", Some("CTO")),
        ],
    );
    assert_ack(&post_soap(&app, message(SF_ORG, &[contact]), None).await);
    app.drain_until(Duration::from_secs(30), || {
        app.standin
            .user_by_external_id("0035g00000Kt7YpAAJ")
            .is_some()
    })
    .await;
    let user = app
        .standin
        .user_by_external_id("0035g00000Kt7YpAAJ")
        .unwrap();
    app.standin.set_user_metadata(
        &user.id,
        &[("title", "Intern"), ("department", "Engineering")],
    );
    let options = DriftOptions {
        source: Some("salesforce".into()),
        target: None,
        limit: 10,
    };
    let report = check(
        &app.store,
        &mut reader(&app.standin),
        &rules(),
        &options,
        now_ms(),
    )
    .await
    .unwrap();
    let user_drift: Vec<_> = report
        .targets
        .iter()
        .filter(|t| t.target == "user:0035g00000Kt7YpAAJ")
        .flat_map(|t| {
            t.keys
                .iter()
                .map(|k| (k.key.as_str(), k.drift, k.written.as_deref()))
        })
        .collect();
    assert_eq!(user_drift, vec![("title", DriftKind::Changed, Some("CTO"))]);
    repair(&app.store, &report, now_ms()).await.unwrap();
    app.drain().await;
    let after = app.standin.user(&user.id).unwrap().metadata;
    assert_eq!(after["title"], "CTO");
    app.stop().await;
}
