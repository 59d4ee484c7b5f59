//! The daemon's optional drift check (`[drift] interval_minutes`): every interval, check
//! every target orgsync wrote (up to `[drift] max_targets`), log what drifted and publish
//! the metrics. It never repairs on its own: that stays an operator's decision.

use std::num::NonZeroU32;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{DriftOptions, DriftReport, LiveReader, check};
use crate::clock::Clock;
use crate::config::DriftSettings;
use crate::rules::RuleSet;
use crate::scalekit::ScalekitClient;
use crate::store::Store;

/// `orgsync_drifted_keys`: keys whose live value differed from orgsync's at the last full
/// check (periodic, or `GET /admin/drift` without filters).
pub const DRIFTED_KEYS: &str = "orgsync_drifted_keys";
/// `orgsync_drift_last_check_timestamp_seconds`: when that check ran (unix seconds).
pub const LAST_CHECK: &str = "orgsync_drift_last_check_timestamp_seconds";

/// Publishes a full check's result as the two gauges.
pub fn record_metrics(report: &DriftReport) {
    crate::telemetry::metrics_handle();
    metrics::describe_gauge!(
        DRIFTED_KEYS,
        "Keys whose live Scalekit value differed from orgsync's at the last full drift check."
    );
    metrics::describe_gauge!(
        LAST_CHECK,
        "When the last full drift check ran (unix seconds)."
    );
    metrics::gauge!(DRIFTED_KEYS).set(report.drifted_keys as f64);
    metrics::gauge!(LAST_CHECK).set(report.checked_at_ms as f64 / 1000.0);
}

/// Checks for drift now and then every `interval_minutes` of `clock`'s time until `token`
/// is cancelled.
pub async fn run_periodically(
    store: Store,
    client: ScalekitClient,
    rules: RuleSet,
    settings: DriftSettings,
    clock: Clock,
    token: CancellationToken,
) {
    let interval = Duration::from_secs(settings.interval_minutes.saturating_mul(60));
    let mut reader = LiveReader::new(client, NonZeroU32::new(settings.reads_per_second));
    let options = DriftOptions {
        source: None,
        target: None,
        limit: settings.max_targets,
    };
    loop {
        let checked = tokio::select! {
            _ = token.cancelled() => return,
            checked = check(&store, &mut reader, &rules, &options, clock.now_ms()) => checked,
        };
        match checked {
            Ok(report) => {
                record_metrics(&report);
                if report.drifted_keys > 0 {
                    tracing::warn!(
                        drifted_keys = report.drifted_keys,
                        targets = report.targets.len(),
                        "values orgsync wrote were changed in Scalekit; see `orgsync drift` (and --repair)"
                    );
                } else {
                    tracing::info!(targets = report.targets_checked, "drift check: no drift");
                }
            }
            Err(e) => tracing::error!(error = %e, "drift check failed; trying again next interval"),
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = clock.sleep(interval) => {}
        }
    }
}
