//! The streams the convergence property runs, as proptest strategies: events (whom they
//! change, with what, and when they were created), their deliveries (duplicates, order) and
//! the faults between them. proptest shrinks all of these when a case fails.

use std::collections::HashSet;
use std::fmt;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use scalekit_standin::Fault;
use serde_json::{Value, json};

use crate::helpers::fixture;
use crate::semantics::support::{BASE, subscription};

/// The organizations' external ids.
pub const ORGS: [&str; 3] = ["org_prop_0", "org_prop_1", "org_prop_2"];
/// The users' external ids.
pub const USERS: [&str; 2] = ["ext_user_0", "ext_user_1"];
const STATUSES: [&str; 4] = ["trialing", "active", "past_due", "canceled"];
const DEPARTMENTS: [&str; 3] = ["sales", "engineering", "support"];

/// What an event changes.
#[derive(Debug, Clone)]
enum Kind {
    /// A person change of user #`user`.
    Person { user: usize, department: usize },
    /// An invoice of organization #`org`, paid or failed.
    Invoice { org: usize, paid: bool },
    /// A subscription change; `direct` names the organization, else only its customer id
    /// does (the rule finds it through the learned link).
    Subscription {
        org: usize,
        status: usize,
        direct: bool,
    },
}

/// One generated event before it is rendered: its kind and `created - BASE`.
#[derive(Debug, Clone)]
struct Spec {
    age: i64,
    kind: Kind,
}

/// One event of the stream: its target, version and the fields it sets.
pub struct Event {
    /// External id of the organization or user.
    pub target: &'static str,
    /// Stripe `created`.
    pub created: i64,
    /// The metadata it sets; seats and titles are unique per event.
    pub fields: Vec<(&'static str, String)>,
    /// The Stripe event JSON.
    pub body: Vec<u8>,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} @{} {:?}", self.target, self.created, self.fields)
    }
}

/// What the stream does, in order.
#[derive(Debug, Clone)]
pub enum Step {
    /// POST event #i (again, for a duplicate).
    Deliver(usize),
    /// Queue faults for the next Scalekit calls.
    Fail(usize, Fault),
    /// Set the stand-in's latency, in milliseconds.
    Latency(u64),
}

/// One generated case.
#[derive(Debug)]
pub struct Case {
    /// The distinct events.
    pub events: Vec<Event>,
    /// Deliveries and faults, in order.
    pub steps: Vec<Step>,
    /// How many of the first writes lose their answer (armed before the first delivery).
    pub lost: usize,
}

/// 30–60 events over [`ORGS`] and [`USERS`], a quarter delivered twice or three times, in
/// any order, about one delivery in eight preceded by a fault, and 1–3 lost answers.
pub fn case() -> impl Strategy<Value = Case> {
    (vec(spec(), 30..60), 1..=3usize)
        .prop_flat_map(|(specs, lost)| {
            let extra = vec(select(vec![0usize, 0, 0, 1, 2]), specs.len());
            (Just(specs), extra, Just(lost))
        })
        .prop_flat_map(|(specs, extra, lost)| {
            let mut deliveries: Vec<usize> = (0..specs.len()).collect();
            for (i, copies) in extra.iter().enumerate() {
                deliveries.extend(std::iter::repeat_n(i, *copies));
            }
            let faults = vec(proptest::option::weighted(0.12, fault()), deliveries.len());
            (
                Just(specs),
                Just(deliveries).prop_shuffle(),
                faults,
                Just(lost),
            )
        })
        .prop_map(|(specs, deliveries, faults, lost)| build(specs, &deliveries, faults, lost))
}

/// An event: `created` often ties (so arrival order matters); users 2 in 5, invoices 9 in
/// 50, subscriptions the rest, a quarter of them found only through the customer link.
fn spec() -> impl Strategy<Value = Spec> {
    let kind = prop_oneof![
        20 => (0..USERS.len(), 0..DEPARTMENTS.len())
            .prop_map(|(user, department)| Kind::Person { user, department }),
        9 => (0..ORGS.len(), any::<bool>()).prop_map(|(org, paid)| Kind::Invoice { org, paid }),
        21 => (0..ORGS.len(), 0..STATUSES.len(), proptest::bool::weighted(0.75))
            .prop_map(|(org, status, direct)| Kind::Subscription { org, status, direct }),
    ];
    (0..12i64, kind).prop_map(|(age, kind)| Spec { age, kind })
}

/// A fault before a delivery: 429 (with Retry-After or plain text), 500, 503, or latency.
fn fault() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1..3usize).prop_map(|n| Step::Fail(
            n,
            Fault::RateLimited {
                retry_after_secs: Some(1)
            }
        )),
        (1..4usize).prop_map(|n| Step::Fail(n, Fault::Status(500))),
        Just(Step::Fail(1, Fault::Status(503))),
        Just(Step::Fail(1, Fault::RateLimitedPlainText)),
        (0..40u64).prop_map(Step::Latency),
    ]
}

/// Renders the case: an organization reached only through the link gets one event that
/// teaches it; `lost` is capped at the number of targets (each gets at least one write).
fn build(
    mut specs: Vec<Spec>,
    deliveries: &[usize],
    faults: Vec<Option<Step>>,
    lost: usize,
) -> Case {
    for org in 0..ORGS.len() {
        let of_org = |s: &Spec| match s.kind {
            Kind::Invoice { org: o, .. } | Kind::Subscription { org: o, .. } => o == org,
            Kind::Person { .. } => false,
        };
        let linked_only = |s: &Spec| matches!(s.kind, Kind::Subscription { direct: false, .. });
        if !specs.iter().any(|s| of_org(s) && !linked_only(s))
            && let Some(Spec {
                kind: Kind::Subscription { direct, .. },
                ..
            }) = specs.iter_mut().find(|s| of_org(s))
        {
            *direct = true;
        }
    }
    let events: Vec<Event> = specs.iter().enumerate().map(|(i, s)| event(i, s)).collect();
    let targets: HashSet<&str> = events.iter().map(|e| e.target).collect();
    let mut steps = Vec::new();
    for (i, fault) in deliveries.iter().zip(faults) {
        steps.extend(fault);
        steps.push(Step::Deliver(*i));
    }
    Case {
        lost: lost.min(targets.len()),
        events,
        steps,
    }
}

/// Event #i rendered as Stripe JSON.
fn event(i: usize, spec: &Spec) -> Event {
    let id = format!("evt_prop_{i}");
    let created = BASE + spec.age;
    match spec.kind {
        Kind::Person { user, department } => {
            let (target, title) = (USERS[user], format!("title {i}"));
            let department = DEPARTMENTS[department].to_owned();
            let body = json!({"id": id, "object": "event", "type": "test.person.updated",
                "created": created, "data": {"object": {"user_id": target, "title": title,
                "department": department}}});
            let fields = vec![("title", title), ("department", department)];
            rendered(target, created, fields, &body)
        }
        Kind::Invoice { org, paid } => {
            let (target, status) = (ORGS[org], if paid { "paid" } else { "payment_failed" });
            let mut body: Value =
                serde_json::from_slice(&fixture("stripe/event.invoice.paid.json")).unwrap();
            body["id"] = id.into();
            body["type"] = format!("invoice.{status}").into();
            body["created"] = created.into();
            let object = &mut body["data"]["object"];
            object["customer"] = format!("cus_{target}").into();
            object["parent"]["subscription_details"]["metadata"]["org_id"] = target.into();
            rendered(
                target,
                created,
                vec![("last_invoice_status", status.into())],
                &body,
            )
        }
        Kind::Subscription {
            org,
            status,
            direct,
        } => {
            let (target, status, seats) = (ORGS[org], STATUSES[status], i as u64 + 1);
            let fields = vec![
                ("plan_type", "pro_monthly".to_owned()),
                ("subscription_status", status.to_owned()),
                ("seats", seats.to_string()),
                ("billing_customer_id", format!("cus_{target}")),
                ("current_period_end", "2026-02-15T00:00:00Z".to_owned()),
            ];
            let mut body: Value =
                serde_json::from_slice(&subscription(&id, created, target, status, seats)).unwrap();
            if !direct {
                body["data"]["object"]["metadata"] = json!({});
            }
            rendered(target, created, fields, &body)
        }
    }
}

fn rendered(
    target: &'static str,
    created: i64,
    fields: Vec<(&'static str, String)>,
    body: &Value,
) -> Event {
    Event {
        target,
        created,
        fields,
        body: serde_json::to_vec(body).unwrap(),
    }
}
