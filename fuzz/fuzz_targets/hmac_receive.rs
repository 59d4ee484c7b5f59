//! HMAC-header deliveries through `Source::accept`, over 64 source configurations: the
//! first byte picks hex or base64, a `sha256=` prefix, a timestamp header in seconds or
//! milliseconds, an `id_path`, an `occurred_at_path`, and whether the harness signs the
//! delivery correctly (so the body reaches the JSON parser and the rules). Then two lines,
//! the signature header and the timestamp header, and the body.

#![no_main]

mod common;

use std::sync::LazyLock;

use common::NOW;
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use orgsync::sources::hmac::hmac_signature;
use orgsync::sources::{Delivery, SignatureEncoding, Source};

/// The shared secret.
const SECRET: &str = "an apex shared secret, commas, included";

/// One configuration's settings.
struct Shape {
    encoding: SignatureEncoding,
    prefix: Option<&'static str>,
    timestamp: Option<&'static str>,
}

/// The 64 sources, indexed by the low six bits of the first byte.
static SOURCES: LazyLock<Vec<(Shape, Source)>> = LazyLock::new(|| {
    (0u8..64)
        .map(|bits| {
            let mut toml = String::from(
                "name = \"apex\"\nkind = \"hmac\"\nsecret_env = \"S\"\nheader = \"X-Signature\"\n",
            );
            let encoding = if bits & 1 == 0 {
                SignatureEncoding::Hex
            } else {
                toml.push_str("encoding = \"base64\"\n");
                SignatureEncoding::Base64
            };
            let prefix = (bits & 2 != 0).then(|| {
                toml.push_str("prefix = \"sha256=\"\n");
                "sha256="
            });
            let timestamp = (bits & 4 != 0).then(|| {
                toml.push_str("timestamp_header = \"X-Timestamp\"\n");
                if bits & 8 != 0 {
                    toml.push_str("timestamp_unit = \"milliseconds\"\n");
                }
                "x-timestamp"
            });
            if bits & 16 != 0 {
                toml.push_str("id_path = \"$.data['id']\"\n");
            }
            if bits & 32 != 0 {
                toml.push_str(
                    "occurred_at_path = \"$.occurred_at\"\noccurred_at_unit = \"milliseconds\"\n",
                );
            }
            let source = common::source(&toml, &[("S", SECRET)]);
            (
                Shape {
                    encoding,
                    prefix,
                    timestamp,
                },
                source,
            )
        })
        .collect()
});

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((lines, body)) = common::lines(rest, 2) else {
        return;
    };
    let (shape, source) = &SOURCES[usize::from(flags & 63)];
    let sign = flags & 64 != 0;
    let mut headers = HeaderMap::new();
    let stamp = String::from_utf8_lossy(lines[1]);
    if let Some(name) = shape.timestamp {
        common::add_header(&mut headers, name, lines[1]);
    }
    if sign {
        let stamp = shape.timestamp.map(|_| stamp.trim());
        let signature = hmac_signature(SECRET, stamp, body, shape.encoding);
        let value = format!("{}{signature}", shape.prefix.unwrap_or(""));
        common::add_header(&mut headers, "x-signature", value.as_bytes());
    } else {
        common::add_header(&mut headers, "x-signature", lines[0]);
    }
    let delivery = Delivery {
        headers: &headers,
        query: None,
        body,
        now_unix: NOW,
    };
    let result = common::deliver(source, &delivery);
    if let (true, Err(e)) = (sign && shape.timestamp.is_none(), &result) {
        assert!(
            !matches!(
                e.kind(),
                "NoMatchingSignature" | "MalformedHeader" | "MissingHeader"
            ),
            "a correct signature was refused: {e}"
        );
    }
});
