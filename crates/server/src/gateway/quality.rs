//! Connection quality: the bandwidth tier (DESIGN §7) of each connection, measured by the server
//! and capped by the client's own `quality` hint.
//!
//! While there is traffic the reader task samples its connection every [`SAMPLE_EVERY`]: the
//! round trip of the last
//! WebSocket ping (or the age of one still unanswered — a reader that stopped reading never
//! answers), how full the send queue is, and how many bytes/s the writer actually got onto the
//! socket while it had a backlog. Each sample maps to a tier; the tier only changes after it held
//! for several samples (faster down than up), so it does not flap. The effective tier is the
//! worse of the measured one and the hint, and a change is announced with a `tier` message.
//!
//! A quiet connection (nothing sent since the last sample, no ping out, no tier streak) costs no
//! timer work: the next sample is the sparse ping (`--idle-ping-secs`, default 10 minutes) after
//! the last, or sooner when the writer reports traffic (`ConnLink::quiet`). Thousands of idle
//! sockets then cost nothing but that ping; a peer that vanished is found by TCP keepalive (the
//! kernel's, no work here) in about two minutes.
//! Everything here takes time as an argument, so it is tested without a clock.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use montage_protocol::{ServerMessage, Tier, tier_for_mbps};
use tokio::sync::mpsc;

use crate::sync::{ConnLink, Outbound};

/// How often a connection is sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// A ping goes out every this many samples (one second) while there is traffic.
pub const PING_EVERY: u32 = 4;
/// Samples a worse tier must hold before the connection moves down to it.
pub const DOWN_AFTER: u32 = 3;
/// Samples a better tier must hold before the connection moves up, one step at a time.
pub const UP_AFTER: u32 = 8;
/// Backlog (frames queued) from which the drain rate says something about the link: below it
/// the writer is idle and bytes/s only reflect how much there was to send.
pub const SATURATED_BACKLOG: usize = 8;

/// Round trip at or under which each tier holds (else the next one down).
const RTT_EXCELLENT: Duration = Duration::from_millis(250);
const RTT_GOOD: Duration = Duration::from_millis(500);
const RTT_FAIR: Duration = Duration::from_millis(1000);

/// Tiers order best first: the worse of two is the greater.
fn worse(a: Tier, b: Tier) -> Tier {
    a.max(b)
}

/// The `tier` message: the tier with its rate and preview box (DESIGN §7).
pub fn tier_message(t: Tier) -> ServerMessage {
    ServerMessage::Tier {
        tier: t,
        fps: t.fps(),
        resolution: t.resolution(),
    }
}

/// What the reader measured about its connection in one sample.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// The last answered ping's round trip.
    pub rtt: Option<Duration>,
    /// How long the outstanding ping has waited for its pong.
    pub unanswered: Option<Duration>,
    /// Frames in the send queue, and its capacity.
    pub backlog: usize,
    pub capacity: usize,
    /// Bytes the writer put on the socket per second since the last sample.
    pub drained_per_sec: f64,
}

/// The tier one sample points to on its own.
pub fn measured_tier(s: &Sample) -> Tier {
    let rtt = s
        .rtt
        .unwrap_or_default()
        .max(s.unanswered.unwrap_or_default());
    let mut t = if rtt <= RTT_EXCELLENT {
        Tier::Excellent
    } else if rtt <= RTT_GOOD {
        Tier::Good
    } else if rtt <= RTT_FAIR {
        Tier::Fair
    } else {
        Tier::Poor
    };
    let cap = s.capacity.max(1);
    let queue = if s.backlog * 2 >= cap {
        Tier::Poor
    } else if s.backlog * 4 >= cap {
        Tier::Fair
    } else if s.backlog * 10 >= cap {
        Tier::Good
    } else {
        Tier::Excellent
    };
    t = worse(t, queue);
    if s.backlog >= SATURATED_BACKLOG {
        // The writer had more than it could send: what it did send is the link's capacity.
        let mbps = s.drained_per_sec * 8.0 / 1_000_000.0;
        t = worse(t, tier_for_mbps(mbps).0);
    }
    t
}

/// One connection's tier with hysteresis.
#[derive(Debug, Clone)]
pub struct QualityMonitor {
    hint: Option<Tier>,
    measured: Tier,
    /// Consecutive samples below / above `measured`, and the best (resp. worst) of them.
    down: (u32, Tier),
    up: (u32, Tier),
}

impl Default for QualityMonitor {
    fn default() -> Self {
        QualityMonitor::new()
    }
}

impl QualityMonitor {
    /// Optimistic until measured: a healthy link never sees a change.
    pub fn new() -> QualityMonitor {
        QualityMonitor {
            hint: None,
            measured: Tier::Excellent,
            down: (0, Tier::Excellent),
            up: (0, Tier::Poor),
        }
    }

    /// The tier presence and previews are paced at.
    pub fn tier(&self) -> Tier {
        match self.hint {
            Some(h) => worse(h, self.measured),
            None => self.measured,
        }
    }

    pub fn hint(&self) -> Option<Tier> {
        self.hint
    }

    /// The client's own estimate: applies at once (it caps the measured tier).
    pub fn set_hint(&mut self, hint: Tier) -> Option<Tier> {
        let before = self.tier();
        self.hint = Some(hint);
        let after = self.tier();
        (after != before).then_some(after)
    }

    /// No streak is under way: another sample like the last changes nothing.
    pub fn settled(&self) -> bool {
        self.down.0 == 0 && self.up.0 == 0
    }

    /// Feeds one sample; returns the new effective tier if it changed.
    pub fn observe(&mut self, s: &Sample) -> Option<Tier> {
        let before = self.tier();
        let t = measured_tier(s);
        if t > self.measured {
            self.up.0 = 0;
            // Move down to the best tier the whole streak supports.
            self.down = if self.down.0 == 0 {
                (1, t)
            } else {
                (self.down.0 + 1, self.down.1.min(t))
            };
            if self.down.0 >= DOWN_AFTER {
                self.measured = self.down.1;
                self.down.0 = 0;
            }
        } else if t < self.measured {
            self.down.0 = 0;
            self.up = if self.up.0 == 0 {
                (1, t)
            } else {
                (self.up.0 + 1, self.up.1.max(t))
            };
            if self.up.0 >= UP_AFTER {
                self.measured = self.measured.better();
                self.up.0 = 0;
            }
        } else {
            self.down.0 = 0;
            self.up.0 = 0;
        }
        let after = self.tier();
        (after != before).then_some(after)
    }
}

#[derive(Debug)]
pub struct Meter {
    monitor: QualityMonitor,
    ping: PingState,
    /// The writer's drained byte count at the last sample, and when.
    drained: (u64, Instant),
    /// The last sample saw nothing to watch: the next one is the sparse ping.
    quiet: bool,
    /// How often a quiet connection is pinged (and sampled).
    idle_ping: Duration,
}

impl Meter {
    pub fn new(now: Instant, idle_ping: Duration) -> Meter {
        Meter {
            monitor: QualityMonitor::new(),
            ping: PingState::default(),
            drained: (0, now),
            quiet: false,
            idle_ping,
        }
    }

    /// Takes the client's hint; returns the effective tier.
    pub fn hint(&mut self, t: Tier) -> Tier {
        self.monitor.set_hint(t);
        self.monitor.tier()
    }

    pub fn pong(&mut self, payload: &[u8], now: Instant) {
        self.ping.pong(payload, now);
    }

    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// Traffic: sample at the usual pace again.
    pub fn wake(&mut self) {
        self.quiet = false;
    }

    /// When to sample next: [`SAMPLE_EVERY`] after the last sample while there is something to
    /// watch, else when the sparse ping is due.
    pub fn next_sample(&self) -> Instant {
        let soon = self.drained.1 + SAMPLE_EVERY;
        if !self.quiet {
            return soon;
        }
        let ping = self.ping.last_sent.unwrap_or(self.drained.1) + self.idle_ping;
        soon.max(ping)
    }

    /// One sample: maybe a ping into the send queue, then the tier from round trip, backlog and
    /// drain rate. Returns the new effective tier if it changed.
    pub fn sample(
        &mut self,
        tx: &mpsc::Sender<Outbound>,
        link: &ConnLink,
        now: Instant,
    ) -> Option<Tier> {
        // A quiet connection's sample is its sparse ping.
        let ping = if self.quiet {
            self.ping.now(now)
        } else {
            self.ping.due(now)
        };
        if let Some(n) = ping
            && tx.try_send(Outbound::Ping(n)).is_err()
        {
            self.ping.cancel();
        }
        let capacity = tx.max_capacity();
        let drained = link.drained.load(Relaxed);
        let dt = now.saturating_duration_since(self.drained.1).as_secs_f64();
        let moved = drained.saturating_sub(self.drained.0);
        let per_sec = if dt > 0.0 { moved as f64 / dt } else { 0.0 };
        self.drained = (drained, now);
        let s = Sample {
            rtt: self.ping.last_rtt,
            unanswered: self.ping.unanswered(now),
            backlog: capacity.saturating_sub(tx.capacity()),
            capacity,
            drained_per_sec: per_sec,
        };
        let changed = self.monitor.observe(&s);
        self.quiet = moved == 0
            && s.backlog == 0
            && s.unanswered.is_none()
            && changed.is_none()
            && self.monitor.settled();
        changed
    }
}

/// The ping the reader is waiting on.
#[derive(Debug, Default)]
pub struct PingState {
    next: u64,
    outstanding: Option<(u64, Instant)>,
    pub last_rtt: Option<Duration>,
    /// When the last ping went out.
    pub last_sent: Option<Instant>,
    samples: u32,
}

impl PingState {
    /// Whether to send a ping now, and its payload. One at a time.
    pub fn due(&mut self, now: Instant) -> Option<u64> {
        self.samples = self.samples.wrapping_add(1);
        if !self.samples.is_multiple_of(PING_EVERY) {
            return None;
        }
        self.now(now)
    }

    /// A ping now, unless one is outstanding.
    pub fn now(&mut self, now: Instant) -> Option<u64> {
        if self.outstanding.is_some() {
            return None;
        }
        self.next += 1;
        self.outstanding = Some((self.next, now));
        self.last_sent = Some(now);
        Some(self.next)
    }

    /// A pong arrived carrying `payload`.
    pub fn pong(&mut self, payload: &[u8], now: Instant) {
        let Ok(b) = <[u8; 8]>::try_from(payload) else {
            return;
        };
        let n = u64::from_be_bytes(b);
        if let Some((want, sent)) = self.outstanding
            && want == n
        {
            self.last_rtt = Some(now.saturating_duration_since(sent));
            self.outstanding = None;
        }
    }

    pub fn unanswered(&self, now: Instant) -> Option<Duration> {
        self.outstanding
            .map(|(_, sent)| now.saturating_duration_since(sent))
    }

    /// A ping could not be queued (queue full): forget it rather than count it as lost.
    pub fn cancel(&mut self) {
        self.outstanding = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> Sample {
        Sample {
            rtt: Some(Duration::from_millis(2)),
            capacity: 1024,
            ..Sample::default()
        }
    }

    #[test]
    fn sample_tiers() {
        assert_eq!(measured_tier(&healthy()), Tier::Excellent);
        let slow_rtt = Sample {
            rtt: Some(Duration::from_millis(400)),
            ..healthy()
        };
        assert_eq!(measured_tier(&slow_rtt), Tier::Good);
        let stalled = Sample {
            unanswered: Some(Duration::from_secs(3)),
            ..healthy()
        };
        assert_eq!(measured_tier(&stalled), Tier::Poor);
        let backlog = Sample {
            backlog: 300,
            drained_per_sec: 50e6,
            ..healthy()
        };
        assert_eq!(measured_tier(&backlog), Tier::Fair);
        let thin = Sample {
            backlog: 20,
            drained_per_sec: 1.5e6, // 12 Mbps
            ..healthy()
        };
        assert_eq!(measured_tier(&thin), Tier::Good);
        // An idle writer says nothing about the link.
        let idle = Sample {
            backlog: 0,
            drained_per_sec: 10.0,
            ..healthy()
        };
        assert_eq!(measured_tier(&idle), Tier::Excellent);
    }

    #[test]
    fn moves_down_after_holding_and_up_slowly_one_step_at_a_time() {
        let mut m = QualityMonitor::new();
        let poor = Sample {
            backlog: 600,
            ..healthy()
        };
        for _ in 1..DOWN_AFTER {
            assert_eq!(m.observe(&poor), None);
        }
        assert_eq!(m.observe(&poor), Some(Tier::Poor));
        for _ in 1..UP_AFTER {
            assert_eq!(m.observe(&healthy()), None);
        }
        assert_eq!(m.observe(&healthy()), Some(Tier::Fair));
        for _ in 1..UP_AFTER {
            assert_eq!(m.observe(&healthy()), None);
        }
        assert_eq!(m.observe(&healthy()), Some(Tier::Good));
    }

    #[test]
    fn alternating_samples_do_not_flap() {
        let mut m = QualityMonitor::new();
        let bad = Sample {
            unanswered: Some(Duration::from_secs(2)),
            ..healthy()
        };
        for _ in 0..50 {
            assert_eq!(m.observe(&bad), None);
            assert_eq!(m.observe(&healthy()), None);
        }
        assert_eq!(m.tier(), Tier::Excellent);
    }

    #[test]
    fn a_streak_moves_to_the_best_tier_it_supports() {
        let mut m = QualityMonitor::new();
        let fair = Sample {
            backlog: 300,
            drained_per_sec: 50e6,
            ..healthy()
        };
        let poor = Sample {
            backlog: 600,
            ..healthy()
        };
        m.observe(&poor);
        m.observe(&fair);
        assert_eq!(m.observe(&poor), Some(Tier::Fair));
    }

    #[test]
    fn the_hint_caps_at_once_and_measurement_still_lowers() {
        let mut m = QualityMonitor::new();
        assert_eq!(m.set_hint(Tier::Good), Some(Tier::Good));
        assert_eq!(m.set_hint(Tier::Good), None);
        let poor = Sample {
            backlog: 600,
            ..healthy()
        };
        for _ in 1..DOWN_AFTER {
            m.observe(&poor);
        }
        assert_eq!(m.observe(&poor), Some(Tier::Poor));
        // A better hint cannot lift what the server measured.
        assert_eq!(m.set_hint(Tier::Excellent), None);
        assert_eq!(m.tier(), Tier::Poor);
    }

    #[test]
    fn a_backed_up_queue_moves_the_meter_down() {
        let (tx, _rx) = mpsc::channel(16);
        for _ in 0..10 {
            tx.try_send(Outbound::Close(1000, String::new())).unwrap();
        }
        let link = ConnLink::default();
        let t0 = Instant::now();
        const IDLE_PING: Duration = Duration::from_secs(600);
        let mut m = Meter::new(t0, IDLE_PING);
        let at = |i: u32| t0 + SAMPLE_EVERY * i;
        for i in 1..DOWN_AFTER {
            assert_eq!(m.sample(&tx, &link, at(i)), None);
        }
        assert_eq!(m.sample(&tx, &link, at(DOWN_AFTER)), Some(Tier::Poor));
        assert_eq!(m.hint(Tier::Excellent), Tier::Poor, "a hint cannot lift it");
    }

    #[test]
    fn pings_one_at_a_time_and_time_their_pongs() {
        let t0 = Instant::now();
        let mut p = PingState::default();
        let mut sent = None;
        for i in 0..PING_EVERY {
            sent = p.due(t0);
            assert_eq!(sent.is_some(), i + 1 == PING_EVERY);
        }
        let n = sent.unwrap();
        for _ in 0..PING_EVERY {
            assert_eq!(p.due(t0), None, "one outstanding at a time");
        }
        assert_eq!(
            p.unanswered(t0 + Duration::from_secs(1)),
            Some(Duration::from_secs(1))
        );
        p.pong(&(n + 1).to_be_bytes(), t0);
        assert!(p.last_rtt.is_none(), "a stale pong is ignored");
        p.pong(b"junk", t0);
        p.pong(&n.to_be_bytes(), t0 + Duration::from_millis(30));
        assert_eq!(p.last_rtt, Some(Duration::from_millis(30)));
        assert_eq!(p.unanswered(t0), None);
    }

    #[test]
    fn a_quiet_connection_is_sampled_only_for_its_sparse_ping() {
        let (tx, mut rx) = mpsc::channel(16);
        let link = ConnLink::default();
        let t0 = Instant::now();
        const IDLE_PING: Duration = Duration::from_secs(600);
        let mut m = Meter::new(t0, IDLE_PING);
        // Traffic since the start: sampled again soon.
        link.drained.fetch_add(100, Relaxed);
        let t1 = m.next_sample();
        assert_eq!(t1, t0 + SAMPLE_EVERY);
        assert_eq!(m.sample(&tx, &link, t1), None);
        assert!(!m.is_quiet());
        // Nothing moved: quiet until the sparse ping is due.
        let t2 = m.next_sample();
        assert_eq!(m.sample(&tx, &link, t2), None);
        assert!(m.is_quiet());
        let t3 = m.next_sample();
        assert_eq!(t3, t2 + IDLE_PING);
        assert!(rx.try_recv().is_err(), "no ping yet");
        // The sparse sample pings, and waits for the pong at the usual pace.
        m.sample(&tx, &link, t3);
        let Ok(Outbound::Ping(n)) = rx.try_recv() else {
            panic!("no ping")
        };
        assert!(!m.is_quiet());
        assert_eq!(m.next_sample(), t3 + SAMPLE_EVERY);
        m.pong(&n.to_be_bytes(), t3 + Duration::from_millis(3));
        m.sample(&tx, &link, t3 + SAMPLE_EVERY);
        assert!(m.is_quiet());
        assert_eq!(m.next_sample(), t3 + IDLE_PING);
        // Traffic wakes it.
        m.wake();
        assert_eq!(m.next_sample(), t3 + SAMPLE_EVERY * 2);
    }
}
