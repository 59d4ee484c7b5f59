//! Logging: one `tracing` subscriber, text or JSON, written to a writer the caller picks
//! (stderr in the daemon, a sink in tests).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// Installs the global subscriber with `filter` (e.g. `info`, `orgsync=debug`); `ansi`
/// colours text lines (for a terminal). Returns false when one was already installed.
pub fn init<W>(format: LogFormat, filter: &str, ansi: bool, writer: W) -> bool
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.try_init().is_ok(),
        LogFormat::Json => builder.json().flatten_event(true).try_init().is_ok(),
    }
}
