//! Checking a [`RuleConfig`] and turning it into a [`CompiledRule`]: parsed paths, parsed
//! metadata keys, and every limit that can be known before an event arrives.

use std::collections::BTreeSet;

use serde_json::Value;

use super::config::{Candidates, ConditionConfig, CreateConfig, RuleConfig};
use super::value::{Found, Path, ValueSpec};
use crate::model::{MetadataKey, OnMissing, TargetKind};

/// An event-type pattern: exact, or a prefix when written with a trailing `*`.
#[derive(Debug, Clone)]
pub(crate) enum EventPattern {
    /// Matches this type only.
    Exact(String),
    /// Matches every type starting with this prefix.
    Prefix(String),
}

impl EventPattern {
    /// Whether an event type matches.
    pub(crate) fn matches(&self, event_type: &str) -> bool {
        match self {
            EventPattern::Exact(t) => t == event_type,
            EventPattern::Prefix(p) => event_type.starts_with(p.as_str()),
        }
    }
}

/// One way to find a target: a direct path to its external id, or an alias.
#[derive(Debug, Clone)]
pub(crate) enum Candidate {
    /// The value at the path is the external id.
    Path(Path),
    /// The value at the path is a key of the named link kind.
    Link {
        /// Link kind, e.g. `stripe_customer`.
        link: String,
        /// Where the alias value is.
        path: Path,
    },
}

impl std::fmt::Display for Candidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Candidate::Path(p) => write!(f, "{p}"),
            Candidate::Link { link, path } => write!(f, "link:{link}({path})"),
        }
    }
}

/// A compiled `when` condition.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    /// The value tested.
    path: Path,
    /// The test.
    test: Test,
}

/// The test of a condition.
#[derive(Debug, Clone)]
enum Test {
    Equals(Value),
    NotEquals(Value),
    OneOf(Vec<Value>),
    Exists(bool),
}

impl Condition {
    /// The path it tests.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the condition holds; a path that selects several values never holds.
    pub(crate) fn holds(&self, doc: &Value) -> bool {
        let Ok(found) = self.path.find(doc) else {
            return false;
        };
        let value = match found {
            Found::Value(v) => Some(v),
            Found::Absent | Found::Null => None,
        };
        match &self.test {
            Test::Equals(want) => value == Some(want),
            Test::NotEquals(want) => value != Some(want),
            Test::OneOf(wants) => value.is_some_and(|v| wants.contains(v)),
            Test::Exists(want) => value.is_some() == *want,
        }
    }
}

/// Compiled `[rules.create]`.
#[derive(Debug, Clone, Default)]
pub(crate) struct CompiledCreate {
    pub(crate) display_name: Option<ValueSpec>,
    pub(crate) email: Option<ValueSpec>,
    pub(crate) first_name: Option<ValueSpec>,
    pub(crate) last_name: Option<ValueSpec>,
    pub(crate) organization: Vec<Candidate>,
}

/// A checked rule, ready to run on events.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    pub(crate) name: String,
    /// 1-based position in the config, for messages.
    pub(crate) index: usize,
    pub(crate) source: String,
    pub(crate) events: Vec<EventPattern>,
    pub(crate) target: TargetKind,
    pub(crate) when: Vec<Condition>,
    pub(crate) external_id: Vec<Candidate>,
    pub(crate) on_missing: OnMissing,
    pub(crate) create: Option<CompiledCreate>,
    pub(crate) set: Vec<(MetadataKey, ValueSpec)>,
    pub(crate) unset: Vec<MetadataKey>,
    pub(crate) new_external_id: Option<ValueSpec>,
    pub(crate) links: Vec<(String, Path)>,
}

/// Compiles one rule; the error is the reason only (the caller names the rule).
pub(crate) fn compile_rule(
    config: &RuleConfig,
    index: usize,
    known_sources: &[&str],
) -> Result<CompiledRule, String> {
    if config.name.trim().is_empty() {
        return Err("`name` is empty; give every rule a unique name".into());
    }
    if !known_sources.contains(&config.source.as_str()) {
        return Err(format!(
            "unknown source {:?}; configured sources: {}",
            config.source,
            known_sources.join(", ")
        ));
    }
    let target = parse_target(&config.target)?;
    let external_id = compile_candidates(&config.external_id, "external_id")?;
    let links = compile_links(config, &external_id)?;
    let on_missing = parse_on_missing(config.on_missing.as_deref())?;
    let create = compile_create(config.create.as_ref(), on_missing, target)?;
    let (set, unset) = compile_keys(config, target)?;
    let new_external_id = config
        .new_external_id
        .as_ref()
        .map(|s| ValueSpec::compile(s).map_err(|e| format!("new_external_id: {e}")))
        .transpose()?;
    Ok(CompiledRule {
        name: config.name.clone(),
        index,
        source: config.source.clone(),
        events: compile_events(&config.events)?,
        target,
        when: config
            .when
            .iter()
            .map(compile_condition)
            .collect::<Result<_, _>>()?,
        external_id,
        on_missing,
        create,
        set,
        unset,
        new_external_id,
        links,
    })
}

fn parse_target(target: &str) -> Result<TargetKind, String> {
    match target {
        "organization" => Ok(TargetKind::Organization),
        "user" => Ok(TargetKind::User),
        other => Err(format!(
            "unknown target {other:?}; use \"organization\" or \"user\""
        )),
    }
}

fn parse_on_missing(value: Option<&str>) -> Result<OnMissing, String> {
    match value {
        None | Some("retry") => Ok(OnMissing::Retry),
        Some("create") => Ok(OnMissing::Create),
        Some("skip") => Ok(OnMissing::Skip),
        Some(other) => Err(format!(
            "unknown on_missing {other:?}; use \"retry\", \"create\" or \"skip\""
        )),
    }
}

fn compile_events(events: &[String]) -> Result<Vec<EventPattern>, String> {
    if events.is_empty() {
        return Err("`events` is empty; list the event types this rule handles".into());
    }
    events
        .iter()
        .map(|e| {
            let prefix = e.strip_suffix('*');
            if e.is_empty() || prefix.unwrap_or(e).contains('*') {
                return Err(format!(
                    "bad event type {e:?}: use an exact type or one `*` at the end"
                ));
            }
            Ok(match prefix {
                Some(p) => EventPattern::Prefix(p.to_owned()),
                None => EventPattern::Exact(e.clone()),
            })
        })
        .collect()
}

/// Parses `"$.path"` or `"link:<kind>(<path>)"`.
fn compile_candidate(text: &str, field: &str) -> Result<Candidate, String> {
    let Some(rest) = text.strip_prefix("link:") else {
        let path = Path::parse_singular(text).map_err(|e| format!("{field}: {e}"))?;
        return Ok(Candidate::Path(path));
    };
    let syntax = || {
        format!(
            "{field}: bad link {text:?}; write link:<kind>(<jsonpath>), e.g. link:stripe_customer($.data.object.customer)"
        )
    };
    let (link, inner) = rest.split_once('(').ok_or_else(syntax)?;
    let inner = inner.strip_suffix(')').ok_or_else(syntax)?;
    check_link_kind(link).map_err(|e| format!("{field}: {e}"))?;
    let path = Path::parse_singular(inner).map_err(|e| format!("{field}: {e}"))?;
    Ok(Candidate::Link {
        link: link.to_owned(),
        path,
    })
}

fn compile_candidates(candidates: &Candidates, field: &str) -> Result<Vec<Candidate>, String> {
    if candidates.0.is_empty() {
        return Err(format!("`{field}` is empty; give at least one JSONPath"));
    }
    candidates
        .0
        .iter()
        .map(|c| compile_candidate(c, field))
        .collect()
}

fn check_link_kind(link: &str) -> Result<(), String> {
    let ok = !link.is_empty()
        && link
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bad link kind {link:?}: use lower-case letters, digits and '_' (e.g. stripe_customer)"
        ))
    }
}

fn compile_links(
    config: &RuleConfig,
    external_id: &[Candidate],
) -> Result<Vec<(String, Path)>, String> {
    if !config.links.is_empty() && !external_id.iter().any(|c| matches!(c, Candidate::Path(_))) {
        return Err(
            "[rules.links] needs an external_id candidate that is a direct JSONPath \
                    (links are learned only when the event names the external id itself)"
                .into(),
        );
    }
    config
        .links
        .iter()
        .map(|(kind, path)| {
            check_link_kind(kind).map_err(|e| format!("links: {e}"))?;
            let path = Path::parse_singular(path).map_err(|e| format!("links.{kind}: {e}"))?;
            Ok((kind.clone(), path))
        })
        .collect()
}

fn compile_condition(config: &ConditionConfig) -> Result<Condition, String> {
    let path = Path::parse_singular(&config.path).map_err(|e| format!("when: {e}"))?;
    let tests = [
        config.equals.clone().map(Test::Equals),
        config.not_equals.clone().map(Test::NotEquals),
        config.one_of.clone().map(Test::OneOf),
        config.exists.map(Test::Exists),
    ];
    let mut given = tests.into_iter().flatten();
    match (given.next(), given.next()) {
        (Some(test), None) => Ok(Condition { path, test }),
        _ => Err(format!(
            "when: the condition on {:?} needs exactly one of equals, not_equals, one_of, exists",
            config.path
        )),
    }
}

fn compile_create(
    config: Option<&CreateConfig>,
    on_missing: OnMissing,
    target: TargetKind,
) -> Result<Option<CompiledCreate>, String> {
    let config = match (config, on_missing) {
        (None, OnMissing::Create) => {
            return Err("on_missing = \"create\" needs a [rules.create] table".into());
        }
        (None, _) => return Ok(None),
        (Some(_), OnMissing::Retry | OnMissing::Skip) => {
            return Err("[rules.create] is used only with on_missing = \"create\"".into());
        }
        (Some(c), OnMissing::Create) => c,
    };
    let spec = |field: &str, s: &Option<_>| {
        s.as_ref()
            .map(|s| ValueSpec::compile(s).map_err(|e| format!("create.{field}: {e}")))
            .transpose()
    };
    let create = CompiledCreate {
        display_name: spec("display_name", &config.display_name)?,
        email: spec("email", &config.email)?,
        first_name: spec("first_name", &config.first_name)?,
        last_name: spec("last_name", &config.last_name)?,
        organization: match &config.organization {
            Some(c) => compile_candidates(c, "create.organization")?,
            None => Vec::new(),
        },
    };
    match target {
        TargetKind::Organization if create.display_name.is_none() => {
            Err("creating an organization needs create.display_name".into())
        }
        TargetKind::Organization if !create.organization.is_empty() => {
            Err("create.organization is only for user targets".into())
        }
        TargetKind::User if create.email.is_none() || create.organization.is_empty() => {
            Err("creating a user needs create.email and create.organization".into())
        }
        TargetKind::Organization | TargetKind::User => Ok(Some(create)),
    }
}

type Keys = (Vec<(MetadataKey, ValueSpec)>, Vec<MetadataKey>);

fn compile_keys(config: &RuleConfig, target: TargetKind) -> Result<Keys, String> {
    let key = |k: &str| MetadataKey::parse(k).map_err(|e| e.to_string());
    let mut set = Vec::new();
    for (k, spec) in &config.set {
        let spec = ValueSpec::compile(spec).map_err(|e| format!("set.{k}: {e}"))?;
        set.push((key(k)?, spec));
    }
    let mut unset = Vec::new();
    for k in &config.unset {
        if config.set.contains_key(k) {
            return Err(format!("key {k:?} is both in [rules.set] and in unset"));
        }
        unset.push(key(k)?);
    }
    let written: BTreeSet<&MetadataKey> = set.iter().map(|(k, _)| k).chain(&unset).collect();
    let max = target.max_metadata_pairs();
    if written.len() > max {
        return Err(format!(
            "the rule writes {} metadata keys but a Scalekit {target} holds at most {max}",
            written.len()
        ));
    }
    Ok((set, unset))
}
