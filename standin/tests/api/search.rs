//! U6 user search and U8 membership creation.

use crate::helpers::{Harness, constraint};
use serde_json::json;

#[tokio::test]
async fn search_finds_users_by_email_in_pages_of_at_most_30() {
    let h = Harness::new().await;
    let org = h.standin.create_organization("Acme", None, &[]);
    let jane = h.standin.create_user(&org, "Jane+SSO@acme.com", None);
    h.standin
        .create_user(&org, "mary-jane+sso@acme.com", Some("crm-7"));
    h.standin.create_user(&org, "bob@acme.com", None);

    let found = h
        .get("/api/v1/users:search?query=jane%2Bsso%40acme.com&page_size=30")
        .await;
    assert_eq!(found.status, 200, "{}", found.text);
    let users = found.json["users"].as_array().unwrap();
    assert_eq!(users.len(), 2, "a substring search, case-insensitive");
    assert_eq!(users[0]["id"], jane.as_str());
    assert_eq!(users[0]["memberships"][0]["organization_id"], org.as_str());
    assert_eq!(found.json["total_size"], 2);
    assert_eq!(found.json["next_page_token"], "");

    let first = h
        .get("/api/v1/users:search?query=acme.com&page_size=2")
        .await;
    assert_eq!(first.json["users"].as_array().unwrap().len(), 2);
    let token = first.json["next_page_token"].as_str().unwrap().to_owned();
    assert!(!token.is_empty());
    let second = h
        .get(&format!(
            "/api/v1/users:search?query=acme.com&page_size=2&page_token={token}"
        ))
        .await;
    assert_eq!(second.json["users"].as_array().unwrap().len(), 1);
    assert_eq!(second.json["next_page_token"], "");

    let in_org = h
        .get(&format!(
            "/api/v1/organizations/{org}/users:search?query=bob@acme"
        ))
        .await;
    assert_eq!(in_org.json["users"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn search_refuses_short_queries_and_large_pages() {
    let h = Harness::new().await;
    let short = h.get("/api/v1/users:search?query=ab").await;
    assert_eq!(short.status, 400);
    assert_eq!(short.json["code"], 3);
    assert_eq!(constraint(&short), "string.len");
    let long = "a".repeat(101);
    let long = h.get(&format!("/api/v1/users:search?query={long}")).await;
    assert_eq!(long.status, 400);
    let big = h.get("/api/v1/users:search?query=abc&page_size=31").await;
    assert_eq!(big.status, 400);
    assert_eq!(constraint(&big), "uint32.lte");
    let token = h
        .get("/api/v1/users:search?query=abc&page_token=nope")
        .await;
    assert_eq!(token.status, 400);
}

#[tokio::test]
async fn memberships_add_an_existing_user_once() {
    let h = Harness::new().await;
    let home = h.standin.create_organization("Home", None, &[]);
    let acme = h.standin.create_organization("Acme", None, &[]);
    let user = h.standin.create_user(&home, "jane@acme.com", None);
    let uri = format!(
        "/api/v1/memberships/organizations/{acme}/users/{user}?send_invitation_email=false"
    );
    let body = json!({"roles": [{"name": "member"}]});
    let added = h.call("POST", &uri, Some(body.clone())).await;
    assert_eq!(added.status, 201, "{}", added.text);
    assert_eq!(
        added.json["user"]["memberships"][1]["organization_id"],
        acme.as_str()
    );
    let membership = h.standin.membership(&user, &acme).unwrap();
    assert_eq!(membership.membership_status, "ACTIVE");
    assert_eq!(membership.roles, vec!["member".to_owned()]);

    let again = h.call("POST", &uri, Some(body.clone())).await;
    assert_eq!((again.status, again.json["code"].clone()), (400, json!(3)));
    h.standin.set_duplicate_conflict_status(409);
    let again = h.call("POST", &uri, Some(body.clone())).await;
    assert_eq!(again.status, 409);

    let roles_as_strings = h
        .call("POST", &uri, Some(json!({"roles": ["member"]})))
        .await;
    assert_eq!(roles_as_strings.status, 400);
    let unknown = format!("/api/v1/memberships/organizations/{acme}/users/usr_12345678901234567");
    let missing = h.call("POST", &unknown, Some(body)).await;
    assert_eq!(missing.status, 404);
}
