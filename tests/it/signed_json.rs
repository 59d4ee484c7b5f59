//! The generic JSON sources (`hmac`, `standard_webhooks`) through the same rules engine:
//! verification, deduplication, organizations created on missing (and a duplicate on
//! create reconciled), and rules that change an organization's or a user's external id.
//! The organization scenarios are in `signed_json/organizations.rs`.

use orgsync::clock::ManualClock;
use orgsync::sources::SignatureEncoding;
use orgsync::sources::hmac::hmac_signature;
use orgsync::sources::standard_webhooks_signature;
use scalekit_standin::StandIn;
use serde_json::{Value, json};

use crate::helpers::*;

mod organizations;

const CRM_SECRET: &str = "crm-shared-secret-0123456789abcdef";
const APEX_SECRET: &str = "apex-secret";
/// The Standard Webhooks spec's published test secret.
const HOOKS_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Three extra sources and their rules, appended to the default config.
const EXTRA: &str = r#"
[[sources]]
name = "crm"
kind = "hmac"
secret_env = "CRM_HMAC_SECRET"
header = "X-Signature"
encoding = "base64"
prefix = "sha256="
id_path = "$.id"
occurred_at_path = "$.occurred_at"
timestamp_header = "X-Timestamp"
timestamp_unit = "milliseconds"

[[sources]]
name = "apex"
kind = "hmac"
secret_env = "APEX_HMAC_SECRET"
header = "X-Apex-Signature"
type_path = "$.event"

[[sources]]
name = "hooks"
kind = "standard_webhooks"
secret_env = "HOOKS_SECRET"
occurred_at_path = "$.timestamp"

[[rules]]
name = "crm account → organization"
source = "crm"
events = ["account.updated"]
target = "organization"
external_id = ["$.data.org_id"]
on_missing = "create"
new_external_id = "$.data.new_org_id"
[rules.create]
display_name = "$.data.name"
[rules.set]
crm_account_type = "$.data.tier"

[[rules]]
name = "apex account → organization"
source = "apex"
events = ["account.*"]
target = "organization"
external_id = "$.org"
[rules.set]
crm_account_id = "$.account"

[[rules]]
name = "hooks user → user"
source = "hooks"
events = ["user.updated"]
target = "user"
external_id = ["$.data.user_id"]
new_external_id = "$.data.new_user_id"
[rules.set]
title = "$.data.title"
"#;

async fn spawn(standin: StandIn) -> TestApp {
    let env = vec![
        ("CRM_HMAC_SECRET", CRM_SECRET.to_owned()),
        ("APEX_HMAC_SECRET", APEX_SECRET.to_owned()),
        ("HOOKS_SECRET", HOOKS_SECRET.to_owned()),
    ];
    spawn_app_with(TestOptions {
        standin: Some(standin),
        env,
        extra_config: Some(EXTRA.into()),
        clock: Some(ManualClock::at_system_now()), // retries come when drain_until moves it
        ..Default::default()
    })
    .await
}

/// POSTs `body` to `/webhooks/{source}` with `headers`; returns the status and JSON answer.
async fn post(
    app: &TestApp,
    source: &str,
    body: &[u8],
    headers: &[(&str, String)],
) -> (u16, Value) {
    let mut request = app
        .http
        .post(app.url(&format!("/webhooks/{source}")))
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request
        .body(body.to_vec())
        .send()
        .await
        .expect("the daemon answers");
    (response.status().as_u16(), response.json().await.unwrap())
}

/// The `crm` source's headers for `body`, signed at `ms` with `secret`.
fn crm_headers(secret: &str, ms: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    let signature = hmac_signature(
        secret,
        Some(&ms.to_string()),
        body,
        SignatureEncoding::Base64,
    );
    vec![
        ("x-timestamp", ms.to_string()),
        ("x-signature", format!("sha256={signature}")),
    ]
}

fn crm_event(id: &str, occurred_at: i64, data: Value) -> Vec<u8> {
    json!({ "id": id, "type": "account.updated", "occurred_at": occurred_at, "data": data })
        .to_string()
        .into_bytes()
}

async fn post_crm(app: &TestApp, body: &[u8]) -> (u16, Value) {
    post(app, "crm", body, &crm_headers(CRM_SECRET, now_ms(), body)).await
}

fn assert_accepted((status, answer): &(u16, Value), accepted: u64, duplicates: u64) {
    assert_eq!(*status, 200, "{answer}");
    assert_eq!(
        (answer["accepted"].as_u64(), answer["duplicates"].as_u64()),
        (Some(accepted), Some(duplicates)),
        "{answer}"
    );
}

fn assert_refused((status, answer): &(u16, Value), kind: &str) {
    assert_eq!(*status, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap_or_default().contains(kind),
        "{kind}: {answer}"
    );
}

fn org_metadata(app: &TestApp, external_id: &str) -> std::collections::BTreeMap<String, String> {
    app.standin
        .organization_by_external_id(external_id)
        .expect("the organization exists")
        .metadata
}

#[tokio::test]
async fn hmac_deliveries_are_verified_deduplicated_and_applied() {
    let standin = StandIn::start().await.unwrap();
    standin.create_organization("Acme", Some("org_crm_1"), &[("managed_by", "dashboard")]);
    let app = spawn(standin).await;
    let body = crm_event(
        "evt_1",
        1_768_986_764,
        json!({ "org_id": "org_crm_1", "tier": "gold" }),
    );
    let now = now_ms();
    let mut unprefixed = crm_headers(CRM_SECRET, now, &body);
    unprefixed[1].1 = unprefixed[1].1.replacen("sha256=", "", 1);
    let mut tampered = body.clone();
    tampered[12] ^= 1;
    let refusals = [
        (
            body.clone(),
            crm_headers("another-secret", now, &body),
            "NoMatchingSignature",
        ),
        (
            body.clone(),
            crm_headers(CRM_SECRET, now - 400_000, &body),
            "TimestampTooOld",
        ),
        (
            body.clone(),
            crm_headers(CRM_SECRET, now, &body)[1..].to_vec(),
            "MissingHeader",
        ),
        (body.clone(), unprefixed, "MalformedHeader"),
        (
            tampered,
            crm_headers(CRM_SECRET, now, &body),
            "NoMatchingSignature",
        ),
    ];
    for (payload, headers, kind) in refusals {
        assert_refused(&post(&app, "crm", &payload, &headers).await, kind);
    }
    assert!(app.jobs(None).await.is_empty());

    assert_accepted(&post_crm(&app, &body).await, 1, 0);
    assert_accepted(&post_crm(&app, &body).await, 0, 1);
    app.drain().await;
    let want = [("crm_account_type", "gold"), ("managed_by", "dashboard")];
    assert_eq!(
        org_metadata(&app, "org_crm_1"),
        want.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    );
    let calls = app.standin.requests().len();
    assert_accepted(&post_crm(&app, &body).await, 0, 1);
    assert!(app.drain().await.is_empty());
    assert_eq!(
        app.standin.requests().len(),
        calls,
        "a redelivery is not applied again"
    );

    // Hex, no timestamp header, the body hash as id: Apex's simplest callout.
    let apex = br#"{"event":"account.synced","org":"org_crm_1","account":"0015g00000XyZabAAF"}"#;
    let hex = hmac_signature(APEX_SECRET, None, apex, SignatureEncoding::Hex);
    assert_refused(
        &post(
            &app,
            "apex",
            apex,
            &[("x-apex-signature", hex.replace('a', "b"))],
        )
        .await,
        "Signature",
    );
    assert_accepted(
        &post(
            &app,
            "apex",
            apex,
            &[("x-apex-signature", hex.to_uppercase())],
        )
        .await,
        1,
        0,
    );
    app.drain().await;
    assert_eq!(
        org_metadata(&app, "org_crm_1")["crm_account_id"],
        "0015g00000XyZabAAF"
    );
    no_dead_or_pending(&app).await;
    app.stop().await;
}

/// Standard Webhooks headers for `body` with message id `id`, signed now (or with `secret`).
fn hooks_headers(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let signature =
        standard_webhooks_signature(secret, id, timestamp, body).expect("a whsec_ secret");
    vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ]
}

fn user_event(data: Value, timestamp: &str) -> Vec<u8> {
    json!({ "type": "user.updated", "timestamp": timestamp, "data": data })
        .to_string()
        .into_bytes()
}

#[tokio::test]
async fn standard_webhooks_deliveries_update_and_rename_users() {
    let standin = StandIn::start().await.unwrap();
    let org = standin.create_organization("Acme", Some("org_sw"), &[]);
    let user = standin.create_user(&org, "grace@acme.example", Some("crm-user-1"));
    standin.set_user_metadata(&user, &[("department", "Navy")]);
    let app = spawn(standin).await;
    let now = now_ms() / 1000;
    let body = user_event(
        json!({ "user_id": "crm-user-1", "title": "Rear Admiral" }),
        "2026-01-21T09:12:44Z",
    );
    let other_secret = "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB";
    assert_refused(
        &post(
            &app,
            "hooks",
            &body,
            &hooks_headers(other_secret, "msg_1", now, &body),
        )
        .await,
        "NoMatchingSignature",
    );
    assert_refused(
        &post(
            &app,
            "hooks",
            &body,
            &hooks_headers(HOOKS_SECRET, "msg_1", now - 600, &body),
        )
        .await,
        "Timestamp",
    );
    let mut no_v1 = hooks_headers(HOOKS_SECRET, "msg_1", now, &body);
    no_v1[2].1 = no_v1[2].1.replacen("v1,", "v1a,", 1);
    assert_refused(&post(&app, "hooks", &body, &no_v1).await, "NoV1Signature");
    assert!(app.jobs(None).await.is_empty());

    let headers = hooks_headers(HOOKS_SECRET, "msg_1", now, &body);
    assert_accepted(&post(&app, "hooks", &body, &headers).await, 1, 0);
    // The same webhook-id again (even re-signed later) is a duplicate.
    assert_accepted(
        &post(
            &app,
            "hooks",
            &body,
            &hooks_headers(HOOKS_SECRET, "msg_1", now + 1, &body),
        )
        .await,
        0,
        1,
    );
    app.drain().await;
    let snapshot = app.standin.user(&user).unwrap();
    assert_eq!(snapshot.metadata["title"], "Rear Admiral");
    assert_eq!(snapshot.metadata["department"], "Navy");

    // svix-* headers work too; this one moves the user to a new external id.
    let rename = user_event(
        json!({ "user_id": "crm-user-1", "new_user_id": "crm-user-42", "title": "Admiral" }),
        "2026-01-22T00:00:00Z",
    );
    let svix: Vec<(&str, String)> = hooks_headers(HOOKS_SECRET, "msg_2", now, &rename)
        .into_iter()
        .map(|(name, value)| (name.replacen("webhook-", "svix-", 1).leak() as &str, value))
        .collect();
    assert_accepted(&post(&app, "hooks", &rename, &svix).await, 1, 0);
    app.drain().await;
    let snapshot = app.standin.user(&user).unwrap();
    assert_eq!(snapshot.external_id.as_deref(), Some("crm-user-42"));
    assert_eq!(snapshot.metadata["title"], "Admiral");
    assert!(app.standin.user_by_external_id("crm-user-1").is_none());
    let patch = app
        .standin
        .requests()
        .into_iter()
        .rfind(|r| r.method == "PATCH")
        .unwrap();
    assert_eq!(patch.path, format!("/api/v1/users/{user}"));
    assert_eq!(patch.body.unwrap()["external_id"], "crm-user-42");
    no_dead_or_pending(&app).await;
    app.stop().await;
}
