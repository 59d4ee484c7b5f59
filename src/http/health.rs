//! Liveness and readiness.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{AppState, WorkersStatus};

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the store answers and the config is loaded. Paused workers (no Scalekit
/// credentials) do not make the daemon unready, since it still receives and stores, but
/// the answer says why nothing is applied.
pub async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    let workers = match &state.workers {
        WorkersStatus::Paused(reason) => format!("paused: {reason}"),
        WorkersStatus::Running(health) => match health.problem() {
            Some(problem) => format!("failing: {problem}"),
            None => "running".to_owned(),
        },
    };
    let store = match state.store.ping().await {
        Ok(()) if !state.store.accepting_writes() => Err("the ingest writer stopped".to_owned()),
        Ok(()) => Ok(()),
        Err(e) => Err(e.to_string()),
    };
    match store {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "store": "ok", "workers": workers })),
        ),
        Err(e) => {
            tracing::error!(error = %e, "readiness check: the store cannot take events");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    json!({ "status": "unavailable", "store": "unreachable", "workers": workers }),
                ),
            )
        }
    }
}
