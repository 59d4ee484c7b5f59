//! Standard Webhooks deliveries through `Source::accept`: the first byte says whether the
//! harness signs correctly (with the current or the previous key), and whether the `svix-`
//! header names are used; then three lines, `webhook-id`, `webhook-timestamp` and
//! `webhook-signature` (ignored when the harness signs), and the body.

#![no_main]

mod common;

use std::sync::LazyLock;

use common::NOW;
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use orgsync::sources::{Delivery, Source, standard_webhooks_signature};

/// The current key (the Standard Webhooks specification's example).
const KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The previous key, still accepted while rotating.
const PREVIOUS: &str = "whsec_cHJldmlvdXMga2V5IGZvciByb3RhdGlvbg==";

static SOURCE: LazyLock<Source> = LazyLock::new(|| {
    common::source(
        "name = \"sw\"\nkind = \"standard_webhooks\"\nsecret_env = \"K\"\n\
         occurred_at_path = \"$.timestamp\"",
        &[("K", KEY), ("K_PREVIOUS", PREVIOUS)],
    )
});

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((lines, body)) = common::lines(rest, 3) else {
        return;
    };
    let prefix = if flags & 4 == 0 { "webhook" } else { "svix" };
    let mut headers = HeaderMap::new();
    common::add_header(&mut headers, &format!("{prefix}-id"), lines[0]);
    common::add_header(&mut headers, &format!("{prefix}-timestamp"), lines[1]);
    let id = String::from_utf8_lossy(lines[0]);
    let stamp = String::from_utf8_lossy(lines[1]);
    let signed = match (flags & 3, stamp.trim().parse::<i64>()) {
        (1 | 2, Ok(t)) => {
            let key = if flags & 3 == 1 { KEY } else { PREVIOUS };
            let signature = standard_webhooks_signature(key, id.trim(), t, body)
                .expect("the harness keys are whsec_ + base64");
            // A signature list with another scheme first, as senders rotating keys send.
            Some(format!("v1a,AAAA {signature}"))
        }
        _ => None,
    };
    match &signed {
        Some(value) => common::add_header(
            &mut headers,
            &format!("{prefix}-signature"),
            value.as_bytes(),
        ),
        None => common::add_header(&mut headers, &format!("{prefix}-signature"), lines[2]),
    }
    let delivery = Delivery {
        headers: &headers,
        query: None,
        body,
        now_unix: NOW,
    };
    let _ = common::deliver(&SOURCE, &delivery);
});
