//! How a delivery's raw body is kept: LZ4-compressed (a Stripe event, pretty-printed
//! JSON, shrinks to about a quarter), unless that would not make it smaller. Compressing
//! happens in the delivering request's task, before the body reaches the group-commit
//! writer; the writer then writes a quarter of the pages, and PostgreSQL no longer spends
//! its own CPU compressing the value (TOAST) inside the transaction. Reading gives back
//! the exact bytes received, so a signature can still be checked again by hand.

use super::StoreError;

/// The encoding of a stored body (`deliveries.body_encoding`, a closed set: migration 0007).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyEncoding {
    /// The bytes as received.
    Identity,
    /// An LZ4 block with the decoded length before it (4 bytes, little endian).
    Lz4,
}

impl BodyEncoding {
    /// The name stored in `deliveries.body_encoding`.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Lz4 => "lz4",
        }
    }
}

/// The largest body a stored LZ4 block may claim to decode to: far above any body limit,
/// so a damaged row cannot make a read allocate without bound.
const MAX_DECODED_BYTES: usize = 256 << 20;

/// The body as it will be stored.
pub(super) fn encode(body: Vec<u8>) -> (BodyEncoding, Vec<u8>) {
    let compressed = lz4_flex::block::compress_prepend_size(&body);
    if compressed.len() < body.len() {
        (BodyEncoding::Lz4, compressed)
    } else {
        (BodyEncoding::Identity, body)
    }
}

/// The bytes received, from a stored body (if the row has one) and its encoding (`None`:
/// as received); `event` names the event whose delivery it is in an error.
pub(super) fn decode(
    event: i64,
    encoding: Option<&str>,
    stored: Option<Vec<u8>>,
) -> Result<Option<Vec<u8>>, StoreError> {
    stored
        .map(|stored| decode_one(event, encoding, stored))
        .transpose()
}

fn decode_one(event: i64, encoding: Option<&str>, stored: Vec<u8>) -> Result<Vec<u8>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        what: "event",
        id: event,
        reason,
    };
    match encoding.unwrap_or("identity") {
        "identity" => Ok(stored),
        "lz4" => {
            let claimed = stored
                .first_chunk::<4>()
                .map(|size| u32::from_le_bytes(*size) as usize)
                .ok_or_else(|| {
                    corrupt("its delivery's LZ4 body is shorter than its length prefix".into())
                })?;
            if claimed > MAX_DECODED_BYTES {
                return Err(corrupt(format!(
                    "its delivery's LZ4 body claims {claimed} bytes, more than the \
                     {MAX_DECODED_BYTES} allowed"
                )));
            }
            lz4_flex::block::decompress_size_prepended(&stored)
                .map_err(|e| corrupt(format!("its delivery's LZ4 body does not decode: {e}")))
        }
        other => Err(corrupt(format!(
            "its delivery's body has an unknown encoding {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_body_is_compressed_and_decodes_to_the_same_bytes() {
        let body = std::fs::read("tests/fixtures/stripe/event.customer.subscription.updated.json")
            .unwrap();
        let (encoding, stored_len) = stored_and_read_back(&body);
        assert_eq!(encoding, BodyEncoding::Lz4);
        assert!(
            stored_len * 2 < body.len(),
            "{stored_len} of {}",
            body.len()
        );
    }

    #[test]
    fn a_body_that_does_not_shrink_is_kept_as_received() {
        let (encoding, _) = stored_and_read_back(b"{}");
        assert_eq!(encoding, BodyEncoding::Identity);
    }

    /// Encodes `body`, checks that it decodes to the same bytes, and returns its encoding
    /// and stored length.
    fn stored_and_read_back(body: &[u8]) -> (BodyEncoding, usize) {
        let (encoding, stored) = encode(body.to_vec());
        let stored_len = stored.len();
        let read = decode(1, Some(encoding.as_str()), Some(stored)).unwrap();
        assert_eq!(read.as_deref(), Some(body));
        (encoding, stored_len)
    }

    #[test]
    fn a_damaged_body_is_named_not_decoded() {
        let err = |encoding: &str, stored: &[u8]| {
            decode(7, Some(encoding), Some(stored.to_vec()))
                .unwrap_err()
                .to_string()
        };
        assert!(err("lz4", b"\x01").contains("shorter than its length prefix"));
        assert!(err("lz4", &[0xff, 0xff, 0xff, 0xff, 0]).contains("more than the"));
        assert!(err("lz4", &[9, 0, 0, 0, 0xf0]).contains("does not decode"));
        assert!(err("gzip", b"x").contains("unknown encoding"));
        assert!(err("gzip", b"x").contains("event #7"));
    }
}
