//! Sending requests to the stand-in's router and reading the answers.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request};
use http_body_util::BodyExt;
use scalekit_standin::{CLIENT_ID, CLIENT_SECRET, StandIn};
use serde_json::Value;
use tower::ServiceExt;

/// An answer: status, headers, body as JSON (`Null` when not JSON) and as text.
pub struct ApiReply {
    pub status: u16,
    pub headers: HeaderMap,
    pub json: Value,
    pub text: String,
}

/// A stand-in, its router, and a valid token.
pub struct Harness {
    pub standin: StandIn,
    pub app: Router,
    pub token: String,
}

impl Harness {
    /// A fresh stand-in with one token already issued.
    pub async fn new() -> Harness {
        let standin = StandIn::new();
        let app = standin.router();
        let token = issue_token(&app).await;
        Harness {
            standin,
            app,
            token,
        }
    }

    /// An authenticated call with an optional JSON body.
    pub async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> ApiReply {
        send(&self.app, method, uri, Some(&self.token), body).await
    }

    /// GET with the token.
    pub async fn get(&self, uri: &str) -> ApiReply {
        self.call("GET", uri, None).await
    }
}

/// Sends one request; a JSON body goes with `Content-Type: application/json`.
pub async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> ApiReply {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let body = match body {
        Some(json) => {
            builder = builder.header("content-type", "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    let request = builder.body(body).expect("valid test request");
    answer(app, request).await
}

/// Sends a prepared request.
pub async fn answer(app: &Router, request: Request<Body>) -> ApiReply {
    let response = app
        .clone()
        .oneshot(request)
        .await
        .expect("infallible router");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    ApiReply {
        status,
        headers,
        json,
        text,
    }
}

/// Posts a raw form body to `/oauth/token`.
pub async fn token_request(app: &Router, form: &str) -> ApiReply {
    let request = Request::builder()
        .method("POST")
        .uri("/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .expect("valid test request");
    answer(app, request).await
}

/// The correct token form, with the secret form-encoded.
pub fn good_form() -> String {
    let secret = CLIENT_SECRET
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    format!("grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={secret}")
}

/// Issues a token through the endpoint.
pub async fn issue_token(app: &Router) -> String {
    let answer = token_request(app, &good_form()).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// The first field violation's constraint of a 400 body.
pub fn constraint(answer: &ApiReply) -> &str {
    answer.json["details"][0]["validation_error_info"]["field_violations"][0]["constraint"]
        .as_str()
        .unwrap_or("")
}
