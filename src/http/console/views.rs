//! What every page shares: the navigation frame, form-value parsing, and the formatting of
//! times, durations and JSON for display.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::{BASE, ConsoleError};

/// The frame around every page: where the links point, which one is current, and the
/// token the logout form carries.
pub struct Chrome {
    /// The console's base path.
    pub base: &'static str,
    /// The current page's nav name (`overview`, `events`, `jobs`, `target`, `replay`).
    pub active: &'static str,
    /// This session's CSRF token.
    pub csrf: String,
}

impl Chrome {
    /// The frame for page `active` of a session with this CSRF token.
    pub fn new(active: &'static str, csrf: &str) -> Self {
        Self {
            base: BASE,
            active,
            csrf: csrf.to_owned(),
        }
    }

    /// `aria-current="page"` for the current nav entry.
    pub fn current(&self, name: &str) -> &'static str {
        if self.active == name { "page" } else { "false" }
    }
}

/// Compares in constant time; hashing first hides the lengths too.
pub fn constant_eq(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes())
        .ct_eq(&Sha256::digest(b.as_bytes()))
        .into()
}

/// A form or query value with blanks meaning "not given".
pub fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// A time filter field: RFC 3339 (`2026-11-01T00:00:00Z`), or a browser's
/// `datetime-local` value (`2026-11-01T00:00`), read as UTC.
pub fn time_field(field: &str, value: &Option<String>) -> Result<Option<i64>, ConsoleError> {
    let Some(text) = given(value) else {
        return Ok(None);
    };
    let full = match text.len() {
        16 => format!("{text}:00Z"),
        19 => format!("{text}Z"),
        _ => text.clone(),
    };
    crate::replay::parse_time(&full)
        .map(Some)
        .map_err(|e| ConsoleError::BadRequest(format!("{field}: {e}")))
}

/// Unix milliseconds as `2026-11-30 21:46:36 UTC`.
pub fn time(ms: i64) -> String {
    match OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("{ms} ms"),
    }
}

/// A duration in milliseconds as `1 h 3 min`, `2 min 5 s`, `4 s`.
pub fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// JSON, indented for reading.
pub fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_rfc3339_and_datetime_local_as_utc() {
        let t = |v: &str| time_field("since", &Some(v.to_owned()));
        assert_eq!(t("1970-01-01T00:01").unwrap(), Some(60_000));
        assert_eq!(t("1970-01-01T00:00:02").unwrap(), Some(2000));
        assert_eq!(t("1970-01-01T00:00:03Z").unwrap(), Some(3000));
        assert_eq!(t("  ").unwrap(), None);
        let err = t("yesterday").unwrap_err().to_string();
        assert!(err.starts_with("since:"), "{err}");
    }

    #[test]
    fn times_and_durations_read_well() {
        assert_eq!(time(1000), "1970-01-01 00:00:01 UTC");
        assert_eq!(duration(4_500), "4 s");
        assert_eq!(duration(125_000), "2 min 5 s");
        assert_eq!(duration(3_780_000), "1 h 3 min");
        assert_eq!(duration(-5), "0 s");
    }
}
