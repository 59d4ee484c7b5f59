//! Plain HMAC header mode, for Apex callouts and any JSON sender: the configured header
//! carries `HMAC-SHA256(secret UTF-8 bytes, message)` in hex or base64, where the message is
//! the raw body, or `<timestamp header value>.<raw body>` when a timestamp header is
//! configured (then the timestamp is also checked against the tolerance).

use axum::http::HeaderName;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};

use super::config::{SignatureEncoding, SourceConfig, TimeUnit, secrets_from_env};
use super::json_event::JsonEvent;
use super::verify::{Window, find_match, hmac_sha256, integer_header};
use super::{Delivery, SignedRequest, SourceConfigError, SourceError};
use crate::model::{InboundEvent, PayloadFields};

/// A verifier for one HMAC-signed JSON sender.
pub(crate) struct HmacSource {
    /// Secrets (UTF-8 bytes are the key).
    secrets: Vec<SecretString>,
    /// The signature header.
    header: HeaderName,
    /// How the signature is encoded.
    encoding: SignatureEncoding,
    /// A prefix to strip from the header value.
    prefix: Option<String>,
    /// The optional timestamp header, its unit and window.
    timestamp: Option<(HeaderName, TimeUnit, Window)>,
    /// Where the id, type and time are in the body.
    shape: JsonEvent,
}

/// Parses a header name setting.
fn header_name(
    config: &SourceConfig,
    setting: &'static str,
    name: &str,
) -> Result<HeaderName, SourceConfigError> {
    HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| config.invalid(setting, format!("{name:?} is not a valid header name")))
}

/// The optional timestamp header with its unit and window; the window settings need it.
fn timestamp_setting(
    config: &SourceConfig,
) -> Result<Option<(HeaderName, TimeUnit, Window)>, SourceConfigError> {
    let Some(name) = config.timestamp_header.as_deref() else {
        for (set, key) in [
            (config.timestamp_unit.is_some(), "timestamp_unit"),
            (config.tolerance_seconds.is_some(), "tolerance_seconds"),
        ] {
            if set {
                return Err(config.invalid(key, "needs `timestamp_header`".into()));
            }
        }
        return Ok(None);
    };
    Ok(Some((
        header_name(config, "timestamp_header", name)?,
        config.timestamp_unit.unwrap_or_default(),
        Window {
            tolerance_seconds: config.tolerance_seconds.unwrap_or(300),
            skew_seconds: config.future_skew_seconds.unwrap_or(60),
        },
    )))
}

impl HmacSource {
    /// Reads the secrets and compiles the paths the config names.
    pub(crate) fn from_config(
        config: &SourceConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, SourceConfigError> {
        config.only(&[
            "secret_env",
            "header",
            "encoding",
            "prefix",
            "id_path",
            "type_path",
            "occurred_at_path",
            "occurred_at_unit",
            "timestamp_header",
            "timestamp_unit",
            "tolerance_seconds",
            "future_skew_seconds",
        ])?;
        let variable = config
            .secret_env
            .as_deref()
            .ok_or_else(|| config.missing("secret_env"))?;
        let secrets =
            secrets_from_env(&config.name, variable, "the shared HMAC secret", false, env)?;
        let header = config
            .header
            .as_deref()
            .ok_or_else(|| config.missing("header"))?;
        Ok(Self {
            secrets,
            header: header_name(config, "header", header)?,
            encoding: config.encoding.unwrap_or_default(),
            prefix: config.prefix.clone().filter(|p| !p.is_empty()),
            timestamp: timestamp_setting(config)?,
            shape: JsonEvent::from_config(config)?,
        })
    }

    /// Whether a captured delivery could be sent again, and applied, once the retention
    /// has deleted its event: no signed timestamp and no occurrence time in the body.
    pub(crate) fn replayable(&self) -> bool {
        self.timestamp.is_none() && !self.shape.has_occurred_at()
    }

    /// A header's value as trimmed text, `MissingHeader` when absent or empty.
    fn header_text<'d>(
        &self,
        delivery: &'d Delivery<'_>,
        name: &HeaderName,
    ) -> Result<&'d str, SourceError> {
        let missing = || SourceError::MissingHeader {
            header: name.to_string(),
        };
        let value = delivery.headers.get(name).ok_or_else(missing)?;
        let text = value.to_str().map_err(|_| SourceError::MalformedHeader {
            header: name.to_string(),
            reason: "it is not visible ASCII".into(),
        })?;
        Some(text.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(missing)
    }

    /// The decoded signature from the header.
    fn signature(&self, delivery: &Delivery<'_>) -> Result<Vec<u8>, SourceError> {
        let text = self.header_text(delivery, &self.header)?;
        let malformed = |reason: &str| SourceError::MalformedHeader {
            header: self.header.to_string(),
            reason: reason.to_owned(),
        };
        let text = match &self.prefix {
            Some(prefix) => text
                .strip_prefix(prefix.as_str())
                .ok_or_else(|| malformed("it does not start with the configured prefix"))?,
            None => text,
        };
        match self.encoding {
            SignatureEncoding::Hex => hex::decode(text).map_err(|_| malformed("it is not hex")),
            SignatureEncoding::Base64 => STANDARD
                .decode(text)
                .map_err(|_| malformed("it is not base64")),
        }
    }

    /// Verifies the signature (and timestamp), then parses the JSON body.
    pub(crate) fn receive(
        &self,
        source: &str,
        delivery: &Delivery<'_>,
        fields: &PayloadFields,
    ) -> Result<Vec<InboundEvent>, SourceError> {
        if delivery.body.is_empty() {
            return Err(SourceError::EmptyBody);
        }
        let signature = self.signature(delivery)?;
        let stamp = match &self.timestamp {
            Some((name, unit, window)) => {
                let text = self.header_text(delivery, name)?;
                let value = integer_header(name.as_str(), text)?;
                Some((text, unit.to_millis(value).div_euclid(1000), window))
            }
            None => None,
        };
        let keys: Vec<Vec<u8>> = self
            .secrets
            .iter()
            .map(|s| s.expose_secret().as_bytes().to_vec())
            .collect();
        let parts: Vec<&[u8]> = match &stamp {
            Some((text, _, _)) => vec![text.as_bytes(), b".", delivery.body],
            None => vec![delivery.body],
        };
        let index = find_match(&keys, &parts, &[signature]).ok_or_else(|| {
            SourceError::NoMatchingSignature {
                header: self.header.to_string(),
            }
        })?;
        if let Some((_, seconds, window)) = stamp {
            window.check(seconds, delivery.now_unix)?;
        }
        let verification = format!("hmac-sha256 {} (secret #{})", self.header, index + 1);
        let event = self
            .shape
            .event(source, delivery.body, None, verification, fields)?;
        Ok(vec![event])
    }

    /// Adds the paths its events are read with to what the rules read.
    pub(crate) fn add_own_fields(&self, fields: &mut PayloadFields) {
        self.shape.add_own_fields(fields);
    }

    /// The headers a sender would add, signed with the first secret.
    pub(crate) fn sign(&self, body: &[u8], now_unix: i64) -> SignedRequest {
        let secret = self
            .secrets
            .first()
            .map(|s| s.expose_secret())
            .unwrap_or("");
        let mut headers = Vec::new();
        let stamp = self.timestamp.as_ref().map(|(name, unit, _)| {
            let value = match unit {
                TimeUnit::Seconds => now_unix,
                TimeUnit::Milliseconds => now_unix.saturating_mul(1000),
            };
            (name.to_string(), value.to_string())
        });
        if let Some((name, value)) = &stamp {
            headers.push((name.clone(), value.clone()));
        }
        let stamp = stamp.as_ref().map(|(_, v)| v.as_str());
        let signature = hmac_signature(secret, stamp, body, self.encoding);
        let prefix = self.prefix.as_deref().unwrap_or("");
        headers.push((self.header.to_string(), format!("{prefix}{signature}")));
        SignedRequest {
            headers,
            query: None,
        }
    }
}

/// The signature header value a sender would send: `HMAC-SHA256(secret, message)` encoded,
/// where `message` is the body or `<timestamp>.<body>`.
pub fn hmac_signature(
    secret: &str,
    timestamp: Option<&str>,
    body: &[u8],
    encoding: SignatureEncoding,
) -> String {
    let mac = match timestamp {
        Some(t) => hmac_sha256(secret.as_bytes(), &[t.as_bytes(), b".", body]),
        None => hmac_sha256(secret.as_bytes(), &[body]),
    };
    match encoding {
        SignatureEncoding::Hex => hex::encode(mac),
        SignatureEncoding::Base64 => STANDARD.encode(mac),
    }
}
