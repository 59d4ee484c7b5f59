//! The bounded SOAP/XML reader on raw bytes: `soap::parse`, `soap::content_spans` and the
//! `SessionId` redaction, whose bounds (depth, element count) must hold on every tree it
//! returns; and the SOAP fault writer, whose documents must read back to their message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use orgsync::sources::salesforce::{OM_NS, redact_session_id};
use orgsync::sources::soap::{self, Element, FaultCode, MAX_DEPTH, MAX_ELEMENTS, SOAP_ENV};

/// The longest `MalformedXml` message a sender can be told, in characters.
const MAX_MESSAGE_CHARS: usize = 512;

/// Depth (the root is 1) and element count of a tree.
fn shape(el: &Element) -> (usize, usize) {
    el.children.iter().fold((1, 1), |(depth, count), child| {
        let (d, c) = shape(child);
        (depth.max(d + 1), count + c)
    })
}

fuzz_target!(|data: &[u8]| {
    let parsed = soap::parse(data);
    match &parsed {
        Ok(root) => {
            let (depth, count) = shape(root);
            assert!(depth <= MAX_DEPTH, "depth {depth}");
            assert!(count <= MAX_ELEMENTS, "{count} elements");
        }
        Err(e) => {
            let chars = e.to_string().chars().count();
            assert!(chars <= MAX_MESSAGE_CHARS, "a {chars}-character message");
        }
    }
    assert_eq!(parsed, soap::parse(data), "parsing is not deterministic");
    if let Ok(spans) = soap::content_spans(data, OM_NS, "SessionId") {
        let mut at = 0;
        for (start, end) in spans {
            assert!(
                at <= start && start <= end && end <= data.len(),
                "{at} {start} {end}"
            );
            at = end;
        }
    }
    if let Some(redacted) = redact_session_id(data)
        && let Ok(spans) = soap::content_spans(&redacted, OM_NS, "SessionId")
    {
        for (start, end) in spans {
            let content = &redacted[start..end];
            assert!(content.is_empty() || content == b"REDACTED");
        }
    }
    // Any message, quoted in a fault, reads back as itself (XML-illegal characters aside).
    let message = String::from_utf8_lossy(&data[..data.len().min(512)]);
    let answer = soap::fault(FaultCode::Client, &message);
    let root = soap::parse(answer.body.as_bytes()).expect("a fault document parses");
    let text = root
        .child(SOAP_ENV, "Body")
        .and_then(|b| b.child(SOAP_ENV, "Fault"))
        .and_then(|f| f.child("", "faultstring"))
        .map(|s| s.text.clone())
        .expect("the fault has a faultstring");
    // Line ends are compared normalized: a reader may turn `\r` into `\n` (XML 1.0 §2.11).
    let eol = |text: &str| text.replace("\r\n", "\n").replace('\r', "\n");
    let expected: String = eol(&message)
        .chars()
        .map(|c| match c {
            '\t' | '\n' => c,
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect();
    assert_eq!(eol(&text), expected);
});
