//! The failure paths: 401 refresh-once and coalescing, 429 and the pause, status
//! classification, conflicts, timeouts and refused credentials.

use std::sync::Arc;
use std::time::Duration;

use scalekit_standin::Fault;
use secrecy::SecretString;

use super::*;
use crate::clock::ManualClock;
use crate::scalekit::{FailureClass, NewOrganization, ObjectUpdate, ScalekitError};

#[tokio::test]
async fn concurrent_calls_after_token_expiry_share_one_refresh() {
    let (standin, client) = start().await;
    standin.create_organization("Acme", Some("E1"), &[]);
    client
        .get_organization_by_external_id(&eid("E1"))
        .await
        .unwrap();
    standin.expire_tokens();
    let client = Arc::new(client);
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let client = Arc::clone(&client);
            tokio::spawn(async move { client.get_organization_by_external_id(&eid("E1")).await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().unwrap().is_some());
    }
    assert_eq!(standin.token_requests(), 2);
}

#[tokio::test]
async fn one_401_refreshes_once_and_a_second_is_a_retryable_auth_failure() {
    let (standin, client) = start().await;
    standin.fail_next(1, Fault::Status(401));
    assert_eq!(
        client
            .get_organization_by_external_id(&eid("E1"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(standin.token_requests(), 2);

    standin.fail_next(2, Fault::Status(401));
    let err = client
        .get_organization_by_external_id(&eid("E1"))
        .await
        .unwrap_err();
    assert!(matches!(err, ScalekitError::Unauthorized { .. }), "{err}");
    assert_eq!(err.class(), FailureClass::Transient);
    assert_eq!(standin.token_requests(), 3);
}

#[tokio::test]
async fn a_429_with_retry_after_pauses_every_call_of_the_client() {
    let hand = ManualClock::new(1_770_000_000_000);
    let clamp = |c: &mut ScalekitConfig| c.max_retry_after = Duration::from_millis(300);
    let (standin, client) = start_on(hand.clock(), clamp).await;
    standin.fail_next(
        1,
        Fault::RateLimited {
            retry_after_secs: Some(30),
        },
    );
    let err = client
        .get_organization_by_external_id(&eid("E1"))
        .await
        .unwrap_err();
    let clamped = Some(Duration::from_millis(300));
    assert_eq!(
        err.class(),
        FailureClass::RateLimited {
            retry_after: clamped
        }
    );
    let sent = standin.requests().len();

    let other = client.clone();
    let err = other.get_user_by_external_id(&eid("U1")).await.unwrap_err();
    let FailureClass::RateLimited {
        retry_after: Some(left),
    } = err.class()
    else {
        panic!("expected a pause, got {err}");
    };
    assert!(matches!(err, ScalekitError::Paused { .. }));
    assert_eq!(left, Duration::from_millis(300), "the clock has not moved");
    assert_eq!(
        standin.requests().len(),
        sent,
        "nothing is sent during the pause"
    );

    hand.advance(Duration::from_millis(299));
    let err = other.get_user_by_external_id(&eid("U1")).await.unwrap_err();
    assert!(matches!(err, ScalekitError::Paused { .. }), "{err}");
    hand.advance(Duration::from_millis(1));
    assert_eq!(
        client.get_user_by_external_id(&eid("U1")).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn a_plain_text_429_is_rate_limited_without_a_pause() {
    let (standin, client) = start().await;
    standin.fail_next(1, Fault::RateLimitedPlainText);
    let err = client
        .get_organization_by_external_id(&eid("E1"))
        .await
        .unwrap_err();
    assert_eq!(err.class(), FailureClass::RateLimited { retry_after: None });
    assert!(err.to_string().contains("Too Many Requests"), "{err}");
    assert!(
        client
            .get_organization_by_external_id(&eid("E1"))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn server_errors_are_transient_and_validation_errors_permanent() {
    let (standin, client) = start().await;
    let id = standin.create_organization("Acme", Some("E1"), &[]);
    let update = ObjectUpdate {
        metadata: Some(map(&[("plan", "pro")])),
        external_id: None,
    };
    standin.fail_next(1, Fault::Status(500));
    let err = client.update_organization(&id, &update).await.unwrap_err();
    assert_eq!(err.class(), FailureClass::Transient);

    standin.fail_next(1, Fault::Status(400));
    let err = client.update_organization(&id, &update).await.unwrap_err();
    assert_eq!(err.class(), FailureClass::Permanent);
    assert_eq!(err.status(), Some(400));
    let ScalekitError::Api { detail, .. } = &err else {
        panic!("expected an API error, got {err}");
    };
    assert!(!detail.is_empty() && detail != "(empty body)", "{detail}");
}

#[tokio::test]
async fn a_patch_of_a_vanished_object_is_not_found() {
    let (_standin, client) = start().await;
    let update = ObjectUpdate {
        metadata: Some(map(&[("plan", "pro")])),
        external_id: None,
    };
    let err = client
        .update_organization("org_00000000000000001", &update)
        .await
        .unwrap_err();
    assert_eq!(err.class(), FailureClass::NotFound, "{err}");
}

#[tokio::test]
async fn duplicate_external_ids_are_conflicts_under_400_and_409() {
    for status in [400, 409] {
        let (standin, client) = start().await;
        standin.set_duplicate_conflict_status(status);
        standin.create_organization("Taken", Some("E1"), &[]);
        let new = NewOrganization {
            display_name: "Acme".into(),
            external_id: eid("E1"),
            metadata: BTreeMap::new(),
        };
        let err = client.create_organization(&new).await.unwrap_err();
        assert_eq!(
            (err.class(), err.status()),
            (FailureClass::Conflict, Some(status))
        );
        assert!(err.to_string().contains("already exists"), "{err}");

        let other = standin.create_organization("Other", Some("E2"), &[]);
        let relink = ObjectUpdate {
            metadata: None,
            external_id: Some(eid("E1")),
        };
        let err = client
            .update_organization(&other, &relink)
            .await
            .unwrap_err();
        assert_eq!(err.class(), FailureClass::Conflict, "{err}");
    }
}

#[tokio::test]
async fn a_slow_answer_times_out_as_transient() {
    let (standin, client) = start_with(|c| c.request_timeout = Duration::from_millis(200)).await;
    standin.set_latency(Duration::from_secs(2));
    let err = client
        .get_organization_by_external_id(&eid("E1"))
        .await
        .unwrap_err();
    assert!(matches!(err, ScalekitError::Transport { .. }), "{err}");
    assert_eq!(err.class(), FailureClass::Transient);
}

#[tokio::test]
async fn refused_credentials_are_permanent_and_name_the_settings() {
    let (standin, client) = start_with(|c| c.client_secret = SecretString::from("wrong")).await;
    let err = client.check_credentials().await.unwrap_err();
    assert!(
        matches!(err, ScalekitError::InvalidCredentials { status: 401, .. }),
        "{err}"
    );
    assert_eq!(err.class(), FailureClass::Permanent);
    assert!(err.to_string().contains("SCALEKIT_CLIENT_ID"), "{err}");
    assert!(!err.to_string().contains("wrong"));
    assert!(api_requests(&standin).is_empty());
}

#[tokio::test]
async fn token_endpoint_outages_are_transient() {
    let (standin, client) = start().await;
    standin.fail_next_token_requests(1, Fault::Status(503));
    let err = client
        .get_organization_by_external_id(&eid("E1"))
        .await
        .unwrap_err();
    assert_eq!(err.class(), FailureClass::Transient, "{err}");
    standin.fail_next_token_requests(
        1,
        Fault::RateLimited {
            retry_after_secs: None,
        },
    );
    let err = client.check_credentials().await.unwrap_err();
    assert_eq!(
        err.class(),
        FailureClass::RateLimited { retry_after: None },
        "{err}"
    );
    client.check_credentials().await.unwrap();
}

#[tokio::test]
async fn bad_environment_urls_are_refused_at_construction() {
    let standin = StandIn::new();
    let mut settings = config(&standin);
    settings.environment_url = "https://acme.scalekit.com/api".into();
    let err = ScalekitClient::new(settings, crate::clock::Clock::system()).unwrap_err();
    assert!(
        err.to_string().contains("SCALEKIT_ENVIRONMENT_URL"),
        "{err}"
    );
}
