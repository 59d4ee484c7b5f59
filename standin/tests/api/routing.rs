//! Colon paths (`organizations:external`, `users:external`) never reach the `{id}` routes,
//! and the reverse; percent-decoding; the fallback; the request log.

use crate::helpers::Harness;
use scalekit_standin::StandIn;

#[tokio::test]
async fn organization_colon_and_id_routes_never_cross() {
    let h = Harness::new().await;
    let a = h.standin.create_organization("A", Some("ext-a"), &[]);
    // B's external id is A's id: only the route decides which one comes back.
    let b = h.standin.create_organization("B", Some(&a), &[]);

    let by_external = h.get(&format!("/api/v1/organizations:external/{a}")).await;
    assert_eq!(by_external.status, 200);
    assert_eq!(by_external.json["organization"]["id"], b.as_str());

    let by_id = h.get(&format!("/api/v1/organizations/{a}")).await;
    assert_eq!(by_id.status, 200);
    assert_eq!(by_id.json["organization"]["id"], a.as_str());

    // The external id "ext-a" is not an id, and B's id is nobody's external id.
    assert_eq!(h.get("/api/v1/organizations/ext-a").await.status, 404);
    assert_eq!(
        h.get(&format!("/api/v1/organizations:external/{b}"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn user_colon_and_id_routes_never_cross() {
    let h = Harness::new().await;
    let org = h.standin.create_organization("Acme", None, &[]);
    let a = h.standin.create_user(&org, "a@acme.com", Some("crm-a"));
    let b = h.standin.create_user(&org, "b@acme.com", Some(&a));

    let by_external = h.get(&format!("/api/v1/users:external/{a}")).await;
    assert_eq!(by_external.json["user"]["id"], b.as_str());
    let by_id = h.get(&format!("/api/v1/users/{a}")).await;
    assert_eq!(by_id.json["user"]["id"], a.as_str());
    assert_eq!(
        h.get(&format!("/api/v1/users:external/{b}")).await.status,
        404
    );
    assert_eq!(h.get("/api/v1/users/usr_crm-a").await.status, 404);
}

#[tokio::test]
async fn external_id_path_segment_is_percent_decoded() {
    let h = Harness::new().await;
    let id = h
        .standin
        .create_organization("Odd", Some("CUST 1/2?#%"), &[]);
    let answer = h
        .get("/api/v1/organizations:external/CUST%201%2F2%3F%23%25")
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json["organization"]["id"], id.as_str());
    let logged = h.standin.requests().pop().expect("logged");
    assert_eq!(
        logged.path,
        "/api/v1/organizations:external/CUST%201%2F2%3F%23%25"
    );
}

#[tokio::test]
async fn empty_or_queried_external_lookup_is_400_and_unknown_paths_404() {
    let h = Harness::new().await;
    h.standin.create_organization("A", Some("X"), &[]);
    assert_eq!(h.get("/api/v1/organizations:external/").await.status, 400);
    assert_eq!(
        h.get("/api/v1/organizations:external/X?id=X").await.status,
        400
    );
    assert_eq!(h.get("/api/v1/users:external/").await.status, 400);
    let unknown = h.get("/api/v1/organizations:lookupExternalId/X").await;
    assert_eq!(
        (unknown.status, unknown.json["code"].as_u64()),
        (404, Some(5))
    );
    assert_eq!(
        h.get("/api/v1/organizations%3Aexternal/X").await.status,
        404
    );
}

#[tokio::test]
async fn request_log_keeps_method_path_query_body_and_status() {
    let h = Harness::new().await;
    let org = h.standin.create_organization("A", Some("X"), &[]);
    let body = serde_json::json!({"metadata": {"plan": "pro"}});
    h.call(
        "PATCH",
        &format!("/api/v1/organizations/{org}"),
        Some(body.clone()),
    )
    .await;
    h.get("/api/v1/organizations:external/X").await;
    let log = h.standin.requests();
    assert_eq!(log.len(), 3, "token, patch, get");
    assert_eq!(
        (log[0].method.as_str(), log[0].path.as_str()),
        ("POST", "/oauth/token")
    );
    assert_eq!(log[1].method, "PATCH");
    assert_eq!(log[1].body.as_ref(), Some(&body));
    assert_eq!(log[1].status, Some(200));
    assert_eq!(log[1].header("content-type"), Some("application/json"));
    assert_eq!(log[2].path, "/api/v1/organizations:external/X");
    assert!(log[1].at <= log[2].at);
}

#[tokio::test]
async fn serves_over_tcp_with_the_debug_state_route() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let standin = StandIn::start().await.expect("bind");
    standin.create_organization(
        "Acme Corp",
        Some("org_01HZX5K9M3ABCDEF"),
        &[("plan", "pro")],
    );
    let addr = standin.local_addr().expect("listening");
    assert_eq!(standin.base_url(), format!("http://{addr}"));
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = "GET /_standin/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("\"external_id\":\"org_01HZX5K9M3ABCDEF\""),
        "{response}"
    );
}
