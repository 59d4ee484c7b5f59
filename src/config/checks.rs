//! The checks that keep what faces the network safe: listener bounds, the admin token's
//! strength, and Scalekit credentials only over TLS.

use super::{ConfigError, Settings};

/// The shortest admin token accepted: 32 characters of a random token are well beyond
/// guessing over the network.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// The longest header read timeout accepted, in milliseconds: a client that needs more
/// than a minute to send its headers is holding a connection, not sending a webhook.
const MAX_HEADER_READ_TIMEOUT_MS: u64 = 60_000;

impl Settings {
    /// `[server]`: body limit, connection bounds, the admin listener and the admin token.
    pub(super) fn validate_server(&self) -> Result<(), ConfigError> {
        let invalid = |setting, reason: String| Err(ConfigError::Invalid { setting, reason });
        let server = &self.server;
        if server.body_limit_bytes == 0 {
            return invalid("server.body_limit_bytes", "must be at least 1".into());
        }
        if !(1..=MAX_HEADER_READ_TIMEOUT_MS).contains(&server.header_read_timeout_ms) {
            return invalid(
                "server.header_read_timeout_ms",
                format!("must be between 1 and {MAX_HEADER_READ_TIMEOUT_MS}"),
            );
        }
        if server.max_connections == 0 {
            return invalid("server.max_connections", "must be at least 1".into());
        }
        if server.admin_listen == Some(server.listen) && server.listen.port() != 0 {
            return invalid(
                "server.admin_listen",
                format!(
                    "is the same address as server.listen ({}); give the admin listener its own port, e.g. 127.0.0.1:9090, or leave it unset",
                    server.listen
                ),
            );
        }
        if let Some(token) = &server.admin_token {
            let chars = secrecy::ExposeSecret::expose_secret(token).chars().count();
            if chars < MIN_ADMIN_TOKEN_CHARS {
                return invalid(
                    "ORGSYNC_ADMIN_TOKEN",
                    format!(
                        "is {chars} characters long; use at least {MIN_ADMIN_TOKEN_CHARS} random characters (e.g. the output of `openssl rand -hex 32`), or unset it to turn the admin API off"
                    ),
                );
            }
        }
        Ok(())
    }

    /// `SCALEKIT_ENVIRONMENT_URL` must be `https://`, except to a loopback host (a local
    /// stand-in): the client secret travels to it. Other malformed URLs are left to the
    /// Scalekit client's own check, which names what is wrong.
    pub(super) fn validate_scalekit_url(&self) -> Result<(), ConfigError> {
        let Some(text) = &self.scalekit.environment_url else {
            return Ok(());
        };
        let Ok(url) = reqwest::Url::parse(text.trim()) else {
            return Ok(());
        };
        if url.scheme() != "http" || is_loopback(&url) {
            return Ok(());
        }
        Err(ConfigError::Invalid {
            setting: "SCALEKIT_ENVIRONMENT_URL",
            reason: format!(
                "http://{} would send the Scalekit client secret and every change in cleartext; use https:// (plain http:// is accepted only for a loopback host: 127.0.0.0/8, ::1 or localhost)",
                url.host_str().unwrap_or_default()
            ),
        })
    }
}

/// Whether the URL's host is this machine: 127.0.0.0/8, `::1` or `localhost`.
fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host
            .strip_suffix('.')
            .unwrap_or(host)
            .eq_ignore_ascii_case("localhost"),
    }
}
