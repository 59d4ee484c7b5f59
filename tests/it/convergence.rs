//! The convergence property: random streams of events over several organizations and
//! users, with duplicates, reordering, injected 429/500/503, latency and lost answers, end
//! in the state a plain model predicts (per field: the value of the newest
//! `(created, arrival)` event), with every job done, and no write that repeats the current
//! state or goes back in time.
//!
//! proptest generates the streams (`stream::case`) and shrinks a failing one; its seed is
//! kept in `tests/proptest-regressions/convergence.txt` and replayed first on every run.

mod stream;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use orgsync::store::JobState;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use scalekit_standin::StandIn;
use serde_json::Value;

use crate::helpers::*;
use crate::semantics::support::{BASE, subscription};
use stream::{Case, Event, ORGS, Step, USERS};

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

/// How long a case may take to converge before it counts as a failure.
const CONVERGENCE_LIMIT: Duration = Duration::from_secs(60);

/// An event's place in the model's order: `(created, first arrival)`.
type Order = (i64, usize);

/// Metadata per external id.
type State = BTreeMap<&'static str, BTreeMap<String, String>>;

#[test]
fn random_streams_converge_to_the_model() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let config = ProptestConfig {
        // Each case runs the daemon end to end for seconds: a few cases, a bounded shrink.
        cases: 6,
        max_shrink_iters: 24,
        max_shrink_time: 300_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    };
    proptest!(config, |(case in stream::case())| {
        runtime.block_on(run_case(&case));
    });
}

/// A lost answer on its own: the write is applied, its answer is a 504, the job is retried,
/// and the retry sees the change already made, so nothing is written twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_is_retried_without_a_second_write() {
    let standin = standin_with_org().await;
    standin.lose_next_answers(1);
    let app = spawn_app_with(TestOptions {
        standin: Some(standin.clone()),
        run_workers: true,
        ..Default::default()
    })
    .await;
    let body = subscription("evt_lost_1", BASE, ORG, "active", 7);
    assert_eq!(app.post_stripe(&body).await.status(), 200);
    wait_for(CONVERGENCE_LIMIT, "the job done", async || {
        app.jobs(Some(JobState::Done)).await.len() == 1
    })
    .await;
    assert_eq!(standin.lost_answers(), 1);
    let writes: Vec<_> = standin
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(writes.len(), 1, "one write, its answer lost: {writes:?}");
    assert!(writes[0].lost);
    let job = &app.jobs(None).await[0];
    assert_eq!(
        job.attempts, 1,
        "retried once after the lost answer: {job:?}"
    );
    let org = standin.organization_by_external_id(ORG).unwrap();
    assert_eq!(org.metadata["seats"], "7");
    app.stop().await;
}

/// Runs one stream against a fresh daemon and checks the end state and every write.
async fn run_case(case: &Case) {
    let standin = StandIn::start().await.unwrap();
    for org in ORGS {
        standin.create_organization(org, Some(org), &[("managed_by", "dashboard")]);
    }
    let org_id = standin.organization_by_external_id(ORGS[0]).unwrap().id;
    for (i, user) in USERS.iter().enumerate() {
        standin.create_user(&org_id, &format!("person{i}@example.com"), Some(user));
    }
    // Armed before the first delivery: each target written gets at least one write, and
    // `case.lost` is at most the number of targets, so every armed loss happens.
    standin.lose_next_answers(case.lost);
    let app = spawn_app_with(TestOptions {
        standin: Some(standin.clone()),
        run_workers: true,
        extra_config: Some(USER_RULE.to_owned()),
        ..Default::default()
    })
    .await;
    let http = reqwest::Client::new();
    let addr = app.addr.to_string();
    let mut arrival = HashMap::new();
    for step in &case.steps {
        match step {
            Step::Deliver(i) => {
                let status = post_signed(&http, &addr, &case.events[*i].body).await;
                assert_eq!(status.unwrap(), 200, "event {i}");
                let next = arrival.len();
                arrival.entry(*i).or_insert(next);
            }
            Step::Fail(n, fault) => standin.fail_next(*n, fault.clone()),
            Step::Latency(ms) => standin.set_latency(Duration::from_millis(*ms)),
        }
    }
    let want = model(&case.events, &arrival);
    let counts = wait_for_ok(CONVERGENCE_LIMIT, "convergence to the model", async || {
        let counts = app.store.job_counts().await.unwrap();
        assert!(
            counts[&JobState::Dead] == 0,
            "dead jobs: {:?}",
            app.store.list_jobs(None, 200).await
        );
        let seen = observed(&standin);
        if seen == want && counts.iter().all(|(s, n)| *s == JobState::Done || *n == 0) {
            return Ok(counts);
        }
        Err(format!("{seen:#?}\nvs model {want:#?}\n{counts:?}"))
    })
    .await;
    let done = counts.get(&JobState::Done).copied();
    assert_eq!(done, Some(case.events.len() as i64), "one job per event");
    assert_eq!(
        standin.lost_answers(),
        case.lost,
        "every armed loss happened"
    );
    check_writes(&standin, &case.events, &arrival);
    app.stop().await;
}

/// Per target, the value of each field from its newest `(created, first arrival)` event,
/// over the seeded metadata.
fn model(events: &[Event], arrival: &HashMap<usize, usize>) -> State {
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
    let mut state = State::new();
    for org in ORGS {
        let seeded = BTreeMap::from([("managed_by".to_owned(), "dashboard".to_owned())]);
        state.insert(org, seeded);
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

/// The stand-in's metadata of every organization and user of the stream.
fn observed(standin: &StandIn) -> State {
    let orgs = ORGS
        .iter()
        .filter_map(|o| Some((*o, standin.organization_by_external_id(o)?.metadata)));
    let users = USERS
        .iter()
        .filter_map(|u| Some((*u, standin.user_by_external_id(u)?.metadata)));
    orgs.chain(users).collect()
}

/// Replays the applied PATCHes per object (answered or lost): each one changes something,
/// so a write whose answer was lost is never made again, and the unique values (seats,
/// title) only ever move to a newer event's.
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
    let applied = standin
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && (r.status == Some(200) || r.lost));
    for r in applied {
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
