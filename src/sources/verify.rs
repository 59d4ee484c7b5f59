//! Building blocks the signed-JSON sources share: HMAC-SHA256, constant-time comparison,
//! the timestamp window, and reading values out of the JSON body.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use serde_json_path::JsonPath;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::SourceError;
use super::config::TimeUnit;
use crate::model::PayloadFields;

/// HMAC-SHA256 over the concatenation of `parts`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Whether `candidate` equals `expected`, in time independent of where they differ.
pub(crate) fn equal_ct(expected: &[u8], candidate: &[u8]) -> bool {
    expected.ct_eq(candidate).into()
}

/// Index of the first secret whose MAC over `parts` equals one of `candidates`; every
/// candidate is compared with every MAC, so timing reveals nothing about which matched.
pub(crate) fn find_match(
    keys: &[Vec<u8>],
    parts: &[&[u8]],
    candidates: &[Vec<u8>],
) -> Option<usize> {
    let mut found = None;
    for (index, key) in keys.iter().enumerate() {
        let mac = hmac_sha256(key, parts);
        let hit = candidates
            .iter()
            .fold(false, |hit, candidate| hit | equal_ct(&mac, candidate));
        if hit && found.is_none() {
            found = Some(index);
        }
    }
    found
}

/// The accepted window around "now" for a signed timestamp.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// How far in the past, in seconds.
    pub tolerance_seconds: u64,
    /// How far in the future, in seconds.
    pub skew_seconds: u64,
}

impl Window {
    /// Checks a signed timestamp (unix seconds) against `now` (unix seconds).
    pub(crate) fn check(&self, signed: i64, now: i64) -> Result<(), SourceError> {
        let age = i128::from(now) - i128::from(signed);
        let clamp = |v: i128| i64::try_from(v).unwrap_or(i64::MAX);
        if age > i128::from(self.tolerance_seconds) {
            return Err(SourceError::TimestampTooOld {
                age_seconds: clamp(age),
                tolerance_seconds: self.tolerance_seconds,
            });
        }
        if -age > i128::from(self.skew_seconds) {
            return Err(SourceError::TimestampInFuture {
                ahead_seconds: clamp(-age),
                skew_seconds: self.skew_seconds,
            });
        }
        Ok(())
    }
}

/// Parses the body as a JSON object.
pub(crate) fn json_object(body: &[u8], fields: &PayloadFields) -> Result<Value, SourceError> {
    let value: Value = fields.parse(body).map_err(|e| SourceError::MalformedJson {
        reason: e.to_string(),
    })?;
    if !value.is_object() {
        return Err(SourceError::MalformedJson {
            reason: "the top level is not a JSON object".into(),
        });
    }
    Ok(value)
}

/// The single value at `path`, if any.
fn at<'v>(path: &JsonPath, value: &'v Value) -> Option<&'v Value> {
    path.query(value).first()
}

/// A required string (or number, as its text) at `path`.
pub(crate) fn required_text(
    path: &JsonPath,
    path_text: &str,
    value: &Value,
    what: &str,
) -> Result<String, SourceError> {
    match at(path, value) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(SourceError::MissingField {
            what: format!("{what} (a non-empty string at {path_text})"),
        }),
    }
}

/// An optional time at `path`: an RFC 3339 string, or a number in `unit`. Absent or null
/// gives `None`; anything else that is not a time is an error.
pub(crate) fn optional_time_ms(
    path: &JsonPath,
    path_text: &str,
    unit: TimeUnit,
    value: &Value,
) -> Result<Option<i64>, SourceError> {
    let bad = || SourceError::MalformedJson {
        reason: format!("the value at {path_text} is not an RFC 3339 time or a unix number"),
    };
    match at(path, value) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(|v| Some(unit.to_millis(v))).ok_or_else(bad),
        Some(Value::String(s)) => rfc3339_ms(s).map(Some).ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}

/// Parses an RFC 3339 time into unix milliseconds.
pub(crate) fn rfc3339_ms(text: &str) -> Option<i64> {
    let parsed =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Parses a header value made only of ASCII digits (an optional leading `-` aside).
pub(crate) fn integer_header(header: &str, text: &str) -> Result<i64, SourceError> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let parsed = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<i64>().ok()
    } else {
        None
    };
    parsed.ok_or_else(|| SourceError::MalformedHeader {
        header: header.to_owned(),
        reason: "the timestamp is not an integer".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_hmac_vectors_from_stripe_node() {
        let key = b"test_secret";
        let cases: [(&[u8], &str); 3] = [
            (
                b"",
                "f7f9bd47fb987337b5796fdc1fdb9ba221d0d5396814bfcaf9521f43fd8927fd",
            ),
            (
                br#"{"obj1":"hello","obj2":"world"}"#,
                "bebb1a643997f419b315ddba19e6f5411e1ce7f810ba6d3617ce72823092f363",
            ),
            (
                "\u{1F600}".as_bytes(),
                "837da296d05c4fe31f61d5d7ead035099d9585a5bcde87de952012a78f0b0c43",
            ),
        ];
        for (message, digest) in cases {
            assert_eq!(hex::encode(hmac_sha256(key, &[message])), digest);
        }
    }

    #[test]
    fn window_is_inclusive_at_both_ends() {
        let w = Window {
            tolerance_seconds: 300,
            skew_seconds: 60,
        };
        assert!(w.check(1000, 1300).is_ok());
        assert_eq!(w.check(1000, 1301).unwrap_err().kind(), "TimestampTooOld");
        assert!(w.check(1060, 1000).is_ok());
        assert_eq!(w.check(1061, 1000).unwrap_err().kind(), "TimestampInFuture");
        assert_eq!(
            w.check(i64::MIN, i64::MAX).unwrap_err().kind(),
            "TimestampTooOld"
        );
    }

    #[test]
    fn integer_headers_are_digits_only() {
        assert_eq!(integer_header("h", "1649367553"), Ok(1649367553));
        assert!(integer_header("h", "+1").is_err());
        assert!(integer_header("h", " 1").is_err());
        assert!(integer_header("h", "1e3").is_err());
        assert!(integer_header("h", "").is_err());
    }

    #[test]
    fn times_are_rfc3339_or_numbers() {
        assert_eq!(
            rfc3339_ms("2026-01-21T09:12:44.000Z"),
            Some(1_768_986_764_000)
        );
        assert_eq!(rfc3339_ms("2026-01-21"), None);
    }
}
