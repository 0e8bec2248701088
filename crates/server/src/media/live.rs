//! Live previews: a subscription per (connection, session) that sends the newest committed
//! version's preview URL, paced at the subscriber's tier.

use std::time::Instant;

use montage_media::Pacer;
use montage_protocol::{ServerMessage, Tier, encode_with_rid};
use serde_json::Value as Json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The tier a live preview subscription is paced and sized at.
pub(crate) enum PreviewTier {
    /// The one the subscriber asked for.
    Fixed(Tier),
    /// The connection's, followed as it changes.
    Follow(watch::Receiver<Tier>),
}

impl PreviewTier {
    pub(crate) fn current(&mut self) -> Tier {
        match self {
            PreviewTier::Fixed(t) => *t,
            PreviewTier::Follow(rx) => *rx.borrow_and_update(),
        }
    }

    /// The next tier, once it changes (never, for a fixed one or once the connection is gone).
    pub(crate) async fn changed(&mut self) -> Tier {
        match self {
            PreviewTier::Fixed(_) => std::future::pending().await,
            PreviewTier::Follow(rx) => {
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
                *rx.borrow_and_update()
            }
        }
    }
}

/// One (connection, session) preview subscription: sends the newest committed version whenever
/// it changed and the tier's interval has passed since the last send, else sleeps out the rest of
/// the interval and sends whatever is newest then (a trailing send, so the last version is never
/// lost). When a followed tier changes, pacing restarts at the new tier with the current version
/// at once. Edits never wait for this: the session only updates a `watch`.
pub(crate) async fn preview_loop(
    conn: crate::sync::ConnHandle,
    session: String,
    mut tiers: PreviewTier,
    mut versions: watch::Receiver<u64>,
    mut latest: u64,
    mut rid: Option<Json>,
    stop: CancellationToken,
) {
    let mut tier = tiers.current();
    let mut pacer = Pacer::new();
    let mut sent = None;
    loop {
        latest = latest.max(*versions.borrow_and_update());
        if sent != Some(latest) {
            if let Err(wait) = pacer.try_send(Instant::now(), tier) {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                    t = tiers.changed() => if t != tier {
                        (tier, pacer) = (t, Pacer::new());
                    },
                }
                continue;
            }
            let msg = ServerMessage::Preview {
                session: session.clone(),
                version: latest,
                tier,
                url: format!(
                    "/v1/sessions/{}/preview?tier={}&v={latest}",
                    montage_protocol::path_segment(&session),
                    tier.as_str()
                ),
            };
            if !conn.send(encode_with_rid(&msg, rid.take().as_ref())) {
                return;
            }
            sent = Some(latest);
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            r = versions.changed() => if r.is_err() { return },
            t = tiers.changed() => if t != tier {
                // The picture at the new tier is another URL: send the current version again.
                (tier, pacer, sent) = (t, Pacer::new(), None);
            },
        }
    }
}
