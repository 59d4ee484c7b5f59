//! The rules compiler on structured rule configs (built with `arbitrary`, so most inputs
//! get past TOML and exercise `RuleSet::compile`: JSONPaths, link candidates, metadata keys,
//! value specs, conditions, create tables and limits). Rules that compile run on every
//! fixture event; the outcome must be the same twice and survive its stored JSON form.

#![no_main]

use std::collections::BTreeMap;
use std::sync::LazyLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use orgsync::model::{InboundEvent, Normalized, TargetKind};
use orgsync::rules::{
    Candidates, ConditionConfig, CreateConfig, RuleConfig, RuleSet, ValueSpecConfig, ValueTable,
};
use orgsync::sources::{SourceConfig, parse_unverified};

/// Keys that occur in the fixtures, so generated paths find values.
const KEYS: &[&str] = &[
    "data",
    "object",
    "customer",
    "metadata",
    "org_id",
    "items",
    "id",
    "status",
    "quantity",
    "price",
    "lookup_key",
    "fields",
    "Name",
    "Org_Id__c",
    "created",
    "type",
    "email",
    "Stripe_Customer_Id__c",
    "client_reference_id",
    "lines",
    "entitlements",
    "feature",
];
/// Metadata keys rules commonly write.
const METADATA_KEYS: &[&str] = &["plan_type", "seats", "subscription_status", "billing_id"];

/// The fixture events every compiled rule set runs on.
static EVENTS: LazyLock<Vec<InboundEvent>> = LazyLock::new(|| {
    let stripe: SourceConfig =
        toml::from_str("name = \"stripe\"\nkind = \"stripe\"").expect("harness config");
    let salesforce: SourceConfig =
        toml::from_str("name = \"salesforce\"\nkind = \"salesforce\"").expect("harness config");
    let bodies: [(&SourceConfig, &[u8]); 5] = [
        (
            &stripe,
            include_bytes!("../../tests/fixtures/stripe/event.customer.updated.json"),
        ),
        (
            &stripe,
            include_bytes!("../../tests/fixtures/stripe/event.customer.subscription.updated.json"),
        ),
        (
            &stripe,
            include_bytes!("../../tests/fixtures/stripe/event.checkout.session.completed.json"),
        ),
        (
            &stripe,
            include_bytes!("../../tests/fixtures/stripe/event.invoice.paid.json"),
        ),
        (
            &salesforce,
            include_bytes!(
                "../../tests/fixtures/salesforce/outbound_message.account.constructed.xml"
            ),
        ),
    ];
    bodies
        .iter()
        .flat_map(|(config, body)| parse_unverified(config, body).expect("a fixture parses"))
        .collect()
});

/// One step of a JSONPath.
#[derive(Arbitrary, Debug)]
enum Segment<'a> {
    Key(u8),
    Bracket(&'a str),
    Index(i8),
    Wildcard,
    Descendant(u8),
    Raw(&'a str),
}

/// A JSONPath: `$` and steps.
#[derive(Arbitrary, Debug)]
struct Path<'a>(Vec<Segment<'a>>);

impl Path<'_> {
    fn text(&self) -> String {
        let mut out = String::from("$");
        for segment in &self.0 {
            match segment {
                Segment::Key(k) => {
                    out.push('.');
                    out.push_str(KEYS[usize::from(*k) % KEYS.len()]);
                }
                Segment::Bracket(name) => out.push_str(&format!("[{name:?}]")),
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
                Segment::Wildcard => out.push_str("[*]"),
                Segment::Descendant(k) => {
                    out.push_str("..");
                    out.push_str(KEYS[usize::from(*k) % KEYS.len()]);
                }
                Segment::Raw(raw) => out.push_str(raw),
            }
        }
        out
    }
}

/// A target candidate: a path or a link.
#[derive(Arbitrary, Debug)]
enum Candidate<'a> {
    Path(Path<'a>),
    Link(&'a str, Path<'a>),
    Raw(&'a str),
}

impl Candidate<'_> {
    fn text(&self) -> String {
        match self {
            Candidate::Path(p) => p.text(),
            Candidate::Link(kind, p) => format!("link:{kind}({})", p.text()),
            Candidate::Raw(raw) => (*raw).to_owned(),
        }
    }
}

/// A value spec in each of its forms.
#[derive(Arbitrary, Debug)]
enum Spec<'a> {
    Path(Path<'a>),
    Paths(Vec<Path<'a>>),
    Table {
        path: Option<Path<'a>>,
        paths: Option<Vec<Path<'a>>>,
        value: Option<&'a str>,
        required: bool,
        rfc3339: Option<bool>,
        join: Option<&'a str>,
    },
}

impl Spec<'_> {
    fn config(&self) -> ValueSpecConfig {
        let texts = |paths: &[Path<'_>]| paths.iter().map(Path::text).collect::<Vec<_>>();
        match self {
            Spec::Path(p) => ValueSpecConfig::Path(p.text()),
            Spec::Paths(ps) => ValueSpecConfig::Paths(texts(ps)),
            Spec::Table {
                path,
                paths,
                value,
                required,
                rfc3339,
                join,
            } => ValueSpecConfig::Table(ValueTable {
                path: path.as_ref().map(Path::text),
                paths: paths.as_deref().map(texts),
                value: value.map(str::to_owned),
                required: *required,
                format: rfc3339.map(|r| if r { "rfc3339" } else { "unix" }.to_owned()),
                join: join.map(str::to_owned),
            }),
        }
    }
}

/// A metadata key: a usual one or any text.
#[derive(Arbitrary, Debug)]
enum Key<'a> {
    Known(u8),
    Raw(&'a str),
}

impl Key<'_> {
    fn text(&self) -> String {
        match self {
            Key::Known(k) => METADATA_KEYS[usize::from(*k) % METADATA_KEYS.len()].to_owned(),
            Key::Raw(raw) => (*raw).to_owned(),
        }
    }
}

/// The test of a `when` condition.
#[derive(Arbitrary, Debug)]
enum Test<'a> {
    Equals(&'a str),
    NotEquals(i64),
    OneOf(Vec<&'a str>),
    Exists(bool),
    Two(&'a str, bool),
}

/// One generated rule.
#[derive(Arbitrary, Debug)]
struct Rule<'a> {
    name: &'a str,
    salesforce: bool,
    events: Vec<&'a str>,
    user: bool,
    when: Vec<(Path<'a>, Test<'a>)>,
    external_id: Vec<Candidate<'a>>,
    on_missing: Option<u8>,
    create: Option<(
        Option<Spec<'a>>,
        Option<Spec<'a>>,
        Option<Vec<Candidate<'a>>>,
    )>,
    set: Vec<(Key<'a>, Spec<'a>)>,
    unset: Vec<Key<'a>>,
    new_external_id: Option<Spec<'a>>,
    links: Vec<(&'a str, Path<'a>)>,
}

impl Rule<'_> {
    fn config(&self) -> RuleConfig {
        let (source, events) = match self.salesforce {
            true => ("salesforce", ["Account", "Contact", "Acc*"]),
            false => (
                "stripe",
                ["customer.updated", "customer.subscription.*", "invoice.*"],
            ),
        };
        let mut event_types: Vec<String> = self.events.iter().map(|e| (*e).to_owned()).collect();
        event_types.extend(
            events
                .iter()
                .take(1 + self.events.len() % 3)
                .map(|e| (*e).to_owned()),
        );
        let condition = |(path, test): &(Path<'_>, Test<'_>)| {
            let mut c = ConditionConfig {
                path: path.text(),
                equals: None,
                not_equals: None,
                one_of: None,
                exists: None,
            };
            match test {
                Test::Equals(v) => c.equals = Some((*v).into()),
                Test::NotEquals(n) => c.not_equals = Some((*n).into()),
                Test::OneOf(vs) => c.one_of = Some(vs.iter().map(|v| (*v).into()).collect()),
                Test::Exists(b) => c.exists = Some(*b),
                Test::Two(v, b) => {
                    c.equals = Some((*v).into());
                    c.exists = Some(*b);
                }
            }
            c
        };
        let candidates =
            |cs: &[Candidate<'_>]| Candidates(cs.iter().map(Candidate::text).collect());
        RuleConfig {
            name: self.name.to_owned(),
            source: source.to_owned(),
            events: event_types,
            target: if self.user { "user" } else { "organization" }.to_owned(),
            when: self.when.iter().map(condition).collect(),
            external_id: candidates(&self.external_id),
            on_missing: self
                .on_missing
                .map(|m| ["retry", "create", "skip", "later"][usize::from(m % 4)].to_owned()),
            create: self
                .create
                .as_ref()
                .map(|(name, email, organization)| CreateConfig {
                    display_name: name.as_ref().map(Spec::config),
                    email: email.as_ref().map(Spec::config),
                    first_name: None,
                    last_name: None,
                    organization: organization.as_deref().map(candidates),
                }),
            set: self
                .set
                .iter()
                .map(|(k, s)| (k.text(), s.config()))
                .collect::<BTreeMap<_, _>>(),
            unset: self.unset.iter().map(Key::text).collect(),
            new_external_id: self.new_external_id.as_ref().map(Spec::config),
            links: self
                .links
                .iter()
                .map(|(kind, path)| ((*kind).to_owned(), path.text()))
                .collect(),
        }
    }
}

fuzz_target!(|rules: Vec<Rule<'_>>| {
    let configs: Vec<RuleConfig> = rules.iter().map(Rule::config).collect();
    let compiled = match RuleSet::compile(&configs, &["stripe", "salesforce"]) {
        Ok(compiled) => compiled,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    assert_eq!(compiled.len(), configs.len());
    let _ = compiled.owned_keys(TargetKind::Organization);
    let _ = compiled.owned_keys(TargetKind::User);
    for event in EVENTS.iter() {
        let normalized = compiled.normalize(event);
        assert_eq!(normalized, compiled.normalize(event));
        let stored = serde_json::to_string(&normalized).expect("an outcome serializes");
        let read: Normalized = serde_json::from_str(&stored).expect("a stored outcome reads back");
        assert_eq!(read, normalized);
        let _ = orgsync::rules::describe(&normalized);
    }
});
