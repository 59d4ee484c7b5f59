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

#[test]
fn an_admin_token_shorter_than_32_characters_is_refused_without_showing_it() {
    let err = load_with(&[("ORGSYNC_ADMIN_TOKEN", "hunter2-short")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ORGSYNC_ADMIN_TOKEN") && err.contains("13 characters") && err.contains("32"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    let token = "0123456789abcdef0123456789abcdef";
    assert!(load_with(&[("ORGSYNC_ADMIN_TOKEN", token)]).is_ok());
}

#[test]
fn the_scalekit_url_must_be_https_unless_the_host_is_loopback() {
    for url in [
        "https://acme.scalekit.com",
        "http://127.0.0.1:8081",
        "http://127.8.9.10",
        "http://localhost:3000",
        "http://[::1]:8081",
    ] {
        assert!(
            load_with(&[("SCALEKIT_ENVIRONMENT_URL", url)]).is_ok(),
            "{url}"
        );
    }
    for url in [
        "http://acme.scalekit.com",
        "http://127.0.0.1.example.com",
        "http://10.0.0.5:8080",
        "http://[::2]",
    ] {
        let err = load_with(&[("SCALEKIT_ENVIRONMENT_URL", url)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("SCALEKIT_ENVIRONMENT_URL") && err.contains("https://"),
            "{url}: {err}"
        );
    }
}

#[test]
fn connection_bounds_and_the_admin_listener_are_settings() {
    let settings = load_with(&[("ORGSYNC_ADMIN_LISTEN", "127.0.0.1:9090")]).unwrap();
    assert_eq!(
        settings
            .server
            .admin_listen
            .map(|a| a.to_string())
            .as_deref(),
        Some("127.0.0.1:9090")
    );
    assert!(settings.server.header_read_timeout_ms <= 10_000);
    assert!(settings.server.keep_alive_timeout_ms > 0);
    assert!(settings.server.max_connections > 0);
    let err = load_with(&[("ORGSYNC_ADMIN_LISTEN", "127.0.0.1:8080")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("server.admin_listen"), "{err}");
    let mut settings = Settings::parse("[server]\nmax_connections = 0\n").unwrap();
    assert!(settings.validate().is_err());
    settings.server.max_connections = 1;
    settings.server.header_read_timeout_ms = 0;
    let err = settings.validate().unwrap_err().to_string();
    assert!(err.contains("server.header_read_timeout_ms"), "{err}");
}

#[test]
fn database_passwords_never_show_in_debug_output() {
    let shown = |url: &str| redacted_database_url(url);
    assert_eq!(
        shown("postgres://orgsync:secret@db.internal/orgsync"),
        "postgres://orgsync:<redacted>@db.internal/orgsync"
    );
    // The host follows the last `@` of the authority, as sqlx reads the URL.
    assert_eq!(
        shown("postgres://orgsync:pa@ss-word@db.internal/orgsync"),
        "postgres://orgsync:<redacted>@db.internal/orgsync"
    );
    assert_eq!(
        shown("postgres://orgsync@db/orgsync?sslmode=require&password=secret"),
        "postgres://orgsync@db/orgsync?sslmode=require&password=<redacted>"
    );
    assert_eq!(
        shown("sqlite://data/orgsync.db"),
        "sqlite://data/orgsync.db"
    );
    let settings = DatabaseSettings {
        url: "postgres://u:hunter2@h/d?PASSWORD=hunter3".into(),
        ..DatabaseSettings::default()
    };
    let debug = format!("{settings:?}");
    assert!(!debug.contains("hunter"), "{debug}");
}
