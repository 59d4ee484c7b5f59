//! Store tests on a real SQLite file.

use serde_json::json;

use super::*;
use crate::model::*;

pub(crate) async fn temp_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("orgsync.db").display());
    (Store::connect(&url).await.unwrap(), dir)
}

fn org(id: &str) -> TargetRef {
    TargetRef::External {
        kind: TargetKind::Organization,
        external_id: ExternalId::parse(id).unwrap(),
    }
}

fn item(event_id: &str, at_ms: i64, target: TargetRef, key: &str, value: &str) -> IngestItem {
    let mut set = std::collections::BTreeMap::new();
    set.insert(MetadataKey::parse(key).unwrap(), value.to_owned());
    IngestItem {
        event: InboundEvent {
            source: "stripe".into(),
            provider_event_id: event_id.into(),
            event_type: "customer.updated".into(),
            occurred_at_ms: Some(at_ms),
            payload: json!({"id": event_id}),
            verification: "test".into(),
        },
        normalized: Normalized::Matched {
            changes: vec![Change {
                rule: "r".into(),
                target,
                set,
                unset: Default::default(),
                new_external_id: None,
                on_missing: OnMissing::Retry,
                create: None,
            }],
            links: vec![],
        },
    }
}

#[tokio::test]
async fn a_redelivery_is_counted_not_stored_again() {
    let (store, _dir) = temp_store().await;
    let first = store
        .ingest(None, &[item("evt_1", 1000, org("E1"), "plan", "pro")], 5)
        .await
        .unwrap();
    let again = store
        .ingest(None, &[item("evt_1", 1000, org("E1"), "plan", "pro")], 6)
        .await
        .unwrap();
    assert_eq!((first.accepted(), first.duplicates()), (1, 0));
    assert_eq!((again.accepted(), again.duplicates()), (0, 1));
    let events = store
        .list_events(&EventFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].duplicates, 1);
    assert_eq!(store.list_jobs(None, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn claim_takes_every_job_of_one_target_and_holds_it() {
    let (store, _dir) = temp_store().await;
    store
        .ingest(None, &[item("a", 2000, org("E1"), "plan", "new")], 1)
        .await
        .unwrap();
    store
        .ingest(None, &[item("b", 1000, org("E1"), "plan", "old")], 2)
        .await
        .unwrap();
    store
        .ingest(None, &[item("c", 1000, org("E2"), "plan", "x")], 3)
        .await
        .unwrap();
    let batch = store.claim("w1", 10, 60_000, 100).await.unwrap().unwrap();
    assert_eq!(batch.target_key, "org:E1");
    assert_eq!(batch.jobs.len(), 2);
    assert!(
        batch.jobs[0].version < batch.jobs[1].version,
        "oldest version first"
    );
    let other = store.claim("w2", 10, 60_000, 100).await.unwrap().unwrap();
    assert_eq!(
        other.target_key, "org:E2",
        "a held target is never handed out twice"
    );
    assert!(store.claim("w3", 10, 60_000, 100).await.unwrap().is_none());
    // The lease of w1 expires: its jobs become claimable again.
    let again = store
        .claim("w3", 70_000, 60_000, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.target_key, "org:E1");
    // w1 can no longer finish them.
    let outcomes: Vec<_> = batch
        .jobs
        .iter()
        .map(|j| (j.id, JobOutcome::Done))
        .collect();
    let result = BatchResult {
        outcomes,
        ..Default::default()
    };
    assert_eq!(
        store.finish("w1", "org:E1", &result, 70_001).await.unwrap(),
        0
    );
}

#[tokio::test]
async fn finish_records_versions_and_outcomes() {
    let (store, _dir) = temp_store().await;
    store
        .ingest(None, &[item("a", 2000, org("E1"), "plan", "new")], 1)
        .await
        .unwrap();
    let batch = store.claim("w", 10, 60_000, 100).await.unwrap().unwrap();
    let v = batch.jobs[0].version;
    let outcomes = vec![(
        batch.jobs[0].id,
        JobOutcome::Retry {
            run_at_ms: 500,
            error: "boom".into(),
            count_attempt: true,
        },
    )];
    let result = BatchResult {
        outcomes,
        applied_fields: vec![("plan".into(), v)],
        ..Default::default()
    };
    store
        .finish("w", &batch.target_key, &result, 11)
        .await
        .unwrap();
    assert!(
        store.claim("w", 100, 60_000, 100).await.unwrap().is_none(),
        "not before run_at"
    );
    let batch = store.claim("w", 500, 60_000, 100).await.unwrap().unwrap();
    assert_eq!(batch.jobs[0].attempts, 1);
    let result = BatchResult {
        outcomes: vec![(batch.jobs[0].id, JobOutcome::Dead("bad".into()))],
        ..Default::default()
    };
    store
        .finish("w", &batch.target_key, &result, 501)
        .await
        .unwrap();
    let dead = store.list_jobs(Some(JobState::Dead), 10).await.unwrap();
    assert_eq!(dead[0].last_error.as_deref(), Some("bad"));
    assert_eq!(store.field_versions("org:E1").await.unwrap()["plan"], v);
    assert!(store.retry_job(dead[0].id, 600).await.unwrap());
    assert!(store.claim("w", 600, 60_000, 100).await.unwrap().is_some());
}

#[tokio::test]
async fn links_resolve_at_ingest_and_wake_waiting_jobs() {
    let (store, _dir) = temp_store().await;
    let via_link = TargetRef::Link {
        kind: TargetKind::Organization,
        link: "stripe_customer".into(),
        key: "cus_1".into(),
    };
    store
        .ingest(
            None,
            &[item("sub", 1000, via_link.clone(), "plan", "pro")],
            1,
        )
        .await
        .unwrap();
    let waiting = store.claim("w", 10, 60_000, 100).await.unwrap().unwrap();
    assert_eq!(waiting.target_key, "link:org:stripe_customer:cus_1");
    let retry = JobOutcome::Retry {
        run_at_ms: 1_000_000,
        error: "no link".into(),
        count_attempt: true,
    };
    let result = BatchResult {
        outcomes: vec![(waiting.jobs[0].id, retry)],
        ..Default::default()
    };
    store
        .finish("w", &waiting.target_key, &result, 11)
        .await
        .unwrap();

    let mut learn = item("cus", 900, org("E9"), "billing_customer_id", "cus_1");
    if let Normalized::Matched { links, .. } = &mut learn.normalized {
        links.push(LinkUpdate {
            kind: TargetKind::Organization,
            link: "stripe_customer".into(),
            key: "cus_1".into(),
            external_id: ExternalId::parse("E9").unwrap(),
        });
    }
    store.ingest(None, &[learn], 20).await.unwrap();
    assert_eq!(
        store
            .resolve_link(TargetKind::Organization, "stripe_customer", "cus_1")
            .await
            .unwrap()
            .unwrap()
            .as_str(),
        "E9"
    );
    // The waiting job is runnable again at once, and a new event resolves directly.
    store
        .ingest(None, &[item("sub2", 1100, via_link, "plan", "max")], 21)
        .await
        .unwrap();
    let mut keys = vec![];
    while let Some(b) = store.claim("w", 30, 60_000, 100).await.unwrap() {
        keys.push(b.target_key);
    }
    keys.sort();
    assert_eq!(keys, vec!["link:org:stripe_customer:cus_1", "org:E9"]);
}

#[tokio::test]
async fn a_rename_moves_field_versions_and_links() {
    let (store, _dir) = temp_store().await;
    let mut learn = item("cus", 900, org("OLD"), "plan", "pro");
    if let Normalized::Matched { links, .. } = &mut learn.normalized {
        links.push(LinkUpdate {
            kind: TargetKind::Organization,
            link: "stripe_customer".into(),
            key: "cus_1".into(),
            external_id: ExternalId::parse("OLD").unwrap(),
        });
    }
    store.ingest(None, &[learn], 1).await.unwrap();
    let batch = store.claim("w", 10, 60_000, 100).await.unwrap().unwrap();
    let v = batch.jobs[0].version;
    let result = BatchResult {
        outcomes: vec![(batch.jobs[0].id, JobOutcome::Done)],
        applied_fields: vec![("plan".into(), v)],
        rename: Some(Rename {
            kind: TargetKind::Organization,
            from: ExternalId::parse("OLD").unwrap(),
            to: ExternalId::parse("NEW").unwrap(),
        }),
        wrote: true,
    };
    store
        .finish("w", &batch.target_key, &result, 11)
        .await
        .unwrap();
    assert!(store.field_versions("org:OLD").await.unwrap().is_empty());
    assert_eq!(store.field_versions("org:NEW").await.unwrap()["plan"], v);
    let linked = store
        .resolve_link(TargetKind::Organization, "stripe_customer", "cus_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(linked.as_str(), "NEW");
}

#[tokio::test]
async fn a_learned_organization_link_wakes_users_waiting_to_be_created_in_it() {
    let (store, _dir) = temp_store().await;
    let user = TargetRef::External {
        kind: TargetKind::User,
        external_id: ExternalId::parse("U1").unwrap(),
    };
    let mut waiting = item("contact", 1000, user, "title", "CTO");
    if let Normalized::Matched { changes, .. } = &mut waiting.normalized {
        changes[0].on_missing = OnMissing::Create;
        changes[0].create = Some(CreateSpec {
            email: Some("a@b.example".into()),
            organization: Some(TargetRef::Link {
                kind: TargetKind::Organization,
                link: "salesforce_account".into(),
                key: "001A".into(),
            }),
            ..Default::default()
        });
    }
    store.ingest(None, &[waiting], 1).await.unwrap();
    let batch = store.claim("w", 10, 60_000, 100).await.unwrap().unwrap();
    let retry = JobOutcome::Retry {
        run_at_ms: 10_000_000,
        error: "org unknown".into(),
        count_attempt: true,
    };
    let result = BatchResult {
        outcomes: vec![(batch.jobs[0].id, retry)],
        ..Default::default()
    };
    store
        .finish("w", &batch.target_key, &result, 11)
        .await
        .unwrap();
    assert!(store.claim("w", 20, 60_000, 100).await.unwrap().is_none());

    let mut account = item("account", 900, org("E1"), "crm_account_id", "001A");
    if let Normalized::Matched { links, .. } = &mut account.normalized {
        links.push(LinkUpdate {
            kind: TargetKind::Organization,
            link: "salesforce_account".into(),
            key: "001A".into(),
            external_id: ExternalId::parse("E1").unwrap(),
        });
    }
    store.ingest(None, &[account], 30).await.unwrap();
    let mut keys = vec![];
    while let Some(b) = store.claim("w", 40, 60_000, 100).await.unwrap() {
        keys.push(b.target_key);
    }
    keys.sort();
    assert_eq!(keys, vec!["org:E1", "user:U1"]);
}

#[tokio::test]
async fn the_raw_body_is_kept_once_per_delivery_with_new_events() {
    let (store, _dir) = temp_store().await;
    let raw = || {
        Some(RawDelivery {
            content_type: Some("text/xml".into()),
            body: b"<soap/>".to_vec(),
        })
    };
    let two = [
        item("n1", 1, org("E1"), "plan", "a"),
        item("n2", 2, org("E2"), "plan", "b"),
    ];
    store.ingest(raw(), &two, 1).await.unwrap();
    store.ingest(raw(), &two, 2).await.unwrap();
    let (deliveries,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM deliveries")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(
        deliveries, 1,
        "a fully duplicate redelivery keeps no second copy"
    );
    for event in store
        .list_events(&EventFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
    {
        let shown = store.event(event.id).await.unwrap().unwrap();
        assert_eq!(shown.raw_body.as_deref(), Some("<soap/>"));
    }
}

#[tokio::test]
async fn restating_a_known_link_does_not_cut_the_backoff_of_waiting_jobs() {
    let (store, _dir) = temp_store().await;
    let learn = |id: &str, at| {
        let mut event = item(id, at, org("E1"), "crm_account_id", "001A");
        if let Normalized::Matched { links, .. } = &mut event.normalized {
            links.push(LinkUpdate {
                kind: TargetKind::Organization,
                link: "salesforce_account".into(),
                key: "001A".into(),
                external_id: ExternalId::parse("E1").unwrap(),
            });
        }
        event
    };
    store.ingest(None, &[learn("a1", 1)], 1).await.unwrap();
    while let Some(b) = store.claim("w", 2, 60_000, 100).await.unwrap() {
        let retry = b
            .jobs
            .iter()
            .map(|j| {
                (
                    j.id,
                    JobOutcome::Retry {
                        run_at_ms: 10_000_000,
                        error: "5xx".into(),
                        count_attempt: true,
                    },
                )
            })
            .collect();
        store
            .finish(
                "w",
                &b.target_key,
                &BatchResult {
                    outcomes: retry,
                    ..Default::default()
                },
                3,
            )
            .await
            .unwrap();
    }
    store.ingest(None, &[learn("a2", 2)], 4).await.unwrap();
    let batch = store.claim("w", 5, 60_000, 100).await.unwrap().unwrap();
    assert_eq!(
        batch.jobs.len(),
        2,
        "the new event's job is due, and claims the waiting one with it"
    );
    assert!(
        batch.jobs.iter().any(|j| j.run_at_ms == 10_000_000),
        "the old job kept its backoff"
    );
}

#[tokio::test]
async fn an_unreadable_job_is_buried_instead_of_blocking_its_target() {
    let (store, _dir) = temp_store().await;
    store
        .ingest(
            None,
            &[
                item("a", 1, org("E1"), "plan", "x"),
                item("b", 2, org("E1"), "plan", "y"),
            ],
            1,
        )
        .await
        .unwrap();
    sqlx::query("UPDATE jobs SET change = '{\"broken\":true}' WHERE id = 1")
        .execute(&store.pool)
        .await
        .unwrap();
    let batch = store.claim("w", 2, 60_000, 100).await.unwrap().unwrap();
    assert_eq!(batch.jobs.len(), 1);
    let dead = store.list_jobs(Some(JobState::Dead), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("unreadable")
    );
}

#[tokio::test]
async fn rename_chains_are_followed_and_cycles_lead_nowhere() {
    let (store, _dir) = temp_store().await;
    for (from, to) in [("A", "B"), ("B", "C"), ("X", "Y"), ("Y", "X")] {
        sqlx::query("INSERT INTO links (kind, link, key, external_id, version_ms, version_seq) VALUES ('org', 'renamed', $1, $2, 0, 0)")
            .bind(from)
            .bind(to)
            .execute(&store.pool)
            .await
            .unwrap();
    }
    let renamed = |id: &str| {
        let store = store.clone();
        let id = ExternalId::parse(id).unwrap();
        async move {
            store
                .renamed_to(TargetKind::Organization, &id)
                .await
                .unwrap()
                .map(|e| e.to_string())
        }
    };
    assert_eq!(renamed("A").await.as_deref(), Some("C"));
    assert_eq!(renamed("C").await, None);
    assert_eq!(renamed("X").await, None);
}
