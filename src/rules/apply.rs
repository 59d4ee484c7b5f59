//! Running one compiled rule on one event document: find the target, evaluate the values,
//! and collect the change and the links it teaches.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::compile::{Candidate, CompiledCreate, CompiledRule};
use super::value::{ValueEffect, ValueSpec};
use crate::model::{
    Change, CreateSpec, ExternalId, LinkUpdate, MetadataKey, OnMissing, TargetKind, TargetRef,
};

/// The most characters Scalekit accepts in one metadata value.
const MAX_VALUE_CHARS: usize = *crate::model::limits::METADATA_VALUE_CHARS.end();

/// What a matching rule produced.
pub(crate) struct Applied {
    pub(crate) change: Change,
    pub(crate) links: Vec<LinkUpdate>,
}

impl CompiledRule {
    /// Whether the rule handles this event at all (source, type, `when`).
    pub(crate) fn matches(&self, source: &str, event_type: &str, doc: &Value) -> bool {
        self.source == source
            && self.events.iter().any(|p| p.matches(event_type))
            && self.when.iter().all(|c| c.holds(doc))
    }

    /// Runs the rule; the error is the rejection reason (the caller names the rule).
    pub(crate) fn apply(&self, doc: &Value) -> Result<Applied, String> {
        let target = resolve(&self.external_id, self.target, doc, "external id")?
            .ok_or_else(|| no_candidate("external id", &self.external_id))?;
        let links = match &target {
            TargetRef::External { external_id, .. } => self.learn_links(external_id, doc)?,
            TargetRef::Link { .. } => Vec::new(),
        };
        let (set, unset) = self.metadata(doc)?;
        let new_external_id = match &self.new_external_id {
            Some(spec) => match spec
                .evaluate(doc)
                .map_err(|e| format!("new_external_id: {e}"))?
            {
                ValueEffect::Set(id) => {
                    Some(ExternalId::parse(&id).map_err(|e| format!("new_external_id: {e}"))?)
                }
                ValueEffect::Absent | ValueEffect::Remove => None,
            },
            None => None,
        };
        let create = match (&self.create, self.on_missing) {
            (Some(create), OnMissing::Create) => Some(create_spec(create, doc)?),
            _ => None,
        };
        let change = Change {
            rule: self.name.clone(),
            target,
            set,
            unset,
            new_external_id,
            on_missing: self.on_missing,
            create,
            replayed: false,
        };
        Ok(Applied { change, links })
    }

    /// Evaluates `[rules.set]` and `unset` into the keys to write and remove.
    fn metadata(
        &self,
        doc: &Value,
    ) -> Result<(BTreeMap<MetadataKey, String>, BTreeSet<MetadataKey>), String> {
        let mut set = BTreeMap::new();
        let mut unset: BTreeSet<MetadataKey> = self.unset.iter().cloned().collect();
        for (key, spec) in &self.set {
            match spec.evaluate(doc).map_err(|e| format!("key {key}: {e}"))? {
                ValueEffect::Absent => {}
                ValueEffect::Remove => {
                    unset.insert(key.clone());
                }
                ValueEffect::Set(value) => {
                    let len = value.chars().count();
                    if len > MAX_VALUE_CHARS {
                        return Err(format!(
                            "key {key}: the value is {len} characters; Scalekit accepts at most \
                             {MAX_VALUE_CHARS}"
                        ));
                    }
                    set.insert(key.clone(), value);
                }
            }
        }
        Ok((set, unset))
    }

    /// Links learned from an event that names the external id directly.
    fn learn_links(
        &self,
        external_id: &ExternalId,
        doc: &Value,
    ) -> Result<Vec<LinkUpdate>, String> {
        let mut links = Vec::new();
        for (link, path) in &self.links {
            if let Some(key) = path
                .find_text(doc)
                .map_err(|e| format!("links.{link}: {e}"))?
            {
                links.push(LinkUpdate {
                    kind: self.target,
                    link: link.clone(),
                    key,
                    external_id: external_id.clone(),
                });
            }
        }
        Ok(links)
    }
}

/// Tries the candidates in order; `None` when none yields a value.
fn resolve(
    candidates: &[Candidate],
    kind: TargetKind,
    doc: &Value,
    what: &str,
) -> Result<Option<TargetRef>, String> {
    for candidate in candidates {
        match candidate {
            Candidate::Path(path) => {
                if let Some(text) = path.find_text(doc).map_err(|e| format!("{what}: {e}"))? {
                    let external_id =
                        ExternalId::parse(&text).map_err(|e| format!("{what} from {path}: {e}"))?;
                    return Ok(Some(TargetRef::External { kind, external_id }));
                }
            }
            Candidate::Link { link, path } => {
                if let Some(key) = path.find_text(doc).map_err(|e| format!("{what}: {e}"))? {
                    let link = link.clone();
                    return Ok(Some(TargetRef::Link { kind, link, key }));
                }
            }
        }
    }
    Ok(None)
}

/// The rejection reason when no candidate yields a value.
fn no_candidate(what: &str, candidates: &[Candidate]) -> String {
    let tried: Vec<String> = candidates.iter().map(ToString::to_string).collect();
    format!("no {what}: none of {} yields a value", tried.join(", "))
}

/// Evaluates `[rules.create]`.
fn create_spec(create: &CompiledCreate, doc: &Value) -> Result<CreateSpec, String> {
    let text = |field: &str, spec: &Option<ValueSpec>| -> Result<Option<String>, String> {
        match spec {
            Some(spec) => match spec
                .evaluate(doc)
                .map_err(|e| format!("create.{field}: {e}"))?
            {
                ValueEffect::Set(v) => Ok(Some(v)),
                ValueEffect::Absent | ValueEffect::Remove => Ok(None),
            },
            None => Ok(None),
        }
    };
    Ok(CreateSpec {
        display_name: text("display_name", &create.display_name)?,
        email: text("email", &create.email)?,
        first_name: text("first_name", &create.first_name)?,
        last_name: text("last_name", &create.last_name)?,
        organization: resolve(
            &create.organization,
            TargetKind::Organization,
            doc,
            "create.organization",
        )?,
    })
}
