//! The convergence property: random streams of events over several organizations and
//! users, with duplicates, reordering, injected 429/500/503 and latency, end in the state a
//! plain model predicts (per field: the value of the newest `(created, arrival)` event),
//! with every job done, and no write that repeats the current state or goes back in time.
//!
//! Seeds: a fixed list, or the one in `ORGSYNC_PROPTEST_SEED`; a failure names its seed.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use orgsync::store::{JobRow, JobState};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use scalekit_standin::{Fault, StandIn};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::semantics::support::{BASE, post_signed, subscription};

const SEEDS: [u64; 6] = [1, 2, 3, 5, 8, 13];
const ORGS: [&str; 3] = ["org_prop_0", "org_prop_1", "org_prop_2"];
const USERS: [&str; 2] = ["ext_user_0", "ext_user_1"];
const STATUSES: [&str; 4] = ["trialing", "active", "past_due", "canceled"];
const DEPARTMENTS: [&str; 3] = ["sales", "engineering", "support"];

/// A test rule for users: `test.person.updated` events set a user's title and department.
const USER_RULE: &str = r#"
[[rules]]
name = "test person → user"
source = "stripe"
events = ["test.person.updated"]
target = "user"
external_id = ["$.data.object.user_id"]
[rules.set]
title = "$.data.object.title"
department = "$.data.object.department"
"#;

/// An event's place in the model's order: `(created, first arrival)`.
type Order = (i64, usize);

/// One generated event: its target, version and the fields it sets.
struct Event {
    /// External id of the organization or user.
    target: &'static str,
    created: i64,
    fields: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// Names its target itself (else only through the learned customer link).
    direct: bool,
}

/// What the stream does, in order.
enum Step {
    /// POST event #i (again, for a duplicate).
    Deliver(usize),
    /// Queue faults for the next Scalekit calls.
    Fail(usize, Fault),
    /// Change the stand-in's latency.
    Latency(Duration),
    /// For a moment, answer slower than the client's 1 s timeout: changes made in that
    /// window are applied but their answers are lost.
    LostAnswers,
}

fn generate(seed: u64) -> (Vec<Event>, Vec<Step>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = rng.random_range(30..60);
    let mut events: Vec<Event> = (0..n).map(|i| event(&mut rng, seed, i)).collect();
    // An organization reached only through the link needs one event that teaches it.
    for org in ORGS {
        let mine: Vec<usize> = (0..n).filter(|i| events[*i].target == org).collect();
        if let Some(first) = mine
            .first()
            .filter(|_| !mine.iter().any(|i| events[*i].direct))
        {
            let e = &mut events[*first];
            e.body = subscription_body_with_org(&e.body, org);
            e.direct = true;
        }
    }
    let mut deliveries: Vec<usize> = (0..n).collect();
    for i in 0..n {
        for _ in 0..[0, 0, 0, 1, 2][rng.random_range(0..5)] {
            deliveries.push(i);
        }
    }
    deliveries.shuffle(&mut rng);
    let mut steps = Vec::new();
    for i in deliveries {
        if rng.random_bool(0.12) {
            steps.push(match rng.random_range(0..6) {
                0 => Step::Fail(
                    rng.random_range(1..3),
                    Fault::RateLimited {
                        retry_after_secs: Some(1),
                    },
                ),
                1 => Step::Fail(rng.random_range(1..4), Fault::Status(500)),
                2 => Step::Fail(1, Fault::Status(503)),
                3 => Step::Fail(1, Fault::RateLimitedPlainText),
                4 => Step::Latency(Duration::from_millis(rng.random_range(0..40))),
                _ => Step::LostAnswers,
            });
        }
        steps.push(Step::Deliver(i));
    }
    (events, steps)
}

/// Event #i: a subscription or invoice change of an organization, or a person change of a
/// user. `created` often ties, so arrival order matters; seats and titles are unique per
/// event, so every written value names the event it came from.
fn event(rng: &mut StdRng, seed: u64, i: usize) -> Event {
    let id = format!("evt_prop_{seed}_{i}");
    let created = BASE + rng.random_range(0..12);
    let pick = rng.random_range(0..ORGS.len() + USERS.len());
    if let Some(user) = USERS.get(pick.wrapping_sub(ORGS.len())) {
        let (title, department) = (
            format!("title {i}"),
            DEPARTMENTS[rng.random_range(0..3)].to_owned(),
        );
        let body = json!({"id": id, "object": "event", "type": "test.person.updated", "created": created,
            "data": {"object": {"user_id": user, "title": title, "department": department}}});
        let fields = vec![("title", title), ("department", department)];
        return Event {
            target: user,
            created,
            fields,
            body: serde_json::to_vec(&body).unwrap(),
            direct: true,
        };
    }
    let org = ORGS[pick];
    if rng.random_bool(0.3) {
        let (kind, value) = if rng.random_bool(0.5) {
            ("paid", "paid")
        } else {
            ("payment_failed", "payment_failed")
        };
        let mut body: Value =
            serde_json::from_slice(&fixture("stripe/event.invoice.paid.json")).unwrap();
        body["id"] = id.into();
        body["type"] = format!("invoice.{kind}").into();
        body["created"] = created.into();
        body["data"]["object"]["customer"] = format!("cus_{org}").into();
        body["data"]["object"]["parent"]["subscription_details"]["metadata"]["org_id"] = org.into();
        let fields = vec![("last_invoice_status", value.to_owned())];
        return Event {
            target: org,
            created,
            fields,
            body: serde_json::to_vec(&body).unwrap(),
            direct: true,
        };
    }
    let status = STATUSES[rng.random_range(0..4)];
    let seats = i as u64 + 1;
    let fields = vec![
        ("plan_type", "pro_monthly".to_owned()),
        ("subscription_status", status.to_owned()),
        ("seats", seats.to_string()),
        ("billing_customer_id", format!("cus_{org}")),
        ("current_period_end", "2026-02-15T00:00:00Z".to_owned()),
    ];
    let body = subscription(&id, created, org, status, seats);
    // A quarter find their organization only through the customer id (a learned link).
    let direct = rng.random_bool(0.75);
    let body = if direct { body } else { without_org_id(&body) };
    Event {
        target: org,
        created,
        fields,
        body,
        direct,
    }
}

/// The event with `metadata.org_id` put back.
fn subscription_body_with_org(body: &[u8], org: &str) -> Vec<u8> {
    let mut event: Value = serde_json::from_slice(body).unwrap();
    event["data"]["object"]["metadata"] = json!({ "org_id": org });
    serde_json::to_vec(&event).unwrap()
}

/// The event without `metadata.org_id`: the rule falls back to `link:stripe_customer`.
fn without_org_id(body: &[u8]) -> Vec<u8> {
    let mut event: Value = serde_json::from_slice(body).unwrap();
    event["data"]["object"]["metadata"] = json!({});
    serde_json::to_vec(&event).unwrap()
}

/// Per target, the value of each field from its newest `(created, first arrival)` event,
/// over the seeded metadata.
fn model(
    events: &[Event],
    arrival: &HashMap<usize, usize>,
) -> BTreeMap<&'static str, BTreeMap<String, String>> {
    let mut newest: HashMap<(&str, &str), (Order, &str)> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        let version = (e.created, arrival[&i]);
        for (field, value) in &e.fields {
            let slot = newest.entry((e.target, field)).or_insert((version, value));
            if version > slot.0 {
                *slot = (version, value);
            }
        }
    }
    let mut state: BTreeMap<&str, BTreeMap<String, String>> = BTreeMap::new();
    for org in ORGS {
        state.insert(
            org,
            BTreeMap::from([("managed_by".to_owned(), "dashboard".to_owned())]),
        );
    }
    for user in USERS {
        state.insert(user, BTreeMap::new());
    }
    for ((target, field), (_, value)) in newest {
        state
            .entry(target)
            .or_default()
            .insert(field.to_owned(), value.to_owned());
    }
    state
}

fn observed(standin: &StandIn) -> BTreeMap<&'static str, BTreeMap<String, String>> {
    let orgs = ORGS
        .iter()
        .filter_map(|o| Some((*o, standin.organization_by_external_id(o)?.metadata)));
    let users = USERS
        .iter()
        .filter_map(|u| Some((*u, standin.user_by_external_id(u)?.metadata)));
    orgs.chain(users).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_streams_converge_to_the_model() {
    let seeds: Vec<u64> = match std::env::var("ORGSYNC_PROPTEST_SEED") {
        Ok(seed) => vec![seed.parse().expect("ORGSYNC_PROPTEST_SEED is a number")],
        Err(_) => SEEDS.to_vec(),
    };
    for seed in seeds {
        let started = Instant::now();
        let guard = SeedGuard(seed);
        run_case(seed).await;
        drop(guard);
        eprintln!("seed {seed}: converged in {:?}", started.elapsed());
    }
}

/// Names the seed when a case panics.
struct SeedGuard(u64);

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "the convergence property failed; rerun with ORGSYNC_PROPTEST_SEED={}",
                self.0
            );
        }
    }
}

async fn run_case(seed: u64) {
    let (events, steps) = generate(seed);
    let standin = StandIn::start().await.unwrap();
    for org in ORGS {
        standin.create_organization(org, Some(org), &[("managed_by", "dashboard")]);
    }
    for (i, user) in USERS.iter().enumerate() {
        let org_id = standin.organization_by_external_id(ORGS[0]).unwrap().id;
        standin.create_user(&org_id, &format!("person{i}@example.com"), Some(user));
    }
    let app = spawn_app_with(TestOptions {
        standin: Some(standin.clone()),
        run_workers: true,
        extra_config: Some(USER_RULE.to_owned()),
        tune: Some(Box::new(|s| s.scalekit.request_timeout_seconds = 1)),
        ..Default::default()
    })
    .await;
    let http = reqwest::Client::new();
    let mut arrival = HashMap::new();
    let mut latency = Duration::ZERO;
    for step in &steps {
        match step {
            Step::Deliver(i) => {
                let status = post_signed(&http, &app.addr.to_string(), &events[*i].body).await;
                assert_eq!(status.unwrap(), 200, "event {i}");
                let next = arrival.len();
                arrival.entry(*i).or_insert(next);
            }
            Step::Fail(n, fault) => standin.fail_next(*n, fault.clone()),
            Step::Latency(d) => {
                latency = *d;
                standin.set_latency(latency);
            }
            Step::LostAnswers => {
                standin.set_latency(Duration::from_millis(1100));
                tokio::time::sleep(Duration::from_millis(40)).await;
                standin.set_latency(latency);
            }
        }
    }
    let want = model(&events, &arrival);
    let started = Instant::now();
    loop {
        let counts = app.store.job_counts().await.unwrap();
        assert!(
            counts[&JobState::Dead] == 0,
            "dead jobs: {:?}",
            app.store.list_jobs(None, 200).await
        );
        if observed(&standin) == want && counts.iter().all(|(s, n)| *s == JobState::Done || *n == 0)
        {
            assert_eq!(
                counts.get(&JobState::Done).copied(),
                Some(events.len() as i64),
                "one job per distinct event"
            );
            break;
        }
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_secs(45),
            "no convergence: {:#?}\nvs model {want:#?}\n{counts:?}",
            observed(&standin)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check_writes(&standin, &events, &arrival);
    let jobs = app.jobs(None).await;
    let timed_out = |j: &&JobRow| {
        j.last_error
            .as_deref()
            .is_some_and(|e| e.contains("timed out"))
    };
    eprintln!(
        "seed {seed}: {} events, {} deliveries, {} jobs retried, {} after a timeout",
        events.len(),
        steps
            .iter()
            .filter(|s| matches!(s, Step::Deliver(_)))
            .count(),
        jobs.iter().filter(|j| j.attempts > 0).count(),
        jobs.iter().filter(timed_out).count()
    );
    app.stop().await;
}

/// Replays the successful PATCHes per object: each one changes something, and the unique
/// values (seats, title) only ever move to a newer event's.
fn check_writes(standin: &StandIn, events: &[Event], arrival: &HashMap<usize, usize>) {
    let version_of: HashMap<(&str, &str), Order> = events
        .iter()
        .enumerate()
        .flat_map(|(i, e)| {
            e.fields
                .iter()
                .filter(|(f, _)| matches!(*f, "seats" | "title"))
                .map(move |(f, v)| ((*f, v.as_str()), (e.created, arrival[&i])))
        })
        .collect();
    let mut state: HashMap<String, Value> = HashMap::new();
    for r in standin
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.status == Some(200))
    {
        let written = r.body.as_ref().unwrap()["metadata"].clone();
        let before = state.insert(r.path.clone(), written.clone());
        assert_ne!(
            before.as_ref(),
            Some(&written),
            "a PATCH to {} repeated the current state",
            r.path
        );
        for field in ["seats", "title"] {
            let version = |m: Option<&Value>| {
                let value = m?.get(field)?.as_str()?;
                version_of.get(&(field, value)).copied()
            };
            let (old, new) = (version(before.as_ref()), version(Some(&written)));
            assert!(
                new >= old,
                "{}: {field} went back from {old:?} to {new:?}",
                r.path
            );
        }
    }
}
