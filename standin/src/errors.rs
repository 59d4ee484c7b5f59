//! `google.rpc.Status` error bodies (reference §7), the only error shape `/api` routes send.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The `@type` of every error detail Scalekit sends.
pub const ERROR_INFO_TYPE: &str = "type.googleapis.com/scalekit.v1.errdetails.ErrorInfo";

/// One entry of `validation_error_info.field_violations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The offending field, e.g. `metadata`.
    pub field: String,
    /// What is wrong with it.
    pub description: String,
    /// The buf.validate rule id, e.g. `string.min_len`.
    pub constraint: &'static str,
}

/// An error answered as a `google.rpc.Status` JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// gRPC code number.
    pub code: u16,
    /// gRPC code name (or Scalekit's own, e.g. `RATE_LIMITED`) for `error_code`.
    pub error_code: &'static str,
    /// Human-readable message (not a contract).
    pub message: String,
    /// Field violations, for validation errors.
    pub violations: Vec<FieldViolation>,
}

impl ApiError {
    /// 400 INVALID_ARGUMENT without field violations (decoding errors, bad paths).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 3, "INVALID_ARGUMENT", message)
    }

    /// 400 INVALID_ARGUMENT with one field violation, as buf.validate reports it.
    pub fn violation(
        request: &str,
        field: &str,
        description: impl Into<String>,
        constraint: &'static str,
    ) -> Self {
        let description = description.into();
        let mut err = Self::invalid(format!("invalid {request}: {field}: {description}"));
        err.violations.push(FieldViolation {
            field: field.to_owned(),
            description,
            constraint,
        });
        err
    }

    /// 404 NOT_FOUND.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, 5, "NOT_FOUND", message)
    }

    /// 401 with the exact documented body (§2): used for missing, unknown and expired tokens.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            16,
            "UNAUTHENTICATED",
            "Token empty",
        )
    }

    /// A duplicate external id or email: 400 INVALID_ARGUMENT, or 409 ALREADY_EXISTS when
    /// the duplicate switch says 409 (§8).
    pub fn duplicate(conflict_status: u16, message: impl Into<String>) -> Self {
        if conflict_status == 409 {
            Self::new(StatusCode::CONFLICT, 6, "ALREADY_EXISTS", message)
        } else {
            Self::invalid(message)
        }
    }

    /// 429 RESOURCE_EXHAUSTED with Scalekit's `RATE_LIMITED` error code (§9).
    pub fn rate_limited() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            8,
            "RATE_LIMITED",
            "rate limit exceeded",
        )
    }

    /// An injected failure with any HTTP status; the gRPC code follows the gateway table.
    pub fn injected(status: u16) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (code, name) = grpc_code_for(status);
        Self::new(
            status,
            code,
            name,
            format!("injected fault: HTTP {}", status.as_u16()),
        )
    }

    /// Builds an error from its parts.
    pub fn new(
        status: StatusCode,
        code: u16,
        error_code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            error_code,
            message: message.into(),
            violations: Vec::new(),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut detail = json!({"@type": ERROR_INFO_TYPE, "error_code": self.error_code});
        if !self.violations.is_empty() {
            let violations: Vec<Value> = self
                .violations
                .iter()
                .map(|v| {
                    json!({"field": v.field, "description": v.description, "constraint": v.constraint})
                })
                .collect();
            detail["validation_error_info"] = json!({"field_violations": violations});
        }
        json!({"code": self.code, "message": self.message, "details": [detail]})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

/// The grpc-gateway HTTP → gRPC code mapping (reference §7), reversed.
fn grpc_code_for(status: StatusCode) -> (u16, &'static str) {
    match status.as_u16() {
        400 => (3, "INVALID_ARGUMENT"),
        401 => (16, "UNAUTHENTICATED"),
        403 => (7, "PERMISSION_DENIED"),
        404 => (5, "NOT_FOUND"),
        409 => (6, "ALREADY_EXISTS"),
        429 => (8, "RESOURCE_EXHAUSTED"),
        501 => (12, "UNIMPLEMENTED"),
        503 => (14, "UNAVAILABLE"),
        504 => (4, "DEADLINE_EXCEEDED"),
        500 => (13, "INTERNAL"),
        _ => (2, "UNKNOWN"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unauthenticated_body_is_the_documented_one() {
        let expected = json!({"code":16,"message":"Token empty","details":[{"@type":"type.googleapis.com/scalekit.v1.errdetails.ErrorInfo","error_code":"UNAUTHENTICATED"}]});
        assert_eq!(ApiError::unauthenticated().body(), expected);
    }

    #[test]
    fn violation_carries_field_description_and_constraint() {
        let err = ApiError::violation("R", "metadata", "too long", "string.max_len");
        let body = err.body();
        let v = &body["details"][0]["validation_error_info"]["field_violations"][0];
        assert_eq!(v["field"], "metadata");
        assert_eq!(v["constraint"], "string.max_len");
        assert_eq!(body["code"], 3);
    }

    #[test]
    fn duplicate_switch_selects_409() {
        assert_eq!(
            ApiError::duplicate(400, "x").status,
            StatusCode::BAD_REQUEST
        );
        let conflict = ApiError::duplicate(409, "x");
        assert_eq!((conflict.status, conflict.code), (StatusCode::CONFLICT, 6));
    }
}
