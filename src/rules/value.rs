//! Compiled JSONPaths and value specs: finding a value in an event and turning it into the
//! string Scalekit stores.

use std::fmt;

use serde_json::Value;
use serde_json_path::JsonPath;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::config::{ValueSpecConfig, ValueTable};
use crate::model::limits::METADATA_VALUE_CHARS;

/// A parsed JSONPath that remembers its text (for messages) and whether it can select more
/// than one node (wildcards, filters, slices, unions, descendants).
#[derive(Debug, Clone)]
pub(crate) struct Path {
    text: String,
    query: JsonPath,
    singular: bool,
}

/// What a path found in a document.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Found<'a> {
    /// The path selects nothing: the event does not say.
    Absent,
    /// The path selects an explicit `null`: the event says "no value".
    Null,
    /// The path selects this value.
    Value(&'a Value),
}

impl Path {
    /// Parses a JSONPath; the error carries serde_json_path's message.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let query = JsonPath::parse(text)
            .map_err(|e| format!("bad JSONPath {text:?}: {e} (see RFC 9535)"))?;
        Ok(Self {
            text: text.to_owned(),
            query,
            singular: is_singular(text),
        })
    }

    /// The path as written.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// Parses a JSONPath that must select at most one node.
    pub(crate) fn parse_singular(text: &str) -> Result<Self, String> {
        let path = Self::parse(text)?;
        if !path.singular {
            return Err(format!(
                "JSONPath {text:?} can select several values (wildcard, filter, slice, union \
                 or `..`); use a path that selects one value"
            ));
        }
        Ok(path)
    }

    /// Finds the single value the path selects; several matches are an error.
    pub(crate) fn find<'a>(&self, doc: &'a Value) -> Result<Found<'a>, String> {
        let nodes = self.query.query(doc);
        match nodes.at_most_one() {
            Ok(None) => Ok(Found::Absent),
            Ok(Some(Value::Null)) => Ok(Found::Null),
            Ok(Some(value)) => Ok(Found::Value(value)),
            Err(_) => Err(format!(
                "{} selects {} values; narrow the path or add `join`",
                self.text,
                nodes.len()
            )),
        }
    }

    /// Finds a non-null, non-empty scalar and stringifies it (ids, link keys).
    pub(crate) fn find_text(&self, doc: &Value) -> Result<Option<String>, String> {
        match self.find(doc)? {
            Found::Absent | Found::Null => Ok(None),
            Found::Value(v) => {
                let text = scalar_text(v).ok_or_else(|| {
                    format!(
                        "{} selects {}, not a string or number",
                        self.text,
                        crate::model::json_kind(v)
                    )
                })?;
                Ok(Some(text).filter(|t| !t.is_empty()))
            }
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// True when the path text has no construct that can select several nodes. Quoted member
/// names are skipped, so `$['a*b']` stays singular.
fn is_singular(text: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut previous = '\0';
    for c in text.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '*' | '?' | ':' | ',' => return false,
            '.' if previous == '.' => return false,
            _ => {}
        }
        previous = c;
    }
    true
}

/// The result of evaluating a value spec against an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ValueEffect {
    /// The event does not carry the value: leave the target alone.
    Absent,
    /// The event says "no value" (null or empty): remove the key.
    Remove,
    /// Write this string.
    Set(String),
}

/// How a value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// Unix seconds → RFC 3339 UTC.
    Rfc3339,
}

/// A compiled value spec.
#[derive(Debug, Clone)]
pub(crate) struct ValueSpec {
    /// Paths tried in order; empty when `literal` is set.
    paths: Vec<Path>,
    /// A fixed value.
    literal: Option<String>,
    /// Missing or null is an error.
    required: bool,
    /// Conversion applied to each scalar.
    format: Option<Format>,
    /// Separator for arrays or multi-node paths.
    join: Option<String>,
}

impl ValueSpec {
    /// The paths it reads.
    pub(crate) fn paths(&self) -> &[Path] {
        &self.paths
    }

    /// Checks a value spec from the config.
    pub(crate) fn compile(config: &ValueSpecConfig) -> Result<Self, String> {
        let table = match config {
            ValueSpecConfig::Path(p) => ValueTable {
                path: Some(p.clone()),
                ..ValueTable::default()
            },
            ValueSpecConfig::Paths(p) => ValueTable {
                paths: Some(p.clone()),
                ..ValueTable::default()
            },
            ValueSpecConfig::Table(t) => t.clone(),
        };
        let texts: Vec<String> = match (&table.path, &table.paths, &table.value) {
            (Some(p), None, None) => vec![p.clone()],
            (None, Some(ps), None) if !ps.is_empty() => ps.clone(),
            (None, Some(_), None) => return Err("`paths` is an empty list".into()),
            (None, None, Some(_)) => Vec::new(),
            _ => return Err("give exactly one of `path`, `paths` or `value`".into()),
        };
        if let Some(v) = &table.value
            && !METADATA_VALUE_CHARS.contains(&v.chars().count())
        {
            let (min, max) = (METADATA_VALUE_CHARS.start(), METADATA_VALUE_CHARS.end());
            return Err(format!(
                "literal value {v:?} must be {min} to {max} characters"
            ));
        }
        let format = match table.format.as_deref() {
            None => None,
            Some("rfc3339") => Some(Format::Rfc3339),
            Some(other) => return Err(format!("unknown format {other:?}; use \"rfc3339\"")),
        };
        let paths = texts
            .iter()
            .map(|t| Path::parse(t))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            paths,
            literal: table.value,
            required: table.required,
            format,
            join: table.join,
        })
    }

    /// Evaluates the spec: the first path with a non-null, non-empty value wins.
    pub(crate) fn evaluate(&self, doc: &Value) -> Result<ValueEffect, String> {
        if let Some(literal) = &self.literal {
            return Ok(ValueEffect::Set(literal.clone()));
        }
        let mut saw_null = false;
        for path in &self.paths {
            match self.evaluate_path(path, doc)? {
                ValueEffect::Set(text) => return Ok(ValueEffect::Set(text)),
                ValueEffect::Remove => saw_null = true,
                ValueEffect::Absent => {}
            }
        }
        if self.required {
            let tried: Vec<&str> = self.paths.iter().map(|p| p.text.as_str()).collect();
            let what = if saw_null { "null or empty" } else { "absent" };
            return Err(format!(
                "required value is {what} (tried {})",
                tried.join(", ")
            ));
        }
        Ok(if saw_null {
            ValueEffect::Remove
        } else {
            ValueEffect::Absent
        })
    }

    /// Evaluates one path: a single node, or with `join` every node a wildcard selects.
    fn evaluate_path(&self, path: &Path, doc: &Value) -> Result<ValueEffect, String> {
        let text = match (&self.join, path.singular) {
            (Some(sep), false) => {
                let nodes = path.query.query(doc).all();
                self.join_values(nodes.into_iter(), sep, path)?
            }
            (Some(sep), true) => match path.find(doc)? {
                Found::Absent => return Ok(ValueEffect::Absent),
                Found::Null => return Ok(ValueEffect::Remove),
                Found::Value(Value::Array(items)) => self.join_values(items.iter(), sep, path)?,
                Found::Value(v) => self.scalar(v, path)?,
            },
            (None, _) => match path.find(doc)? {
                Found::Absent => return Ok(ValueEffect::Absent),
                Found::Null => return Ok(ValueEffect::Remove),
                Found::Value(v) => self.scalar(v, path)?,
            },
        };
        Ok(if text.is_empty() {
            ValueEffect::Remove
        } else {
            ValueEffect::Set(text)
        })
    }

    /// Joins scalars with `sep`, skipping nulls.
    fn join_values<'a>(
        &self,
        values: impl Iterator<Item = &'a Value>,
        sep: &str,
        path: &Path,
    ) -> Result<String, String> {
        let mut parts = Vec::new();
        for value in values.filter(|v| !v.is_null()) {
            parts.push(self.scalar(value, path)?);
        }
        Ok(parts.join(sep))
    }

    /// Stringifies one scalar, applying `format`.
    fn scalar(&self, value: &Value, path: &Path) -> Result<String, String> {
        let text = scalar_text(value).ok_or_else(|| {
            let hint = if self.join.is_some() {
                ""
            } else {
                " (add `join` for arrays)"
            };
            format!(
                "{path} selects {}, not a scalar{hint}",
                crate::model::json_kind(value)
            )
        })?;
        match self.format {
            None => Ok(text),
            Some(Format::Rfc3339) => unix_to_rfc3339(value, path),
        }
    }
}

/// Strings as they are, numbers as their JSON text, booleans as `true`/`false`.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// Unix seconds (a JSON integer or a string of digits) → `2026-02-15T00:00:00Z`.
fn unix_to_rfc3339(value: &Value, path: &Path) -> Result<String, String> {
    let seconds = match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse::<i64>().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("{path}: format \"rfc3339\" needs unix seconds, got {value}"))?;
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .ok_or_else(|| format!("{path}: {seconds} is out of range for a timestamp"))
}

#[cfg(test)]
#[path = "tests/values.rs"]
mod tests;
