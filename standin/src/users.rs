//! User operations U1–U4 and U7 (reference §5), with §6 update semantics.

use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::state::{Inner, Shared, UserRecord, lock};
use crate::user_body::{self, ProfilePatch};
use crate::validate::{self, USER_MAX_PAIRS};

/// Request message names, for validation messages.
const CREATE: &str = "CreateUserAndMembershipRequest.User";
/// See [`CREATE`].
const UPDATE: &str = "UpdateUserRequest.User";
/// Keys a create body may carry.
const CREATE_KEYS: &[&str] = &[
    "email",
    "external_id",
    "metadata",
    "user_profile",
    "membership",
];
/// Keys a PATCH-by-id body may carry.
const UPDATE_KEYS: &[&str] = &["external_id", "metadata", "user_profile"];
/// Keys a PATCH-by-external-id body may carry.
const UPDATE_BY_EXTERNAL_KEYS: &[&str] = &["metadata", "user_profile"];

/// Reply type of every handler here.
type Reply = Result<(StatusCode, Json<Value>), ApiError>;

/// The user routes.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/v1/organizations/{id}/users", post(create_in_org))
        .route(
            "/api/v1/users:external/",
            get(external_id_required).patch(external_id_required),
        )
        .route(
            "/api/v1/users:external/{external_id}",
            get(get_by_external_id).patch(update_by_external_id),
        )
        .route(
            "/api/v1/users/{id}",
            get(get_by_id).patch(update_by_id).delete(delete),
        )
}

/// Wraps a user into a 2xx reply.
fn wrapped(status: StatusCode, inner: &Inner, user: &UserRecord) -> Reply {
    let user = user_body::user_json(user, &inner.environment_id);
    Ok((status, Json(json!({"user": user}))))
}

/// `users:external/` with an empty external id.
async fn external_id_required() -> ApiError {
    ApiError::invalid("ExternalId is required")
}

/// U1: the main lookup, environment-wide; 404 when no user has the external id.
async fn get_by_external_id(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
    path: Result<Path<String>, PathRejection>,
) -> Reply {
    validate::no_query(&query)?;
    let external_id = validate::path_param(path)?;
    let inner = lock(&shared);
    let id = by_external_id(&inner, &external_id)?;
    wrapped(StatusCode::OK, &inner, find(&inner, &id)?)
}

/// U2: get by id (`usr_`, 1–32 chars).
async fn get_by_id(
    State(shared): State<Shared>,
    path: Result<Path<String>, PathRejection>,
) -> Reply {
    let id = validate::path_param(path)?;
    validate::path_id(&id, "usr_", 1, 32)?;
    let inner = lock(&shared);
    wrapped(StatusCode::OK, &inner, find(&inner, &id)?)
}

/// U4: create a user with a membership; records `send_invitation_email`; 201.
async fn create_in_org(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Reply {
    let org_id = validate::path_param(path)?;
    validate::path_id(&org_id, "org_", 1, 32)?;
    let invite = user_body::send_invitation_email(query.as_deref())?;
    let object = validate::json_object(&headers, &body)?;
    validate::no_unknown_keys(&object, CREATE_KEYS, "the user")?;
    let Some(email) = validate::string_field(&object, "email", (3, 320), CREATE)? else {
        return Err(ApiError::violation(
            CREATE,
            "email",
            "value is required",
            "required",
        ));
    };
    if email.split('@').filter(|part| !part.is_empty()).count() != 2 {
        return Err(ApiError::violation(
            CREATE,
            "email",
            "must be an email address",
            "string.email",
        ));
    }
    let external_id = validate::string_field(&object, "external_id", (1, 510), CREATE)?;
    let metadata = match object.get("metadata") {
        Some(value) => validate::metadata(value, USER_MAX_PAIRS, "metadata", CREATE)?,
        None => Default::default(),
    };
    let profile = ProfilePatch::parse(&object, CREATE)?;
    let membership = user_body::membership(&object, &org_id, invite, CREATE)?;
    let mut inner = lock(&shared);
    if !inner.orgs.contains_key(&org_id) {
        return Err(ApiError::not_found(format!(
            "organization {org_id:?} not found"
        )));
    }
    if inner.email_taken(&email) {
        let message = format!("user with email {email:?} already exists");
        return Err(ApiError::duplicate(inner.duplicate_status, message));
    }
    check_unique(&inner, external_id.as_deref(), None)?;
    let id = inner.insert_user(email, external_id, membership);
    let Some(user) = inner.users.get_mut(&id) else {
        return Err(ApiError::not_found(format!("user {id:?} vanished")));
    };
    user.metadata = metadata;
    user.send_invitation_email = Some(invite);
    profile.apply(&mut user.profile);
    let user = user.clone();
    wrapped(StatusCode::CREATED, &inner, &user)
}

/// U3 by id (`usr_`, 19–25 chars): keys `external_id`, `metadata`, `user_profile`.
async fn update_by_id(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Reply {
    let id = validate::path_param(path)?;
    validate::path_id(&id, "usr_", 19, 25)?;
    validate::no_query(&query)?;
    let object = validate::json_object(&headers, &body)?;
    validate::no_unknown_keys(&object, UPDATE_KEYS, "the user")?;
    let mut inner = lock(&shared);
    find(&inner, &id)?;
    patch(&mut inner, &id, &object)
}

/// U3 by external id: the body must not carry `external_id` (change it by id).
async fn update_by_external_id(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Reply {
    let external_id = validate::path_param(path)?;
    validate::no_query(&query)?;
    let object = validate::json_object(&headers, &body)?;
    if object.contains_key("external_id") {
        return Err(ApiError::invalid(
            "external_id must not be in the body of PATCH users:external; change it through \
             PATCH /api/v1/users/{id}",
        ));
    }
    validate::no_unknown_keys(&object, UPDATE_BY_EXTERNAL_KEYS, "the user")?;
    let mut inner = lock(&shared);
    let id = by_external_id(&inner, &external_id)?;
    patch(&mut inner, &id, &object)
}

/// Applies a validated-shape PATCH body to user `id`; `"metadata":{}` leaves it unchanged.
fn patch(inner: &mut Inner, id: &str, object: &serde_json::Map<String, Value>) -> Reply {
    let external_id = validate::string_field(object, "external_id", (1, 510), UPDATE)?;
    let metadata = match object.get("metadata") {
        Some(value) => Some(validate::metadata(
            value,
            USER_MAX_PAIRS,
            "metadata",
            UPDATE,
        )?)
        .filter(|m| !m.is_empty()),
        None => None,
    };
    let profile = ProfilePatch::parse(object, UPDATE)?;
    check_unique(inner, external_id.as_deref(), Some(id))?;
    let merge = inner.merge_metadata;
    let Some(user) = inner.users.get_mut(id) else {
        return Err(ApiError::not_found(format!("user {id:?} not found")));
    };
    if let Some(metadata) = metadata {
        if merge {
            let mut merged = user.metadata.clone();
            merged.extend(metadata);
            validate::max_pairs_ok(&merged, USER_MAX_PAIRS, "metadata", UPDATE)?;
            user.metadata = merged;
        } else {
            user.metadata = metadata;
        }
    }
    if external_id.is_some() {
        user.external_id = external_id;
    }
    profile.apply(&mut user.profile);
    user.update_time = SystemTime::now();
    let user = user.clone();
    wrapped(StatusCode::OK, inner, &user)
}

/// U7: delete by id (`usr_`, 19–25 chars); `{}`.
async fn delete(State(shared): State<Shared>, path: Result<Path<String>, PathRejection>) -> Reply {
    let id = validate::path_param(path)?;
    validate::path_id(&id, "usr_", 19, 25)?;
    match lock(&shared).users.remove(&id) {
        Some(_) => Ok((StatusCode::OK, Json(json!({})))),
        None => Err(ApiError::not_found(format!("user {id:?} not found"))),
    }
}

/// The user with `id`, or 404.
fn find<'a>(inner: &'a Inner, id: &str) -> Result<&'a UserRecord, ApiError> {
    inner
        .users
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("user {id:?} not found")))
}

/// The id of the user with `external_id`, or 404.
fn by_external_id(inner: &Inner, external_id: &str) -> Result<String, ApiError> {
    inner.user_id_by_external_id(external_id).ok_or_else(|| {
        ApiError::not_found(format!("user with external_id {external_id:?} not found"))
    })
}

/// Refuses an external id another user already has.
fn check_unique(
    inner: &Inner,
    external_id: Option<&str>,
    own_id: Option<&str>,
) -> Result<(), ApiError> {
    let Some(external_id) = external_id else {
        return Ok(());
    };
    match inner.user_id_by_external_id(external_id) {
        Some(other) if Some(other.as_str()) != own_id => Err(ApiError::duplicate(
            inner.duplicate_status,
            format!("user with external_id {external_id:?} already exists"),
        )),
        _ => Ok(()),
    }
}
