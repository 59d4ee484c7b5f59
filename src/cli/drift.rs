//! `orgsync drift` and `orgsync replay --dry-run --diff`: the commands that read live
//! Scalekit objects.

use std::num::NonZeroU32;

use anyhow::Context;

use crate::app::scalekit_config;
use crate::clock::Clock;
use crate::config::Settings;
use crate::drift::{DriftOptions, LiveReader, check, render_diff, render_drift, repair};
use crate::rules::RuleSet;
use crate::scalekit::ScalekitClient;
use crate::store::{ReplayFilter, Store};

/// `orgsync drift …`: which targets, and whether to write orgsync's values back.
#[derive(Debug, clap::Args)]
pub struct DriftArgs {
    /// Only targets orgsync wrote from this source's events.
    #[arg(long)]
    source: Option<String>,
    /// Only this target: org:EXTERNAL_ID or user:EXTERNAL_ID.
    #[arg(long)]
    target: Option<String>,
    /// At most this many targets, in key order.
    #[arg(long, default_value_t = 1000)]
    limit: i64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Enqueue jobs that write orgsync's values back (the running daemon applies them).
    #[arg(long)]
    repair: bool,
}

/// A reader of live objects with the configured credentials and read cap.
fn live_reader(settings: &Settings) -> anyhow::Result<LiveReader> {
    let config = scalekit_config(&settings.scalekit).map_err(|missing| {
        anyhow::anyhow!("{missing} not set: reading live Scalekit objects needs the credentials")
    })?;
    let client = ScalekitClient::new(config, Clock::system())?;
    Ok(LiveReader::new(
        client,
        NonZeroU32::new(settings.drift.reads_per_second),
    ))
}

/// The compiled rules of the settings.
fn rules(settings: &Settings) -> anyhow::Result<RuleSet> {
    let names: Vec<&str> = settings.sources.iter().map(|s| s.name.as_str()).collect();
    Ok(RuleSet::compile(&settings.rules, &names)?)
}

/// `orgsync drift`.
pub(super) async fn drift(settings: &Settings, args: DriftArgs) -> anyhow::Result<()> {
    let rules = rules(settings)?;
    let mut reader = live_reader(settings)?;
    let store = Store::connect(&settings.database.url).await?;
    let options = DriftOptions {
        source: args.source,
        target: args.target,
        limit: args.limit,
    };
    let report = check(
        &store,
        &mut reader,
        &rules,
        &options,
        Clock::system().now_ms(),
    )
    .await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", render_drift(&report));
    }
    if args.repair {
        let summary = repair(&store, &report, Clock::system().now_ms())
            .await
            .context("enqueueing the repairs")?;
        match summary.event_id {
            Some(event) => println!(
                "enqueued {} repair jobs writing back {} keys (event {event}); the running daemon applies them",
                summary.jobs, summary.keys
            ),
            None => println!("nothing to repair"),
        }
    }
    Ok(())
}

/// `orgsync replay --dry-run --diff [--json]`.
pub(super) async fn replay_diff(
    settings: &Settings,
    filter: &ReplayFilter,
    json: bool,
) -> anyhow::Result<()> {
    let rules = rules(settings)?;
    let mut reader = live_reader(settings)?;
    let store = Store::connect(&settings.database.url).await?;
    let diffs = crate::replay::diff(&store, &rules, filter, &mut reader).await?;
    if json {
        for target in &diffs {
            println!("{}", serde_json::to_string(target)?);
        }
    } else {
        print!("{}", render_diff(&diffs));
    }
    Ok(())
}
