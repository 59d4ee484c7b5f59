//! Loading: the file, then the environment overrides, then the checks the types cannot
//! express.

use std::path::{Path, PathBuf};

use secrecy::SecretString;

use super::{ConfigError, DEFAULT_CONFIG_PATH, LogFormat, Settings};

impl Settings {
    /// Reads the file at `path`, applies the environment overrides and validates.
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut settings = Self::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        settings.apply_env(env)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Parses TOML text (no environment, no validation).
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// The config file path: `--config`, else `ORGSYNC_CONFIG`, else the default.
    pub fn config_path(flag: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
        flag.map(Path::to_owned)
            .or_else(|| env("ORGSYNC_CONFIG").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
    }

    /// Applies `ORGSYNC_*` and `SCALEKIT_*` overrides.
    pub fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        if let Some(value) = get("ORGSYNC_LISTEN") {
            self.server.listen = value.parse().map_err(|e| ConfigError::Env {
                name: "ORGSYNC_LISTEN",
                value: value.clone(),
                reason: format!("{e}; expected HOST:PORT such as 0.0.0.0:8080"),
            })?;
        }
        if let Some(value) = get("ORGSYNC_ADMIN_LISTEN") {
            self.server.admin_listen = Some(value.parse().map_err(|e| ConfigError::Env {
                name: "ORGSYNC_ADMIN_LISTEN",
                value: value.clone(),
                reason: format!("{e}; expected HOST:PORT such as 127.0.0.1:9090"),
            })?);
        }
        if let Some(value) = get("ORGSYNC_DATABASE_URL") {
            self.database.url = value;
        }
        if let Some(value) = get("ORGSYNC_LOG_FORMAT") {
            self.log.format = match value.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(ConfigError::Env {
                        name: "ORGSYNC_LOG_FORMAT",
                        value,
                        reason: "expected text or json".into(),
                    });
                }
            };
        }
        if let Some(value) = get("ORGSYNC_LOG") {
            self.log.level = value;
        }
        self.server.admin_token = get("ORGSYNC_ADMIN_TOKEN").map(SecretString::from);
        self.scalekit.environment_url = get("SCALEKIT_ENVIRONMENT_URL");
        self.scalekit.client_id = get("SCALEKIT_CLIENT_ID");
        self.scalekit.client_secret = get("SCALEKIT_CLIENT_SECRET").map(SecretString::from);
        Ok(())
    }

    /// Checks ranges and cross-field rules the types cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |setting, reason: &str| {
            Err(ConfigError::Invalid {
                setting,
                reason: reason.to_owned(),
            })
        };
        self.validate_server()?;
        self.validate_scalekit_url()?;
        if self.worker.concurrency == 0 || self.worker.concurrency > 64 {
            return invalid("worker.concurrency", "must be between 1 and 64");
        }
        if self.worker.batch_size < 1 {
            return invalid("worker.batch_size", "must be at least 1");
        }
        if self.database.retention_days > 0 && self.database.retention_days < 4 {
            return invalid(
                "database.retention_days",
                "must be 0 (keep everything) or at least 4: Stripe redelivers for 3 days, and a pruned event would be stored again",
            );
        }
        if self.database.prune_interval_minutes == 0 {
            return invalid("database.prune_interval_minutes", "must be at least 1");
        }
        if self.worker.poll_interval_ms < 10 {
            return invalid("worker.poll_interval_ms", "must be at least 10");
        }
        if self.worker.max_age_hours == 0 {
            return invalid("worker.max_age_hours", "must be at least 1");
        }
        if self.worker.lease_seconds < 5 {
            return invalid("worker.lease_seconds", "must be at least 5");
        }
        if self.worker.retry_initial_seconds == 0
            || self.worker.retry_max_seconds < self.worker.retry_initial_seconds
        {
            return invalid(
                "worker.retry_max_seconds",
                "retry_initial_seconds must be at least 1 and retry_max_seconds at least as large",
            );
        }
        if self.drift.max_targets < 1 {
            return invalid("drift.max_targets", "must be at least 1");
        }
        if self.scalekit.request_timeout_seconds == 0 {
            return invalid("scalekit.request_timeout_seconds", "must be at least 1");
        }
        let mut names = std::collections::HashSet::new();
        for source in &self.sources {
            if !names.insert(source.name.as_str()) {
                return Err(ConfigError::Invalid {
                    setting: "sources",
                    reason: format!("the source name {:?} is used twice", source.name),
                });
            }
        }
        Ok(())
    }
}
