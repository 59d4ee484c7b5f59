//! Mapping rules: the `[[rules]]` config, compiled once into a [`RuleSet`], turn an
//! [`InboundEvent`] into [`Change`]s for Scalekit organizations and users.
//!
//! - [`config`]: the TOML shape ([`RuleConfig`] and friends), plain data.
//! - `compile`: checks a rule (source, JSONPaths, keys, limits) and compiles it.
//! - `value`: JSONPath lookups, value specs and stringification.
//! - `apply`: runs one compiled rule on one event.
//! - [`describe`]: readable text for `orgsync explain`.
//!
//! Normalizing is pure (no I/O): links (`link:stripe_customer(…)`) are left for the store
//! to resolve.

mod apply;
mod compile;
pub mod config;
mod describe;
mod read;
mod value;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashSet};

pub use config::{
    Candidates, ConditionConfig, CreateConfig, RuleConfig, ValueSpecConfig, ValueTable,
};
pub use describe::describe;

use crate::model::{InboundEvent, MetadataKey, Normalized, TargetKind};
use compile::CompiledRule;

/// A rule that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The rule at `index` is wrong; `reason` says what and how to fix it.
    #[error("[[rules]] #{index} {name:?}: {reason}")]
    Invalid {
        /// The rule's name as written (may be empty).
        name: String,
        /// 1-based position of the `[[rules]]` table in the config.
        index: usize,
        /// What is wrong.
        reason: String,
    },
}

/// The compiled, immutable rules; cheap to share between requests (`Send + Sync`).
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    /// Rules in config order; changes come out in this order.
    rules: Vec<CompiledRule>,
}

impl RuleSet {
    /// Checks and compiles the rules. `known_sources` are the configured source names.
    pub fn compile(rules: &[RuleConfig], known_sources: &[&str]) -> Result<RuleSet, RuleError> {
        let mut names = HashSet::new();
        let mut compiled = Vec::with_capacity(rules.len());
        for (i, config) in rules.iter().enumerate() {
            let index = i + 1;
            let invalid = |reason: String| RuleError::Invalid {
                name: config.name.clone(),
                index,
                reason,
            };
            let rule = compile::compile_rule(config, index, known_sources).map_err(invalid)?;
            if !names.insert(config.name.as_str()) {
                return Err(invalid(
                    "another rule has the same name; names must be unique".into(),
                ));
            }
            compiled.push(rule);
        }
        Ok(RuleSet { rules: compiled })
    }

    /// Runs every rule on the event: one change per matching rule, `Ignored` when none
    /// matches, `Rejected` (naming the rule) when any matching rule cannot produce its change.
    pub fn normalize(&self, event: &InboundEvent) -> Normalized {
        let doc = &event.payload;
        let mut changes = Vec::new();
        let mut links = Vec::new();
        let matching = self
            .rules
            .iter()
            .filter(|r| r.matches(&event.source, &event.event_type, doc));
        for rule in matching {
            match rule.apply(doc) {
                Ok(applied) => {
                    changes.push(applied.change);
                    for link in applied.links {
                        if !links.contains(&link) {
                            links.push(link);
                        }
                    }
                }
                Err(reason) => {
                    return Normalized::Rejected {
                        reason: format!("rule {:?} (#{}): {reason}", rule.name, rule.index),
                    };
                }
            }
        }
        if changes.is_empty() {
            Normalized::Ignored
        } else {
            Normalized::Matched { changes, links }
        }
    }

    /// Every metadata key some rule writes or removes on this kind of target: the keys
    /// orgsync owns (useful to check the total against Scalekit's limit).
    pub fn owned_keys(&self, kind: TargetKind) -> BTreeSet<MetadataKey> {
        self.rules
            .iter()
            .filter(|r| r.target == kind)
            .flat_map(|r| r.set.iter().map(|(k, _)| k).chain(&r.unset))
            .cloned()
            .collect()
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when no rule is configured (every event is ignored).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}
