//! What a verified delivery leaves behind: its events with their versions capped at the
//! arrival time when a sender claims a time too far in the future, and the body to keep
//! (none when a secret in it could not be removed). Both are marked in the event's
//! verification text, which is stored with it.

use std::borrow::Cow;

use super::{Delivery, Inner, Kind, SourceError, salesforce};
use crate::model::{InboundEvent, RAW_BODY_NOT_KEPT_MARK, VERSION_CAPPED_MARK};

/// A verified delivery, ready to be normalised and stored.
#[derive(Debug)]
pub struct Accepted {
    /// The events, versions capped.
    pub events: Vec<InboundEvent>,
    /// The raw body to keep; `None` when it must not be kept (a Salesforce `SessionId` that
    /// could not be redacted for certain).
    pub storable_body: Option<Vec<u8>>,
    /// True when every event's payload is the body parsed as JSON (the JSON sources), so
    /// the store keeps the body alone and derives the payload from it.
    pub payload_is_body: bool,
    /// How many events had their version capped (the caller counts them in its metrics).
    pub versions_capped: u64,
}

/// Caps every event version later than `now_unix + skew_seconds` at `now_unix` (in
/// milliseconds) and marks the event; returns how many were capped. A version from the future would freeze
/// the fields and links it writes: every later genuine update would count as older.
pub(crate) fn cap_future_versions(
    source: &str,
    events: &mut [InboundEvent],
    now_unix: i64,
    skew_seconds: u64,
) -> u64 {
    let mut capped = 0;
    let now_ms = now_unix.saturating_mul(1000);
    let skew_ms = i64::try_from(skew_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let latest = now_ms.saturating_add(skew_ms);
    for event in events {
        let Some(claimed) = event.occurred_at_ms.filter(|at| *at > latest) else {
            continue;
        };
        event.occurred_at_ms = Some(now_ms);
        event.verification = format!(
            "{}; {VERSION_CAPPED_MARK}: the sender's time {} is more than {skew_seconds} s \
             after it arrived",
            event.verification,
            describe_ms(claimed)
        );
        tracing::warn!(
            source,
            event = %event.provider_event_id,
            claimed_ms = claimed,
            "an event's version is in the future; capped at its arrival time"
        );
        capped += 1;
    }
    capped
}

/// Marks every event of a delivery whose raw body is not kept, with the reason.
pub(crate) fn mark_body_not_kept(events: &mut [InboundEvent], reason: &str) {
    for event in events {
        event.verification = format!("{}; {RAW_BODY_NOT_KEPT_MARK}: {reason}", event.verification);
    }
}

/// A unix-millisecond time as RFC 3339 when it can be written so, else as a number.
fn describe_ms(ms: i64) -> String {
    let formatted = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        });
    match formatted {
        Some(text) => text,
        None => format!("{ms} ms after 1970"),
    }
}

impl Inner {
    /// See [`Source::receive`].
    pub(super) fn receive(
        &self,
        delivery: &Delivery<'_>,
    ) -> Result<Vec<InboundEvent>, SourceError> {
        self.receive_capped(delivery).map(|(events, _)| events)
    }

    /// [`Inner::receive`], and how many versions it capped.
    fn receive_capped(
        &self,
        delivery: &Delivery<'_>,
    ) -> Result<(Vec<InboundEvent>, u64), SourceError> {
        let mut events = match &self.kind {
            Kind::Stripe(s) => s.receive(&self.name, delivery, &self.payload_fields),
            Kind::Salesforce(s) => s.receive(&self.name, delivery),
            Kind::Hmac(s) => s.receive(&self.name, delivery, &self.payload_fields),
            Kind::StandardWebhooks(s) => s.receive(&self.name, delivery, &self.payload_fields),
        }?;
        let capped = cap_future_versions(
            &self.name,
            &mut events,
            delivery.now_unix,
            self.future_skew_seconds,
        );
        Ok((events, capped))
    }

    /// See [`Source::accept`].
    pub(super) fn accept(&self, delivery: &Delivery<'_>) -> Result<Accepted, SourceError> {
        let (mut events, versions_capped) = self.receive_capped(delivery)?;
        let storable_body = match self.storable_body(delivery.body) {
            Some(body) => Some(body.into_owned()),
            None => {
                tracing::warn!(source = %self.name, "the SessionId could not be redacted; the raw body is not kept");
                mark_body_not_kept(&mut events, "the SessionId could not be redacted");
                None
            }
        };
        Ok(Accepted {
            events,
            storable_body,
            // Stripe, HMAC and Standard Webhooks parse the whole body as the one event's
            // payload; a Salesforce notification is cut out of the SOAP message.
            payload_is_body: !matches!(self.kind, Kind::Salesforce(_)),
            versions_capped,
        })
    }

    /// See [`Source::storable_body`].
    pub(super) fn storable_body<'b>(&self, body: &'b [u8]) -> Option<Cow<'b, [u8]>> {
        match &self.kind {
            Kind::Salesforce(_) => salesforce::redact_session_id(body),
            _ => Some(Cow::Borrowed(body)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at: Option<i64>) -> InboundEvent {
        InboundEvent {
            source: "s".into(),
            provider_event_id: "e".into(),
            event_type: "t".into(),
            occurred_at_ms: at,
            payload: serde_json::json!({}),
            verification: "checked".into(),
        }
    }

    #[test]
    fn only_versions_beyond_the_skew_are_capped_at_arrival() {
        let now = 1_800_000_000;
        let mut events = vec![
            event(None),
            event(Some(now * 1000 + 60_000)),
            event(Some(now * 1000 + 60_001)),
            event(Some(253_402_300_799_000)),
            event(Some(i64::MAX)),
        ];
        assert_eq!(cap_future_versions("s", &mut events, now, 60), 3);
        let at: Vec<Option<i64>> = events.iter().map(|e| e.occurred_at_ms).collect();
        let capped = Some(now * 1000);
        assert_eq!(
            at,
            vec![None, Some(now * 1000 + 60_000), capped, capped, capped]
        );
        assert_eq!(events[1].verification, "checked");
        assert!(
            events[3]
                .verification
                .starts_with("checked; version capped at arrival")
        );
        assert!(
            events[3].verification.contains("9999-12-31T23:59:59Z"),
            "{}",
            events[3].verification
        );
        assert!(events[4].verification.contains(VERSION_CAPPED_MARK));
    }

    #[test]
    fn bodies_not_kept_are_marked() {
        let mut events = vec![event(None)];
        mark_body_not_kept(&mut events, "why");
        assert_eq!(events[0].verification, "checked; raw body not kept: why");
    }
}
