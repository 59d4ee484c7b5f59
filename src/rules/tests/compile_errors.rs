//! Every compile error names the rule (name and position) and the reason.

use super::{SOURCES, configs};
use crate::rules::{RuleError, RuleSet};

/// A valid rule with one line replaced or added, as the second `[[rules]]` table.
fn compile_err(extra: &str) -> String {
    let text = format!(
        r#"
[[rules]]
name = "fine"
source = "stripe"
events = ["customer.created"]
target = "organization"
external_id = ["$.data.object.metadata.org_id"]

[[rules]]
name = "broken one"
{extra}
"#
    );
    let err = RuleSet::compile(&configs(&text), SOURCES).unwrap_err();
    let RuleError::Invalid { name, index, .. } = &err;
    assert_eq!((name.as_str(), *index), ("broken one", 2));
    let message = err.to_string();
    assert!(message.contains("#2 \"broken one\""), "{message}");
    message
}

const BASE: &str = r#"source = "stripe"
events = ["customer.created"]
target = "organization"
"#;

fn with_base(rest: &str) -> String {
    compile_err(&format!("{BASE}{rest}"))
}

#[test]
fn unknown_source() {
    let msg = compile_err(
        "source = \"strpe\"\nevents = [\"x\"]\ntarget = \"user\"\nexternal_id = \"$.id\"",
    );
    assert!(msg.contains("unknown source \"strpe\""), "{msg}");
    assert!(msg.contains("stripe, salesforce"), "{msg}");
}

#[test]
fn bad_jsonpath_carries_the_parser_message() {
    let msg = with_base("external_id = [\"$.data.[\"]");
    assert!(msg.contains("bad JSONPath \"$.data.[\""), "{msg}");
    assert!(msg.contains("at position"), "{msg}");
}

#[test]
fn bad_metadata_key() {
    let msg = with_base("external_id = \"$.id\"\n[rules.set]\nid = \"$.id\"");
    assert!(msg.contains("invalid metadata key \"id\""), "{msg}");
    let msg = with_base("external_id = \"$.id\"\nunset = [\"stripe_subscription_status\"]");
    assert!(msg.contains("stripe_subscription_status"), "{msg}");
}

#[test]
fn too_many_keys_for_an_organization() {
    let keys: String = (0..11).map(|i| format!("key_{i} = \"$.k{i}\"\n")).collect();
    let msg = with_base(&format!("external_id = \"$.id\"\n[rules.set]\n{keys}"));
    assert!(msg.contains("writes 11 metadata keys"), "{msg}");
    assert!(msg.contains("at most 10"), "{msg}");
}

#[test]
fn unknown_target() {
    let msg = compile_err(
        "source = \"stripe\"\nevents = [\"x\"]\ntarget = \"org\"\nexternal_id = \"$.id\"",
    );
    assert!(msg.contains("unknown target \"org\""), "{msg}");
}

#[test]
fn empty_events() {
    let msg =
        compile_err("source = \"stripe\"\nevents = []\ntarget = \"user\"\nexternal_id = \"$.id\"");
    assert!(msg.contains("`events` is empty"), "{msg}");
}

#[test]
fn wildcard_only_at_the_end() {
    let msg = compile_err(
        "source = \"stripe\"\nevents = [\"customer.*.updated\"]\ntarget = \"user\"\nexternal_id = \"$.id\"",
    );
    assert!(msg.contains("bad event type"), "{msg}");
}

#[test]
fn bad_link_syntax() {
    let msg = with_base("external_id = [\"link:stripe_customer$.customer\"]");
    assert!(msg.contains("write link:<kind>(<jsonpath>)"), "{msg}");
    let msg = with_base("external_id = [\"link:Stripe-Customer($.customer)\"]");
    assert!(msg.contains("bad link kind"), "{msg}");
    let msg = with_base("external_id = [\"link:stripe_customer($.customer[*])\"]");
    assert!(msg.contains("several values"), "{msg}");
}

#[test]
fn empty_external_id() {
    let msg = with_base("external_id = []");
    assert!(msg.contains("`external_id` is empty"), "{msg}");
}

#[test]
fn duplicate_name() {
    let text = r#"
[[rules]]
name = "same"
source = "stripe"
events = ["a"]
target = "user"
external_id = "$.id"
[[rules]]
name = "same"
source = "stripe"
events = ["b"]
target = "user"
external_id = "$.id"
"#;
    let msg = RuleSet::compile(&configs(text), SOURCES)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("#2 \"same\"") && msg.contains("unique"),
        "{msg}"
    );
}

#[test]
fn create_needs_its_table_and_fields() {
    let msg = with_base("external_id = \"$.id\"\non_missing = \"create\"");
    assert!(msg.contains("needs a [rules.create] table"), "{msg}");
    let msg = with_base(
        "external_id = \"$.id\"\non_missing = \"create\"\n[rules.create]\nemail = \"$.e\"",
    );
    assert!(msg.contains("create.display_name"), "{msg}");
    let msg = with_base("external_id = \"$.id\"\n[rules.create]\ndisplay_name = \"$.n\"");
    assert!(msg.contains("only with on_missing = \"create\""), "{msg}");
    let msg = compile_err(
        "source = \"crm\"\nevents = [\"x\"]\ntarget = \"user\"\nexternal_id = \"$.id\"\n\
         on_missing = \"create\"\n[rules.create]\nemail = \"$.e\"",
    );
    assert!(
        msg.contains("create.email and create.organization"),
        "{msg}"
    );
}

#[test]
fn unknown_on_missing() {
    let msg = with_base("external_id = \"$.id\"\non_missing = \"wait\"");
    assert!(msg.contains("unknown on_missing \"wait\""), "{msg}");
}

#[test]
fn links_need_a_direct_candidate() {
    let msg = with_base(
        "external_id = \"link:stripe_customer($.c)\"\n[rules.links]\nstripe_customer = \"$.c\"",
    );
    assert!(msg.contains("direct JSONPath"), "{msg}");
}

#[test]
fn bad_value_specs() {
    let msg =
        with_base("external_id = \"$.id\"\n[rules.set]\nplan = { path = \"$.a\", value = \"x\" }");
    assert!(msg.contains("set.plan: give exactly one of"), "{msg}");
    let msg = with_base(
        "external_id = \"$.id\"\n[rules.set]\nplan = { path = \"$.a\", format = \"iso\" }",
    );
    assert!(msg.contains("unknown format \"iso\""), "{msg}");
    let msg = with_base("external_id = \"$.id\"\nunset = [\"plan\"]\n[rules.set]\nplan = \"$.a\"");
    assert!(msg.contains("both in [rules.set] and in unset"), "{msg}");
}

#[test]
fn condition_needs_exactly_one_test() {
    let msg = with_base(
        "external_id = \"$.id\"\nwhen = [{ path = \"$.a\", equals = \"x\", exists = true }]",
    );
    assert!(msg.contains("exactly one of equals"), "{msg}");
}

#[test]
fn unknown_fields_fail_when_parsing() {
    let text = r#"
[[rules]]
name = "typo"
source = "stripe"
events = ["a"]
target = "user"
external_ids = ["$.id"]
"#;
    let err = toml::from_str::<super::RulesFile>(text)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("external_ids"), "{err}");
    let text = r#"
[[rules]]
name = "typo"
source = "stripe"
events = ["a"]
target = "user"
external_id = ["$.id"]
[rules.set]
plan = { path = "$.a", requird = true }
"#;
    let err = toml::from_str::<super::RulesFile>(text)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("requird"), "{err}");
}
