//! Scripted failures: the next N `/api` calls (or token requests) answer with a fault
//! instead of being handled.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
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
}

impl Fault {
    /// The response this fault produces.
    pub fn response(&self) -> Response {
        match self {
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
        }
    }
}

/// Middleware on `/api` routes: answers with the next queued fault, if any.
pub async fn inject(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let fault = lock(&shared).api_faults.pop_front();
    match fault {
        Some(fault) => fault.response(),
        None => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_sets_retry_after_only_when_given() {
        let with = Fault::RateLimited {
            retry_after_secs: Some(7),
        }
        .response();
        assert_eq!(with.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(with.headers()[header::RETRY_AFTER], "7");
        let without = Fault::RateLimited {
            retry_after_secs: None,
        }
        .response();
        assert!(without.headers().get(header::RETRY_AFTER).is_none());
    }

    #[test]
    fn invalid_status_becomes_500() {
        assert_eq!(
            Fault::Status(42).response().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            Fault::Status(503).response().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
