//! Retention of version history (`serve --history-days`): once at start and then hourly, every
//! session's history older than the retention is trimmed to its newest checkpoint before the
//! cutoff (`HistoryStore::trim`: named versions stay). Every node of a cluster may run it; the
//! trim is idempotent.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// How often history is trimmed after the first run at start.
const TRIM_EVERY: Duration = Duration::from_secs(3600);

/// Trims history older than `keep` until `cancel` fires (a trim under way is dropped then:
/// its transaction rolls back). `trimmed` runs after a trim that removed something (the
/// caches of past states and previews forget what may be gone).
pub(crate) fn spawn(
    store: Arc<dyn Store>,
    keep: Duration,
    cancel: CancellationToken,
    trimmed: impl Fn() + Send + 'static,
) {
    let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TRIM_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let Some(history) = store.history() else {
                tracing::warn!("--history-days: this store keeps no version history");
                return;
            };
            let cutoff = crate::clock::now_ms().saturating_sub(keep_ms);
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = history.trim(cutoff) => match r {
                    Ok(t) if t.sessions > 0 => {
                        trimmed();
                        tracing::info!(
                            sessions = t.sessions,
                            ops = t.ops,
                            checkpoints = t.checkpoints,
                            "version history trimmed"
                        );
                    }
                    Ok(_) => {}
                    // Tried again at the next tick.
                    Err(e) => tracing::warn!(error = %e, "trimming version history failed"),
                },
            }
        }
    });
}
