//! Links, renames and the jobs they wake.

use super::*;

/// `event`, which also teaches the organization link `link` `key` → `external_id`.
fn learning(mut event: IngestItem, link: &str, key: &str, external_id: &str) -> IngestItem {
    if let Normalized::Matched { links, .. } = &mut event.normalized {
        links.push(LinkUpdate {
            kind: TargetKind::Organization,
            link: link.into(),
            key: key.into(),
            external_id: ExternalId::parse(external_id).unwrap(),
        });
    }
    event
}

store_test!(links_resolve_at_ingest_and_wake_waiting_jobs);
async fn links_resolve_at_ingest_and_wake_waiting_jobs(store: Store) {
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
    let retry = JobVerdict::Retry {
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

    let learn = learning(
        item("cus", 900, org("E9"), "billing_customer_id", "cus_1"),
        "stripe_customer",
        "cus_1",
        "E9",
    );
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

store_test!(a_rename_moves_field_versions_and_links);
async fn a_rename_moves_field_versions_and_links(store: Store) {
    let learn = learning(
        item("cus", 900, org("OLD"), "plan", "pro"),
        "stripe_customer",
        "cus_1",
        "OLD",
    );
    store.ingest(None, &[learn], 1).await.unwrap();
    let batch = store.claim("w", 10, 60_000, 100).await.unwrap().unwrap();
    let v = batch.jobs[0].version;
    let result = BatchResult {
        outcomes: vec![(batch.jobs[0].id, JobVerdict::Done)],
        applied_fields: vec![AppliedField {
            field: "plan".into(),
            version: v,
            value: Some("pro".into()),
        }],
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
    assert!(
        store
            .field_versions(&key("org:OLD"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.field_versions(&key("org:NEW")).await.unwrap()["plan"],
        v
    );
    let linked = store
        .resolve_link(TargetKind::Organization, "stripe_customer", "cus_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(linked.as_str(), "NEW");
}

store_test!(a_learned_organization_link_wakes_users_waiting_to_be_created_in_it);
async fn a_learned_organization_link_wakes_users_waiting_to_be_created_in_it(store: Store) {
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
    let retry = JobVerdict::Retry {
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

    let account = learning(
        item("account", 900, org("E1"), "crm_account_id", "001A"),
        "salesforce_account",
        "001A",
        "E1",
    );
    store.ingest(None, &[account], 30).await.unwrap();
    let mut keys = vec![];
    while let Some(b) = store.claim("w", 40, 60_000, 100).await.unwrap() {
        keys.push(b.target_key);
    }
    keys.sort();
    assert_eq!(keys, vec!["org:E1", "user:U1"]);
}

store_test!(restating_a_known_link_does_not_cut_the_backoff_of_waiting_jobs);
async fn restating_a_known_link_does_not_cut_the_backoff_of_waiting_jobs(store: Store) {
    let learn = |id: &str, at| {
        learning(
            item(id, at, org("E1"), "crm_account_id", "001A"),
            "salesforce_account",
            "001A",
            "E1",
        )
    };
    store.ingest(None, &[learn("a1", 1)], 1).await.unwrap();
    while let Some(b) = store.claim("w", 2, 60_000, 100).await.unwrap() {
        let retry = b
            .jobs
            .iter()
            .map(|j| {
                (
                    j.id,
                    JobVerdict::Retry {
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

store_test!(rename_chains_are_followed_and_cycles_lead_nowhere);
async fn rename_chains_are_followed_and_cycles_lead_nowhere(store: Store) {
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

store_test!(new_jobs_for_a_renamed_target_go_to_its_new_id_whether_or_not_they_teach_a_link);
async fn new_jobs_for_a_renamed_target_go_to_its_new_id_whether_or_not_they_teach_a_link(
    store: Store,
) {
    sqlx::query("INSERT INTO links (kind, link, key, external_id, version_ms, version_seq) VALUES ('org', 'renamed', 'A', 'B', 0, 0)")
        .execute(&store.pool)
        .await
        .unwrap();
    // With a link learned (PostgreSQL learns of the renames from the link upsert) and
    // without one (asked on its own).
    let teaching = learning(
        item("with_link", 900, org("A"), "plan", "pro"),
        "stripe_customer",
        "cus_1",
        "A",
    );
    store.ingest(None, &[teaching], 1).await.unwrap();
    let plain = item("without_link", 901, org("A"), "seats", "3");
    store.ingest(None, &[plain], 2).await.unwrap();
    let batch = store.claim("w", 30, 60_000, 100).await.unwrap().unwrap();
    assert_eq!(batch.target_key, key("org:B"));
    assert_eq!(batch.jobs.len(), 2);
}
