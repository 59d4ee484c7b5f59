//! The rules give the same result on a payload built only in the parts they read
//! (`RuleSet::payload_fields`) as on the whole payload.

use super::{default_rules, fixture, rules, stripe_fixture};
use crate::model::PayloadFields;

/// Every Stripe fixture that is one event.
const STRIPE_EVENTS: &[&str] = &[
    "event.checkout.session.completed.json",
    "event.customer.created.json",
    "event.customer.deleted.json",
    "event.customer.subscription.created.json",
    "event.customer.subscription.deleted.json",
    "event.customer.subscription.paused.json",
    "event.customer.subscription.resumed.json",
    "event.customer.subscription.trial_will_end.json",
    "event.customer.subscription.updated.json",
    "event.customer.subscription.updated.quantity.json",
    "event.customer.updated.json",
    "event.entitlements.active_entitlement_summary.updated.json",
    "event.invoice.paid.json",
    "event.invoice.payment_failed.json",
];

/// Normalizes each fixture with the whole payload and with the pruned one; returns how
/// many of them matched a rule.
fn same_on_every_fixture(set: &crate::rules::RuleSet) -> usize {
    let fields = set.payload_fields("stripe");
    assert_ne!(fields, PayloadFields::Whole, "nothing would be pruned");
    let mut matched = 0;
    for file in STRIPE_EVENTS {
        let whole = stripe_fixture(file);
        let body = fixture(&format!("stripe/{file}"));
        let mut pruned = whole.clone();
        pruned.payload = fields.parse(body.as_bytes()).expect("fixture parses");
        assert_ne!(pruned.payload, whole.payload, "{file}: nothing was pruned");
        let expected = set.normalize(&whole);
        assert_eq!(set.normalize(&pruned), expected, "{file}");
        matched += usize::from(matches!(expected, crate::model::Normalized::Matched { .. }));
    }
    matched
}

#[test]
fn the_default_rules_read_pruned_stripe_events_as_whole_ones() {
    let matched = same_on_every_fixture(&default_rules());
    assert!(
        matched >= 8,
        "only {matched} fixtures matched a default rule"
    );
}

#[test]
fn every_kind_of_path_a_rule_has_is_kept() {
    let set = rules(
        r#"
[[rules]]
name = "every path"
source = "stripe"
events = ["customer.*", "invoice.*", "checkout.*"]
target = "user"
when = [{ path = "$.data.object.object", one_of = ["customer", "invoice", "checkout.session"] }]
external_id = ["$.data.object.metadata.user_id", "link:stripe_customer($.data.object.customer)", "$.data.object.id"]
on_missing = "create"
new_external_id = { path = "$.data.object.metadata.new_id" }
[rules.create]
email = ["$.data.object.email", "$.data.object.customer_email"]
display_name = { path = "$.data.object.lines.data[*].description", join = "; " }
first_name = "$.data.object.name"
organization = ["$.data.object.metadata.org", "link:stripe_customer($.data.object.customer)"]
[rules.set]
livemode = "$.livemode"
plan = { path = "$.data.object.lines.data[0].price.id" }
[rules.links]
stripe_customer = "$.data.object.customer"
"#,
    );
    let matched = same_on_every_fixture(&set);
    assert!(matched >= 4, "only {matched} fixtures matched");
}

#[test]
fn a_filter_that_reads_the_root_keeps_the_whole_payload() {
    let set = rules(
        r#"
[[rules]]
name = "root in a filter"
source = "stripe"
events = ["*"]
target = "organization"
external_id = "$.data.object.customer"
[rules.set]
items = { path = "$.data.object.items.data[?@.id == $.id].id", join = "," }
"#,
    );
    assert_eq!(set.payload_fields("stripe"), PayloadFields::Whole);
    assert_ne!(set.payload_fields("crm"), PayloadFields::Whole);
}
