//! Webhook sources: each kind verifies a delivery's raw bytes, parses it into
//! [`InboundEvent`]s and shapes the answer its sender expects.
//!
//! - [`stripe`]: `Stripe-Signature` (any `v1`, any configured secret), snapshot events.
//! - [`salesforce`]: Outbound Messages (SOAP), checked by organization id and URL token;
//!   [`soap`] is the bounded, namespace-aware XML reader and the answer documents; [`sfid`]
//!   turns 15-character record ids into 18-character ones.
//! - [`hmac`]: any JSON sender with an HMAC-SHA256 of the body in a configured header.
//! - [`standard_webhooks`]: the Standard Webhooks scheme (`webhook-*` headers).
//!
//! Nothing here knows HTTP status codes: errors carry an [`ErrorCategory`] and the http layer
//! chooses the status; the answer body comes from [`Source::acknowledgement`] and
//! [`Source::refusal`].
//!
//! Hostile input is bounded here: a version from the future is capped at the arrival time
//! ([`receipt`]), bodies over [`LARGE_BODY_BYTES`] are checked on the blocking pool, at most
//! [`MAX_CONCURRENT_LARGE_BODIES`] at once per source, and refusal log lines are rate
//! limited ([`refusal_log`]).

mod config;
mod error;
pub mod hmac;
mod json_event;
mod query;
pub mod receipt;
pub mod refusal_log;
pub mod salesforce;
pub mod sfid;
pub mod soap;
pub mod standard_webhooks;
pub mod stripe;
mod verify;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;

pub use config::{
    PREVIOUS_SUFFIX, SignatureEncoding, SourceConfig, SourceConfigError, SourceKind, TimeUnit,
};
pub use error::{ErrorCategory, SourceError, UnverifiedError};
pub use receipt::Accepted;
pub use standard_webhooks::standard_webhooks_signature;
pub use stripe::stripe_signature_header;

use crate::model::{InboundEvent, PayloadFields};

/// Bodies larger than this are verified and parsed on the blocking thread pool, so the
/// async runtime keeps answering probes and other senders while they are checked.
pub const LARGE_BODY_BYTES: usize = 64 * 1024;
/// How many large bodies one source checks at the same time; more wait their turn (without
/// holding a runtime thread).
pub const MAX_CONCURRENT_LARGE_BODIES: usize = 2;

/// One request as it arrived, before anything was checked.
pub struct Delivery<'a> {
    /// The request headers (names are case-insensitive).
    pub headers: &'a axum::http::HeaderMap,
    /// The raw query string without `?`, if any.
    pub query: Option<&'a str>,
    /// The raw body bytes, exactly as received.
    pub body: &'a [u8],
    /// The current time in unix seconds (injected so tests control the clock).
    pub now_unix: i64,
}

/// How many events of a delivery were stored and how many were already known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AckSummary {
    /// Events stored for the first time.
    pub accepted: usize,
    /// Events that had been stored before (acknowledged all the same).
    pub duplicates: usize,
}

/// The body to send back to the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookReply {
    /// The `Content-Type` of `body`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

/// The family of answers a source gives, so the http layer can choose statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyFormat {
    /// JSON bodies; errors go with a 4xx.
    Json,
    /// SOAP documents; a fault goes with HTTP 500 (SOAP 1.1).
    Soap,
}

/// What a sender adds to a request so the source accepts it (for `orgsync send`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignedRequest {
    /// Headers to send, including `Content-Type`.
    pub headers: Vec<(String, String)>,
    /// The query string to append (without `?`), e.g. a Salesforce URL token.
    pub query: Option<String>,
}

/// A configured source, built once at startup with its secrets.
pub struct Source {
    /// The verifier, shared with the blocking pool.
    inner: Arc<Inner>,
    /// Bounds the large bodies checked at once.
    large_bodies: Arc<Semaphore>,
    /// Rate-limits the refusal log lines.
    refusals: refusal_log::RefusalLog,
}

/// What checking a delivery needs.
struct Inner {
    /// The configured name.
    name: String,
    /// The kind-specific verifier.
    kind: Kind,
    /// How far past the arrival time a version may be before it is capped.
    future_skew_seconds: u64,
    /// What of a JSON payload is built: what the rules and the source itself read.
    payload_fields: PayloadFields,
}

/// The verifier of each kind.
enum Kind {
    /// Stripe.
    Stripe(stripe::StripeSource),
    /// Salesforce Outbound Messages.
    Salesforce(salesforce::SalesforceSource),
    /// Plain HMAC header.
    Hmac(hmac::HmacSource),
    /// Standard Webhooks.
    StandardWebhooks(standard_webhooks::StandardWebhooksSource),
}

/// `Content-Type` of JSON answers.
const JSON: &str = "application/json";

impl Source {
    /// Builds a source from its config, reading the secrets from the environment variables
    /// the config names through `env` (one secret per variable; the previous one, while
    /// rotating, in the same name + `_PREVIOUS`). Its events carry their whole payload.
    pub fn from_config(
        config: &SourceConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Source, SourceConfigError> {
        Self::from_config_reading(config, env, PayloadFields::Whole)
    }

    /// [`Source::from_config`] for events read only through the JSONPaths behind `read`
    /// (the rules'; see [`crate::rules::RuleSet::payload_fields`]): of a JSON payload,
    /// only those parts and the source's own fields are built.
    pub fn from_config_reading(
        config: &SourceConfig,
        env: &dyn Fn(&str) -> Option<String>,
        read: PayloadFields,
    ) -> Result<Source, SourceConfigError> {
        if config.name.trim().is_empty() || config.name.contains('/') {
            return Err(config.invalid("name", "must be non-empty and contain no '/'".into()));
        }
        let kind = match config.kind {
            SourceKind::Stripe => Kind::Stripe(stripe::StripeSource::from_config(config, env)?),
            SourceKind::Salesforce => {
                Kind::Salesforce(salesforce::SalesforceSource::from_config(config, env)?)
            }
            SourceKind::Hmac => Kind::Hmac(hmac::HmacSource::from_config(config, env)?),
            SourceKind::StandardWebhooks => Kind::StandardWebhooks(
                standard_webhooks::StandardWebhooksSource::from_config(config, env)?,
            ),
        };
        let mut payload_fields = read;
        match &kind {
            Kind::Stripe(_) => stripe::add_own_fields(&mut payload_fields),
            Kind::Salesforce(_) => {}
            Kind::Hmac(s) => s.add_own_fields(&mut payload_fields),
            Kind::StandardWebhooks(s) => s.add_own_fields(&mut payload_fields),
        }
        let default_skew = match config.kind {
            SourceKind::StandardWebhooks => 300,
            _ => 60,
        };
        Ok(Source {
            inner: Arc::new(Inner {
                name: config.name.clone(),
                kind,
                future_skew_seconds: config.future_skew_seconds.unwrap_or(default_skew),
                payload_fields,
            }),
            large_bodies: Arc::new(Semaphore::new(MAX_CONCURRENT_LARGE_BODIES)),
            refusals: refusal_log::RefusalLog::default(),
        })
    }

    /// The configured name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// What the operator should hear at every start (a check switched off, deliveries that
    /// could be replayed after the retention).
    pub fn warnings(&self) -> Vec<String> {
        match &self.inner.kind {
            Kind::Salesforce(s) => s.warnings(),
            Kind::Hmac(h) if h.replayable() => vec![
                "deliveries carry no signed time (`timestamp_header`) and no `occurred_at_path`: \
                 a captured delivery sent again after the retention deleted its event would be \
                 stored and applied again; set `timestamp_header` if the sender can, else \
                 `occurred_at_path`"
                    .to_owned(),
            ],
            _ => Vec::new(),
        }
    }

    /// Verifies the raw delivery, then parses it into one or more events, with every
    /// version beyond the future skew capped at the arrival time.
    pub fn receive(&self, delivery: &Delivery<'_>) -> Result<Vec<InboundEvent>, SourceError> {
        self.inner.receive(delivery)
    }

    /// [`Source::receive`], plus the body to keep (see [`Source::storable_body`]); when it
    /// cannot be kept, every event says so.
    pub fn accept(&self, delivery: &Delivery<'_>) -> Result<Accepted, SourceError> {
        self.inner.accept(delivery)
    }

    /// [`Source::accept`], run on the blocking thread pool when the body is larger than
    /// [`LARGE_BODY_BYTES`], at most [`MAX_CONCURRENT_LARGE_BODIES`] at once.
    pub async fn accept_bounded(&self, delivery: &Delivery<'_>) -> Result<Accepted, SourceError> {
        if delivery.body.len() <= LARGE_BODY_BYTES {
            return self.accept(delivery);
        }
        // The semaphore is never closed.
        let Ok(permit) = self.large_bodies.clone().acquire_owned().await else {
            return self.accept(delivery);
        };
        let inner = self.inner.clone();
        let (headers, query) = (delivery.headers.clone(), delivery.query.map(str::to_owned));
        let (body, now_unix) = (delivery.body.to_vec(), delivery.now_unix);
        let checked = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            inner.accept(&Delivery {
                headers: &headers,
                query: query.as_deref(),
                body: &body,
                now_unix,
            })
        });
        match checked.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // The blocking pool is shutting down: check it here rather than lose it.
            Err(_) => self.accept(delivery),
        }
    }

    /// Whether a refusal of `kind` at `now` gets its WARN line: `Some(n)` with the number
    /// left out since the previous line, `None` to log it at debug level only.
    pub fn refusal_log_line(&self, kind: &'static str, now: Instant) -> Option<u64> {
        self.refusals.admit(kind, now)
    }

    /// Signs `body` as the sender would at `now_unix`, with the first configured secret
    /// (for `orgsync send` and tests).
    pub fn sign(&self, body: &[u8], now_unix: i64) -> SignedRequest {
        let mut signed = match &self.inner.kind {
            Kind::Stripe(s) => s.sign(body, now_unix),
            Kind::Salesforce(s) => s.sign(),
            Kind::Hmac(s) => s.sign(body, now_unix),
            Kind::StandardWebhooks(s) => s.sign(body, now_unix),
        };
        let content_type = match self.reply_format() {
            ReplyFormat::Soap => soap::CONTENT_TYPE,
            ReplyFormat::Json => JSON,
        };
        signed
            .headers
            .insert(0, ("content-type".to_owned(), content_type.to_owned()));
        signed
    }

    /// The body to store for a verified delivery: the raw bytes, except that a Salesforce
    /// `SessionId` (a live session credential) is replaced by `REDACTED`; `None` when that
    /// cannot be done for certain (the body must then not be kept).
    pub fn storable_body<'b>(&self, body: &'b [u8]) -> Option<Cow<'b, [u8]>> {
        self.inner.storable_body(body)
    }

    /// The success answer, sent once every event of the delivery is stored.
    pub fn acknowledgement(&self, summary: &AckSummary) -> WebhookReply {
        match self.reply_format() {
            ReplyFormat::Soap => soap::ack(),
            ReplyFormat::Json => WebhookReply {
                content_type: JSON,
                body: format!(
                    r#"{{"received":true,"accepted":{},"duplicates":{}}}"#,
                    summary.accepted, summary.duplicates
                ),
            },
        }
    }

    /// The answer to a delivery refused because of the request (a SOAP `Client` fault for
    /// Salesforce).
    pub fn rejection(&self, message: &str) -> WebhookReply {
        self.error_answer(message, soap::FaultCode::Client)
    }

    /// The answer to a delivery refused for `error`. JSON senders learn the reason; a SOAP
    /// fault only names the request id, as the reason could teach a forger about the
    /// parser: the detail goes to the log under that id.
    pub fn refusal(&self, error: &SourceError, request_id: &str) -> WebhookReply {
        match self.reply_format() {
            ReplyFormat::Json => self.rejection(&format!("{}: {error}", error.kind())),
            ReplyFormat::Soap => self.rejection(&format!(
                "the message was refused (request id {request_id}); the receiver's log has \
                 the reason"
            )),
        }
    }

    /// The answer to a delivery that could not be processed on our side, e.g. the store
    /// failed (a SOAP `Server` fault for Salesforce); the sender retries.
    pub fn failure(&self, message: &str) -> WebhookReply {
        self.error_answer(message, soap::FaultCode::Server)
    }

    /// Whether answers are JSON or SOAP.
    pub fn reply_format(&self) -> ReplyFormat {
        match self.inner.kind {
            Kind::Salesforce(_) => ReplyFormat::Soap,
            _ => ReplyFormat::Json,
        }
    }

    /// A JSON error body or a SOAP fault.
    fn error_answer(&self, message: &str, code: soap::FaultCode) -> WebhookReply {
        match self.reply_format() {
            ReplyFormat::Soap => soap::fault(code, message),
            ReplyFormat::Json => WebhookReply {
                content_type: JSON,
                body: serde_json::json!({ "error": message }).to_string(),
            },
        }
    }
}

/// Parses a body as the source named by `config` would, without any verification and
/// without secrets (for `orgsync explain`). Events carry `verification = "unverified"`; a
/// Standard Webhooks event's id is the body hash, as the `webhook-id` header is not known.
pub fn parse_unverified(
    config: &SourceConfig,
    body: &[u8],
) -> Result<Vec<InboundEvent>, UnverifiedError> {
    let name = config.name.as_str();
    let unverified = || "unverified".to_owned();
    Ok(match config.kind {
        SourceKind::Stripe => vec![stripe::parse_event(
            name,
            body,
            unverified(),
            &PayloadFields::Whole,
        )?],
        SourceKind::Salesforce => salesforce::parse_unverified(name, body)?,
        SourceKind::Hmac | SourceKind::StandardWebhooks => {
            let shape = json_event::JsonEvent::from_config(config)?;
            vec![shape.event(name, body, None, unverified(), &PayloadFields::Whole)?]
        }
    })
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner.kind {
            Kind::Stripe(_) => SourceKind::Stripe,
            Kind::Salesforce(_) => SourceKind::Salesforce,
            Kind::Hmac(_) => SourceKind::Hmac,
            Kind::StandardWebhooks(_) => SourceKind::StandardWebhooks,
        };
        f.debug_struct("Source")
            .field("name", &self.inner.name)
            .field("kind", &kind.as_str())
            .finish_non_exhaustive()
    }
}
