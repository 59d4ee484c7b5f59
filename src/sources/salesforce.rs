//! Salesforce Outbound Messages: a SOAP `notifications` message with 1–100 `Notification`s,
//! checked by organization id (first 15 characters, constant time) and, when configured, a
//! URL token. Each notification becomes one event whose payload is
//! `{"organization_id", "action_id", "notification_id", "object_type", "fields"}`.
//!
//! The `SessionId` element (a live session credential) is never copied into an event, and
//! [`redact_session_id`] removes it from the body before it is stored.

use std::borrow::Cow;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::config::SourceConfig;
use super::query::{percent_encode, query_param};
use super::soap::{self, Element, SOAP_ENV};
use super::verify::{equal_ct, rfc3339_ms};
use super::{Delivery, SignedRequest, SourceConfigError, SourceError, sfid};
use crate::model::InboundEvent;

/// The Outbound Messaging namespace (`notifications`, `Notification`, `sObject`, …).
pub const OM_NS: &str = "http://soap.sforce.com/2005/09/outbound";
/// The most notifications Salesforce puts in one message.
pub const MAX_NOTIFICATIONS: usize = 100;
/// The default environment variable holding the organization id.
const DEFAULT_ORG_ENV: &str = "SALESFORCE_ORGANIZATION_ID";
/// The default environment variable holding the URL token.
const DEFAULT_TOKEN_ENV: &str = "SALESFORCE_WEBHOOK_TOKEN";
/// The shortest URL token accepted, in characters.
pub const MIN_TOKEN_CHARS: usize = 32;
/// The setting that turns the token check off.
pub const SKIP_TOKEN_SETTING: &str = "insecure_skip_token_check_mtls_at_proxy";

/// A verifier for one Salesforce org's Outbound Messages.
pub(crate) struct SalesforceSource {
    /// The first 15 characters of the configured organization id.
    organization_id: String,
    /// The URL token; `None` only when the check was explicitly switched off.
    token: Option<SecretString>,
    /// [`SKIP_TOKEN_SETTING`] is `true`.
    skip_token_check: bool,
}

/// One parsed notification.
#[derive(Debug, PartialEq)]
struct Notification {
    /// The notification id (dedupe key).
    id: String,
    /// The sObject type, e.g. `Account`.
    object_type: String,
    /// The fields sent, nil as null, ids as 18 characters.
    fields: Map<String, Value>,
}

/// One parsed Outbound Message.
#[derive(Debug, PartialEq)]
struct Message {
    /// `OrganizationId` as sent.
    organization_id: String,
    /// `ActionId` as sent.
    action_id: String,
    /// The notifications, in document order.
    notifications: Vec<Notification>,
}

impl SalesforceSource {
    /// Reads the organization id and the optional token the config names.
    pub(crate) fn from_config(
        config: &SourceConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, SourceConfigError> {
        config.only(&[
            "organization_id_env",
            "token_env",
            SKIP_TOKEN_SETTING,
            "future_skew_seconds",
        ])?;
        let invalid_env = |variable: &str, reason: &str| SourceConfigError::InvalidEnv {
            source_name: config.name.clone(),
            variable: variable.to_owned(),
            reason: reason.to_owned(),
        };
        let org_var = config
            .organization_id_env
            .as_deref()
            .unwrap_or(DEFAULT_ORG_ENV);
        let org = env(org_var).ok_or_else(|| SourceConfigError::MissingEnv {
            source_name: config.name.clone(),
            variable: org_var.to_owned(),
            what: "your Salesforce organization id (15 or 18 characters, 00D…)",
        })?;
        let org18 = sfid::to_18(org.trim()).map_err(|_| {
            invalid_env(
                org_var,
                "is not a Salesforce organization id (15 or 18 characters, 00D…)",
            )
        })?;
        let skip_token_check = config.insecure_skip_token_check_mtls_at_proxy == Some(true);
        Ok(Self {
            organization_id: sfid::prefix15(&org18).to_owned(),
            token: token(config, skip_token_check, env)?,
            skip_token_check,
        })
    }

    /// What an operator should know at every start: the token check is off.
    pub(crate) fn warnings(&self) -> Vec<String> {
        match (self.skip_token_check, &self.token) {
            (false, _) => Vec::new(),
            (true, None) => vec![format!(
                "the URL token check is OFF ({SKIP_TOKEN_SETTING} = true): anyone who can \
                 reach this endpoint and knows your organization id can change your Scalekit \
                 organizations and users; this is only safe when your proxy authenticates \
                 Salesforce with mutual TLS"
            )],
            (true, Some(_)) => vec![format!(
                "{SKIP_TOKEN_SETTING} = true has no effect while the token variable is set: \
                 the token is checked; remove one of them"
            )],
        }
    }

    /// Checks the token, parses the message, checks the organization, and returns one event
    /// per notification.
    pub(crate) fn receive(
        &self,
        source: &str,
        delivery: &Delivery<'_>,
    ) -> Result<Vec<InboundEvent>, SourceError> {
        self.check_token(delivery.query)?;
        if delivery.body.is_empty() {
            return Err(SourceError::EmptyBody);
        }
        let message = message(&soap::parse(delivery.body)?)?;
        // Compared in the 18-character form the events carry: the suffix of an 18-character
        // id can change the case of its first 15, and the stored org must be the checked one.
        let received = id18(&message.organization_id);
        let received = received.as_bytes();
        let received15 = received.get(..15).unwrap_or(received);
        if !equal_ct(self.organization_id.as_bytes(), received15) {
            return Err(SourceError::OrganizationMismatch);
        }
        let verification = match self.token {
            Some(_) => "salesforce organization id + url token",
            None => "salesforce organization id (url token check off at the operator's request)",
        };
        Ok(events(source, message, verification))
    }

    /// The query a correctly configured Outbound Message endpoint URL carries.
    pub(crate) fn sign(&self) -> SignedRequest {
        let query = self
            .token
            .as_ref()
            .map(|t| format!("token={}", percent_encode(t.expose_secret())));
        SignedRequest {
            headers: Vec::new(),
            query,
        }
    }

    /// Compares the `token` query parameter with the configured token, if there is one.
    fn check_token(&self, query: Option<&str>) -> Result<(), SourceError> {
        let Some(expected) = &self.token else {
            return Ok(());
        };
        let given = query_param(query.unwrap_or(""), "token").ok_or(SourceError::MissingToken)?;
        // Hashing first makes the comparison independent of the lengths too.
        let expected = Sha256::digest(expected.expose_secret().as_bytes());
        let given = Sha256::digest(given.as_bytes());
        if equal_ct(&expected, &given) {
            Ok(())
        } else {
            Err(SourceError::WrongToken)
        }
    }
}

/// The URL token from the variable the config names: required (at least
/// [`MIN_TOKEN_CHARS`]) unless the check is switched off.
fn token(
    config: &SourceConfig,
    skip_token_check: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<SecretString>, SourceConfigError> {
    let variable = config.token_env.as_deref().unwrap_or(DEFAULT_TOKEN_ENV);
    let value = env(variable).filter(|t| !t.trim().is_empty());
    match value {
        None if skip_token_check => Ok(None),
        None => Err(SourceConfigError::MissingEnv {
            source_name: config.name.clone(),
            variable: variable.to_owned(),
            what: "a random URL token of at least 32 characters (e.g. `openssl rand -hex 32`) \
                   that the Outbound Message endpoint URL carries as ?token=…",
        }),
        Some(t) if t.trim().chars().count() < MIN_TOKEN_CHARS => {
            Err(SourceConfigError::InvalidEnv {
                source_name: config.name.clone(),
                variable: variable.to_owned(),
                reason: format!(
                    "is shorter than {MIN_TOKEN_CHARS} characters; use a long random token, \
                     e.g. `openssl rand -hex 32`"
                ),
            })
        }
        Some(t) => Ok(Some(SecretString::from(t.trim().to_owned()))),
    }
}

/// The trimmed, non-empty text of the child `{OM_NS}name`.
fn text_child(parent: &Element, name: &str) -> Option<String> {
    parent
        .child(OM_NS, name)
        .map(|e| e.text.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// Reads the Outbound Message out of a SOAP envelope.
fn message(root: &Element) -> Result<Message, SourceError> {
    let malformed = |reason: &str| SourceError::MalformedXml {
        reason: reason.to_owned(),
    };
    if !root.is(SOAP_ENV, "Envelope") {
        return Err(malformed("the root element is not a SOAP 1.1 Envelope"));
    }
    let body = root
        .child(SOAP_ENV, "Body")
        .ok_or_else(|| malformed("the Envelope has no Body"))?;
    let notifications = body.child(OM_NS, "notifications").ok_or_else(|| {
        malformed("the Body has no notifications element in the Outbound Messaging namespace")
    })?;
    let organization_id = text_child(notifications, "OrganizationId");
    let action_id = text_child(notifications, "ActionId");
    let items: Vec<&Element> = notifications
        .children_named(OM_NS, "Notification")
        .collect();
    let missing: Vec<&str> = [
        ("OrganizationId", organization_id.is_none()),
        ("ActionId", action_id.is_none()),
        ("Notification", items.is_empty()),
    ]
    .iter()
    .filter(|(_, absent)| *absent)
    .map(|(name, _)| *name)
    .collect();
    let (Some(organization_id), Some(action_id), false) =
        (organization_id, action_id, items.is_empty())
    else {
        return Err(SourceError::IncompleteMessage {
            missing: missing.join(", "),
        });
    };
    if items.len() > MAX_NOTIFICATIONS {
        return Err(SourceError::TooManyNotifications {
            limit: MAX_NOTIFICATIONS,
        });
    }
    let notifications = items
        .into_iter()
        .map(notification)
        .collect::<Result<_, _>>()?;
    Ok(Message {
        organization_id,
        action_id,
        notifications,
    })
}

/// Reads one `Notification`: its id, the sObject type and the fields.
fn notification(item: &Element) -> Result<Notification, SourceError> {
    let malformed = |reason: &str| SourceError::MalformedXml {
        reason: reason.to_owned(),
    };
    let id = text_child(item, "Id").ok_or_else(|| malformed("a Notification has no Id"))?;
    let object = item
        .child(OM_NS, "sObject")
        .ok_or_else(|| malformed("a Notification has no sObject"))?;
    let (type_ns, object_type) = object
        .xsi_type
        .clone()
        .filter(|(_, local)| !local.is_empty())
        .ok_or_else(|| malformed("an sObject has no xsi:type"))?;
    let fields = fields(object, &type_ns)?;
    Ok(Notification {
        id,
        object_type,
        fields,
    })
}

/// The fields of an sObject (children in the object type's namespace).
fn fields(object: &Element, ns: &str) -> Result<Map<String, Value>, SourceError> {
    let mut out = Map::new();
    for field in object.children.iter().filter(|c| c.ns == ns) {
        let value = if field.nil {
            Value::Null
        } else if !field.children.is_empty() {
            Value::Object(fields(field, ns)?)
        } else {
            Value::String(normalise_id(&field.name, &field.text)?)
        };
        out.insert(field.name.clone(), value);
    }
    Ok(out)
}

/// Record ids in `Id` and `…Id` fields become 18 characters; an `Id` that is not a valid
/// id is refused, other fields keep values that merely look like ids.
pub(super) fn normalise_id(name: &str, value: &str) -> Result<String, SourceError> {
    if !name.ends_with("Id") || !sfid::looks_like_id(value) {
        return Ok(value.to_owned());
    }
    match sfid::to_18(value) {
        Ok(id) => Ok(id),
        Err(e) if name == "Id" => Err(SourceError::MalformedXml {
            reason: e.to_string(),
        }),
        Err(_) => Ok(value.to_owned()),
    }
}

/// The 18-character form of an id when it is one, else the value unchanged.
fn id18(value: &str) -> String {
    sfid::to_18(value).unwrap_or_else(|_| value.to_owned())
}

/// One event per notification.
fn events(source: &str, message: Message, verification: &str) -> Vec<InboundEvent> {
    let organization_id = id18(&message.organization_id);
    let action_id = id18(&message.action_id);
    message
        .notifications
        .into_iter()
        .map(|n| {
            let time = |key: &str| {
                n.fields
                    .get(key)
                    .and_then(Value::as_str)
                    .and_then(rfc3339_ms)
            };
            let occurred_at_ms = time("SystemModstamp").or_else(|| time("LastModifiedDate"));
            let notification_id = id18(&n.id);
            InboundEvent {
                source: source.to_owned(),
                provider_event_id: notification_id.clone(),
                event_type: n.object_type.clone(),
                occurred_at_ms,
                payload: json!({
                    "organization_id": organization_id,
                    "action_id": action_id,
                    "notification_id": notification_id,
                    "object_type": n.object_type,
                    "fields": n.fields,
                }),
                verification: verification.to_owned(),
            }
        })
        .collect()
}

/// Parses a message without any check (for `orgsync explain`).
pub(crate) fn parse_unverified(
    source: &str,
    body: &[u8],
) -> Result<Vec<InboundEvent>, SourceError> {
    let message = message(&soap::parse(body)?)?;
    Ok(events(source, message, "unverified"))
}

/// The body with the content of every `SessionId` element replaced by `REDACTED`, or
/// `None` when the body cannot be read for certain (it must then not be kept).
pub fn redact_session_id(body: &[u8]) -> Option<Cow<'_, [u8]>> {
    let spans = soap::content_spans(body, OM_NS, "SessionId").ok()?;
    if spans.is_empty() {
        return Some(Cow::Borrowed(body));
    }
    let mut out = Vec::with_capacity(body.len());
    let mut at = 0;
    for (start, end) in spans {
        // Spans come in document order and never overlap; anything else is refused.
        let before = body.get(at..start)?;
        body.get(start..end)?;
        out.extend_from_slice(before);
        out.extend_from_slice(b"REDACTED");
        at = end;
    }
    out.extend_from_slice(body.get(at..)?);
    Some(Cow::Owned(out))
}
