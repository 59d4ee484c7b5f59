//! The operator's commands on stored data: `jobs`, `events`, `replay`, `prune`.

use anyhow::bail;
use clap::Subcommand;

use crate::clock::Clock;
use crate::config::Settings;
use crate::model::{EventId, JobId};
use crate::rules::{RuleSet, describe};
use crate::store::{EventFilter, EventStatus, JobState, ReplayFilter, Store};

/// `orgsync replay …`: which events, and whether to only show what would change.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Only events of this source.
    #[arg(long)]
    source: Option<String>,
    /// Only events of this type (e.g. customer.subscription.updated, Account).
    #[arg(long = "type")]
    event_type: Option<String>,
    /// Only events with this status: accepted, ignored or rejected.
    #[arg(long)]
    status: Option<EventStatus>,
    /// Only events received at or after this time (RFC 3339, e.g. 2026-11-01T00:00:00Z).
    #[arg(long, value_parser = crate::replay::parse_time)]
    since: Option<i64>,
    /// Only events received before this time (RFC 3339).
    #[arg(long, value_parser = crate::replay::parse_time)]
    until: Option<i64>,
    /// Only this event id (repeatable).
    #[arg(long = "id")]
    ids: Vec<EventId>,
    /// At most this many events, oldest first.
    #[arg(long, default_value_t = 100_000)]
    limit: i64,
    /// Print what the rules make of each event; store nothing.
    #[arg(long)]
    dry_run: bool,
    /// With --dry-run: read the live Scalekit objects and show, per target and key, the
    /// live value, the value after the replay, and whether the replay would write it.
    #[arg(long, requires = "dry_run")]
    diff: bool,
    /// With --diff: one JSON object per target.
    #[arg(long, requires = "diff")]
    json: bool,
}

/// `orgsync jobs …`.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first.
    List {
        /// Only jobs in this state: pending, running, done, skipped or dead.
        #[arg(long)]
        state: Option<JobState>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Make a dead or skipped job run again now.
    Retry {
        /// The job id.
        id: JobId,
    },
}

/// `orgsync events …`.
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// List events, newest first.
    List {
        /// Only this source.
        #[arg(long)]
        source: Option<String>,
        /// Only this status: accepted, ignored or rejected.
        #[arg(long)]
        status: Option<EventStatus>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Show one event with its payload.
    Show {
        /// The event id.
        id: EventId,
    },
}

pub(super) async fn replay(settings: &Settings, args: ReplayArgs) -> anyhow::Result<()> {
    let names: Vec<&str> = settings.sources.iter().map(|s| s.name.as_str()).collect();
    let rules = RuleSet::compile(&settings.rules, &names)?;
    let store = Store::connect(&settings.database.url).await?;
    let filter = ReplayFilter {
        source: args.source,
        event_type: args.event_type,
        status: args.status,
        since_ms: args.since,
        until_ms: args.until,
        ids: args.ids,
        limit: args.limit,
    };
    if args.diff {
        return super::drift::replay_diff(settings, &filter, args.json).await;
    }
    let dry_run = args.dry_run;
    let report = crate::replay::replay(
        &store,
        &rules,
        &filter,
        dry_run,
        Clock::system().now_ms(),
        |stored, normalized| {
            if dry_run {
                println!(
                    "event {} {} ({})",
                    stored.id, stored.event.provider_event_id, stored.event.event_type
                );
                println!("{}", describe(normalized));
            }
        },
    )
    .await?;
    let verb = if dry_run { "would enqueue" } else { "enqueued" };
    println!(
        "{} events: {} matched, {} ignored, {} rejected; {verb} {} jobs",
        report.events, report.matched, report.ignored, report.rejected, report.jobs
    );
    Ok(())
}

pub(super) async fn jobs(settings: &Settings, command: JobsCommand) -> anyhow::Result<()> {
    let store = Store::connect(&settings.database.url).await?;
    match command {
        JobsCommand::List { state, limit } => {
            for job in store.list_jobs(state, limit).await? {
                println!("{}", serde_json::to_string(&job)?);
            }
        }
        JobsCommand::Retry { id } => {
            if !store.retry_job(id, Clock::system().now_ms()).await? {
                bail!("job {id} is not dead or skipped (see `orgsync jobs list`)");
            }
            println!("job {id} will run again now");
        }
    }
    Ok(())
}

pub(super) async fn events(settings: &Settings, command: EventsCommand) -> anyhow::Result<()> {
    let store = Store::connect(&settings.database.url).await?;
    match command {
        EventsCommand::List {
            source,
            status,
            limit,
        } => {
            for event in store
                .list_events(&EventFilter {
                    source,
                    status,
                    limit,
                })
                .await?
            {
                println!("{}", serde_json::to_string(&event)?);
            }
        }
        EventsCommand::Show { id } => match store.event(id).await? {
            Some(event) => println!("{}", serde_json::to_string_pretty(&event)?),
            None => bail!("no event {id}"),
        },
    }
    Ok(())
}

pub(super) async fn prune(settings: &Settings, older_than_days: Option<u64>) -> anyhow::Result<()> {
    let days = older_than_days.unwrap_or(settings.database.retention_days);
    if days == 0 {
        bail!("retention is 0 days (keep everything); pass --older-than-days N to prune anyway");
    }
    let store = Store::connect(&settings.database.url).await?;
    let cutoff = Clock::system()
        .now_ms()
        .saturating_sub(i64::try_from(days.saturating_mul(86_400_000)).unwrap_or(i64::MAX));
    let report = store.prune(cutoff).await?;
    println!(
        "pruned {} jobs, {} events and {} deliveries older than {days} days",
        report.jobs, report.events, report.deliveries
    );
    Ok(())
}
