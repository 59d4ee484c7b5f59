//! What of an event's payload the rules read: every JSONPath of a rule, gathered so a
//! source builds only those parts of a payload (see `PayloadFields`).

use super::RuleSet;
use super::compile::{Candidate, CompiledRule, Condition};
use super::value::{Path, ValueSpec};
use crate::model::PayloadFields;

impl RuleSet {
    /// The parts of a payload from `source` that the rules read (see [`PayloadFields`]).
    pub fn payload_fields(&self, source: &str) -> PayloadFields {
        let mut fields = PayloadFields::default();
        for rule in self.rules.iter().filter(|rule| rule.source == source) {
            for path in rule.paths() {
                fields.add_path(path.text());
            }
        }
        fields
    }
}

impl Candidate {
    /// The path it reads.
    pub(crate) fn path(&self) -> &Path {
        match self {
            Candidate::Path(path) | Candidate::Link { path, .. } => path,
        }
    }
}

impl CompiledRule {
    /// Every JSONPath the rule reads an event with.
    pub(crate) fn paths(&self) -> impl Iterator<Item = &Path> {
        let specs = self
            .set
            .iter()
            .map(|(_, spec)| spec)
            .chain(&self.new_external_id)
            .chain(self.create.iter().flat_map(|create| {
                [
                    &create.display_name,
                    &create.email,
                    &create.first_name,
                    &create.last_name,
                ]
                .into_iter()
                .flatten()
            }));
        let candidates = self
            .external_id
            .iter()
            .chain(self.create.iter().flat_map(|create| &create.organization));
        self.when
            .iter()
            .map(Condition::path)
            .chain(candidates.map(Candidate::path))
            .chain(specs.flat_map(ValueSpec::paths))
            .chain(self.links.iter().map(|(_, path)| path))
    }
}
