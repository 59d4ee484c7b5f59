//! The command line: `serve`, `migrate`, `check-config`, `explain`, `send`, `jobs`,
//! `events`, `replay`, `drift`, `prune`, `doctor`, `healthcheck`. Each command returns an error
//! that `main` prints as one line. The operator's commands on stored data are in
//! [`operate`].

mod drift;
mod operate;

pub use drift::DriftArgs;

pub use operate::{EventsCommand, JobsCommand, ReplayArgs};
use operate::{events, jobs, prune, replay};

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::app::{App, scalekit_config};
use crate::clock::Clock;
use crate::config::Settings;
use crate::rules::{RuleSet, describe};
use crate::scalekit::ScalekitClient;
use crate::sources::{Source, SourceConfig, SourceConfigError};
use crate::store::Store;

/// orgsync links billing and CRM webhooks to Scalekit organizations and users.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// The config file (default: `ORGSYNC_CONFIG`, else `config/orgsync.toml`).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Receive webhooks and apply them to Scalekit (the daemon).
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Validate the configuration and rules without starting.
    CheckConfig,
    /// Show the changes the rules make of a payload file (nothing is stored or sent).
    Explain {
        /// The configured source the payload is for.
        #[arg(long)]
        source: String,
        /// The payload file (Stripe JSON, Salesforce SOAP, …).
        file: PathBuf,
    },
    /// Sign a payload file as the source's sender would and POST it to orgsync.
    Send {
        /// The configured source to send as.
        #[arg(long)]
        source: String,
        /// orgsync's base URL (default: http:// + the configured listen address).
        #[arg(long)]
        url: Option<String>,
        /// The payload file.
        file: PathBuf,
    },
    /// Run stored events through the current rules again and enqueue the changes (after a
    /// rule was fixed, say); the running daemon applies them.
    Replay(ReplayArgs),
    /// Compare the values orgsync wrote with the live Scalekit objects; list the keys
    /// someone else changed or removed (and, with --repair, write orgsync's values back).
    Drift(DriftArgs),
    /// Inspect and retry jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Inspect stored events.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Delete done jobs and events older than the retention (the daemon also does this
    /// every `prune_interval_minutes`).
    Prune {
        /// Override `[database] retention_days`.
        #[arg(long)]
        older_than_days: Option<u64>,
    },
    /// Check the Scalekit credentials and that Scalekit answers.
    Doctor,
    /// Exit 0 when the local daemon answers `/healthz` (the container's health check).
    Healthcheck {
        /// orgsync's base URL (default: http:// + the configured listen address).
        #[arg(long)]
        url: Option<String>,
    },
}

/// Loads the settings the command line and environment point at.
pub fn load_settings(cli: &Cli) -> anyhow::Result<Settings> {
    let env = |name: &str| std::env::var(name).ok();
    let path = Settings::config_path(cli.config.as_deref(), &env);
    Ok(Settings::load(&path, &env)?)
}

/// Runs a parsed command line.
pub async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    let env = |name: &str| std::env::var(name).ok();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings, &env).await,
        Command::Migrate => {
            Store::connect(&settings.database.url).await?;
            println!("the database schema is up to date");
            Ok(())
        }
        Command::CheckConfig => check_config(&settings, &env),
        Command::Explain { source, file } => explain(&settings, &source, &file),
        Command::Send { source, url, file } => send(&settings, &env, &source, url, &file).await,
        Command::Replay(args) => replay(&settings, args).await,
        Command::Drift(args) => drift::drift(&settings, args).await,
        Command::Jobs(command) => jobs(&settings, command).await,
        Command::Events(command) => events(&settings, command).await,
        Command::Prune { older_than_days } => prune(&settings, older_than_days).await,
        Command::Doctor => doctor(&settings).await,
        Command::Healthcheck { url } => healthcheck(&settings, url).await,
    }
}

async fn serve(settings: Settings, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
    let app = App::build(settings, env).await?;
    let token = CancellationToken::new();
    let stop = token.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests and batches");
        stop.cancel();
    });
    app.run_until_stopped(token, true).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn check_config(settings: &Settings, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
    let mut names = Vec::new();
    for config in &settings.sources {
        match Source::from_config(config, env) {
            Ok(source) => {
                println!("source {:?}: ok", config.name);
                for warning in source.warnings() {
                    println!("source {:?}: WARNING {warning}", config.name);
                }
            }
            Err(e @ SourceConfigError::MissingEnv { .. }) => {
                println!("source {:?}: WARNING {e}; it would answer 503", config.name)
            }
            Err(e) => return Err(e.into()),
        }
        names.push(config.name.as_str());
    }
    RuleSet::compile(&settings.rules, &names)?;
    println!("{} rules: ok", settings.rules.len());
    match scalekit_config(&settings.scalekit) {
        Ok(_) => println!("scalekit credentials: set"),
        Err(missing) => {
            println!("scalekit credentials: WARNING {missing} not set; workers would stay paused")
        }
    }
    Ok(())
}

/// Finds a source's config.
fn source_config<'a>(settings: &'a Settings, name: &str) -> anyhow::Result<&'a SourceConfig> {
    match settings.sources.iter().find(|s| s.name == name) {
        Some(config) => Ok(config),
        None => {
            let known: Vec<&str> = settings.sources.iter().map(|s| s.name.as_str()).collect();
            bail!(
                "unknown source {name:?}; configured sources: {}",
                known.join(", ")
            )
        }
    }
}

fn explain(settings: &Settings, name: &str, file: &Path) -> anyhow::Result<()> {
    let body = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let names: Vec<&str> = settings.sources.iter().map(|s| s.name.as_str()).collect();
    let rules = RuleSet::compile(&settings.rules, &names)?;
    let config = source_config(settings, name)?;
    let events = crate::sources::parse_unverified(config, &body)?;
    for event in &events {
        println!("event {} ({})", event.provider_event_id, event.event_type);
        println!("{}", describe(&rules.normalize(event)));
    }
    Ok(())
}

async fn send(
    settings: &Settings,
    env: &dyn Fn(&str) -> Option<String>,
    name: &str,
    url: Option<String>,
    file: &Path,
) -> anyhow::Result<()> {
    let body = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let source = Source::from_config(source_config(settings, name)?, env)?;
    let signed = source.sign(&body, Clock::system().now_ms() / 1000);
    let base = url.unwrap_or_else(|| local_url(settings));
    let mut target = format!("{}/webhooks/{name}", base.trim_end_matches('/'));
    if let Some(query) = &signed.query {
        target = format!("{target}?{query}");
    }
    let mut request = reqwest::Client::new().post(&target).body(body);
    for (header, value) in &signed.headers {
        request = request.header(header.as_str(), value.as_str());
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("sending to {base}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    println!("{status} {text}");
    if !status.is_success() {
        bail!("orgsync answered {status}");
    }
    Ok(())
}

async fn doctor(settings: &Settings) -> anyhow::Result<()> {
    let config = scalekit_config(&settings.scalekit)
        .map_err(|missing| anyhow::anyhow!("{missing} not set"))?;
    let url = config.environment_url.clone();
    ScalekitClient::new(config, Clock::system())?
        .check_credentials()
        .await?;
    println!("Scalekit at {url}: credentials accepted");
    Ok(())
}

/// The daemon's own base URL, reachable from the same host (a wildcard listen address is
/// reached through loopback).
fn local_url(settings: &Settings) -> String {
    let mut addr = settings.server.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{addr}")
}

async fn healthcheck(settings: &Settings, url: Option<String>) -> anyhow::Result<()> {
    let base = url.unwrap_or_else(|| local_url(settings));
    let target = format!("{}/healthz", base.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()?;
    let response = client
        .get(&target)
        .send()
        .await
        .with_context(|| format!("reaching {target}"))?;
    if !response.status().is_success() {
        bail!("{target} answered {}", response.status());
    }
    println!("ok");
    Ok(())
}
