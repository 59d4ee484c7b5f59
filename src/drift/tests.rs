//! Pure parts of drift: classifying keys, grouping repairs.

use std::collections::BTreeMap;

use super::*;

fn object(metadata: &[(&str, &str)]) -> ScalekitObject {
    ScalekitObject {
        id: "org_1".into(),
        external_id: Some("E".into()),
        metadata: metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        email: None,
        memberships: Vec::new(),
    }
}

fn field(key: &str, seq: i64, written: Option<Option<&str>>) -> WrittenField {
    WrittenField {
        kind: TargetKind::Organization,
        external_id: ExternalId::parse("E").unwrap(),
        field: key.into(),
        version: Version { at_ms: 1000, seq },
        written: written.map(|w| w.map(str::to_owned)),
    }
}

fn owned(keys: &[&str]) -> BTreeSet<MetadataKey> {
    keys.iter()
        .map(|k| MetadataKey::parse(k).unwrap())
        .collect()
}

#[test]
fn keys_are_absent_changed_never_written_or_fine() {
    let live = object(&[
        ("plan_type", "enterprise"),
        ("seats", "8"),
        ("status", "back"),
        ("crm_owner", "someone"),
        ("managed_by", "dashboard"),
        ("legacy", "x"),
    ]);
    let fields = [
        field("plan_type", 1, Some(Some("pro"))),
        field("seats", 1, Some(Some("8"))),
        field("billing_id", 2, Some(Some("cus_1"))),
        field("status", 3, Some(None)),
        field("legacy", 4, None),
    ];
    let keys = drifted_keys(
        &live,
        &fields,
        &owned(&["plan_type", "seats", "crm_owner", "legacy", "unused_key"]),
    );
    let found: Vec<(&str, DriftKind)> = keys.iter().map(|k| (k.key.as_str(), k.drift)).collect();
    assert_eq!(
        found,
        vec![
            ("billing_id", DriftKind::Absent),
            ("crm_owner", DriftKind::NeverWritten),
            ("plan_type", DriftKind::Changed),
            ("status", DriftKind::Changed),
        ],
        "managed_by is not owned; legacy has no recorded value; seats is as written"
    );
}

#[test]
fn repairs_group_keys_by_target_and_version_and_skip_never_written() {
    let target = TargetDrift {
        target: TargetKey::parse("org:E").unwrap(),
        kind: TargetKind::Organization,
        external_id: ExternalId::parse("E").unwrap(),
        scalekit_id: Some("org_1".into()),
        missing: false,
        error: None,
        keys: drifted_keys(
            &object(&[
                ("plan_type", "enterprise"),
                ("crm_owner", "x"),
                ("status", "y"),
            ]),
            &[
                field("plan_type", 1, Some(Some("pro"))),
                field("seats", 1, Some(Some("8"))),
                field("status", 2, Some(None)),
            ],
            &owned(&["crm_owner"]),
        ),
    };
    let report = DriftReport {
        targets: vec![target],
        ..DriftReport::default()
    };
    let jobs = repair_jobs(&report);
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0].version.seq, 1);
    let set: Vec<_> = jobs[0]
        .change
        .set
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(set, vec![("plan_type", "pro"), ("seats", "8")]);
    assert!(jobs[0].change.replayed);
    assert_eq!(jobs[0].change.on_missing, OnMissing::Skip);
    assert_eq!(jobs[1].version.seq, 2);
    assert_eq!(jobs[1].change.unset.len(), 1);
}
