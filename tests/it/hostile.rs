//! Hostile input at the sources: forged dates, unauthenticated Salesforce messages,
//! attribute floods, large bodies, and what a refused sender learns.

use std::time::Duration;

use orgsync::app::App;
use orgsync::config::Settings;
use scalekit_standin::StandIn;

use crate::helpers::*;
use crate::salesforce::soap::*;

/// An admin token for the tests that read the admin API.
const ADMIN: &str = "hostile-admin-token-0123456789abcdef012345";

#[tokio::test]
async fn an_account_from_the_future_does_not_freeze_the_organization() {
    let standin = standin_with_org().await;
    let app = spawn_app_with(TestOptions {
        standin: Some(standin),
        env: vec![("ORGSYNC_ADMIN_TOKEN", ADMIN.into())],
        ..Default::default()
    })
    .await;
    let forged = account("04l5g00000F0001", "Forged", "9999-12-31T23:59:59Z");
    assert_ack(&post_soap(&app, message(SF_ORG, &[forged]), None).await);
    app.drain().await;
    let stored = events(&app).await;
    let first = &stored[0];
    assert!(first.version_capped, "{first:?}");
    assert!(first.occurred_at_ms.unwrap() <= now_ms());
    assert!(first.verification.contains("9999-12-31T23:59:59Z"));

    // A genuine, current update of the same Account is applied.
    let current = account("04l5g00000F0002", "Genuine", &rfc3339(now_ms()));
    assert_ack(&post_soap(&app, message(SF_ORG, &[current]), None).await);
    app.drain().await;
    let org = app.standin.organization_by_external_id(ORG).unwrap();
    assert_eq!(org.metadata["crm_account_type"], "Genuine");
    assert!(!events(&app).await[1].version_capped);

    // The admin API and the metrics show the mark.
    let shown: serde_json::Value = app
        .http
        .get(app.url(&format!("/admin/events/{}", first.id)))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["version_capped"], true, "{shown}");
    let metrics = app.metrics_text().await;
    let capped = r#"orgsync_versions_capped_total{source="salesforce"} 1"#;
    assert!(metrics.lines().any(|l| l == capped), "{metrics}");
    app.stop().await;
}

#[tokio::test]
async fn a_stripe_event_from_the_future_is_capped_too() {
    let app = spawn_app_with_org().await;
    let body = fixture("stripe/event.customer.subscription.updated.json");
    let mut event: serde_json::Value = serde_json::from_slice(&body).unwrap();
    event["created"] = serde_json::json!(253_402_300_799_i64);
    let body = serde_json::to_vec(&event).unwrap();
    assert_eq!(app.post_stripe(&body).await.status(), 200);
    let filter = orgsync::store::EventFilter {
        limit: 10,
        ..Default::default()
    };
    let stored = app.store.list_events(&filter).await.unwrap()[0].clone();
    assert!(stored.version_capped, "{stored:?}");
    assert!(stored.occurred_at_ms.unwrap() <= now_ms());
    app.stop().await;
}

#[tokio::test]
async fn salesforce_without_its_token_answers_503_and_stores_nothing() {
    let app = spawn_app_with(TestOptions {
        env: vec![("SALESFORCE_WEBHOOK_TOKEN", UNSET.into())],
        ..Default::default()
    })
    .await;
    for query in ["", "?token=anything-at-all-0123456789abcdef01"] {
        let response = app
            .http
            .post(app.url(&format!("/webhooks/salesforce{query}")))
            .header("content-type", "text/xml")
            .body(fixture(ACCOUNT_FIXTURE))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 503);
    }
    assert!(events(&app).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_short_salesforce_token_stops_startup_with_the_reason() {
    let standin = StandIn::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = TestOptions {
        env: vec![("SALESFORCE_WEBHOOK_TOKEN", "short-token".into())],
        ..Default::default()
    };
    let env = test_env(dir.path(), &standin, &options);
    let lookup = |name: &str| env.get(name).cloned();
    let settings = Settings::load(&config_path(), &lookup).unwrap();
    let err = App::build(settings, &lookup).await.err().expect("refused");
    let message = err.to_string();
    assert!(message.contains("SALESFORCE_WEBHOOK_TOKEN"), "{message}");
    assert!(message.contains("shorter than 32 characters"), "{message}");
    assert!(!message.contains("short-token"), "{message}");
}

#[tokio::test]
async fn the_explicit_opt_out_accepts_messages_without_a_token() {
    let app = spawn_app_with(TestOptions {
        env: vec![("SALESFORCE_WEBHOOK_TOKEN", UNSET.into())],
        tune: Some(Box::new(|settings: &mut Settings| {
            for source in &mut settings.sources {
                if source.name == "salesforce" {
                    source.insecure_skip_token_check_mtls_at_proxy = Some(true);
                }
            }
        })),
        ..Default::default()
    })
    .await;
    assert_ack(&post_soap(&app, fixture(ACCOUNT_FIXTURE), Some("")).await);
    let stored = events(&app).await;
    assert!(stored[0].verification.contains("url token check off"));
    app.stop().await;
}

/// An Account message whose `sObject` carries `extra` namespace declarations.
fn with_declarations(extra: usize) -> String {
    let declarations: String = (0..extra).map(|i| format!(" xmlns:x{i}=\"u\"")).collect();
    let item = account("04l5g00000G0001", "Attrs", "2026-01-21T09:12:44.000Z").replacen(
        "<om:sObject ",
        &format!("<om:sObject{declarations} "),
        1,
    );
    message(SF_ORG, &[item])
}

#[tokio::test]
async fn attribute_floods_get_a_generic_fault_under_a_request_id() {
    let app = spawn_app_with_org().await;
    // The sObject already has two attributes (i:type, xmlns:o): 30 more is the cap.
    assert_ack(&post_soap(&app, with_declarations(30), None).await);
    for extra in [31, 40_000] {
        let response = app
            .http
            .post(app.url(&format!("/webhooks/salesforce?token={SF_TOKEN}")))
            .header("content-type", "text/xml")
            .body(with_declarations(extra))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 500);
        let request_id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let body = response.text().await.unwrap();
        assert_fault(&(500, body.clone()), "Client", "TooManyAttributes");
        assert!(
            body.contains(&format!("(request id {request_id})")),
            "{body}"
        );
        assert!(!body.contains("attributes"), "no detail: {body}");
    }
    assert_eq!(events(&app).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn large_bodies_are_checked_off_the_runtime_while_probes_are_answered() {
    let app = spawn_app_with_org().await;
    let padding = "p".repeat(200 * 1024);
    let fields = [
        ("Id", Some(ACCOUNT)),
        ("Org_Id__c", Some(ORG)),
        ("Description", Some(padding.as_str())),
    ];
    let large = message(
        SF_ORG,
        &[notification("04l5g00000H0001", "Account", &fields)],
    );
    let hostile = with_declarations(30).replace(
        "<om:ActionId>",
        &format!("<om:Pad>{}</om:Pad><om:ActionId>", "&amp;".repeat(100_000)),
    );
    let sends = [large, hostile.clone(), hostile].map(|body| {
        let (http, url) = (
            app.http.clone(),
            app.url(&format!("/webhooks/salesforce?token={SF_TOKEN}")),
        );
        tokio::spawn(async move {
            http.post(url)
                .header("content-type", "text/xml")
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    });
    let health = app
        .http
        .get(app.url("/healthz"))
        .timeout(Duration::from_secs(30));
    assert_eq!(health.send().await.unwrap().status(), 200);
    let mut statuses = Vec::new();
    for send in sends {
        statuses.push(send.await.unwrap().unwrap());
    }
    assert_eq!(statuses, vec![200, 200, 200]);
    assert_eq!(
        events(&app).await.len(),
        2,
        "the hostile pair is one notification"
    );
    app.stop().await;
}

/// `orgsync check-config` with the default config and `env` only.
fn check_config(env: &[(&str, &str)]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_orgsync"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("check-config")
        .env_clear()
        .env("ORGSYNC_DATABASE_URL", "sqlite::memory:")
        .env("SALESFORCE_ORGANIZATION_ID", "00D5g000004XkQmEAK");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("the binary runs")
}

#[test]
fn check_config_says_what_the_salesforce_token_needs() {
    let unset = check_config(&[]);
    assert!(unset.status.success());
    let stdout = String::from_utf8_lossy(&unset.stdout);
    assert!(
        stdout.contains("SALESFORCE_WEBHOOK_TOKEN is not set") && stdout.contains("503"),
        "{stdout}"
    );
    let short = check_config(&[("SALESFORCE_WEBHOOK_TOKEN", "short")]);
    assert!(!short.status.success());
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert!(stderr.contains("shorter than 32 characters"), "{stderr}");
    let ok = check_config(&[("SALESFORCE_WEBHOOK_TOKEN", SF_TOKEN)]);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(stdout.contains("source \"salesforce\": ok"), "{stdout}");
}

#[tokio::test]
async fn a_link_from_the_future_does_not_freeze_the_alias() {
    let app = spawn_app_with_org().await;
    let with_customer = |id: &str, org: &str, modstamp: &str| {
        let fields = [
            ("Id", Some(ACCOUNT)),
            ("Org_Id__c", Some(org)),
            ("Stripe_Customer_Id__c", Some("cus_hostile")),
            ("SystemModstamp", Some(modstamp)),
        ];
        notification(id, "Account", &fields)
    };
    let forged = with_customer("04l5g00000L0001", "org_attacker", "9999-12-31T23:59:59Z");
    assert_ack(&post_soap(&app, message(SF_ORG, &[forged]), None).await);
    let current = with_customer("04l5g00000L0002", ORG, &rfc3339(now_ms()));
    assert_ack(&post_soap(&app, message(SF_ORG, &[current]), None).await);
    let linked = app
        .store
        .resolve_link(
            orgsync::model::TargetKind::Organization,
            "stripe_customer",
            "cus_hostile",
        )
        .await
        .unwrap();
    assert_eq!(linked.map(|id| id.to_string()), Some(ORG.to_owned()));
    app.stop().await;
}
