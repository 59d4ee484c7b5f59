//! The daemon's optional drift check (`[drift] interval_minutes`): every interval, check
//! every target orgsync wrote (up to `[drift] max_targets`), log what drifted and publish
//! the metrics. It never repairs on its own: that stays an operator's decision.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{DriftOptions, DriftReport, LiveReader, check};
use crate::clock::Clock;
use crate::config::DriftSettings;
use crate::rules::RuleSet;
use crate::scalekit::ScalekitClient;
use crate::store::Store;
use crate::telemetry::Metrics;

/// Publishes a full check's result as the gauges `orgsync_drifted_keys` (keys whose live
/// value differed from orgsync's) and `orgsync_drift_last_check_timestamp_seconds`.
pub fn record_metrics(metrics: &Metrics, report: &DriftReport) {
    metrics.drift_checked(report.drifted_keys as u64, report.checked_at_ms);
}

/// Checks for drift now and then every `interval_minutes` of `clock`'s time until `token`
/// is cancelled.
pub async fn run_periodically(
    store: Store,
    client: ScalekitClient,
    rules: RuleSet,
    settings: DriftSettings,
    clock: Clock,
    metrics: Arc<Metrics>,
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
                record_metrics(&metrics, &report);
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
