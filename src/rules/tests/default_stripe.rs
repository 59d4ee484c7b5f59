//! The shipped default rules against every Stripe fixture.

use serde_json::json;

use super::{default_rules, id, matched, set_pairs, stripe_fixture, unset_keys};
use crate::model::{LinkUpdate, Normalized, TargetKind, TargetRef};

const ORG: &str = "org_01HZX5K9M3ABCDEF";
const CUS: &str = "cus_QXg1o8vcGmoR32";

fn org_target() -> TargetRef {
    TargetRef::External {
        kind: TargetKind::Organization,
        external_id: id(ORG),
    }
}

fn link(kind: &str, key: &str) -> LinkUpdate {
    LinkUpdate {
        kind: TargetKind::Organization,
        link: kind.into(),
        key: key.into(),
        external_id: id(ORG),
    }
}

#[test]
fn customer_created_and_updated_set_the_customer_and_learn_links() {
    for file in ["event.customer.created.json", "event.customer.updated.json"] {
        let (changes, links) = matched(default_rules().normalize(&stripe_fixture(file)));
        assert_eq!(changes.len(), 1, "{file}");
        assert_eq!(changes[0].rule, "stripe customer → organization");
        assert_eq!(changes[0].target, org_target());
        assert_eq!(set_pairs(&changes[0]), [("billing_customer_id", CUS)]);
        assert!(changes[0].unset.is_empty());
        assert_eq!(
            links,
            [
                link("salesforce_account", "0015g00000XyZabAAF"),
                link("stripe_customer", CUS)
            ]
        );
    }
}

#[test]
fn customer_deleted_removes_the_billing_keys() {
    let (changes, links) =
        matched(default_rules().normalize(&stripe_fixture("event.customer.deleted.json")));
    assert_eq!(changes[0].target, org_target());
    assert!(changes[0].set.is_empty());
    assert_eq!(
        unset_keys(&changes[0]),
        [
            "billing_customer_id",
            "current_period_end",
            "entitlements",
            "last_invoice_status",
            "plan_type",
            "seats",
            "subscription_status"
        ]
    );
    assert_eq!(changes[0].on_missing, crate::model::OnMissing::Skip);
    assert!(links.is_empty());
}

#[test]
fn checkout_links_the_customer_to_the_reference_id() {
    let (changes, links) = matched(
        default_rules().normalize(&stripe_fixture("event.checkout.session.completed.json")),
    );
    assert_eq!(changes[0].target, org_target());
    assert_eq!(set_pairs(&changes[0]), [("billing_customer_id", CUS)]);
    assert_eq!(links, [link("stripe_customer", CUS)]);
}

#[test]
fn payment_mode_checkout_is_ignored() {
    let mut event = stripe_fixture("event.checkout.session.completed.json");
    event.payload["data"]["object"]["mode"] = json!("payment");
    event.payload["data"]["object"]["customer"] = json!(null);
    assert_eq!(default_rules().normalize(&event), Normalized::Ignored);
}

#[test]
fn every_subscription_event_sets_the_billing_state() {
    let cases = [
        ("created", "trialing", "5", "2026-02-01T00:00:00Z"),
        ("trial_will_end", "trialing", "5", "2026-02-01T00:00:00Z"),
        ("updated", "active", "5", "2026-02-15T00:00:00Z"),
        ("updated.quantity", "active", "8", "2026-02-15T00:00:00Z"),
        ("paused", "paused", "5", "2026-02-01T00:00:00Z"),
        ("resumed", "active", "5", "2026-02-17T00:00:00Z"),
        ("deleted", "canceled", "8", "2026-02-15T00:00:00Z"),
    ];
    for (name, status, seats, period_end) in cases {
        let file = format!("event.customer.subscription.{name}.json");
        let (changes, links) = matched(default_rules().normalize(&stripe_fixture(&file)));
        assert_eq!(changes.len(), 1, "{file}");
        assert_eq!(changes[0].rule, "stripe subscription → organization");
        assert_eq!(changes[0].target, org_target(), "{file}");
        assert_eq!(
            set_pairs(&changes[0]),
            [
                ("billing_customer_id", CUS),
                ("current_period_end", period_end),
                ("plan_type", "pro_monthly"),
                ("seats", seats),
                ("subscription_status", status),
            ],
            "{file}"
        );
        assert!(changes[0].unset.is_empty(), "{file}");
        assert_eq!(links, [link("stripe_customer", CUS)], "{file}");
    }
}

#[test]
fn subscription_without_org_id_goes_through_the_customer_link() {
    let mut event = stripe_fixture("event.customer.subscription.updated.json");
    let object = &mut event.payload["data"]["object"];
    object["metadata"] = json!({});
    object["items"]["data"][0]["price"]["lookup_key"] = json!(null);
    let (changes, links) = matched(default_rules().normalize(&event));
    assert_eq!(
        changes[0].target,
        TargetRef::Link {
            kind: TargetKind::Organization,
            link: "stripe_customer".into(),
            key: CUS.into()
        }
    );
    assert_eq!(
        changes[0].set[&crate::model::MetadataKey::parse("plan_type").unwrap()],
        "price_1PgafmB7WZ01zgkW6dKueIc5"
    );
    assert!(links.is_empty());
}

#[test]
fn invoices_record_the_last_invoice_status() {
    for (file, status) in [
        ("event.invoice.paid.json", "paid"),
        ("event.invoice.payment_failed.json", "payment_failed"),
    ] {
        let (changes, links) = matched(default_rules().normalize(&stripe_fixture(file)));
        assert_eq!(changes.len(), 1, "{file}");
        assert_eq!(changes[0].target, org_target(), "{file}");
        assert_eq!(
            set_pairs(&changes[0]),
            [("last_invoice_status", status)],
            "{file}"
        );
        assert_eq!(links, [link("stripe_customer", CUS)], "{file}");
    }
}

#[test]
fn entitlements_are_joined_lookup_keys_via_the_customer_link() {
    let file = "event.entitlements.active_entitlement_summary.updated.json";
    let (changes, links) = matched(default_rules().normalize(&stripe_fixture(file)));
    assert_eq!(
        changes[0].target.key().as_str(),
        format!("link:org:stripe_customer:{CUS}")
    );
    assert_eq!(set_pairs(&changes[0]), [("entitlements", "sso,seats_pro")]);
    assert!(links.is_empty());

    let mut event = stripe_fixture(file);
    event.payload["data"]["object"]["entitlements"]["data"] = json!([]);
    let (changes, _) = matched(default_rules().normalize(&event));
    assert_eq!(unset_keys(&changes[0]), ["entitlements"]);
}

#[test]
fn other_stripe_events_are_ignored() {
    let thin = "thin_event.v1.billing.meter.error_report_triggered.json";
    assert_eq!(
        default_rules().normalize(&stripe_fixture(thin)),
        Normalized::Ignored
    );
    let mut event = stripe_fixture("event.invoice.paid.json");
    event.event_type = "invoice.finalized".into();
    assert_eq!(default_rules().normalize(&event), Normalized::Ignored);
}

#[test]
fn default_rules_stay_within_the_organization_key_limit() {
    let keys = default_rules().owned_keys(TargetKind::Organization);
    assert!(
        keys.len() <= TargetKind::Organization.max_metadata_pairs(),
        "{keys:?}"
    );
    assert_eq!(keys.len(), 9, "{keys:?}");
    assert_eq!(default_rules().owned_keys(TargetKind::User).len(), 2);
}
