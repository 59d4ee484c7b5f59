//! U8: `POST /api/v1/memberships/organizations/{organization_id}/users/{id}` (reference
//! §5): adds an existing user to an organization with `{"roles":[…],"metadata":{…}}`;
//! `send_invitation_email` is a query parameter (default true). 201 `{"user":{…}}`.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::state::{Shared, lock};
use crate::{user_body, validate};

/// Request message name, for validation messages.
const CREATE: &str = "CreateMembershipRequest.Membership";

/// The membership routes.
pub fn routes() -> Router<Shared> {
    Router::new().route(
        "/api/v1/memberships/organizations/{organization_id}/users/{id}",
        post(create),
    )
}

/// Adds user `id` to the organization; a user already in it is a duplicate (§8).
async fn create(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Path((org_id, user_id)) =
        path.map_err(|e| ApiError::invalid(format!("invalid path: {}", e.body_text())))?;
    validate::path_id(&org_id, "org_", 1, 32)?;
    validate::path_id(&user_id, "usr_", 19, 25)?;
    let invite = user_body::send_invitation_email(query.as_deref())?;
    let object = validate::json_object(&headers, &body)?;
    let wrapped = serde_json::Map::from_iter([("membership".to_owned(), Value::Object(object))]);
    let membership = user_body::membership(&wrapped, &org_id, invite, CREATE)?;
    let mut inner = lock(&shared);
    if !inner.orgs.contains_key(&org_id) {
        return Err(ApiError::not_found(format!(
            "organization {org_id:?} not found"
        )));
    }
    let duplicate_status = inner.duplicate_status;
    let environment_id = inner.environment_id.clone();
    let Some(user) = inner.users.get_mut(&user_id) else {
        return Err(ApiError::not_found(format!("user {user_id:?} not found")));
    };
    if user.memberships.iter().any(|m| m.organization_id == org_id) {
        return Err(ApiError::duplicate(
            duplicate_status,
            format!("user {user_id:?} is already a member of organization {org_id:?}"),
        ));
    }
    user.memberships.push(membership);
    user.update_time = std::time::SystemTime::now();
    let user = user_body::user_json(user, &environment_id);
    Ok((StatusCode::CREATED, Json(json!({ "user": user }))))
}
