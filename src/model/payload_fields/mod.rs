//! The parts of a JSON payload that something reads, and a parser that builds only those.
//!
//! A webhook's payload is parsed for the source's own fields (id, type, time) and for
//! the rules, which read a few values of it. A Stripe event is several KiB of nested
//! objects; building all of it as a `serde_json::Value` (a map node and a string per
//! member) and dropping it again was the largest single cost of a delivery
//! (BENCHMARKS.md, session 7). [`PayloadFields::parse`] checks the whole body as JSON,
//! as before, but builds only the members some JSONPath can reach: every JSONPath reads
//! the same nodes in the pruned document as in the whole one.

mod path;
mod prune;

use std::collections::BTreeMap;

use serde::de::DeserializeSeed;
use serde_json::Value;

use path::leading_steps;
use prune::Pruned;

/// What of a JSON value is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadFields {
    /// All of it.
    Whole,
    /// Some of its parts, each with what of it is read: of an object, these members; of
    /// an array, these elements (the others before the last one listed become `null`, so
    /// that every element keeps its index; those after it are left out). Any other value
    /// is kept whole.
    Parts {
        /// The members read, by name.
        members: BTreeMap<String, PayloadFields>,
        /// The elements read, by index.
        elements: BTreeMap<usize, PayloadFields>,
    },
}

impl Default for PayloadFields {
    /// Nothing is read.
    fn default() -> Self {
        PayloadFields::Parts {
            members: BTreeMap::new(),
            elements: BTreeMap::new(),
        }
    }
}

/// One step from a value to one of its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// An object's member.
    Member(&'a str),
    /// An array's element (counted from 0).
    Element(usize),
}

impl PayloadFields {
    /// Adds the part that `steps` lead to from the root, read whole.
    pub fn add(&mut self, steps: &[Step<'_>]) {
        let mut node = self;
        for step in steps {
            node = match (node, *step) {
                (PayloadFields::Whole, _) => return,
                (PayloadFields::Parts { members, .. }, Step::Member(name)) => {
                    members.entry(name.to_owned()).or_default()
                }
                (PayloadFields::Parts { elements, .. }, Step::Element(index)) => {
                    elements.entry(index).or_default()
                }
            };
        }
        *node = PayloadFields::Whole;
    }

    /// Adds what a JSONPath (RFC 9535) can read: the node its leading member names and
    /// element indexes lead to, whole. Anything else (a wildcard, negative index, slice,
    /// union, filter or `..`) ends the leading steps; a path that names the root again
    /// (inside a filter) or that does not start at the root reads the whole document.
    pub fn add_path(&mut self, path: &str) {
        match leading_steps(path) {
            Some(steps) => self.add(&steps),
            None => *self = PayloadFields::Whole,
        }
    }

    /// Parses a JSON document, building only these parts of it. The whole body is
    /// checked as JSON either way (the same errors as `serde_json::from_slice`).
    pub fn parse(&self, body: &[u8]) -> serde_json::Result<Value> {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let value = Pruned(self).deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests;
