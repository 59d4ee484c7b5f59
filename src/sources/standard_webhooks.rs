//! The Standard Webhooks scheme (also Svix and Scalekit): `webhook-id`, `webhook-timestamp`
//! and `webhook-signature` (space-separated `v1,<base64>` entries), HMAC-SHA256 over
//! `<id>.<timestamp>.<body>` with the base64-decoded part of a `whsec_` secret as the key,
//! and a ±300 s window. `svix-*` headers are accepted when the `webhook-*` ones are absent.

use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretSlice};

use super::config::{SourceConfig, secrets_from_env};
use super::json_event::{JsonEvent, body_hash};
use super::verify::{Window, find_match, hmac_sha256, integer_header};
use super::{Delivery, SignedRequest, SourceConfigError, SourceError};
use crate::model::{InboundEvent, PayloadFields};

/// The signature header.
const SIGNATURE: &str = "webhook-signature";

/// A verifier for one Standard Webhooks sender.
pub(crate) struct StandardWebhooksSource {
    /// Decoded keys (the bytes after `whsec_`, base64-decoded).
    keys: Vec<SecretSlice<u8>>,
    /// The accepted timestamp window.
    window: Window,
    /// Where the type and time are in the body.
    shape: JsonEvent,
}

/// Decodes a `whsec_<base64>` secret (the prefix is optional) into the HMAC key.
fn decode_secret(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    STANDARD.decode(encoded).ok().filter(|k| !k.is_empty())
}

impl StandardWebhooksSource {
    /// Reads and decodes the secrets the config names.
    pub(crate) fn from_config(
        config: &SourceConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, SourceConfigError> {
        config.only(&[
            "secret_env",
            "tolerance_seconds",
            "future_skew_seconds",
            "type_path",
            "occurred_at_path",
            "occurred_at_unit",
        ])?;
        let variable = config
            .secret_env
            .as_deref()
            .ok_or_else(|| config.missing("secret_env"))?;
        let what = "the endpoint secret (whsec_ followed by base64)";
        let keys = secrets_from_env(&config.name, variable, what, true, env)?
            .iter()
            .map(|s| decode_secret(s.expose_secret()).map(SecretSlice::from))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| SourceConfigError::InvalidEnv {
                source_name: config.name.clone(),
                variable: variable.to_owned(),
                reason: format!("does not hold {what}"),
            })?;
        Ok(Self {
            keys,
            window: Window {
                tolerance_seconds: config.tolerance_seconds.unwrap_or(300),
                skew_seconds: config.future_skew_seconds.unwrap_or(300),
            },
            shape: JsonEvent::from_config(config)?,
        })
    }

    /// Verifies the signature and timestamp, then parses the JSON body.
    pub(crate) fn receive(
        &self,
        source: &str,
        delivery: &Delivery<'_>,
        fields: &PayloadFields,
    ) -> Result<Vec<InboundEvent>, SourceError> {
        if delivery.body.is_empty() {
            return Err(SourceError::EmptyBody);
        }
        let id = header(delivery.headers, "id")?;
        let timestamp_text = header(delivery.headers, "timestamp")?;
        let timestamp = integer_header("webhook-timestamp", timestamp_text)?;
        let signatures = v1_signatures(header(delivery.headers, "signature")?)?;
        let keys: Vec<Vec<u8>> = self
            .keys
            .iter()
            .map(|k| k.expose_secret().to_vec())
            .collect();
        let parts: [&[u8]; 5] = [
            id.as_bytes(),
            b".",
            timestamp_text.as_bytes(),
            b".",
            delivery.body,
        ];
        let index = find_match(&keys, &parts, &signatures).ok_or_else(|| {
            SourceError::NoMatchingSignature {
                header: SIGNATURE.into(),
            }
        })?;
        self.window.check(timestamp, delivery.now_unix)?;
        let verification = format!("standard-webhooks v1 (secret #{})", index + 1);
        let event = self
            .shape
            .event(source, delivery.body, Some(id), verification, fields)?;
        Ok(vec![event])
    }

    /// Adds the paths its events are read with to what the rules read.
    pub(crate) fn add_own_fields(&self, fields: &mut PayloadFields) {
        self.shape.add_own_fields(fields);
    }

    /// The headers a sender would add, signed with the first secret; the message id is
    /// derived from the body, so sending the same file twice is a duplicate.
    pub(crate) fn sign(&self, body: &[u8], now_unix: i64) -> SignedRequest {
        let key = self.keys.first().map(|k| k.expose_secret()).unwrap_or(&[]);
        let id = format!("msg_{}", &body_hash(body)[..32]);
        let t = now_unix.to_string();
        let mac = hmac_sha256(key, &[id.as_bytes(), b".", t.as_bytes(), b".", body]);
        SignedRequest {
            headers: vec![
                ("webhook-id".into(), id),
                ("webhook-timestamp".into(), t),
                (
                    "webhook-signature".into(),
                    format!("v1,{}", STANDARD.encode(mac)),
                ),
            ],
            query: None,
        }
    }
}

/// The trimmed value of `webhook-<suffix>` (or `svix-<suffix>`).
fn header<'h>(headers: &'h HeaderMap, suffix: &str) -> Result<&'h str, SourceError> {
    let name = format!("webhook-{suffix}");
    let value = headers
        .get(name.as_str())
        .or_else(|| headers.get(format!("svix-{suffix}").as_str()));
    let text = value
        .map(|v| v.to_str())
        .transpose()
        .map_err(|_| SourceError::MalformedHeader {
            header: name.clone(),
            reason: "it is not visible ASCII".into(),
        })?
        .map(str::trim)
        .filter(|t| !t.is_empty());
    text.ok_or(SourceError::MissingHeader { header: name })
}

/// The decoded `v1` signatures of a `webhook-signature` value; other versions (e.g. `v1a`,
/// ed25519) and undecodable entries are skipped.
fn v1_signatures(value: &str) -> Result<Vec<Vec<u8>>, SourceError> {
    let mut saw_v1 = false;
    let mut out = Vec::new();
    for entry in value.split_whitespace() {
        if let Some(("v1", encoded)) = entry.split_once(',') {
            saw_v1 = true;
            if let Ok(bytes) = STANDARD.decode(encoded) {
                out.push(bytes);
            }
        }
    }
    if !saw_v1 {
        return Err(SourceError::NoV1Signature { header: SIGNATURE });
    }
    Ok(out)
}

/// The `webhook-signature` value (`v1,<base64>`) a sender would send, or `None` when the
/// secret is not `whsec_` + base64.
pub fn standard_webhooks_signature(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Option<String> {
    let key = decode_secret(secret)?;
    let t = timestamp.to_string();
    let mac = hmac_sha256(&key, &[id.as_bytes(), b".", t.as_bytes(), b".", body]);
    Some(format!("v1,{}", STANDARD.encode(mac)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_lists_skip_other_versions() {
        let sigs = v1_signatures("v1a,AAAA v1,AQID v1,!!! v2,BAUG").unwrap();
        assert_eq!(sigs, vec![vec![1, 2, 3]]);
        assert_eq!(
            v1_signatures("v1a,AAAA").unwrap_err().kind(),
            "NoV1Signature"
        );
    }

    #[test]
    fn published_vectors_sign_as_documented() {
        let sig = standard_webhooks_signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            sig.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(standard_webhooks_signature("whsec_!!", "a", 1, b""), None);
    }
}
