//! Stripe webhooks: the `Stripe-Signature` header (any `v1` against any configured endpoint
//! secret), a 300 s / 60 s timestamp window, and the snapshot event envelope.

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::config::{SourceConfig, secrets_from_env};
use super::error::quoted;
use super::verify::{Window, find_match, hmac_sha256, json_object};
use super::{Delivery, SignedRequest, SourceConfigError, SourceError};
use crate::model::{InboundEvent, PayloadFields, Step};

/// The header Stripe signs with.
const HEADER: &str = "Stripe-Signature";
/// The default environment variable for the endpoint secret(s).
const DEFAULT_SECRET_ENV: &str = "STRIPE_WEBHOOK_SECRET";

/// A verifier for one Stripe endpoint.
pub(crate) struct StripeSource {
    /// Endpoint secrets (`whsec_…`); the key is the UTF-8 bytes of the whole string.
    secrets: Vec<SecretString>,
    /// The accepted timestamp window.
    window: Window,
}

/// The `Stripe-Signature` header after parsing.
#[derive(Debug, PartialEq, Eq)]
struct SignatureHeader {
    /// The signed timestamp `t`.
    timestamp: i64,
    /// Every `v1` signature that hex-decodes to 32 bytes.
    v1: Vec<Vec<u8>>,
}

impl StripeSource {
    /// Reads the secrets the config names.
    pub(crate) fn from_config(
        config: &SourceConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, SourceConfigError> {
        config.only(&["secret_env", "tolerance_seconds", "future_skew_seconds"])?;
        let variable = config.secret_env.as_deref().unwrap_or(DEFAULT_SECRET_ENV);
        let secrets = secrets_from_env(
            &config.name,
            variable,
            "the endpoint's signing secret (whsec_…)",
            true,
            env,
        )?;
        Ok(Self {
            secrets,
            window: Window {
                tolerance_seconds: config.tolerance_seconds.unwrap_or(300),
                skew_seconds: config.future_skew_seconds.unwrap_or(60),
            },
        })
    }

    /// Verifies the delivery (parse → MAC → timestamp), then parses the event.
    pub(crate) fn receive(
        &self,
        source: &str,
        delivery: &Delivery<'_>,
        fields: &PayloadFields,
    ) -> Result<Vec<InboundEvent>, SourceError> {
        if delivery.body.is_empty() {
            return Err(SourceError::EmptyBody);
        }
        let value = delivery
            .headers
            .get(HEADER)
            .map(|v| v.to_str().map_err(|_| malformed("it is not visible ASCII")))
            .transpose()?
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| SourceError::MissingHeader {
                header: HEADER.into(),
            })?;
        let header = parse_header(value)?;
        let keys: Vec<Vec<u8>> = self
            .secrets
            .iter()
            .map(|s| s.expose_secret().as_bytes().to_vec())
            .collect();
        let t = header.timestamp.to_string();
        let parts: [&[u8]; 3] = [t.as_bytes(), b".", delivery.body];
        let index = find_match(&keys, &parts, &header.v1).ok_or_else(|| {
            SourceError::NoMatchingSignature {
                header: HEADER.into(),
            }
        })?;
        self.window.check(header.timestamp, delivery.now_unix)?;
        let verification = format!("stripe-signature v1 (secret #{})", index + 1);
        Ok(vec![parse_event(
            source,
            delivery.body,
            verification,
            fields,
        )?])
    }

    /// The `Stripe-Signature` header Stripe would send, signed with the first secret.
    pub(crate) fn sign(&self, body: &[u8], now_unix: i64) -> SignedRequest {
        let secret = self
            .secrets
            .first()
            .map(|s| s.expose_secret())
            .unwrap_or("");
        SignedRequest {
            headers: vec![(
                HEADER.to_owned(),
                stripe_signature_header(secret, now_unix, body),
            )],
            query: None,
        }
    }
}

/// A `MalformedHeader` error for `Stripe-Signature`.
fn malformed(reason: &str) -> SourceError {
    SourceError::MalformedHeader {
        header: HEADER.into(),
        reason: reason.into(),
    }
}

/// Parses `t=…,v1=…[,v1=…][,v0=…]`; `v0` and unknown schemes are ignored.
fn parse_header(value: &str) -> Result<SignatureHeader, SourceError> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    let mut saw_v1 = false;
    for item in value.split(',') {
        let (key, val) = item
            .trim()
            .split_once('=')
            .ok_or_else(|| malformed("an item has no '='"))?;
        match key {
            "t" if timestamp.is_some() => return Err(malformed("it has more than one t")),
            "t" => {
                let parsed = val
                    .parse::<i64>()
                    .map_err(|_| malformed("t is not an integer"))?;
                timestamp = Some(parsed);
            }
            "v1" => {
                saw_v1 = true;
                // Undecodable values are skipped, as stripe-go does; they cannot match.
                if let Ok(bytes) = hex::decode(val) {
                    v1.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| malformed("it has no t (timestamp)"))?;
    if !saw_v1 {
        return Err(SourceError::NoV1Signature { header: HEADER });
    }
    Ok(SignatureHeader { timestamp, v1 })
}

/// The top-level members [`parse_event`] reads itself.
const OWN_FIELDS: [&str; 4] = ["id", "type", "created", "object"];

/// Adds the members [`parse_event`] reads to what the rules read.
pub(crate) fn add_own_fields(fields: &mut PayloadFields) {
    for name in OWN_FIELDS {
        fields.add(&[Step::Member(name)]);
    }
}

/// Turns a verified body into an event; thin (v2) notifications are refused.
pub(crate) fn parse_event(
    source: &str,
    body: &[u8],
    verification: String,
    fields: &PayloadFields,
) -> Result<InboundEvent, SourceError> {
    let payload = json_object(body, fields)?;
    let text = |key: &str| payload.get(key).and_then(Value::as_str).map(str::to_owned);
    if text("object").as_deref() == Some("v2.core.event") {
        // A sender could make these as long as the body: the refusal quotes them cut.
        return Err(SourceError::ThinEvent {
            event_id: quoted(&text("id").unwrap_or_default()),
            event_type: quoted(&text("type").unwrap_or_default()),
        });
    }
    let missing = |what: &str| SourceError::MissingField {
        what: format!("{what} (a string at $.{what})"),
    };
    let provider_event_id = text("id")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("id"))?;
    let event_type = text("type")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("type"))?;
    let occurred_at_ms = match payload.get("created") {
        None | Some(Value::Null) => None,
        Some(created) => Some(
            created
                .as_i64()
                .and_then(|s| s.checked_mul(1000))
                .ok_or_else(|| SourceError::MalformedJson {
                    reason: "created is not a unix timestamp in seconds".into(),
                })?,
        ),
    };
    Ok(InboundEvent {
        source: source.to_owned(),
        provider_event_id,
        event_type,
        occurred_at_ms,
        payload,
        verification,
    })
}

/// The `Stripe-Signature` value Stripe would send for `body` at `timestamp` with `secret`
/// (used by `orgsync send` and tests).
pub fn stripe_signature_header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let t = timestamp.to_string();
    let mac = hmac_sha256(secret.as_bytes(), &[t.as_bytes(), b".", body]);
    format!("t={t},v1={}", hex::encode(mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parsing_collects_every_v1_and_ignores_v0() {
        let h = parse_header("t=12,v1=00ff,v0=aa,v1=zz,v1=11,x=1").unwrap();
        assert_eq!(h.timestamp, 12);
        assert_eq!(h.v1, vec![vec![0x00, 0xff], vec![0x11]]);
    }

    #[test]
    fn header_parsing_errors_have_their_own_kinds() {
        let kind = |v: &str| parse_header(v).unwrap_err().kind();
        assert_eq!(kind("v1=00"), "MalformedHeader");
        assert_eq!(kind("t=abc,v1=00"), "MalformedHeader");
        assert_eq!(kind("t=1,v1"), "MalformedHeader");
        assert_eq!(kind("t=1,t=2,v1=00"), "MalformedHeader");
        assert_eq!(kind("t=1,v0=00"), "NoV1Signature");
        assert_eq!(kind("t=1"), "NoV1Signature");
    }

    #[test]
    fn a_thin_event_refusal_quotes_its_id_and_type_cut_short() {
        // The fuzz target `stripe_signed` holds every refusal to 512 characters.
        let long = "x".repeat(100_000);
        let body = format!(r#"{{"object":"v2.core.event","id":"evt_{long}","type":"{long}"}}"#);
        let err =
            parse_event("s", body.as_bytes(), String::new(), &PayloadFields::Whole).unwrap_err();
        assert_eq!(err.kind(), "ThinEvent");
        let message = err.to_string();
        assert!(
            message.chars().count() < 400,
            "{} characters",
            message.len()
        );
        assert!(message.contains("evt_xxx"), "{message}");
        assert!(message.contains('…'), "{message}");
        let short = parse_event(
            "s",
            br#"{"object":"v2.core.event","id":"evt_1","type":"t"}"#,
            String::new(),
            &PayloadFields::Whole,
        );
        assert!(short.unwrap_err().to_string().ends_with("(event t evt_1)"));
    }

    #[test]
    fn the_signing_helper_matches_the_fixture_example() {
        let body = br#"{"obj1":"hello","obj2":"world"}"#;
        let header = stripe_signature_header("whsec_test_secret", 1769817617, body);
        assert!(header.starts_with("t=1769817617,v1="));
        let parsed = parse_header(&header).unwrap();
        assert_eq!(parsed.v1[0].len(), 32);
    }
}
