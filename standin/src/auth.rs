//! `POST /oauth/token` (client credentials in the form body, §2) and the bearer check on
//! every `/api` call.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use axum::Form;
use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngExt;
use serde_json::json;

use crate::errors::ApiError;
use crate::state::{Shared, lock};
use crate::{CLIENT_ID, CLIENT_SECRET};

/// `POST /oauth/token`: counts the request, then issues an opaque token for the right
/// client credentials.
pub async fn token(State(shared): State<Shared>, request: Request) -> Response {
    let fault = {
        let mut inner = lock(&shared);
        inner.token_requests += 1;
        inner.token_faults.pop_front()
    };
    if let Some(response) = fault.and_then(|f| f.response()) {
        return response;
    }
    let form = match Form::<HashMap<String, String>>::from_request(request, &()).await {
        Ok(Form(form)) => form,
        Err(rejection) => {
            let description = format!(
                "send client credentials as an application/x-www-form-urlencoded body: {}",
                rejection.body_text()
            );
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                Some(&description),
            );
        }
    };
    let field = |name: &str| form.get(name).map(String::as_str);
    if field("client_id") != Some(CLIENT_ID) || field("client_secret") != Some(CLIENT_SECRET) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", None);
    }
    if field("grant_type") != Some("client_credentials") {
        let description = "grant_type must be client_credentials";
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            Some(description),
        );
    }
    let (token, ttl, omit) = {
        let mut inner = lock(&shared);
        let token = new_token();
        let expiry = Instant::now() + Duration::from_secs(inner.token_ttl_secs);
        inner.tokens.insert(token.clone(), expiry);
        (token, inner.token_ttl_secs, inner.omit_expires_in)
    };
    let mut body = json!({"access_token": token, "token_type": "Bearer"});
    if !omit {
        body["expires_in"] = json!(ttl);
    }
    Json(body).into_response()
}

/// Middleware on `/api` routes: a missing, unknown or expired bearer token gets the
/// documented 401 body.
pub async fn require_token(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let valid = match bearer(request.headers()) {
        Some(token) => lock(&shared).token_valid(token, Instant::now()),
        None => false,
    };
    if valid {
        next.run(request).await
    } else {
        ApiError::unauthenticated().into_response()
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// An OAuth-style error body: `{"error":…}` plus an optional description.
fn oauth_error(status: StatusCode, error: &str, description: Option<&str>) -> Response {
    let mut body = json!({"error": error});
    if let Some(description) = description {
        body["error_description"] = json!(description);
    }
    (status, Json(body)).into_response()
}

/// A random opaque token (the real one is a JWT; clients must not look inside).
fn new_token() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().fold(String::from("sk_standin_"), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_requires_the_scheme_and_a_token() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&headers), None);
    }

    #[test]
    fn tokens_are_random() {
        assert_ne!(new_token(), new_token());
    }
}
