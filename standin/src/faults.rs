//! Scripted failures: the next N `/api` calls (or token requests) answer with a fault
//! instead of being handled; and lost answers: the next N writes are applied, then answered
//! with a 504, as when a gateway's deadline passes after the backend made the change.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::errors::ApiError;
use crate::state::{Shared, lock};

/// A failure to answer a call with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 with the JSON body `{"code":8,…"error_code":"RATE_LIMITED"}`, and a
    /// `Retry-After: <secs>` header when given.
    RateLimited {
        /// Seconds for the `Retry-After` header; `None` sends no header.
        retry_after_secs: Option<u64>,
    },
    /// 429 with a `text/plain` body, as a proxy in front of Scalekit may send.
    RateLimitedPlainText,
    /// Any HTTP status with a `google.rpc.Status` body (an invalid status becomes 500).
    Status(u16),
    /// No failure: the call is handled normally. Queue it first to fail a later call, e.g.
    /// `fail_next(1, Pass)` then `fail_next(1, Status(400))` lets a lookup through and
    /// refuses the PATCH after it.
    Pass,
}

impl Fault {
    /// The response this fault produces; `None` for [`Fault::Pass`].
    pub fn response(&self) -> Option<Response> {
        let response = match self {
            Fault::Pass => return None,
            Fault::RateLimited { retry_after_secs } => {
                let mut response = ApiError::rate_limited().into_response();
                if let Some(secs) = retry_after_secs {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
                }
                response
            }
            Fault::RateLimitedPlainText => (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "Too Many Requests\n",
            )
                .into_response(),
            Fault::Status(status) => ApiError::injected(*status).into_response(),
        };
        Some(response)
    }
}

/// Marks a response whose real answer was lost (read by the request log).
#[derive(Debug, Clone, Copy)]
pub struct LostAnswer;

/// Middleware on `/api` routes: answers with the next queued fault, if any; else handles
/// the call, and loses the answer of an applied write while lost answers are scripted.
pub async fn inject(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let fault = lock(&shared).api_faults.pop_front();
    if let Some(response) = fault.and_then(|f| f.response()) {
        return response;
    }
    let write = request.method() != Method::GET;
    let response = next.run(request).await;
    if !(write && response.status().is_success()) {
        return response;
    }
    {
        let mut inner = lock(&shared);
        if inner.writes_to_lose == 0 {
            return response;
        }
        inner.writes_to_lose -= 1;
        inner.lost_answers += 1;
    }
    let mut lost = ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        4,
        "DEADLINE_EXCEEDED",
        "upstream request timeout",
    )
    .into_response();
    lost.extensions_mut().insert(LostAnswer);
    lost
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The status and Retry-After of a fault's response.
    fn answer(fault: Fault) -> Option<(StatusCode, Option<HeaderValue>)> {
        let response = fault.response()?;
        Some((
            response.status(),
            response.headers().get(header::RETRY_AFTER).cloned(),
        ))
    }

    #[test]
    fn rate_limited_sets_retry_after_only_when_given() {
        let with = answer(Fault::RateLimited {
            retry_after_secs: Some(7),
        });
        assert_eq!(
            with,
            Some((StatusCode::TOO_MANY_REQUESTS, Some(HeaderValue::from(7))))
        );
        let without = answer(Fault::RateLimited {
            retry_after_secs: None,
        });
        assert_eq!(without, Some((StatusCode::TOO_MANY_REQUESTS, None)));
    }

    #[test]
    fn status_faults_and_pass() {
        let invalid = answer(Fault::Status(42));
        assert_eq!(invalid, Some((StatusCode::INTERNAL_SERVER_ERROR, None)));
        assert_eq!(
            answer(Fault::Status(503)),
            Some((StatusCode::SERVICE_UNAVAILABLE, None))
        );
        assert_eq!(answer(Fault::Pass), None);
    }
}
