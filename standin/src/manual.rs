//! `PATCH /_standin/organizations/{external_id}/metadata` (no auth, not Scalekit's API):
//! edits an organization's metadata by hand, as someone in the Scalekit dashboard would,
//! for demos of `orgsync drift`. The body maps keys to a string (set) or `null` (remove).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Json, Router};
use serde_json::Value;

use crate::errors::ApiError;
use crate::organizations::org_json;
use crate::state::{Shared, lock};

/// The hand-edit route.
pub fn routes() -> Router<Shared> {
    Router::new().route(
        "/_standin/organizations/{external_id}/metadata",
        axum::routing::patch(edit),
    )
}

/// Applies `{"key": "value" | null, …}` to the organization with the external id.
async fn edit(
    State(shared): State<Shared>,
    Path(external_id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let edits: serde_json::Map<String, Value> = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid(format!("the body must be a JSON object: {e}")))?;
    let mut inner = lock(&shared);
    let Some(org) = inner
        .orgs
        .values_mut()
        .find(|o| o.external_id.as_deref() == Some(external_id.as_str()))
    else {
        return Err(ApiError::not_found(format!(
            "organization with external_id {external_id:?} not found"
        )));
    };
    for (key, value) in edits {
        match value {
            Value::String(value) => {
                org.metadata.insert(key, value);
            }
            Value::Null => {
                org.metadata.remove(&key);
            }
            other => {
                return Err(ApiError::invalid(format!(
                    "{key}: a string sets the key, null removes it; got {other}"
                )));
            }
        }
    }
    org.update_time = std::time::SystemTime::now();
    Ok((StatusCode::OK, Json(org_json(org))))
}
