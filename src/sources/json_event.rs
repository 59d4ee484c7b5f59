//! Where the configured JSON paths find an event's id, type and time, for the JSON sources
//! that are not Stripe (hmac, standard_webhooks).

use serde_json_path::JsonPath;
use sha2::{Digest, Sha256};

use super::config::{SourceConfig, TimeUnit, json_path};
use super::verify::{json_object, optional_time_ms, required_text};
use super::{SourceConfigError, SourceError};
use crate::model::{InboundEvent, PayloadFields};

/// A JSONPath setting with its text (for messages).
struct PathSetting {
    /// The compiled path.
    path: JsonPath,
    /// The path as configured.
    text: String,
}

/// The compiled `id_path`, `type_path` and `occurred_at_path` of a source.
pub(crate) struct JsonEvent {
    /// Where the event id is (else the id comes from a header or the body hash).
    id_path: Option<PathSetting>,
    /// Where the event type is.
    type_path: PathSetting,
    /// Where the occurrence time is, and its unit when numeric.
    occurred_at: Option<(PathSetting, TimeUnit)>,
}

/// Compiles an optional JSONPath setting with its text.
fn path_setting(
    config: &SourceConfig,
    setting: &'static str,
    text: Option<&str>,
) -> Result<Option<PathSetting>, SourceConfigError> {
    Ok(json_path(config, setting, text)?.map(|path| PathSetting {
        path,
        text: text.unwrap_or_default().to_owned(),
    }))
}

/// The SHA-256 of the body, hex: the event id when nothing else gives one.
pub(crate) fn body_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

impl JsonEvent {
    /// Compiles the paths (`type_path` defaults to `$.type`).
    pub(crate) fn from_config(config: &SourceConfig) -> Result<Self, SourceConfigError> {
        let type_text = config.type_path.as_deref().unwrap_or("$.type");
        let occurred = config.occurred_at_path.as_deref();
        Ok(Self {
            id_path: path_setting(config, "id_path", config.id_path.as_deref())?,
            type_path: path_setting(config, "type_path", Some(type_text))?
                .ok_or_else(|| config.missing("type_path"))?,
            occurred_at: path_setting(config, "occurred_at_path", occurred)?
                .map(|p| (p, config.occurred_at_unit.unwrap_or_default())),
        })
    }

    /// Adds the paths [`JsonEvent::event`] reads to what the rules read.
    pub(crate) fn add_own_fields(&self, fields: &mut PayloadFields) {
        let own = [Some(&self.type_path), self.id_path.as_ref()]
            .into_iter()
            .chain([self.occurred_at.as_ref().map(|(path, _)| path)]);
        for setting in own.flatten() {
            fields.add_path(&setting.text);
        }
    }

    /// Whether `occurred_at_path` is configured.
    pub(crate) fn has_occurred_at(&self) -> bool {
        self.occurred_at.is_some()
    }

    /// Parses a (verified) body. The id is `id_path`'s value, else `header_id`, else the
    /// body hash.
    pub(crate) fn event(
        &self,
        source: &str,
        body: &[u8],
        header_id: Option<&str>,
        verification: String,
        fields: &PayloadFields,
    ) -> Result<InboundEvent, SourceError> {
        let payload = json_object(body, fields)?;
        let provider_event_id = match (&self.id_path, header_id) {
            (Some(p), _) => required_text(&p.path, &p.text, &payload, "event id")?,
            (None, Some(id)) => id.to_owned(),
            (None, None) => body_hash(body),
        };
        let t = &self.type_path;
        let event_type = required_text(&t.path, &t.text, &payload, "event type")?;
        let occurred_at_ms = match &self.occurred_at {
            Some((p, unit)) => optional_time_ms(&p.path, &p.text, *unit, &payload)?,
            None => None,
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
}
