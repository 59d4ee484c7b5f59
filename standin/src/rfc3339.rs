//! RFC 3339 UTC timestamps as protojson writes them: `Z`, and 0, 3, 6 or 9 fractional digits.

use std::time::SystemTime;

use time::OffsetDateTime;

/// Formats `t` like a `google.protobuf.Timestamp` in JSON, e.g. `2025-03-20T13:55:46.690Z`.
pub fn format(t: SystemTime) -> String {
    let at = OffsetDateTime::from(t);
    let nanos = at.nanosecond();
    let frac = if nanos == 0 {
        String::new()
    } else if nanos.is_multiple_of(1_000_000) {
        format!(".{:03}", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!(".{:06}", nanos / 1_000)
    } else {
        format!(".{nanos:09}")
    };
    let month = u8::from(at.month());
    format!(
        "{:04}-{month:02}-{:02}T{:02}:{:02}:{:02}{frac}Z",
        at.year(),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn formats_known_instants_with_protojson_precision() {
        let t = UNIX_EPOCH + Duration::from_millis(1_742_478_946_690);
        assert_eq!(format(t), "2025-03-20T13:55:46.690Z");
        let t = UNIX_EPOCH + Duration::from_micros(1_742_536_503_416_772);
        assert_eq!(format(t), "2025-03-21T05:55:03.416772Z");
        assert_eq!(format(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(951_782_400, 5);
        assert_eq!(format(t), "2000-02-29T00:00:00.000000005Z");
    }
}
