//! Config loading: the committed default file, overrides and validation.

use std::collections::HashMap;
use std::path::Path;

use super::*;

fn load_with(env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CONFIG_PATH);
    Settings::load(&path, &|name| env.get(name).cloned())
}

#[test]
fn the_committed_default_config_loads_with_the_documented_defaults() {
    let settings = load_with(&[]).unwrap();
    assert_eq!(settings.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(settings.server.body_limit_bytes, 1024 * 1024);
    assert_eq!(settings.database.url, "sqlite://data/orgsync.db");
    assert!(settings.sources.iter().any(|s| s.name == "stripe"));
    assert!(settings.scalekit.client_secret.is_none());
    assert_eq!(
        settings.scalekit.missing_credentials(),
        vec![
            "SCALEKIT_ENVIRONMENT_URL",
            "SCALEKIT_CLIENT_ID",
            "SCALEKIT_CLIENT_SECRET"
        ]
    );
}

#[test]
fn environment_overrides_win_and_bad_values_say_what_is_expected() {
    let settings = load_with(&[
        ("ORGSYNC_LISTEN", "0.0.0.0:9000"),
        ("ORGSYNC_DATABASE_URL", "sqlite:///tmp/x.db"),
        ("SCALEKIT_CLIENT_SECRET", "s3cret"),
    ])
    .unwrap();
    assert_eq!(settings.server.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(settings.database.url, "sqlite:///tmp/x.db");
    assert!(
        !format!("{settings:?}").contains("s3cret"),
        "secrets are redacted in Debug"
    );
    let settings = load_with(&[("ORGSYNC_DATABASE_URL", "postgres://u:pw0rd@db/orgsync")]).unwrap();
    let shown = format!("{settings:?}");
    assert!(
        !shown.contains("pw0rd") && shown.contains("postgres://u:<redacted>@db/orgsync"),
        "{shown}"
    );
    let err = load_with(&[("ORGSYNC_LISTEN", "localhost")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ORGSYNC_LISTEN") && err.contains("HOST:PORT"),
        "{err}"
    );
}

#[test]
fn unknown_keys_and_out_of_range_values_are_refused() {
    let err = Settings::parse("[worker]\nconcurency = 3\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("concurency") && err.contains("line 2"),
        "{err}"
    );
    let mut settings = Settings::parse("").unwrap();
    settings.worker.concurrency = 0;
    let err = settings.validate().unwrap_err().to_string();
    assert!(err.contains("worker.concurrency"), "{err}");
}
