//! What can go wrong when talking to Scalekit, and what the caller should do about it.
//!
//! The client only *classifies* a failure ([`FailureClass`]); the worker's retry policy
//! owns the schedule. Classification branches on the HTTP status and the operation, never
//! on message texts, which only enrich logs and dead-letter reasons.

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::model::TargetKind;

use super::metadata::MetadataError;

/// The longest excerpt of an error body kept for logs and dead-letter reasons.
const MAX_DETAIL_CHARS: usize = 300;

/// A failed Scalekit call. Cloneable so that one failed token request can be shared by
/// every caller that waited for it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ScalekitError {
    /// The client settings cannot work (bad environment URL, HTTP client setup).
    #[error("invalid Scalekit settings: {reason}")]
    InvalidConfig {
        /// What is wrong and what to set instead.
        reason: String,
    },
    /// The metadata map breaks Scalekit's limits; no request was sent.
    #[error(transparent)]
    InvalidMetadata(#[from] MetadataError),
    /// A request value Scalekit would refuse or that cannot travel in a URL; nothing was sent.
    #[error("cannot send to Scalekit: {reason}")]
    InvalidInput {
        /// What was wrong with the value.
        reason: String,
    },
    /// The token endpoint refused the client id or secret.
    #[error(
        "Scalekit refused the client credentials (HTTP {status}: {detail}); \
         check SCALEKIT_CLIENT_ID and SCALEKIT_CLIENT_SECRET"
    )]
    InvalidCredentials {
        /// The token endpoint's status (400 or 401).
        status: u16,
        /// The endpoint's error text.
        detail: String,
    },
    /// An API call was refused with 401 even with a freshly issued token.
    #[error(
        "Scalekit answered 401 to {op} even with a fresh token ({detail}); \
         check that the API client of SCALEKIT_CLIENT_ID may manage this environment"
    )]
    Unauthorized {
        /// The call that was refused.
        op: Operation,
        /// Scalekit's error text.
        detail: String,
    },
    /// A recent 429 paused this client; the call was not sent.
    #[error("Scalekit calls are paused for {}s after a 429 answer; {op} was not sent", retry_after.as_secs_f32())]
    Paused {
        /// The call that was held back.
        op: Operation,
        /// How long the pause still lasts.
        retry_after: Duration,
    },
    /// Scalekit answered with an unsuccessful status.
    #[error("Scalekit answered {status} to {op}: {detail}")]
    Api {
        /// The call that failed.
        op: Operation,
        /// The HTTP status.
        status: u16,
        /// Scalekit's message (or the start of a non-JSON body).
        detail: String,
        /// The clamped `Retry-After` of a 429, when present.
        retry_after: Option<Duration>,
    },
    /// The request did not complete: connection error, timeout, unreadable body.
    #[error("no answer from Scalekit to {op}: {detail}")]
    Transport {
        /// The call that failed.
        op: Operation,
        /// The transport error with its causes.
        detail: String,
    },
    /// Scalekit answered 2xx with a body the client cannot understand.
    #[error("unexpected answer from Scalekit to {op}: {reason}")]
    InvalidResponse {
        /// The call whose answer was refused.
        op: Operation,
        /// What was wrong with the body.
        reason: String,
    },
}

/// What the caller should do about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// Scalekit is rate limiting: retry after `retry_after` (already clamped) or back off.
    /// Does not use up the job's failure budget.
    RateLimited {
        /// When Scalekit said to come back, if it said.
        retry_after: Option<Duration>,
    },
    /// Worth retrying with backoff: 5xx, timeouts, connection errors, repeated 401.
    Transient,
    /// Retrying cannot help: validation errors, 403, bad credentials, bad metadata.
    Permanent,
    /// 400/409 on a create or on a PATCH that sets `external_id`: the caller re-reads the
    /// object by external id and reconciles.
    Conflict,
    /// 404 on a call by Scalekit id: the object vanished; re-resolve by external id.
    NotFound,
}

/// Which call failed, for classification and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `POST /oauth/token`.
    Token,
    /// Get an organization or user by external id.
    Lookup(TargetKind),
    /// PATCH an organization or user by id.
    Update {
        /// Organization or user.
        kind: TargetKind,
        /// Whether the body sets a new external id (a 400/409 is then a conflict).
        sets_external_id: bool,
    },
    /// Create an organization or user.
    Create(TargetKind),
    /// Search users by text (`users:search`).
    SearchUsers,
    /// Add a user to an organization (a membership).
    AddMembership,
}

impl Operation {
    /// Whether a 400/409 on this call may be a duplicate external id or email.
    fn may_conflict(self) -> bool {
        matches!(
            self,
            Operation::Create(_)
                | Operation::AddMembership
                | Operation::Update {
                    sets_external_id: true,
                    ..
                }
        )
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operation::Token => f.write_str("the token request"),
            Operation::Lookup(kind) => write!(f, "{} lookup by external id", article(*kind)),
            Operation::Update { kind, .. } => write!(f, "{} update", article(*kind)),
            Operation::Create(kind) => write!(f, "{} creation", article(*kind)),
            Operation::SearchUsers => f.write_str("a user search"),
            Operation::AddMembership => f.write_str("a membership creation"),
        }
    }
}

/// The kind with its indefinite article, for messages.
fn article(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Organization => "an organization",
        TargetKind::User => "a user",
    }
}

impl ScalekitError {
    /// Whether to retry, reconcile, re-resolve or give up.
    pub fn class(&self) -> FailureClass {
        match self {
            ScalekitError::InvalidConfig { .. }
            | ScalekitError::InvalidMetadata(_)
            | ScalekitError::InvalidInput { .. }
            | ScalekitError::InvalidCredentials { .. } => FailureClass::Permanent,
            ScalekitError::Unauthorized { .. } | ScalekitError::Transport { .. } => {
                FailureClass::Transient
            }
            ScalekitError::Paused { retry_after, .. } => FailureClass::RateLimited {
                retry_after: Some(*retry_after),
            },
            ScalekitError::InvalidResponse { op, .. } => match op {
                Operation::Token => FailureClass::Transient,
                _ => FailureClass::Permanent,
            },
            ScalekitError::Api {
                op,
                status,
                retry_after,
                ..
            } => classify_status(*op, *status, *retry_after),
        }
    }

    /// The HTTP status Scalekit answered with, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ScalekitError::Api { status, .. }
            | ScalekitError::InvalidCredentials { status, .. } => Some(*status),
            ScalekitError::Unauthorized { .. } => Some(401),
            _ => None,
        }
    }
}

/// The reference's client-action table (§7), by status and operation.
fn classify_status(op: Operation, status: u16, retry_after: Option<Duration>) -> FailureClass {
    match status {
        429 => FailureClass::RateLimited { retry_after },
        408 | 500 | 502..=599 => FailureClass::Transient,
        401 => FailureClass::Transient,
        _ if op == Operation::Token => FailureClass::Permanent,
        404 => FailureClass::NotFound,
        400 | 409 if op.may_conflict() => FailureClass::Conflict,
        _ => FailureClass::Permanent,
    }
}

/// The text worth keeping from an error body: the `google.rpc.Status` message, the OAuth
/// `error`/`error_description`, or the start of a non-JSON body.
pub(crate) fn error_detail(body: &[u8]) -> String {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(body) {
        let text = |key: &str| {
            map.get(key)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
        };
        if let Some(message) = text("message") {
            return truncate(message);
        }
        if let Some(error) = text("error") {
            return truncate(&match text("error_description") {
                Some(description) => format!("{error}: {description}"),
                None => error.to_owned(),
            });
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        "(empty body)".to_owned()
    } else {
        truncate(&text)
    }
}

/// Cuts long texts at a character boundary, marking the cut.
fn truncate(text: &str) -> String {
    match text.char_indices().nth(MAX_DETAIL_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Reads a `Retry-After` value (delta-seconds or HTTP date) as a wait from `now`,
/// clamped to `max`. Unreadable values count as absent.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime, max: Duration) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(max))
}

/// The message of a transport error with its whole cause chain.
pub(crate) fn transport_detail(error: &reqwest::Error) -> String {
    let mut detail = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: TargetKind = TargetKind::Organization;

    fn api(op: Operation, status: u16) -> ScalekitError {
        ScalekitError::Api {
            op,
            status,
            detail: "x".into(),
            retry_after: None,
        }
    }

    #[test]
    fn statuses_follow_the_client_action_table() {
        let patch = Operation::Update {
            kind: ORG,
            sets_external_id: false,
        };
        let relink = Operation::Update {
            kind: ORG,
            sets_external_id: true,
        };
        let create = Operation::Create(ORG);
        assert_eq!(api(patch, 400).class(), FailureClass::Permanent);
        assert_eq!(api(patch, 409).class(), FailureClass::Permanent);
        assert_eq!(api(relink, 400).class(), FailureClass::Conflict);
        assert_eq!(api(create, 409).class(), FailureClass::Conflict);
        assert_eq!(api(create, 403).class(), FailureClass::Permanent);
        assert_eq!(api(patch, 404).class(), FailureClass::NotFound);
        assert_eq!(api(patch, 501).class(), FailureClass::Permanent);
        for status in [500, 502, 503, 504, 408] {
            assert_eq!(
                api(patch, status).class(),
                FailureClass::Transient,
                "{status}"
            );
        }
        assert_eq!(
            api(patch, 429).class(),
            FailureClass::RateLimited { retry_after: None }
        );
    }

    #[test]
    fn token_endpoint_failures_other_than_overload_are_permanent() {
        assert_eq!(api(Operation::Token, 404).class(), FailureClass::Permanent);
        assert_eq!(api(Operation::Token, 503).class(), FailureClass::Transient);
        let refused = ScalekitError::InvalidCredentials {
            status: 401,
            detail: "invalid_client".into(),
        };
        assert_eq!(refused.class(), FailureClass::Permanent);
        assert!(refused.to_string().contains("SCALEKIT_CLIENT_SECRET"));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates_and_clamps() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let max = Duration::from_secs(120);
        assert_eq!(
            parse_retry_after(" 7 ", now, max),
            Some(Duration::from_secs(7))
        );
        assert_eq!(parse_retry_after("86400", now, max), Some(max));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&date, now, max),
            Some(Duration::from_secs(30))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now, max), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now, max), None);
        assert_eq!(parse_retry_after("-3", now, max), None);
    }

    #[test]
    fn error_details_come_from_status_json_oauth_json_or_raw_text() {
        let status = br#"{"code":3,"message":"metadata: value too long","details":[]}"#;
        assert_eq!(error_detail(status), "metadata: value too long");
        let oauth = br#"{"error":"invalid_client","error_description":"bad secret"}"#;
        assert_eq!(error_detail(oauth), "invalid_client: bad secret");
        assert_eq!(
            error_detail(b"<html>\n  Too Many\n</html>"),
            "<html> Too Many </html>"
        );
        assert_eq!(error_detail(b""), "(empty body)");
        let long = "é".repeat(1000);
        assert_eq!(
            error_detail(long.as_bytes()).chars().count(),
            MAX_DETAIL_CHARS + 1
        );
    }
}
