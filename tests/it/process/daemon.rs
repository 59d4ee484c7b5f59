//! `orgsync serve` as a child process over a temporary store, with a test config.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use scalekit_standin::StandIn;

use crate::helpers::*;

/// A daemon process and where it keeps its data.
pub(super) struct Daemon {
    /// The `orgsync serve` process.
    pub child: Child,
    /// Its `HOST:PORT`.
    pub addr: String,
}

/// The default config with a 5 s lease, fast polling and retries, and `grace` seconds of
/// shutdown grace.
pub(super) fn config_file(dir: &Path, grace: u64) -> PathBuf {
    let mut text = std::fs::read_to_string(config_path()).unwrap();
    for (from, to) in [
        ("lease_seconds = 60", "lease_seconds = 5".to_owned()),
        (
            "poll_interval_ms = 1000",
            "poll_interval_ms = 50".to_owned(),
        ),
        (
            "retry_initial_seconds = 2",
            "retry_initial_seconds = 1".to_owned(),
        ),
        (
            "retry_max_seconds = 900",
            "retry_max_seconds = 2".to_owned(),
        ),
        (
            "shutdown_grace_seconds = 8",
            format!("shutdown_grace_seconds = {grace}"),
        ),
    ] {
        assert_eq!(
            text.matches(from).count(),
            1,
            "the default config has {from:?} once"
        );
        text = text.replacen(from, &to, 1);
    }
    let path = dir.join("orgsync.toml");
    std::fs::write(&path, text).unwrap();
    path
}

pub(super) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Daemon {
    /// Starts `orgsync serve` on `port` over `dir`'s database and waits for `/healthz`.
    pub async fn start(dir: &Path, port: u16, standin: &StandIn) -> Daemon {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("daemon.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_orgsync"))
            .arg("--config")
            .arg(dir.join("orgsync.toml"))
            .arg("serve")
            .env_clear()
            .env("ORGSYNC_LISTEN", format!("127.0.0.1:{port}"))
            .env("ORGSYNC_DATABASE_URL", db_url(dir))
            .env("ORGSYNC_LOG", "info")
            .env("STRIPE_WEBHOOK_SECRET", STRIPE_SECRET)
            .env("SCALEKIT_ENVIRONMENT_URL", standin.base_url())
            .env("SCALEKIT_CLIENT_ID", scalekit_standin::CLIENT_ID)
            .env("SCALEKIT_CLIENT_SECRET", scalekit_standin::CLIENT_SECRET)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut daemon = Daemon {
            child,
            addr: format!("127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        wait_for_ok(Duration::from_secs(30), "/healthz", async || {
            if let Ok(r) = http
                .get(format!("http://{}/healthz", daemon.addr))
                .send()
                .await
                && r.status() == 200
            {
                return Ok(());
            }
            if let Some(status) = daemon.child.try_wait().unwrap() {
                panic!("the daemon exited with {status}: {}", daemon_log(dir));
            }
            Err(daemon_log(dir))
        })
        .await;
        daemon
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `limit`.
    pub async fn wait(&mut self, limit: Duration) -> ExitStatus {
        wait_for_ok(limit, "the daemon's exit", async || {
            self.child.try_wait().unwrap().ok_or("still running")
        })
        .await
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn db_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("orgsync.db").display())
}

pub(super) fn daemon_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
}
