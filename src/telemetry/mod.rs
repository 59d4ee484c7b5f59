//! Telemetry: [`logs`] sets up the one `tracing` subscriber (text or JSON, written to a
//! writer the caller picks); [`metrics`] is the app's own Prometheus registry, created with
//! the app and handed to whatever records, so no count is shared between two apps.

pub mod logs;
pub mod metrics;

pub use logs::{dispatch, init};
pub use metrics::{Metrics, UNKNOWN_SOURCE};
