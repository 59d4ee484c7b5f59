//! Organization operations: shapes, bare bodies, validation, update semantics, duplicates.

use crate::helpers::{Harness, constraint};
use serde_json::{Map, Value, json};

/// `n` metadata pairs.
fn pairs(n: usize) -> Value {
    Value::Object(
        (0..n)
            .map(|i| (format!("key{i:02}"), json!("v")))
            .collect::<Map<_, _>>(),
    )
}

#[tokio::test]
async fn responses_are_wrapped_snake_case_with_empty_metadata_and_no_unset_optionals() {
    let h = Harness::new().await;
    let id = h.standin.create_organization("Acme Corp", None, &[]);
    let answer = h.get(&format!("/api/v1/organizations/{id}")).await;
    let org = &answer.json["organization"];
    assert_eq!(org["display_name"], "Acme Corp");
    assert_eq!(org["metadata"], json!({}));
    for absent in ["external_id", "slug", "logo_url", "displayName"] {
        assert!(org.get(absent).is_none(), "{absent}");
    }
    let created = org["create_time"].as_str().unwrap_or("");
    assert!(
        created.ends_with('Z') && created.as_bytes().get(10) == Some(&b'T'),
        "{created}"
    );
    assert!(
        id.starts_with("org_") && id.len() == 21 && id[4..].bytes().all(|b| b.is_ascii_digit())
    );
}

#[tokio::test]
async fn create_is_201_and_takes_a_bare_body_only() {
    let h = Harness::new().await;
    let body =
        json!({"display_name": "Acme", "external_id": "CUST-1", "metadata": {"plan": "free"}});
    let created = h.call("POST", "/api/v1/organizations", Some(body)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json["organization"]["external_id"], "CUST-1");
    assert_eq!(
        created.json["organization"]["metadata"],
        json!({"plan": "free"})
    );
    let stored = h
        .standin
        .organization_by_external_id("CUST-1")
        .expect("stored");
    assert_eq!(
        stored.metadata.get("plan").map(String::as_str),
        Some("free")
    );

    let wrapped = json!({"organization": {"display_name": "Acme", "external_id": "CUST-2"}});
    let refused = h.call("POST", "/api/v1/organizations", Some(wrapped)).await;
    assert_eq!(
        (refused.status, refused.json["code"].as_u64()),
        (400, Some(3))
    );
    for bad in [
        json!({}),
        json!({"display_name": ""}),
        json!({"display_name": "x".repeat(201)}),
        json!({"displayName": "Acme"}),
        json!({"display_name": "A", "region_code": "XX"}),
    ] {
        assert_eq!(
            h.call("POST", "/api/v1/organizations", Some(bad.clone()))
                .await
                .status,
            400,
            "{bad}"
        );
    }
    assert_eq!(h.standin.organizations().len(), 1);
}

#[tokio::test]
async fn patch_refuses_wrapped_bodies_unknown_keys_nulls_and_non_json() {
    let h = Harness::new().await;
    let id = h.standin.create_organization("A", None, &[]);
    let uri = format!("/api/v1/organizations/{id}");
    for bad in [
        json!({"organization": {"metadata": {"plan": "pro"}}}),
        json!({"update_mask": "metadata"}),
        json!({"external_id": null}),
        json!(["metadata"]),
    ] {
        let answer = h.call("PATCH", &uri, Some(bad.clone())).await;
        assert_eq!(answer.status, 400, "{bad}");
    }
    let no_content_type = axum::http::Request::builder()
        .method("PATCH")
        .uri(&uri)
        .header("authorization", format!("Bearer {}", h.token))
        .body(axum::body::Body::from("{}"))
        .expect("request");
    assert_eq!(
        crate::helpers::answer(&h.app, no_content_type).await.status,
        400
    );
    assert_eq!(
        h.call("PATCH", "/api/v1/organizations/org_404", Some(json!({})))
            .await
            .status,
        404
    );
    assert_eq!(
        h.call(
            "PATCH",
            &format!("/api/v1/organizations/{}", "o".repeat(33)),
            Some(json!({}))
        )
        .await
        .status,
        400
    );
}

#[tokio::test]
async fn metadata_values_must_be_strings() {
    let h = Harness::new().await;
    let id = h.standin.create_organization("A", None, &[]);
    for value in [
        json!(25),
        json!(true),
        json!(null),
        json!({"a": "b"}),
        json!(["x"]),
    ] {
        let answer = h
            .call(
                "PATCH",
                &format!("/api/v1/organizations/{id}"),
                Some(json!({"metadata": {"seats": value}})),
            )
            .await;
        assert_eq!(
            (answer.status, constraint(&answer)),
            (400, "string"),
            "{value}"
        );
        let field =
            &answer.json["details"][0]["validation_error_info"]["field_violations"][0]["field"];
        assert_eq!(field, "metadata");
    }
    assert!(
        h.standin
            .organization(&id)
            .expect("org")
            .metadata
            .is_empty()
    );
}

#[tokio::test]
async fn each_metadata_limit_is_a_400_field_violation() {
    let h = Harness::new().await;
    let id = h.standin.create_organization("A", None, &[]);
    let uri = format!("/api/v1/organizations/{id}");
    let cases = [
        (pairs(11), "map.max_pairs"),
        (json!({"id": "x"}), "string.min_len"),
        (json!({"stripe_subscription_status": "x"}), "string.max_len"),
        (json!({"plan": ""}), "string.min_len"),
        (json!({"plan": "x".repeat(257)}), "string.max_len"),
    ];
    for (metadata, expected) in cases {
        let answer = h
            .call("PATCH", &uri, Some(json!({"metadata": metadata})))
            .await;
        assert_eq!(
            (answer.status, constraint(&answer)),
            (400, expected),
            "{}",
            answer.text
        );
    }
    let edge = json!({"abc": "x", "a_key_of_25_chars_exactly": "y".repeat(256)});
    assert_eq!(
        h.call("PATCH", &uri, Some(json!({"metadata": edge})))
            .await
            .status,
        200
    );
    assert_eq!(
        h.call("PATCH", &uri, Some(json!({"metadata": pairs(10)})))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn patch_changes_only_present_keys_and_replaces_metadata_by_default() {
    let h = Harness::new().await;
    let id = h
        .standin
        .create_organization("A", Some("X"), &[("plan", "free"), ("seats", "3")]);
    let uri = format!("/api/v1/organizations/{id}");
    let renamed = h
        .call("PATCH", &uri, Some(json!({"display_name": "B"})))
        .await;
    assert_eq!(
        renamed.json["organization"]["metadata"],
        json!({"plan": "free", "seats": "3"})
    );
    assert_eq!(renamed.json["organization"]["external_id"], "X");
    let replaced = h
        .call("PATCH", &uri, Some(json!({"metadata": {"plan": "pro"}})))
        .await;
    assert_eq!(
        replaced.json["organization"]["metadata"],
        json!({"plan": "pro"})
    );
    assert_eq!(replaced.json["organization"]["display_name"], "B");
    let cleared = h.call("PATCH", &uri, Some(json!({"metadata": {}}))).await;
    assert_eq!(cleared.json["organization"]["metadata"], json!({}));
}

#[tokio::test]
async fn merge_switch_merges_metadata_and_still_caps_pairs() {
    let h = Harness::new().await;
    h.standin.set_metadata_merge(true);
    let id = h
        .standin
        .create_organization("A", None, &[("plan", "free"), ("seats", "3")]);
    let uri = format!("/api/v1/organizations/{id}");
    let merged = h
        .call("PATCH", &uri, Some(json!({"metadata": {"plan": "pro"}})))
        .await;
    assert_eq!(
        merged.json["organization"]["metadata"],
        json!({"plan": "pro", "seats": "3"})
    );
    let too_many = h
        .call("PATCH", &uri, Some(json!({"metadata": pairs(9)})))
        .await;
    assert_eq!(
        (too_many.status, constraint(&too_many)),
        (400, "map.max_pairs")
    );
}

#[tokio::test]
async fn duplicate_external_id_is_400_by_default_and_409_by_switch() {
    let h = Harness::new().await;
    h.standin.create_organization("A", Some("X"), &[]);
    let b = h.standin.create_organization("B", Some("Y"), &[]);
    let create = json!({"display_name": "C", "external_id": "X"});
    let answer = h
        .call("POST", "/api/v1/organizations", Some(create.clone()))
        .await;
    assert_eq!(
        (answer.status, answer.json["code"].as_u64()),
        (400, Some(3))
    );
    assert_eq!(answer.json["details"][0]["error_code"], "INVALID_ARGUMENT");
    assert!(
        answer.json["message"]
            .as_str()
            .unwrap_or("")
            .contains("already exists")
    );
    let patch_uri = format!("/api/v1/organizations/{b}");
    assert_eq!(
        h.call("PATCH", &patch_uri, Some(json!({"external_id": "X"})))
            .await
            .status,
        400
    );
    assert_eq!(
        h.call("PATCH", &patch_uri, Some(json!({"external_id": "Y"})))
            .await
            .status,
        200,
        "own id"
    );

    h.standin.set_duplicate_conflict_status(409);
    let answer = h.call("POST", "/api/v1/organizations", Some(create)).await;
    assert_eq!(
        (answer.status, answer.json["code"].as_u64()),
        (409, Some(6))
    );
    assert_eq!(answer.json["details"][0]["error_code"], "ALREADY_EXISTS");
    assert_eq!(
        h.call("PATCH", &patch_uri, Some(json!({"external_id": "X"})))
            .await
            .status,
        409
    );
    assert_eq!(
        h.standin
            .organization(&b)
            .and_then(|o| o.external_id)
            .as_deref(),
        Some("Y")
    );
}

#[tokio::test]
async fn delete_answers_empty_object_and_frees_the_external_id() {
    let h = Harness::new().await;
    let id = h.standin.create_organization("A", Some("X"), &[]);
    let uri = format!("/api/v1/organizations/{id}");
    let deleted = h.call("DELETE", &uri, None).await;
    assert_eq!((deleted.status, deleted.json.clone()), (200, json!({})));
    assert_eq!(h.get(&uri).await.status, 404);
    assert_eq!(h.call("DELETE", &uri, None).await.status, 404);
    let again = h
        .call(
            "POST",
            "/api/v1/organizations",
            Some(json!({"display_name": "A2", "external_id": "X"})),
        )
        .await;
    assert_eq!(again.status, 201);
}
