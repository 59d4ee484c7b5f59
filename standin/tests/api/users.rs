//! User operations: create in an organization, lookups, PATCH semantics, duplicates.

use crate::helpers::{Harness, constraint};
use serde_json::{Value, json};

/// A full U4 body.
fn jane() -> Value {
    json!({"email": "jane@acme.com", "external_id": "crm-42", "metadata": {"plan": "free"},
           "user_profile": {"first_name": "Jane", "last_name": "Doe"},
           "membership": {"roles": [{"name": "member"}], "metadata": {"dept": "eng"}}})
}

#[tokio::test]
async fn create_in_org_records_send_invitation_email_and_returns_the_user_object() {
    let h = Harness::new().await;
    let org = h.standin.create_organization("Acme", None, &[]);
    let uri = format!("/api/v1/organizations/{org}/users?send_invitation_email=false");
    let created = h.call("POST", &uri, Some(jane())).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let user = &created.json["user"];
    assert_eq!(user["email"], "jane@acme.com");
    assert_eq!(user["external_id"], "crm-42");
    assert_eq!(user["metadata"], json!({"plan": "free"}));
    assert_eq!(user["user_profile"]["first_name"], "Jane");
    assert!(
        user["environment_id"]
            .as_str()
            .unwrap_or("")
            .starts_with("env_")
    );
    let membership = &user["memberships"][0];
    assert_eq!(membership["organization_id"], org.as_str());
    assert_eq!(membership["membership_status"], "ACTIVE");
    assert_eq!(membership["roles"][0]["name"], "member");
    assert_eq!(membership["metadata"], json!({"dept": "eng"}));

    let stored = h.standin.user_by_external_id("crm-42").expect("stored");
    assert_eq!(stored.send_invitation_email, Some(false));
    assert_eq!(stored.memberships, vec![org.clone()]);
    assert_eq!(stored.last_name.as_deref(), Some("Doe"));
    let id = stored.id.clone();
    assert!(id.starts_with("usr_") && id.len() == 21);
    let logged = h.standin.requests().pop().expect("logged");
    assert_eq!(logged.query.as_deref(), Some("send_invitation_email=false"));
    assert_eq!(
        h.standin.membership(&id, &org).map(|m| m.roles),
        Some(vec!["member".to_owned()])
    );
}

#[tokio::test]
async fn create_without_the_query_invites_by_default() {
    let h = Harness::new().await;
    let org = h.standin.create_organization("Acme", None, &[]);
    let created = h
        .call(
            "POST",
            &format!("/api/v1/organizations/{org}/users"),
            Some(json!({"email": "a@b.co"})),
        )
        .await;
    assert_eq!(
        created.json["user"]["memberships"][0]["membership_status"],
        "PENDING_INVITE"
    );
    assert!(created.json["user"].get("external_id").is_none());
    assert_eq!(h.standin.users()[0].send_invitation_email, Some(true));
}

#[tokio::test]
async fn create_refuses_bad_bodies_missing_orgs_and_duplicates() {
    let h = Harness::new().await;
    let org = h.standin.create_organization("Acme", None, &[]);
    let uri = format!("/api/v1/organizations/{org}/users?send_invitation_email=false");
    let mut string_roles = jane();
    string_roles["membership"]["roles"] = json!(["member"]);
    let mut wrapped = json!({"user": jane()});
    let mut numeric = jane();
    numeric["metadata"]["seats"] = json!(8);
    for bad in [
        string_roles,
        wrapped.take(),
        numeric,
        json!({"external_id": "x"}),
        json!({"email": "nope"}),
    ] {
        assert_eq!(
            h.call("POST", &uri, Some(bad.clone())).await.status,
            400,
            "{bad}"
        );
    }
    let missing = h
        .call(
            "POST",
            "/api/v1/organizations/org_1/users?send_invitation_email=false",
            Some(jane()),
        )
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(h.call("POST", &uri, Some(jane())).await.status, 201);
    let same_email = json!({"email": "JANE@acme.com"});
    let answer = h.call("POST", &uri, Some(same_email.clone())).await;
    assert_eq!(
        (answer.status, answer.json["code"].as_u64()),
        (400, Some(3))
    );
    h.standin.set_duplicate_conflict_status(409);
    assert_eq!(h.call("POST", &uri, Some(same_email)).await.status, 409);
    let same_external = json!({"email": "other@acme.com", "external_id": "crm-42"});
    assert_eq!(h.call("POST", &uri, Some(same_external)).await.status, 409);
    assert_eq!(h.standin.users().len(), 1);
}

#[tokio::test]
async fn patch_user_semantics() {
    let h = Harness::new().await;
    let org = h.standin.create_organization("Acme", None, &[]);
    let id = h.standin.create_user(&org, "jane@acme.com", Some("crm-42"));
    h.standin
        .set_user_metadata(&id, &[("plan", "free"), ("dept", "eng")]);
    let uri = format!("/api/v1/users/{id}");
    let unchanged = h.call("PATCH", &uri, Some(json!({"metadata": {}}))).await;
    assert_eq!(
        unchanged.json["user"]["metadata"],
        json!({"plan": "free", "dept": "eng"})
    );
    let body = json!({"metadata": {"plan": "pro"}, "user_profile": {"first_name": "Jane", "last_name": "Roe"}});
    let patched = h.call("PATCH", &uri, Some(body)).await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.json["user"]["metadata"], json!({"plan": "pro"}));
    let user = h.standin.user(&id).expect("user");
    assert_eq!(
        (user.first_name.as_deref(), user.last_name.as_deref()),
        (Some("Jane"), Some("Roe"))
    );
    let renamed = h
        .call("PATCH", &uri, Some(json!({"external_id": "crm-43"})))
        .await;
    assert_eq!(renamed.json["user"]["external_id"], "crm-43");
    assert_eq!(
        h.get("/api/v1/users:external/crm-43").await.json["user"]["id"],
        id.as_str()
    );

    let too_many = Value::Object(
        (0..21)
            .map(|i| (format!("key{i:02}"), json!("v")))
            .collect(),
    );
    let answer = h
        .call("PATCH", &uri, Some(json!({"metadata": too_many})))
        .await;
    assert_eq!((answer.status, constraint(&answer)), (400, "map.max_pairs"));
    for bad in [
        json!({"email": "new@acme.com"}),
        json!({"user": {"metadata": {"plan": "x"}}}),
        json!({"user_profile": {"firstName": "J"}}),
    ] {
        assert_eq!(
            h.call("PATCH", &uri, Some(bad.clone())).await.status,
            400,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn user_id_lengths_and_the_external_patch_form() {
    let h = Harness::new().await;
    let org = h.standin.create_organization("Acme", None, &[]);
    h.standin.create_user(&org, "jane@acme.com", Some("crm-42"));
    assert_eq!(
        h.get("/api/v1/users/usr_1").await.status,
        404,
        "GET allows 1-32 chars"
    );
    let short = h
        .call(
            "PATCH",
            "/api/v1/users/usr_1",
            Some(json!({"metadata": {"plan": "x"}})),
        )
        .await;
    assert_eq!(short.status, 400, "PATCH needs 19-25 chars");
    assert_eq!(
        h.get("/api/v1/users/org_12345678901234567").await.status,
        400
    );
    let with_external = json!({"external_id": "crm-43"});
    assert_eq!(
        h.call(
            "PATCH",
            "/api/v1/users:external/crm-42",
            Some(with_external)
        )
        .await
        .status,
        400
    );
    let ok = h
        .call(
            "PATCH",
            "/api/v1/users:external/crm-42",
            Some(json!({"metadata": {"plan": "pro"}})),
        )
        .await;
    assert_eq!(ok.json["user"]["metadata"], json!({"plan": "pro"}));
    assert_eq!(h.get("/api/v1/users:external/nobody").await.status, 404);
}
