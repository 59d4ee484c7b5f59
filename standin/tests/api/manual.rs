//! The demo's hand edit of organization metadata (`PATCH /_standin/…`, no token).

use crate::helpers::send;
use scalekit_standin::StandIn;
use serde_json::json;

#[tokio::test]
async fn hand_edits_set_and_remove_keys_by_external_id() {
    let standin = StandIn::new();
    let app = standin.router();
    standin.create_organization("Acme", Some("ext-1"), &[("plan", "pro"), ("seats", "5")]);
    let uri = "/_standin/organizations/ext-1/metadata";
    let edited = send(
        &app,
        "PATCH",
        uri,
        None,
        Some(json!({"plan": "free", "seats": null})),
    )
    .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    assert_eq!(edited.json["metadata"], json!({"plan": "free"}));
    let org = standin.organization_by_external_id("ext-1").unwrap();
    assert_eq!(org.metadata.len(), 1);
    let bad = send(&app, "PATCH", uri, None, Some(json!({"plan": 1}))).await;
    assert_eq!(bad.status, 400);
    let missing = send(
        &app,
        "PATCH",
        "/_standin/organizations/nope/metadata",
        None,
        Some(json!({})),
    )
    .await;
    assert_eq!(missing.status, 404);
}
