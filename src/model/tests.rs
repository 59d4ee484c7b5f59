//! Tests of the domain constructors.

use super::*;

#[test]
fn external_id_refuses_what_cannot_travel_as_a_path_segment() {
    assert!(ExternalId::parse("org_01HZX5K9M3ABCDEF").is_ok());
    assert!(ExternalId::parse("a b?#%").is_ok());
    assert!(ExternalId::parse("").is_err());
    assert!(ExternalId::parse("a/b").is_err());
    assert!(ExternalId::parse("..").is_err());
    assert!(ExternalId::parse(&"x".repeat(256)).is_err());
}

#[test]
fn metadata_key_length_is_three_to_twenty_five() {
    assert!(MetadataKey::parse("id").is_err());
    assert!(MetadataKey::parse("plan").is_ok());
    assert!(MetadataKey::parse("stripe_subscription_status").is_err());
    assert!(MetadataKey::parse(&"k".repeat(25)).is_ok());
}

#[test]
fn target_keys_separate_kinds_and_links() {
    let org = TargetRef::External {
        kind: TargetKind::Organization,
        external_id: ExternalId::parse("E1").unwrap(),
    };
    assert_eq!(org.key(), "org:E1");
    let link = TargetRef::Link {
        kind: TargetKind::Organization,
        link: "stripe_customer".into(),
        key: "cus_1".into(),
    };
    assert_eq!(link.key(), "link:org:stripe_customer:cus_1");
}

#[test]
fn versions_break_ties_by_arrival() {
    let a = Version {
        at_ms: 1000,
        seq: 2,
    };
    let b = Version {
        at_ms: 1000,
        seq: 3,
    };
    let c = Version { at_ms: 999, seq: 9 };
    assert!(a < b && c < a);
}
