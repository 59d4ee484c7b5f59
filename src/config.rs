//! Typed settings: the TOML file, then environment overrides, then `validate()`.
//!
//! The committed `config/orgsync.toml` documents every setting; this module only gives them
//! types and defaults. The environment is passed in as a lookup function (never read
//! through globals), so tests build settings without touching the process environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use crate::rules::RuleConfig;
use crate::sources::SourceConfig;

/// Where the configuration file is looked for when neither `--config` nor
/// `ORGSYNC_CONFIG` names one.
pub const DEFAULT_CONFIG_PATH: &str = "config/orgsync.toml";

/// A configuration that cannot be used, with what to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        /// The path tried.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown or mistyped key.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The path read.
        path: PathBuf,
        /// The parser's message, with line and column.
        source: Box<toml::de::Error>,
    },
    /// An environment override has a value of the wrong form.
    #[error("invalid {name}={value:?}: {reason}")]
    Env {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What was expected.
        reason: String,
    },
    /// A value is out of its allowed range.
    #[error("invalid setting {setting}: {reason}")]
    Invalid {
        /// The setting's path, e.g. `worker.concurrency`.
        setting: &'static str,
        /// What is allowed.
        reason: String,
    },
}

/// Everything orgsync reads at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `[server]`: the HTTP listener.
    #[serde(default)]
    pub server: ServerSettings,
    /// `[database]`: where events and jobs are stored.
    #[serde(default)]
    pub database: DatabaseSettings,
    /// `[scalekit]`: the Scalekit environment and client behaviour.
    #[serde(default)]
    pub scalekit: ScalekitSettings,
    /// `[worker]`: the apply queue.
    #[serde(default)]
    pub worker: WorkerSettings,
    /// `[log]`: logging.
    #[serde(default)]
    pub log: LogSettings,
    /// `[drift]`: the optional periodic drift check.
    #[serde(default)]
    pub drift: DriftSettings,
    /// `[[sources]]`: the webhook endpoints.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    /// `[[rules]]`: the mapping from events to metadata changes.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address to listen on (`ORGSYNC_LISTEN`).
    pub listen: SocketAddr,
    /// A second address for `/metrics` and the admin API (`ORGSYNC_ADMIN_LISTEN`); when
    /// set, those routes are absent from `listen`.
    pub admin_listen: Option<SocketAddr>,
    /// Largest accepted webhook body in bytes; larger ones get 413.
    pub body_limit_bytes: usize,
    /// Longest time one request may take before it is answered 408.
    pub request_timeout_seconds: u64,
    /// Time a client has to send a request's line and headers, in milliseconds; a
    /// connection that sends none in time is closed.
    pub header_read_timeout_ms: u64,
    /// How long a connection may stay open waiting for its next request, in
    /// milliseconds; 0 closes every connection after one request.
    pub keep_alive_timeout_ms: u64,
    /// Most connections open at once on each listener; more are closed at once.
    pub max_connections: usize,
    /// Bearer token for the admin API (`ORGSYNC_ADMIN_TOKEN`); admin routes are off unset.
    #[serde(skip)]
    pub admin_token: Option<SecretString>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: None,
            body_limit_bytes: 1024 * 1024,
            request_timeout_seconds: 10,
            header_read_timeout_ms: 10_000,
            keep_alive_timeout_ms: 5_000,
            max_connections: 256,
            admin_token: None,
        }
    }
}

/// `[database]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` (the file and its folder are created) or `postgres://…` (several
    /// replicas may share it); `ORGSYNC_DATABASE_URL`.
    pub url: String,
    /// Done jobs and events older than this many days are deleted; 0 keeps everything.
    pub retention_days: u64,
    /// How often the daemon prunes, in minutes.
    pub prune_interval_minutes: u64,
}

impl std::fmt::Debug for DatabaseSettings {
    /// Shows the URL without its password (see [`redacted_database_url`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redacted_database_url(&self.url))
            .field("retention_days", &self.retention_days)
            .field("prune_interval_minutes", &self.prune_interval_minutes)
            .finish()
    }
}

/// A database URL with its password replaced by `<redacted>`: in the user info
/// (`postgres://user:SECRET@host/db`, where the host follows the *last* `@` of the
/// authority, as URL parsers and sqlx read it) and in a `password=` query parameter.
pub fn redacted_database_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{user}:<redacted>@{host}")
        }
        _ => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=<redacted>")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://data/orgsync.db".to_owned(),
            retention_days: 30,
            prune_interval_minutes: 60,
        }
    }
}

/// `[scalekit]`. Credentials come from the environment only.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScalekitSettings {
    /// `SCALEKIT_ENVIRONMENT_URL`, e.g. `https://acme.scalekit.dev`.
    #[serde(skip)]
    pub environment_url: Option<String>,
    /// `SCALEKIT_CLIENT_ID` (`skc_…`).
    #[serde(skip)]
    pub client_id: Option<String>,
    /// `SCALEKIT_CLIENT_SECRET`.
    #[serde(skip)]
    pub client_secret: Option<SecretString>,
    /// Timeout of one Scalekit request, in seconds.
    pub request_timeout_seconds: u64,
    /// Client-side rate limit toward Scalekit in requests per second; 0 = none.
    pub requests_per_second: u32,
    /// Longest `Retry-After` honoured, in seconds.
    pub max_retry_after_seconds: u64,
}

impl Default for ScalekitSettings {
    fn default() -> Self {
        Self {
            environment_url: None,
            client_id: None,
            client_secret: None,
            request_timeout_seconds: 10,
            requests_per_second: 0,
            max_retry_after_seconds: 900,
        }
    }
}

impl ScalekitSettings {
    /// The names of the missing credential variables (empty when all are set).
    pub fn missing_credentials(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.environment_url.is_none() {
            missing.push("SCALEKIT_ENVIRONMENT_URL");
        }
        if self.client_id.is_none() {
            missing.push("SCALEKIT_CLIENT_ID");
        }
        if self.client_secret.is_none() {
            missing.push("SCALEKIT_CLIENT_SECRET");
        }
        missing
    }
}

/// `[worker]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    /// Targets processed at the same time.
    pub concurrency: usize,
    /// Most jobs of one target merged into one apply.
    pub batch_size: i64,
    /// How long a claim is held before another worker may take over, in seconds; a
    /// heartbeat renews it while the worker is busy.
    pub lease_seconds: u64,
    /// How often an idle worker looks for due retries, in milliseconds (new events wake
    /// it at once; on PostgreSQL, those stored by any replica).
    pub poll_interval_ms: u64,
    /// First retry delay, in seconds; it doubles per failed attempt, with jitter.
    pub retry_initial_seconds: u64,
    /// Longest retry delay, in seconds.
    pub retry_max_seconds: u64,
    /// A job still failing this many hours after it was first queued is dead.
    pub max_age_hours: u64,
    /// A job that failed this many times is dead; 0 = no limit (only the age counts).
    pub max_attempts: u32,
    /// On SIGTERM, how long in-flight batches may take to finish, in seconds; jobs still
    /// in progress then are handed back to the queue.
    pub shutdown_grace_seconds: u64,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            concurrency: 16,
            batch_size: 100,
            lease_seconds: 60,
            poll_interval_ms: 1000,
            retry_initial_seconds: 2,
            retry_max_seconds: 900,
            max_age_hours: 72,
            max_attempts: 0,
            shutdown_grace_seconds: 8,
        }
    }
}

/// `[drift]`: comparing what orgsync wrote with the live Scalekit objects.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DriftSettings {
    /// Minutes between two checks in the daemon; 0 = no periodic check.
    pub interval_minutes: u64,
    /// Most Scalekit reads per second a check (periodic, CLI, admin, replay diff) makes;
    /// 0 = only the `[scalekit]` limit.
    pub reads_per_second: u32,
    /// Most targets one periodic check reads.
    pub max_targets: i64,
}

impl Default for DriftSettings {
    fn default() -> Self {
        Self {
            interval_minutes: 0,
            reads_per_second: 5,
            max_targets: 10_000,
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `text` or `json` (`ORGSYNC_LOG_FORMAT`).
    pub format: LogFormat,
    /// A tracing filter such as `info` or `orgsync=debug` (`ORGSYNC_LOG`).
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".to_owned(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

mod checks;
mod load;
#[cfg(test)]
mod tests;
