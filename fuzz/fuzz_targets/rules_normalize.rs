//! The shipped rules on any event: the first byte picks the source (`stripe` or
//! `salesforce`), the first line is the event type, the rest a JSON payload. Normalizing is
//! pure, so it must give the same outcome twice, and the outcome must survive the JSON form
//! it is stored in.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use orgsync::model::{InboundEvent, Normalized};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((lines, body)) = common::lines(rest, 1) else {
        return;
    };
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    let event = InboundEvent {
        source: if flags & 1 == 0 {
            "stripe"
        } else {
            "salesforce"
        }
        .to_owned(),
        provider_event_id: "evt_fuzz".to_owned(),
        event_type: String::from_utf8_lossy(lines[0]).into_owned(),
        occurred_at_ms: Some(common::NOW * 1000),
        payload,
        verification: "fuzz".to_owned(),
    };
    let normalized = common::DEFAULT_RULES.normalize(&event);
    assert_eq!(normalized, common::DEFAULT_RULES.normalize(&event));
    let stored = serde_json::to_string(&normalized).expect("an outcome serializes");
    let read: Normalized = serde_json::from_str(&stored).expect("a stored outcome reads back");
    assert_eq!(read, normalized);
    let _ = orgsync::rules::describe(&normalized);
});
