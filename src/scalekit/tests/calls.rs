//! The successful paths: lookups, updates, creations, the token cache and the rate limit.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::clock::ManualClock;
use crate::scalekit::{FailureClass, NewOrganization, NewUser, ObjectUpdate, ScalekitError};

#[tokio::test]
async fn lookups_use_the_colon_path_with_one_encoded_segment() {
    let (standin, client) = start().await;
    let id = standin.create_organization("Acme", Some("CUST 1?#%:x"), &[("plan", "pro")]);
    let org = client
        .get_organization_by_external_id(&eid("CUST 1?#%:x"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(org.id, id);
    assert_eq!(org.external_id.as_deref(), Some("CUST 1?#%:x"));
    assert_eq!(org.metadata, map(&[("plan", "pro")]));
    let request = &api_requests(&standin)[0];
    assert_eq!(request.method, "GET");
    assert_eq!(
        request.path,
        "/api/v1/organizations:external/CUST%201%3F%23%25%3Ax"
    );
    assert_eq!(request.query, None);
    assert!(
        request
            .header("authorization")
            .is_some_and(|h| h.starts_with("Bearer "))
    );
}

#[tokio::test]
async fn a_missing_object_is_none() {
    let (_standin, client) = start().await;
    assert_eq!(
        client
            .get_organization_by_external_id(&eid("nope"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        client.get_user_by_external_id(&eid("nope")).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn the_token_is_form_encoded_fetched_once_and_reused() {
    let (standin, client) = start().await;
    client.check_credentials().await.unwrap();
    for _ in 0..3 {
        client
            .get_organization_by_external_id(&eid("E1"))
            .await
            .unwrap();
    }
    assert_eq!(standin.token_requests(), 1);
    let token_request = standin
        .requests()
        .into_iter()
        .find(|r| r.path == "/oauth/token");
    let token_request = token_request.unwrap();
    assert!(
        token_request
            .raw_body
            .contains("client_secret=standin%2Bsecret%2F%3D")
    );
    assert!(!format!("{client:?}").contains(CLIENT_SECRET));
}

#[tokio::test]
async fn patch_sends_a_bare_body_with_only_the_present_keys() {
    let (standin, client) = start().await;
    let id = standin.create_organization("Acme", Some("E1"), &[("plan", "free")]);
    let update = ObjectUpdate {
        metadata: Some(map(&[("plan", "pro"), ("seats", "8")])),
        external_id: None,
    };
    let org = client.update_organization(&id, &update).await.unwrap();
    assert_eq!(org.metadata, map(&[("plan", "pro"), ("seats", "8")]));
    let request = api_requests(&standin).pop().unwrap();
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("PATCH", &*format!("/api/v1/organizations/{id}"))
    );
    assert_eq!(
        request.body,
        Some(json!({"metadata":{"plan":"pro","seats":"8"}}))
    );
    let stored = standin.organization(&id).unwrap();
    assert_eq!(stored.metadata, map(&[("plan", "pro"), ("seats", "8")]));
}

#[tokio::test]
async fn metadata_limits_are_checked_before_any_request() {
    let (standin, client) = start().await;
    let update = ObjectUpdate {
        metadata: Some(map(&[("stripe_subscription_status", "active")])),
        external_id: None,
    };
    let err = client
        .update_organization("org_1", &update)
        .await
        .unwrap_err();
    assert!(matches!(err, ScalekitError::InvalidMetadata(_)));
    assert_eq!(err.class(), FailureClass::Permanent);
    assert!(
        err.to_string().contains("stripe_subscription_status"),
        "{err}"
    );
    assert!(standin.requests().is_empty());
}

#[tokio::test]
async fn organizations_are_created_with_any_2xx() {
    let (standin, client) = start().await;
    let new = NewOrganization {
        display_name: "Acme Corp".into(),
        external_id: eid("CUST-1"),
        metadata: map(&[("plan", "free")]),
    };
    let org = client.create_organization(&new).await.unwrap();
    assert!(org.id.starts_with("org_"));
    assert_eq!(api_requests(&standin)[0].status, Some(201));
    let stored = standin.organization_by_external_id("CUST-1").unwrap();
    assert_eq!(
        (stored.id, stored.metadata),
        (org.id, map(&[("plan", "free")]))
    );
}

#[tokio::test]
async fn users_are_created_as_members_without_an_invitation() {
    let (standin, client) = start().await;
    let org_id = standin.create_organization("Acme", Some("E1"), &[]);
    let new = NewUser {
        email: "jane@acme.com".into(),
        external_id: eid("crm-42"),
        metadata: map(&[("dept", "eng")]),
        first_name: Some("Jane".into()),
        last_name: Some("Doe".into()),
    };
    let user = client.create_user(&org_id, &new).await.unwrap();
    assert_eq!(user.email.as_deref(), Some("jane@acme.com"));
    let request = &api_requests(&standin)[0];
    assert_eq!(
        request.query.as_deref(),
        Some("send_invitation_email=false")
    );
    let membership = standin.membership(&user.id, &org_id).unwrap();
    assert_eq!(membership.roles, ["member"]);
    let found = client
        .get_user_by_external_id(&eid("crm-42"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.metadata, map(&[("dept", "eng")]));
    let update = ObjectUpdate {
        metadata: Some(map(&[("dept", "ops")])),
        external_id: None,
    };
    let updated = client.update_user(&found.id, &update).await.unwrap();
    assert_eq!(
        (updated.id, updated.metadata),
        (user.id, map(&[("dept", "ops")]))
    );
}

#[tokio::test]
async fn requests_are_spaced_to_the_configured_rate() {
    let hand = ManualClock::new(1_770_000_000_000);
    let (standin, client) =
        start_on(hand.clock(), |c| c.requests_per_second = per_second(20)).await;
    let calls = tokio::spawn(async move {
        for _ in 0..4 {
            client
                .get_organization_by_external_id(&eid("E1"))
                .await
                .unwrap();
        }
    });
    // The clock moves one interval once the request it allowed has come; each request is
    // stamped with the clock's reading when it came.
    let mut stamps: Vec<i64> = Vec::new();
    let limit = std::time::Instant::now() + Duration::from_secs(30);
    while stamps.len() < 5 {
        let seen = stamps.len();
        while standin.requests().len() == seen {
            assert!(
                std::time::Instant::now() < limit,
                "request {} never came",
                seen + 1
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let now = standin.requests().len();
        stamps.extend(std::iter::repeat_n(hand.now_ms(), now - seen));
        hand.advance(Duration::from_millis(50));
    }
    calls.await.unwrap();
    assert_eq!(standin.requests().len(), 5, "the token and four lookups");
    assert!(
        stamps.windows(2).all(|w| w[1] - w[0] >= 50),
        "starts closer than 50 ms of the clock: {stamps:?}"
    );
}

#[tokio::test]
async fn client_futures_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let (_standin, client) = start().await;
    let id = eid("E1");
    assert_send(&client.get_organization_by_external_id(&id));
    assert_send(&client.update_user("usr_1", &ObjectUpdate::default()));
    assert_send(&client.check_credentials());
}
