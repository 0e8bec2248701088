//! Live previews: a subscription per (connection, session) that sends the newest committed
//! version's preview URL, paced at the subscriber's tier.

use montage_media::Pacer;
use montage_protocol::{ServerMessage, Tier, encode_with_rid};
use serde_json::Value as Json;
use tokio::sync::watch;
use tokio::time::Instant;
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
///
/// With `playhead` (a timeline preview following a user), what is sent is the composite frame at
/// that user's playhead (0 until they set one): a new playhead counts like a new version, paced
/// alike, the newest position winning.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn preview_loop(
    conn: crate::sync::ConnHandle,
    session: String,
    mut tiers: PreviewTier,
    mut watch: crate::sync::VersionWatch,
    mut latest: u64,
    mut playhead: Option<crate::sync::PlayheadWatch>,
    mut rid: Option<Json>,
    stop: CancellationToken,
) {
    let versions = &mut watch.rx;
    let mut tier = tiers.current();
    let mut pacer = Pacer::new();
    let mut sent = None;
    loop {
        latest = latest.max(*versions.borrow_and_update());
        // Someone who has not moved their playhead yet is at the start.
        let at = playhead
            .as_mut()
            .map(|p| p.rx.borrow_and_update().unwrap_or(0.0));
        let now = (latest, at);
        if sent != Some(now) {
            // Tokio's clock, so tests pace with paused time.
            if let Err(wait) = pacer.try_send(Instant::now().into_std(), tier) {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                    t = tiers.changed() => if t != tier {
                        (tier, pacer) = (t, Pacer::new());
                    },
                }
                continue;
            }
            let path = montage_protocol::path_segment(&session);
            let url = match now.1 {
                Some(t) => format!(
                    "/v1/sessions/{path}/frame?t={t}&tier={}&v={latest}",
                    tier.as_str()
                ),
                None => format!(
                    "/v1/sessions/{path}/preview?tier={}&v={latest}",
                    tier.as_str()
                ),
            };
            let msg = ServerMessage::Preview {
                session: session.clone(),
                version: latest,
                tier,
                url,
                t: now.1,
            };
            if !conn.send(encode_with_rid(&msg, rid.take().as_ref())) {
                return;
            }
            sent = Some(now);
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            r = versions.changed() => if r.is_err() { return },
            t = tiers.changed() => if t != tier {
                // The picture at the new tier is another URL: send the current version again.
                (tier, pacer, sent) = (t, Pacer::new(), None);
            },
            _ = moved(&mut playhead) => {}
        }
    }
}

/// Waits for the followed playhead to move (never, without one or once its watch is gone).
async fn moved(playhead: &mut Option<crate::sync::PlayheadWatch>) {
    let gone = match playhead {
        Some(p) => p.rx.changed().await.is_err(),
        None => true,
    };
    if gone {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::Value as Json;
    use tokio::sync::mpsc;

    use super::*;
    use crate::metrics::Metrics;
    use crate::sync::{ConnHandle, Outbound};

    /// A subscription on a connection whose frames land in `rx`, stamped with Tokio's clock.
    struct Sub {
        rx: mpsc::Receiver<Outbound>,
        versions: watch::Sender<u64>,
        stop: CancellationToken,
    }

    fn subscribe(tiers: PreviewTier) -> Sub {
        follow(tiers, None)
    }

    /// [`subscribe`] following a playhead.
    fn follow(tiers: PreviewTier, playhead: Option<crate::sync::PlayheadWatch>) -> Sub {
        let (tx, rx) = mpsc::channel(1024);
        let conn = ConnHandle::new(
            1,
            Arc::from("u"),
            tx,
            CancellationToken::new(),
            Arc::new(Metrics::default()),
        );
        let (versions, watched) = watch::channel(0);
        let stop = CancellationToken::new();
        tokio::spawn(preview_loop(
            conn,
            "film".into(),
            tiers,
            crate::sync::VersionWatch::detached(watched),
            0,
            playhead,
            None,
            stop.clone(),
        ));
        Sub { rx, versions, stop }
    }

    impl Sub {
        /// The previews sent so far, with when each was received.
        fn drain(&mut self, into: &mut Vec<(Instant, Json)>) {
            while let Ok(Outbound::Frame(f)) = self.rx.try_recv() {
                into.push((Instant::now(), serde_json::from_str(f.as_str()).unwrap()));
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_versions_is_paced_at_the_tier_and_ends_on_the_newest() {
        let mut sub = subscribe(PreviewTier::Fixed(Tier::Poor));
        let mut got = Vec::new();
        // A new version every 10 ms for 2 s: 200 versions.
        for v in 1..=200 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            sub.versions.send_replace(v);
            sub.drain(&mut got);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        sub.drain(&mut got);
        let versions: Vec<u64> = got
            .iter()
            .map(|(_, p)| p["version"].as_u64().unwrap())
            .collect();
        assert_eq!(versions.first(), Some(&0), "the current version at once");
        assert_eq!(versions.last(), Some(&200), "the newest version last");
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
        // Poor is 5 a second: about 11 in 2 s, and never two within 200 ms.
        assert!((10..=12).contains(&got.len()), "{} previews", got.len());
        for w in got.windows(2) {
            assert!(
                w[1].0 - w[0].0 >= Duration::from_millis(200),
                "{:?}",
                w[1].0 - w[0].0
            );
        }
        assert!(got.iter().all(|(_, p)| p["tier"] == "poor"));
        assert_eq!(got[1].1["url"], "/v1/sessions/film/preview?tier=poor&v=20");
        sub.stop.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn a_followed_tier_change_sends_the_current_version_again_at_once() {
        let (tier_tx, tier_rx) = watch::channel(Tier::Good);
        let mut sub = subscribe(PreviewTier::Follow(tier_rx));
        let mut got = Vec::new();
        tokio::time::sleep(Duration::from_millis(5)).await;
        sub.versions.send_replace(1);
        tokio::time::sleep(Duration::from_millis(50)).await;
        sub.drain(&mut got);
        assert_eq!(got.len(), 2, "{got:?}");
        let before = Instant::now();
        tier_tx.send_replace(Tier::Poor);
        tokio::time::sleep(Duration::from_millis(1)).await;
        sub.drain(&mut got);
        let (at, p) = got.last().unwrap();
        assert_eq!(
            (p["tier"].as_str(), p["version"].as_u64()),
            (Some("poor"), Some(1))
        );
        assert!(*at - before < Duration::from_millis(5));
        // Paced at poor from then on.
        sub.versions.send_replace(2);
        tokio::time::sleep(Duration::from_millis(100)).await;
        sub.drain(&mut got);
        assert_eq!(
            got.last().unwrap().1["version"],
            1,
            "held for poor's interval"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        sub.drain(&mut got);
        assert_eq!(got.last().unwrap().1["version"], 2);
        sub.stop.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn a_followed_playhead_is_paced_like_versions_and_ends_on_the_newest_position() {
        let (moves, watched) = watch::channel(None);
        let mut sub = follow(
            PreviewTier::Fixed(Tier::Poor),
            Some(crate::sync::PlayheadWatch::detached(watched)),
        );
        let mut got = Vec::new();
        tokio::time::sleep(Duration::from_millis(250)).await;
        sub.drain(&mut got);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].1["t"], 0.0, "no playhead yet: the start");
        // A scrub: the playhead moves every 10 ms for 2 s.
        for i in 1..=200 {
            moves.send_replace(Some(f64::from(i) / 10.0));
            tokio::time::sleep(Duration::from_millis(10)).await;
            sub.drain(&mut got);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        sub.drain(&mut got);
        let times: Vec<f64> = got.iter().map(|(_, p)| p["t"].as_f64().unwrap()).collect();
        assert_eq!(times.get(1), Some(&0.1), "the first move at once");
        assert_eq!(times.last(), Some(&20.0), "the newest position last");
        assert!(
            (11..=13).contains(&got.len()),
            "{} frames for 200 moves",
            got.len()
        );
        // (The first was read late, after the pause: the spacing counts from the moves.)
        for w in got[1..].windows(2) {
            assert!(w[1].0 - w[0].0 >= Duration::from_millis(200));
        }
        assert_eq!(
            got.last().unwrap().1["url"],
            "/v1/sessions/film/frame?t=20&tier=poor&v=0"
        );
        // An edit while the playhead rests sends the frame again, at the new version.
        sub.versions.send_replace(7);
        tokio::time::sleep(Duration::from_millis(300)).await;
        sub.drain(&mut got);
        let last = &got.last().unwrap().1;
        assert_eq!(
            (last["version"].as_u64(), last["t"].as_f64()),
            (Some(7), Some(20.0))
        );
        sub.stop.cancel();
    }
}
