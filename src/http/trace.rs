//! Every request gets an id and a span. [`assign_request_id`] makes the id (handlers read
//! it as an extension: a SOAP fault names it) and repeats it in the answer's `x-request-id`;
//! [`layer`] runs the request in a `request` span with the method, path and id, to which
//! the webhook handler adds the source and the outcome once it knows them, so every log line
//! of a request carries them.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{
    DefaultOnBodyChunk, DefaultOnEos, DefaultOnRequest, DefaultOnResponse, MakeSpan, TraceLayer,
};
use tracing::Span;
use tracing::field::Empty;

/// The header that carries a request's id in the answer.
const REQUEST_ID_HEADER: &str = "x-request-id";

/// One request's id: 16 hex digits, made here (an id a caller sends is not trusted: it
/// would end up in logs and answers).
#[derive(Debug, Clone)]
pub struct RequestId(String);

impl RequestId {
    /// A new random id.
    fn generate() -> Self {
        Self(format!("{:016x}", rand::random::<u64>()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Gives the request a [`RequestId`] and puts it on the answer as `x-request-id`.
pub(super) async fn assign_request_id(mut request: Request, next: Next) -> Response {
    let id = RequestId::generate();
    let header = HeaderValue::from_str(id.as_str()).ok();
    request.extensions_mut().insert(id);
    let mut response = next.run(request).await;
    if let Some(header) = header {
        response.headers_mut().insert(REQUEST_ID_HEADER, header);
    }
    response
}

/// The tracing layer: a [`RequestSpan`] per request; the start and the answer (status,
/// latency) are logged at debug level. Failures are not logged again here: a SOAP refusal
/// answers 500 and is logged (and rate-limited) by the handler, which knows why.
pub(super) type Layer = TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    RequestSpan,
    DefaultOnRequest,
    DefaultOnResponse,
    DefaultOnBodyChunk,
    DefaultOnEos,
    (),
>;

/// See [`Layer`].
pub(super) fn layer() -> Layer {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_failure(())
}

/// Makes the `request` span: method, path (never the query: it may hold a token), the
/// request id, and the `source` and `outcome` fields a handler records later.
#[derive(Debug, Clone, Copy)]
pub(super) struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &axum::http::Request<B>) -> Span {
        let id = request
            .extensions()
            .get::<RequestId>()
            .map_or("", RequestId::as_str);
        tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path(),
            request_id = %id,
            source = Empty,
            outcome = Empty,
        )
    }
}

/// Records the configured source a delivery is for in the current request span.
pub(super) fn record_source(source: &str) {
    Span::current().record("source", tracing::field::display(source));
}

/// Records how a delivery was answered in the current request span.
pub(super) fn record_outcome(outcome: &'static str) {
    Span::current().record("outcome", tracing::field::display(outcome));
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::extract::Extension;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn every_answer_carries_the_id_its_handler_saw() {
        let app = Router::new()
            .route(
                "/",
                get(|Extension(id): Extension<RequestId>| async move { id.0 }),
            )
            .layer(layer())
            .layer(axum::middleware::from_fn(assign_request_id));
        let mut ids = Vec::new();
        for _ in 0..2 {
            let request = axum::http::Request::new(Body::empty());
            let response = app.clone().oneshot(request).await.unwrap();
            let header = response.headers()[REQUEST_ID_HEADER].to_str().unwrap();
            let header = header.to_owned();
            let body = axum::body::to_bytes(response.into_body(), 64)
                .await
                .unwrap();
            assert_eq!(header.as_bytes(), &body[..]);
            assert_eq!(header.len(), 16);
            assert!(header.chars().all(|c| c.is_ascii_hexdigit()), "{header}");
            ids.push(header);
        }
        assert_ne!(ids[0], ids[1]);
    }
}
