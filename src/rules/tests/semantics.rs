//! Engine semantics on hand-written rules: matching, values, links, rejections.

use serde_json::json;

use super::{event, id, matched, rejected, rules, set_pairs, unset_keys};
use crate::model::{Normalized, OnMissing, TargetKind, TargetRef};
use crate::rules::describe;

const PLAN_RULE: &str = r#"
[[rules]]
name = "plans"
source = "crm"
events = ["plan.*", "account.updated"]
target = "organization"
external_id = ["$.org", "link:crm_account($.account)"]
[rules.set]
plan_type = "$.plan"
seats = "$.seats"
trial = "$.trial"
[rules.links]
crm_account = "$.account"
"#;

#[test]
fn values_are_stringified_and_null_removes_the_key() {
    let set = rules(PLAN_RULE);
    let payload = json!({"org": "E1", "account": "A1", "plan": null, "seats": 8, "trial": true});
    let (changes, links) = matched(set.normalize(&event("crm", "plan.changed", payload)));
    assert_eq!(changes.len(), 1);
    let change = &changes[0];
    assert_eq!(change.rule, "plans");
    assert_eq!(
        change.target,
        TargetRef::External {
            kind: TargetKind::Organization,
            external_id: id("E1")
        }
    );
    assert_eq!(set_pairs(change), [("seats", "8"), ("trial", "true")]);
    assert_eq!(unset_keys(change), ["plan_type"]);
    assert_eq!(change.on_missing, OnMissing::Retry);
    assert_eq!(links.len(), 1);
    assert_eq!(
        (links[0].link.as_str(), links[0].key.as_str()),
        ("crm_account", "A1")
    );
    assert_eq!(links[0].external_id, id("E1"));
}

#[test]
fn absent_values_leave_keys_alone() {
    let set = rules(PLAN_RULE);
    let (changes, _) =
        matched(set.normalize(&event("crm", "account.updated", json!({"org": "E1"}))));
    assert!(changes[0].set.is_empty() && changes[0].unset.is_empty());
}

#[test]
fn link_candidate_when_the_id_is_missing_and_no_link_is_learned() {
    let set = rules(PLAN_RULE);
    let payload = json!({"org": "", "account": "A1", "plan": "pro"});
    let (changes, links) = matched(set.normalize(&event("crm", "plan.changed", payload)));
    assert_eq!(
        changes[0].target,
        TargetRef::Link {
            kind: TargetKind::Organization,
            link: "crm_account".into(),
            key: "A1".into()
        }
    );
    assert!(links.is_empty());
}

#[test]
fn wildcard_source_and_type_matching() {
    let set = rules(PLAN_RULE);
    let payload = json!({"org": "E1"});
    assert!(matches!(
        set.normalize(&event("crm", "plan.x.y", payload.clone())),
        Normalized::Matched { .. }
    ));
    assert_eq!(
        set.normalize(&event("crm", "plan", payload.clone())),
        Normalized::Ignored
    );
    assert_eq!(
        set.normalize(&event("crm", "account.created", payload.clone())),
        Normalized::Ignored
    );
    assert_eq!(
        set.normalize(&event("stripe", "plan.changed", payload)),
        Normalized::Ignored
    );
}

#[test]
fn rejections_name_the_rule_and_the_problem() {
    let set = rules(PLAN_RULE);
    let reason = rejected(set.normalize(&event("crm", "plan.a", json!({"plan": "x"}))));
    assert!(reason.contains("rule \"plans\" (#1)"), "{reason}");
    assert!(
        reason.contains("none of $.org, link:crm_account($.account)"),
        "{reason}"
    );

    let reason = rejected(set.normalize(&event("crm", "plan.a", json!({"org": "a/b"}))));
    assert!(reason.contains("contains '/'"), "{reason}");

    let payload = json!({"org": "E1", "plan": {"name": "pro"}});
    let reason = rejected(set.normalize(&event("crm", "plan.a", payload)));
    assert!(
        reason.contains("key plan_type") && reason.contains("an object"),
        "{reason}"
    );

    let payload = json!({"org": "E1", "plan": "x".repeat(257)});
    let reason = rejected(set.normalize(&event("crm", "plan.a", payload)));
    assert!(
        reason.contains("key plan_type") && reason.contains("257 characters"),
        "{reason}"
    );
}

#[test]
fn when_conditions_must_all_hold() {
    let set = rules(
        r#"
[[rules]]
name = "subscriptions only"
source = "stripe"
events = ["checkout.session.completed"]
target = "organization"
when = [
  { path = "$.mode", equals = "subscription" },
  { path = "$.customer", exists = true },
  { path = "$.status", one_of = ["complete", "open"] },
  { path = "$.livemode", not_equals = true },
]
external_id = "$.org"
"#,
    );
    let ok = json!({"mode": "subscription", "customer": "c", "status": "complete", "org": "E"});
    let ty = "checkout.session.completed";
    assert!(matches!(
        set.normalize(&event("stripe", ty, ok.clone())),
        Normalized::Matched { .. }
    ));
    for (field, value) in [
        ("mode", json!("payment")),
        ("customer", json!(null)),
        ("status", json!("expired")),
        ("livemode", json!(true)),
    ] {
        let mut payload = ok.clone();
        payload[field] = value;
        assert_eq!(
            set.normalize(&event("stripe", ty, payload)),
            Normalized::Ignored,
            "{field}"
        );
    }
}

const TWO_RULES: &str = r#"
[[rules]]
name = "org side"
source = "crm"
events = ["member.updated"]
target = "organization"
external_id = "$.org"
[rules.set]
last_member = "$.email"

[[rules]]
name = "user side"
source = "crm"
events = ["member.updated"]
target = "user"
external_id = "$.user"
unset = ["old_key"]
new_external_id = "$.new_user"
[rules.set]
email_copy = { path = "$.email", required = true }
"#;

#[test]
fn several_rules_give_one_change_each() {
    let set = rules(TWO_RULES);
    let payload = json!({"org": "O", "user": "U", "email": "a@b.c", "new_user": "U2"});
    let (changes, _) = matched(set.normalize(&event("crm", "member.updated", payload)));
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0].target.key(), "org:O");
    assert_eq!(changes[1].target.key(), "user:U");
    assert_eq!(unset_keys(&changes[1]), ["old_key"]);
    assert_eq!(changes[1].new_external_id, Some(id("U2")));
}

#[test]
fn one_rejecting_rule_rejects_the_event() {
    let set = rules(TWO_RULES);
    let payload = json!({"org": "O", "user": "U"});
    let reason = rejected(set.normalize(&event("crm", "member.updated", payload)));
    assert!(reason.contains("rule \"user side\" (#2)"), "{reason}");
    assert!(
        reason.contains("key email_copy: required value is absent"),
        "{reason}"
    );
}

#[test]
fn create_values_for_users() {
    let set = rules(
        r#"
[[rules]]
name = "contacts"
source = "crm"
events = ["contact"]
target = "user"
external_id = "$.id"
on_missing = "create"
[rules.create]
email = "$.email"
first_name = { value = "Member" }
organization = ["$.org", "link:crm_account($.account)"]
"#,
    );
    let payload = json!({"id": "C1", "email": "a@b.c", "account": "A1"});
    let (changes, _) = matched(set.normalize(&event("crm", "contact", payload)));
    let create = changes[0].create.clone().unwrap();
    assert_eq!(create.email.as_deref(), Some("a@b.c"));
    assert_eq!(create.first_name.as_deref(), Some("Member"));
    assert_eq!(create.last_name, None);
    assert_eq!(
        create.organization.unwrap().key(),
        "link:org:crm_account:A1"
    );
    assert_eq!(changes[0].on_missing, OnMissing::Create);
}

#[test]
fn describe_says_what_happens() {
    let set = rules(PLAN_RULE);
    let payload = json!({"org": "E1", "account": "A1", "plan": null, "seats": 8});
    let text = describe(&set.normalize(&event("crm", "plan.changed", payload)));
    assert!(
        text.contains("rule \"plans\" changes organization E1"),
        "{text}"
    );
    assert!(text.contains("set   seats = \"8\""), "{text}");
    assert!(text.contains("unset plan_type"), "{text}");
    assert!(
        text.contains("learns link crm_account A1 → organization E1"),
        "{text}"
    );
    assert_eq!(
        describe(&Normalized::Ignored),
        "ignored: no rule handles this event\n"
    );
    let rejected = Normalized::Rejected {
        reason: "why".into(),
    };
    assert_eq!(describe(&rejected), "rejected: why\n");
}
