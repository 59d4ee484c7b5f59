//! Logging: one `tracing` subscriber, text or JSON, written to a writer the caller picks
//! (stderr in the daemon, a buffer in tests). Request spans add their fields (the request
//! id, the source, the outcome) to every line logged inside them.

use tracing::Dispatch;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Installs the global subscriber built by [`dispatch`]. Returns false when one was
/// already installed.
pub fn init<W>(format: LogFormat, filter: &str, ansi: bool, writer: W) -> bool
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    dispatch(format, filter, ansi, writer).try_init().is_ok()
}

/// The subscriber orgsync logs through, with `filter` (e.g. `info`, `orgsync=debug`; an
/// invalid one falls back to `info`); `ansi` colours text lines (for a terminal). Tests
/// install it for their own thread (`tracing::dispatcher::set_default`) to read the lines.
pub fn dispatch<W>(format: LogFormat, filter: &str, ansi: bool, writer: W) -> Dispatch
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.finish().into(),
        LogFormat::Json => builder.json().flatten_event(true).finish().into(),
    }
}
