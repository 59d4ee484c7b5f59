//! Reading live organizations and users for a diff or a drift check: read-only lookups
//! through the shared, rate-limited Scalekit client, spaced to a cap of their own, with a
//! 429 waited out (a bounded number of times) instead of failing the whole report.

use std::num::NonZeroU32;
use std::time::Duration;

use crate::model::{ExternalId, TargetKind};
use crate::scalekit::{FailureClass, ScalekitClient, ScalekitObject};

/// How many times one read waits out a 429 before that target is reported as unread.
const MAX_RATE_WAITS: u32 = 5;
/// The wait after a 429 without `Retry-After`, doubled per wait.
const FIRST_WAIT: Duration = Duration::from_millis(500);
/// The longest single wait.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// A next read further ahead than this (ms) means the wall clock went back.
const CLOCK_JUMP_MS: i64 = 60_000;

/// A reader of live objects; reads are spaced to at most `reads_per_second`.
#[derive(Debug)]
pub struct LiveReader {
    /// The Scalekit client (its own rate limit and 429 pause apply too).
    client: ScalekitClient,
    /// Time between two reads, when capped.
    spacing: Option<Duration>,
    /// The earliest start of the next read, in unix milliseconds of the client's clock.
    next_ms: i64,
}

impl LiveReader {
    /// A reader over `client`, at most `reads_per_second` reads per second (`None`: only
    /// the client's own limit).
    pub fn new(client: ScalekitClient, reads_per_second: Option<NonZeroU32>) -> Self {
        Self {
            client,
            spacing: reads_per_second.map(|n| Duration::from_secs(1) / n.get()),
            next_ms: 0,
        }
    }

    /// The live object with this external id (`None` when Scalekit has none), or why it
    /// could not be read.
    pub async fn read(
        &mut self,
        kind: TargetKind,
        external_id: &ExternalId,
    ) -> Result<Option<ScalekitObject>, String> {
        let mut wait = FIRST_WAIT;
        for attempt in 0..=MAX_RATE_WAITS {
            self.pace().await;
            let read = match kind {
                TargetKind::Organization => {
                    self.client
                        .get_organization_by_external_id(external_id)
                        .await
                }
                TargetKind::User => self.client.get_user_by_external_id(external_id).await,
            };
            let error = match read {
                Ok(found) => return Ok(found),
                Err(e) => e,
            };
            match error.class() {
                FailureClass::RateLimited { retry_after } if attempt < MAX_RATE_WAITS => {
                    let pause = retry_after.unwrap_or(wait).min(MAX_WAIT);
                    tracing::debug!(?pause, "Scalekit rate-limited a read; waiting");
                    self.client.clock().sleep(pause).await;
                    wait = (wait * 2).min(MAX_WAIT);
                }
                _ => return Err(error.to_string()),
            }
        }
        Err(format!(
            "Scalekit still rate-limited the read after {MAX_RATE_WAITS} waits"
        ))
    }

    /// Waits for this read's slot under the cap.
    async fn pace(&mut self) {
        let Some(spacing) = self.spacing else {
            return;
        };
        let clock = self.client.clock();
        let now = clock.now_ms();
        if self.next_ms > now.saturating_add(CLOCK_JUMP_MS) {
            self.next_ms = now; // the wall clock went back: pace afresh
        }
        if self.next_ms > now {
            clock.sleep_until(self.next_ms).await;
        }
        let spacing_ms = i64::try_from(spacing.as_nanos().div_ceil(1_000_000)).unwrap_or(i64::MAX);
        self.next_ms = self.next_ms.max(now).saturating_add(spacing_ms);
    }
}
