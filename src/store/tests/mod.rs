//! Store tests on a real SQLite file.

use serde_json::json;

use super::*;
use crate::model::*;

pub(crate) async fn temp_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("orgsync.db").display());
    (Store::connect(&url).await.unwrap(), dir)
}

pub(super) fn org(id: &str) -> TargetRef {
    TargetRef::External {
        kind: TargetKind::Organization,
        external_id: ExternalId::parse(id).unwrap(),
    }
}

pub(super) fn item(
    event_id: &str,
    at_ms: i64,
    target: TargetRef,
    key: &str,
    value: &str,
) -> IngestItem {
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
                replayed: false,
            }],
            links: vec![],
        },
    }
}

mod links;
mod queue;
