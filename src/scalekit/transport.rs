//! Sending one API call: URL building (absolute paths, literal colons, one percent-encoded
//! segment per id), the bearer token with its refresh-once-on-401 rule, the rate limit and
//! the 429 pause, and turning transport failures into [`ScalekitError`]s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::auth::{Issued, Token, TokenCache, parse_token_response};
use super::errors::{Operation, ScalekitError, error_detail, parse_retry_after, transport_detail};
use super::ratelimit::Throttle;
use crate::clock::Clock;
use crate::telemetry::Metrics;

/// What every clone of a client shares.
pub(crate) struct Inner {
    /// `scheme://host[:port]`, without a trailing slash; paths are appended to it.
    pub(crate) base: String,
    /// The HTTP client (timeouts set, redirects off).
    pub(crate) http: reqwest::Client,
    /// `SCALEKIT_CLIENT_ID`.
    pub(crate) client_id: String,
    /// `SCALEKIT_CLIENT_SECRET`.
    pub(crate) client_secret: SecretString,
    /// The longest `Retry-After` honoured.
    pub(crate) max_retry_after: Duration,
    /// The access token.
    pub(crate) tokens: TokenCache,
    /// Request spacing and the 429 pause.
    pub(crate) throttle: Throttle,
    /// Where "now" comes from (an HTTP-date `Retry-After` is read against it).
    pub(crate) clock: Clock,
    /// The app's registry, where calls are counted; `None` for the CLI's clients.
    pub(crate) metrics: Option<Arc<Metrics>>,
}

/// A completed call other than 429: the status and the whole body.
pub(crate) struct HttpReply {
    /// The HTTP status.
    pub(crate) status: StatusCode,
    /// The body bytes.
    pub(crate) body: Vec<u8>,
}

impl HttpReply {
    /// The error for an unexpected status of this answer.
    pub(crate) fn into_error(self, op: Operation) -> ScalekitError {
        ScalekitError::Api {
            op,
            status: self.status.as_u16(),
            detail: error_detail(&self.body),
            retry_after: None,
        }
    }
}

impl Inner {
    /// Sends one API call with a bearer token. On 401 the token is refreshed once and the
    /// call sent once more; a second 401 is [`ScalekitError::Unauthorized`]. A 429 is an
    /// error (and may pause the client); any other status is returned for the caller.
    pub(crate) async fn call(
        &self,
        op: Operation,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<HttpReply, ScalekitError> {
        let token = self.tokens.current(|| self.fetch_token()).await?;
        let answer = self.send(op, &method, path, body, &token).await?;
        if answer.status != StatusCode::UNAUTHORIZED {
            return Ok(answer);
        }
        tracing::debug!(%op, "Scalekit refused the access token; refreshing it once");
        let stale = token.generation;
        let token = self.tokens.refresh(stale, || self.fetch_token()).await?;
        let answer = self.send(op, &method, path, body, &token).await?;
        if answer.status == StatusCode::UNAUTHORIZED {
            return Err(ScalekitError::Unauthorized {
                op,
                detail: error_detail(&answer.body),
            });
        }
        Ok(answer)
    }

    /// Asks the token endpoint for a new token (form body, credentials form-encoded).
    pub(crate) async fn fetch_token(&self) -> Result<Issued, ScalekitError> {
        let op = Operation::Token;
        self.throttle
            .acquire()
            .await
            .map_err(|retry_after| ScalekitError::Paused { op, retry_after })?;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose_secret()),
        ];
        let request = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .form(&form);
        let answer = self.complete(op, "/oauth/token", request).await?;
        match answer.status.as_u16() {
            200..=299 => parse_token_response(&answer.body),
            status @ (400 | 401) => Err(ScalekitError::InvalidCredentials {
                status,
                detail: error_detail(&answer.body),
            }),
            _ => Err(answer.into_error(op)),
        }
    }

    /// One attempt of an API call, after the rate limit and pause allow it.
    async fn send(
        &self,
        op: Operation,
        method: &Method,
        path: &str,
        body: Option<&Value>,
        token: &Token,
    ) -> Result<HttpReply, ScalekitError> {
        self.throttle
            .acquire()
            .await
            .map_err(|retry_after| ScalekitError::Paused { op, retry_after })?;
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(token.value.expose_secret());
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        self.complete(op, path, request).await
    }

    /// Sends a built request and reads the whole answer; a 429 becomes an error and pauses
    /// the client for its `Retry-After`.
    async fn complete(
        &self,
        op: Operation,
        path: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<HttpReply, ScalekitError> {
        let transport = |error: reqwest::Error| ScalekitError::Transport {
            op,
            detail: transport_detail(&error),
        };
        let started = Instant::now();
        let response = request
            .send()
            .await
            .inspect_err(|_| self.count_call(op, None, started))
            .map_err(transport)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, self.clock.now(), self.max_retry_after));
        let body = response
            .bytes()
            .await
            .inspect_err(|_| self.count_call(op, None, started))
            .map_err(transport)?
            .to_vec();
        self.count_call(op, Some(status), started);
        tracing::debug!(
            %op,
            path,
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Scalekit call"
        );
        if status == StatusCode::TOO_MANY_REQUESTS {
            if let Some(wait) = retry_after {
                self.throttle.pause_for(wait);
            }
            return Err(ScalekitError::Api {
                op,
                status: status.as_u16(),
                detail: error_detail(&body),
                retry_after,
            });
        }
        Ok(HttpReply { status, body })
    }
}

impl Inner {
    /// Adds one call to `orgsync_scalekit_requests_total` (status `transport` when no
    /// complete answer came) and its duration to `orgsync_scalekit_request_seconds`, when
    /// this client records metrics.
    fn count_call(&self, op: Operation, status: Option<StatusCode>, started: Instant) {
        if let Some(metrics) = &self.metrics {
            let status = status.map(|s| s.as_u16());
            metrics.scalekit_call(operation_label(op), status, started.elapsed());
        }
    }
}

/// A short, fixed metrics label for an operation.
fn operation_label(op: Operation) -> &'static str {
    use crate::model::TargetKind::{Organization as Org, User};
    match op {
        Operation::Token => "token",
        Operation::Lookup(Org) => "lookup_organization",
        Operation::Lookup(User) => "lookup_user",
        Operation::Update { kind: Org, .. } => "update_organization",
        Operation::Update { kind: User, .. } => "update_user",
        Operation::Create(Org) => "create_organization",
        Operation::Create(User) => "create_user",
        Operation::SearchUsers => "search_users",
        Operation::AddMembership => "create_membership",
    }
}

/// Percent-encodes `value` as one path segment: everything but RFC 3986 unreserved
/// characters is encoded, so `/ ? # % :` and spaces cannot change the path.
pub(crate) fn encode_segment(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, NOT_UNRESERVED).to_string()
}

/// Every byte but RFC 3986's unreserved characters is percent-encoded.
const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Encodes an id for a path, refusing values that cannot travel as one segment: empty,
/// or `.`/`..`, which URL parsers resolve as "this/parent directory".
pub(crate) fn path_segment(what: &str, value: &str) -> Result<String, ScalekitError> {
    if value.is_empty() || value == "." || value == ".." {
        return Err(ScalekitError::InvalidInput {
            reason: format!("the {what} {value:?} cannot be used in a Scalekit URL"),
        });
    }
    Ok(encode_segment(value))
}

/// Checks the environment URL (`http`/`https`, a host, no path, query or credentials) and
/// returns its `scheme://host[:port]` form.
pub(crate) fn base_url(environment_url: &str) -> Result<String, ScalekitError> {
    let refuse = |why: &str| ScalekitError::InvalidConfig {
        reason: format!(
            "the environment URL {environment_url:?} {why}; set SCALEKIT_ENVIRONMENT_URL \
             to the bare URL of the environment, e.g. https://acme.scalekit.com"
        ),
    };
    let url = reqwest::Url::parse(environment_url.trim()).map_err(|_| refuse("is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse("does not start with https:// or http://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(refuse("has no host"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(refuse("has a path, query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("contains credentials"));
    }
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_encode_everything_that_could_change_the_path() {
        assert_eq!(encode_segment("CUST-12_3.x~"), "CUST-12_3.x~");
        assert_eq!(encode_segment("a b?#%:"), "a%20b%3F%23%25%3A");
        assert_eq!(encode_segment("a\\b"), "a%5Cb");
        assert_eq!(encode_segment("é"), "%C3%A9");
        assert!(path_segment("external id", "..").is_err());
        assert!(path_segment("external id", "").is_err());
        assert_eq!(path_segment("external id", "..a").unwrap(), "..a");
    }

    #[test]
    fn operations_have_distinct_metric_labels() {
        use crate::model::TargetKind::{Organization, User};
        let update = |kind| Operation::Update {
            kind,
            sets_external_id: false,
        };
        let ops = [
            Operation::Token,
            Operation::Lookup(Organization),
            Operation::Lookup(User),
            update(Organization),
            update(User),
            Operation::Create(Organization),
            Operation::Create(User),
            Operation::SearchUsers,
            Operation::AddMembership,
        ];
        let labels: std::collections::BTreeSet<_> = ops.into_iter().map(operation_label).collect();
        assert_eq!(labels.len(), ops.len());
        assert!(labels.contains("lookup_organization"));
    }

    #[test]
    fn colon_paths_survive_url_parsing() {
        let base = base_url("https://acme.scalekit.dev/").unwrap();
        let path = format!("/api/v1/organizations:external/{}", encode_segment("x/y z"));
        let url = reqwest::Url::parse(&format!("{base}{path}")).unwrap();
        assert_eq!(url.scheme(), "https");
        assert_eq!(url.path(), "/api/v1/organizations:external/x%2Fy%20z");
    }

    #[test]
    fn environment_urls_must_be_bare_http_origins() {
        assert_eq!(
            base_url("https://acme.scalekit.com").unwrap(),
            "https://acme.scalekit.com"
        );
        assert_eq!(
            base_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(base_url("http://[::1]:9/").unwrap(), "http://[::1]:9");
        for bad in [
            "acme.scalekit.com",
            "ftp://x",
            "https://x/api",
            "https://x/?a=1",
            "https://u:p@x",
        ] {
            let err = base_url(bad).unwrap_err();
            assert!(
                err.to_string().contains("SCALEKIT_ENVIRONMENT_URL"),
                "{bad}: {err}"
            );
        }
    }
}
