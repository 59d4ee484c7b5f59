//! The token endpoint and the bearer check.

use crate::helpers::{self, Harness, send, token_request};
use scalekit_standin::{CLIENT_ID, CLIENT_SECRET, StandIn};
use serde_json::json;

#[tokio::test]
async fn token_flow_issues_bearer_tokens_and_counts_requests() {
    let standin = StandIn::new();
    let app = standin.router();
    let answer = token_request(&app, &helpers::good_form()).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json["token_type"], "Bearer");
    assert_eq!(answer.json["expires_in"], 86399);
    let token = answer.json["access_token"].as_str().expect("token");
    assert!(!token.is_empty());
    let org = standin.create_organization("A", None, &[]);
    let ok = send(
        &app,
        "GET",
        &format!("/api/v1/organizations/{org}"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(standin.token_requests(), 1);
}

#[tokio::test]
async fn wrong_credentials_are_invalid_client() {
    let standin = StandIn::new();
    let app = standin.router();
    let unencoded = format!(
        "grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}"
    );
    let wrong_id = helpers::good_form().replace(CLIENT_ID, "skc_1");
    for form in [
        unencoded,
        wrong_id,
        "grant_type=client_credentials".to_owned(),
    ] {
        let answer = token_request(&app, &form).await;
        assert_eq!(answer.status, 401, "{form}");
        assert_eq!(answer.json, json!({"error": "invalid_client"}));
    }
    let json_body = send(
        &app,
        "POST",
        "/oauth/token",
        None,
        Some(json!({"client_id": CLIENT_ID})),
    )
    .await;
    assert_eq!(
        (json_body.status, json_body.json["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert_eq!(standin.token_requests(), 4);
}

#[tokio::test]
async fn missing_unknown_and_expired_tokens_get_the_documented_401() {
    let h = Harness::new().await;
    let expected = json!({"code":16,"message":"Token empty","details":[{"@type":"type.googleapis.com/scalekit.v1.errdetails.ErrorInfo","error_code":"UNAUTHENTICATED"}]});
    let uri = "/api/v1/organizations:external/X";
    let missing = send(&h.app, "GET", uri, None, None).await;
    assert_eq!((missing.status, &missing.json), (401, &expected));
    let unknown = send(&h.app, "GET", uri, Some("nope"), None).await;
    assert_eq!((unknown.status, &unknown.json), (401, &expected));
    assert_eq!(
        h.get(uri).await.status,
        404,
        "valid token reaches the handler"
    );
    h.standin.expire_tokens();
    let expired = h.get(uri).await;
    assert_eq!((expired.status, &expired.json), (401, &expected));
    let fresh = helpers::issue_token(&h.app).await;
    assert_eq!(
        send(&h.app, "GET", uri, Some(&fresh), None).await.status,
        404
    );
}

#[tokio::test]
async fn token_ttl_is_reported_and_enforced() {
    let standin = StandIn::new();
    let app = standin.router();
    standin.set_token_ttl(0);
    let answer = token_request(&app, &helpers::good_form()).await;
    assert_eq!(answer.json["expires_in"], 0);
    let token = answer.json["access_token"].as_str().unwrap_or("");
    let call = send(
        &app,
        "GET",
        "/api/v1/organizations:external/X",
        Some(token),
        None,
    )
    .await;
    assert_eq!(call.status, 401);
    standin.set_omit_expires_in(true);
    let answer = token_request(&app, &helpers::good_form()).await;
    assert!(answer.json.get("expires_in").is_none());
}
