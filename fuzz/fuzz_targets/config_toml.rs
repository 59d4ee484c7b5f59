//! The config loader on operator-supplied TOML, as `orgsync check-config` runs it: parse,
//! environment overrides, `validate()`, every `[[sources]]` built (with plausible secrets
//! for whatever variables it names), the `[[rules]]` compiled and run on the fixtures'
//! events. The database URL's password must never show in the settings' `Debug` form.

#![no_main]

use libfuzzer_sys::fuzz_target;
use orgsync::config::Settings;
use orgsync::model::InboundEvent;
use orgsync::rules::RuleSet;
use orgsync::sources::{Source, parse_unverified};

/// Events the compiled rules run on: a Stripe subscription update and a Salesforce Account.
const STRIPE_EVENT: &[u8] =
    include_bytes!("../../tests/fixtures/stripe/event.customer.subscription.updated.json");
const SALESFORCE_MESSAGE: &[u8] =
    include_bytes!("../../tests/fixtures/salesforce/outbound_message.account.constructed.xml");

/// A value for any variable a fuzzed config names.
fn env(name: &str) -> Option<String> {
    match name {
        n if n.ends_with("ORGANIZATION_ID") => Some("00D5g000004XkQmEAK".to_owned()),
        n if n.starts_with("ORGSYNC_") || n.starts_with("SCALEKIT_") => None,
        _ => Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned()),
    }
}

/// The password of a `scheme://user:password@host` URL as a URL parser reads it (the
/// userinfo ends at the authority's last `@`), when it is long enough to look for.
fn password(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    Some(password).filter(|p| p.len() >= 5)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut settings) = Settings::parse(text) else {
        return;
    };
    if let Some(secret) = password(&settings.database.url) {
        let shown = format!("{:?}", settings.database);
        let elsewhere = format!(
            "{} <redacted>",
            settings.database.url.replacen(secret, "", 1)
        );
        // No piece of the password (5 characters) shows, unless the URL has it elsewhere.
        let leaked = (0..secret.len().saturating_sub(4))
            .filter_map(|i| secret.get(i..i + 5))
            .find(|piece| shown.contains(piece) && !elsewhere.contains(piece));
        assert_eq!(leaked, None, "the database password shows in {shown}");
    }
    if settings.apply_env(&env).is_err() {
        return;
    }
    let _ = settings.validate();
    let mut names = Vec::new();
    let mut events: Vec<InboundEvent> = Vec::new();
    for config in &settings.sources {
        if let Ok(source) = Source::from_config(config, &env) {
            let _ = source.warnings();
            let _ = source.sign(b"{}", 0);
        }
        for body in [STRIPE_EVENT, SALESFORCE_MESSAGE] {
            if let Ok(parsed) = parse_unverified(config, body) {
                events.extend(parsed);
            }
        }
        names.push(config.name.as_str());
    }
    let Ok(rules) = RuleSet::compile(&settings.rules, &names) else {
        return;
    };
    for event in &events {
        let normalized = rules.normalize(event);
        assert_eq!(normalized, rules.normalize(event));
        let _ = orgsync::rules::describe(&normalized);
    }
});
