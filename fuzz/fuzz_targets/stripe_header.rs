//! Stripe deliveries with a fuzzed `Stripe-Signature` header: the first line of the input
//! is the header value (raw bytes, so non-ASCII and control bytes reach the parser), the
//! rest is the body (a seed may carry a correct signature for its own body).

#![no_main]

mod common;

use std::sync::LazyLock;

use common::{NOW, STRIPE_SECRET};
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use orgsync::sources::{Delivery, Source};

static SOURCE: LazyLock<Source> = LazyLock::new(|| {
    common::source(
        "name = \"stripe\"\nkind = \"stripe\"\nsecret_env = \"S\"",
        &[("S", STRIPE_SECRET)],
    )
});

fuzz_target!(|data: &[u8]| {
    let Some((header, body)) = common::lines(data, 1) else {
        return;
    };
    let mut headers = HeaderMap::new();
    common::add_header(&mut headers, "stripe-signature", header[0]);
    let delivery = Delivery {
        headers: &headers,
        query: None,
        body,
        now_unix: NOW,
    };
    let _ = common::deliver(&SOURCE, &delivery);
});
