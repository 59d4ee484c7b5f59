//! The axum app: `/oauth/token`, `/_standin/state`, the `/api` routes behind the fault and
//! auth layers, a `google.rpc.Status` 404 fallback, and the request log around it all.

use axum::extract::State;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::state::{Shared, lock};
use crate::{auth, faults, manual, memberships, organizations, record, search, user_body, users};

/// Builds the app over `shared`.
pub fn build(shared: Shared) -> Router {
    // Layers run last-added first: faults, then the token check, then the handler.
    let api = organizations::routes()
        .merge(users::routes())
        .merge(search::routes())
        .merge(memberships::routes())
        .layer(from_fn_with_state(shared.clone(), auth::require_token))
        .layer(from_fn_with_state(shared.clone(), faults::inject));
    Router::new()
        .route("/oauth/token", post(auth::token))
        .route("/_standin/state", get(debug_state))
        .merge(manual::routes())
        .merge(api)
        .fallback(not_found)
        .layer(from_fn_with_state(shared.clone(), record::record))
        .with_state(shared)
}

/// Any path the stand-in does not implement.
async fn not_found() -> ApiError {
    ApiError::not_found("Not Found: the stand-in does not implement this path and method")
}

/// `GET /_standin/state` (no auth): every organization and user, for a person with curl.
async fn debug_state(State(shared): State<Shared>) -> Json<Value> {
    let inner = lock(&shared);
    let organizations: Vec<Value> = inner.orgs.values().map(organizations::org_json).collect();
    let users: Vec<Value> = inner
        .users
        .values()
        .map(|u| user_body::user_json(u, &inner.environment_id))
        .collect();
    Json(json!({
        "organizations": organizations,
        "users": users,
        "token_requests": inner.token_requests,
        "requests": inner.requests.len(),
    }))
}
