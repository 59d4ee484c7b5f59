//! The `[[sources]]` configuration and the secrets it names.
//!
//! Settings are flat (one table per source) so unknown keys are rejected; a setting that
//! does not apply to the source's kind is refused by [`super::Source::from_config`].

use secrecy::SecretString;
use serde::Deserialize;

/// One configured webhook endpoint, `POST /webhooks/{name}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The source name: the `{name}` in `/webhooks/{name}`, stored with every event.
    pub name: String,
    /// Which sender this is: `stripe`, `salesforce`, `hmac` or `standard_webhooks`.
    pub kind: SourceKind,
    /// stripe, hmac, standard_webhooks: the environment variable holding the signing
    /// secret. Its whole value (surrounding whitespace trimmed) is one secret, commas
    /// included; while rotating, the previous secret goes in the same name + `_PREVIOUS`.
    /// Default for stripe `STRIPE_WEBHOOK_SECRET`; required for hmac and standard_webhooks.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// stripe, hmac (with a timestamp header), standard_webhooks: how old a signed
    /// timestamp may be, in seconds. Default 300.
    #[serde(default)]
    pub tolerance_seconds: Option<u64>,
    /// How far in the future a signed timestamp (stripe, hmac, standard_webhooks) or an
    /// event's version (every kind) may be (clock skew), in seconds. A later version is
    /// capped at the arrival time. Default 60 (stripe, salesforce, hmac), 300
    /// (standard_webhooks).
    #[serde(default)]
    pub future_skew_seconds: Option<u64>,
    /// salesforce: the environment variable holding your 15- or 18-character
    /// Salesforce organization id; `OrganizationId` must match it. Default
    /// `SALESFORCE_ORGANIZATION_ID`.
    #[serde(default)]
    pub organization_id_env: Option<String>,
    /// salesforce: the environment variable holding the URL token (at least 32
    /// characters) that every request must carry as `?token=<value>`. While it is unset the
    /// source answers 503. Default `SALESFORCE_WEBHOOK_TOKEN`.
    #[serde(default)]
    pub token_env: Option<String>,
    /// salesforce: `true` accepts requests without a URL token, for deployments whose
    /// proxy authenticates Salesforce with mutual TLS. Logs a WARN at every start.
    /// Default `false`.
    #[serde(default)]
    pub insecure_skip_token_check_mtls_at_proxy: Option<bool>,
    /// hmac: the header carrying the signature, e.g. `X-Signature`. Required.
    #[serde(default)]
    pub header: Option<String>,
    /// hmac: how the signature is encoded, `hex` or `base64`. Default `hex`.
    #[serde(default)]
    pub encoding: Option<SignatureEncoding>,
    /// hmac: a prefix the header value starts with and that is not part of the signature,
    /// e.g. `sha256=`. Default none.
    #[serde(default)]
    pub prefix: Option<String>,
    /// hmac: JSONPath to the event id (the dedupe key). Default: the SHA-256 (hex) of the
    /// raw body, so only byte-identical deliveries are duplicates.
    #[serde(default)]
    pub id_path: Option<String>,
    /// hmac, standard_webhooks: JSONPath to the event type rules match on. Default `$.type`.
    #[serde(default)]
    pub type_path: Option<String>,
    /// hmac, standard_webhooks: JSONPath to when the state was produced (an RFC 3339
    /// string or a unix number, see `occurred_at_unit`). Default none: arrival time.
    #[serde(default)]
    pub occurred_at_path: Option<String>,
    /// hmac, standard_webhooks: the unit of a numeric `occurred_at_path` value, `seconds`
    /// or `milliseconds`. Default `seconds`.
    #[serde(default)]
    pub occurred_at_unit: Option<TimeUnit>,
    /// hmac: a header carrying the send time. When set, the header is required, checked
    /// against the tolerance, and the signed message becomes `<header value>.<raw body>`
    /// (replay protection). Default none: the signed message is the raw body alone.
    #[serde(default)]
    pub timestamp_header: Option<String>,
    /// hmac: the unit of `timestamp_header`, `seconds` or `milliseconds` (Apex
    /// `DateTime.now().getTime()` is milliseconds). Default `seconds`.
    #[serde(default)]
    pub timestamp_unit: Option<TimeUnit>,
}

/// The kinds of sender orgsync can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// Stripe webhooks signed with `Stripe-Signature`.
    Stripe,
    /// Salesforce Outbound Messages (SOAP), checked by organization id and URL token.
    Salesforce,
    /// Any JSON sender with an HMAC-SHA256 of the body in a configured header.
    Hmac,
    /// The Standard Webhooks scheme (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
    StandardWebhooks,
}

impl SourceKind {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Stripe => "stripe",
            SourceKind::Salesforce => "salesforce",
            SourceKind::Hmac => "hmac",
            SourceKind::StandardWebhooks => "standard_webhooks",
        }
    }
}

/// How an HMAC signature header is encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureEncoding {
    /// Hexadecimal, either case (Apex `EncodingUtil.convertToHex`).
    #[default]
    Hex,
    /// Standard base64 with padding (Apex `EncodingUtil.base64Encode`).
    Base64,
}

/// The unit of a unix timestamp.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    /// Seconds since 1970.
    #[default]
    Seconds,
    /// Milliseconds since 1970.
    Milliseconds,
}

impl TimeUnit {
    /// Converts a value in this unit to milliseconds (saturating).
    pub fn to_millis(self, value: i64) -> i64 {
        match self {
            TimeUnit::Seconds => value.saturating_mul(1000),
            TimeUnit::Milliseconds => value,
        }
    }
}

/// A source configuration that cannot be used. Never contains a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceConfigError {
    /// A required environment variable is not set.
    #[error("source {source_name:?}: environment variable {variable} is not set; set it to {what}")]
    MissingEnv {
        /// The source name.
        source_name: String,
        /// The variable the config names.
        variable: String,
        /// What the variable should hold.
        what: &'static str,
    },
    /// An environment variable holds something unusable (the value is not shown).
    #[error("source {source_name:?}: environment variable {variable} {reason}")]
    InvalidEnv {
        /// The source name.
        source_name: String,
        /// The variable the config names.
        variable: String,
        /// What is wrong with its value.
        reason: String,
    },
    /// A setting this kind needs is absent.
    #[error("source {source_name:?}: setting `{setting}` is required for kind {kind}")]
    MissingSetting {
        /// The source name.
        source_name: String,
        /// The setting's key.
        setting: &'static str,
        /// The source kind.
        kind: &'static str,
    },
    /// A setting is present that this kind does not use (probably a typo or wrong kind).
    #[error("source {source_name:?}: setting `{setting}` does not apply to kind {kind}; remove it")]
    NotApplicable {
        /// The source name.
        source_name: String,
        /// The setting's key.
        setting: &'static str,
        /// The source kind.
        kind: &'static str,
    },
    /// A setting has an unusable value.
    #[error("source {source_name:?}: setting `{setting}` {reason}")]
    InvalidSetting {
        /// The source name.
        source_name: String,
        /// The setting's key.
        setting: &'static str,
        /// What is wrong and what to do.
        reason: String,
    },
}

impl SourceConfig {
    /// Refuses any kind-specific setting that is set but not in `allowed` for this kind.
    pub(super) fn only(&self, allowed: &[&'static str]) -> Result<(), SourceConfigError> {
        let present: [(&'static str, bool); 15] = [
            ("secret_env", self.secret_env.is_some()),
            ("tolerance_seconds", self.tolerance_seconds.is_some()),
            ("future_skew_seconds", self.future_skew_seconds.is_some()),
            ("organization_id_env", self.organization_id_env.is_some()),
            ("token_env", self.token_env.is_some()),
            (
                "insecure_skip_token_check_mtls_at_proxy",
                self.insecure_skip_token_check_mtls_at_proxy.is_some(),
            ),
            ("header", self.header.is_some()),
            ("encoding", self.encoding.is_some()),
            ("prefix", self.prefix.is_some()),
            ("id_path", self.id_path.is_some()),
            ("type_path", self.type_path.is_some()),
            ("occurred_at_path", self.occurred_at_path.is_some()),
            ("occurred_at_unit", self.occurred_at_unit.is_some()),
            ("timestamp_header", self.timestamp_header.is_some()),
            ("timestamp_unit", self.timestamp_unit.is_some()),
        ];
        match present
            .iter()
            .find(|(key, set)| *set && !allowed.contains(key))
        {
            Some((setting, _)) => Err(SourceConfigError::NotApplicable {
                source_name: self.name.clone(),
                setting,
                kind: self.kind.as_str(),
            }),
            None => Ok(()),
        }
    }

    /// The error for a required setting that is absent.
    pub(super) fn missing(&self, setting: &'static str) -> SourceConfigError {
        SourceConfigError::MissingSetting {
            source_name: self.name.clone(),
            setting,
            kind: self.kind.as_str(),
        }
    }

    /// The error for a setting with an unusable value.
    pub(super) fn invalid(&self, setting: &'static str, reason: String) -> SourceConfigError {
        SourceConfigError::InvalidSetting {
            source_name: self.name.clone(),
            setting,
            reason,
        }
    }
}

/// The suffix of the variable holding the previous secret while one is rotated.
pub const PREVIOUS_SUFFIX: &str = "_PREVIOUS";

/// Reads the secret in a required environment variable and, when set, the previous one in
/// `<variable>_PREVIOUS` (rotation). Each value is one secret, trimmed; it is never split,
/// so a secret may contain any character. `whsec` refuses a value with a `,` or inner
/// whitespace, which a `whsec_…` secret never holds: that is an old rotation list.
pub(super) fn secrets_from_env(
    source: &str,
    variable: &str,
    what: &'static str,
    whsec: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<SecretString>, SourceConfigError> {
    let value = env(variable).ok_or_else(|| SourceConfigError::MissingEnv {
        source_name: source.to_owned(),
        variable: variable.to_owned(),
        what,
    })?;
    let previous_variable = format!("{variable}{PREVIOUS_SUFFIX}");
    let mut secrets = vec![one_secret(source, variable, value, what, whsec)?];
    if let Some(previous) = env(&previous_variable).filter(|p| !p.trim().is_empty()) {
        secrets.push(one_secret(
            source,
            &previous_variable,
            previous,
            what,
            whsec,
        )?);
    }
    Ok(secrets)
}

/// One trimmed, non-empty secret.
fn one_secret(
    source: &str,
    variable: &str,
    value: String,
    what: &'static str,
    whsec: bool,
) -> Result<SecretString, SourceConfigError> {
    let invalid = |reason: String| SourceConfigError::InvalidEnv {
        source_name: source.to_owned(),
        variable: variable.to_owned(),
        reason,
    };
    let secret = value.trim();
    if secret.is_empty() {
        return Err(invalid(format!("is empty; set it to {what}")));
    }
    if whsec && secret.contains(|c: char| c == ',' || c.is_whitespace()) {
        return Err(invalid(format!(
            "holds more than one value; it takes one secret: put the previous one in \
             {variable}{PREVIOUS_SUFFIX} while rotating"
        )));
    }
    Ok(SecretString::from(secret.to_owned()))
}

/// Compiles an optional JSONPath setting.
pub(super) fn json_path(
    config: &SourceConfig,
    setting: &'static str,
    path: Option<&str>,
) -> Result<Option<serde_json_path::JsonPath>, SourceConfigError> {
    path.map(|p| {
        serde_json_path::JsonPath::parse(p)
            .map_err(|e| config.invalid(setting, format!("is not a valid JSONPath ({p:?}): {e}")))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<SourceConfig, toml::de::Error> {
        toml::from_str(toml_text)
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(parse("name = \"s\"\nkind = \"stripe\"\nsecret = \"x\"").is_err());
        assert!(parse("name = \"s\"\nkind = \"stripe\"").is_ok());
        assert!(parse("name = \"s\"\nkind = \"paypal\"").is_err());
    }

    #[test]
    fn a_secret_is_never_split_and_the_previous_one_has_its_own_variable() {
        use secrecy::ExposeSecret;
        let env = |name: &str| match name {
            "V" => Some(" a,b c \n".to_owned()),
            "V_PREVIOUS" => Some("old,one".to_owned()),
            _ => None,
        };
        let secrets = secrets_from_env("s", "V", "x", false, &env).unwrap();
        let values: Vec<&str> = secrets.iter().map(|s| s.expose_secret()).collect();
        assert_eq!(values, vec!["a,b c", "old,one"]);
        let err = secrets_from_env("s", "V", "x", true, &env).unwrap_err();
        assert!(
            err.to_string()
                .contains("put the previous one in V_PREVIOUS"),
            "{err}"
        );
        assert!(!err.to_string().contains("a,b"), "{err}");
        let empty = |_: &str| Some(" ".to_owned());
        let err = secrets_from_env("s", "V", "the secret", false, &empty).unwrap_err();
        assert!(err.to_string().contains("V is empty"));
        let unset = |_: &str| None;
        let err = secrets_from_env("s", "MY_VAR", "the secret", false, &unset).unwrap_err();
        assert!(err.to_string().contains("MY_VAR is not set"));
    }
}
