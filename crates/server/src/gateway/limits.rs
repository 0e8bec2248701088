//! Per-connection rate limits: token buckets that take the time as an argument, so tests
//! need no clock.
//!
//! A frame is admitted only when every bucket it draws on (the connection's and its user's
//! messages and bytes, plus edits for edit-like frames) has room; then it takes from all of them,
//! and a refused frame takes from none. The refusal names the longest wait, rounded up to the
//! millisecond, so a frame resent after `retry_after_ms` is accepted (DESIGN §9.2). Only a
//! refused frame that arrives before the announced retry time is a strike: a client that waits
//! as told is never closed for abuse.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use montage_protocol::ClientMessage;

use crate::config::Limits;

/// Slack for float error: a bucket within this of `n` tokens has them.
const EPSILON: f64 = 1e-6;

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            rate: rate.max(f64::MIN_POSITIVE),
            burst,
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
    }

    /// A cost over the burst could never be met: it empties a full bucket instead.
    fn clamp(&self, n: f64) -> f64 {
        n.min(self.burst)
    }

    /// How long until `n` tokens are there, in whole milliseconds rounded up (zero: now).
    /// Takes nothing.
    pub fn wait(&mut self, n: f64, now: Instant) -> Duration {
        self.refill(now);
        let missing = self.clamp(n) - self.tokens;
        if missing <= EPSILON {
            return Duration::ZERO;
        }
        let ms = (missing / self.rate * 1000.0).ceil();
        Duration::from_millis(if ms.is_finite() { ms as u64 } else { u64::MAX })
    }

    /// Takes `n` tokens after `wait` said they are there.
    fn take(&mut self, n: f64) {
        self.tokens -= self.clamp(n);
    }

    /// Takes `n` tokens, or says how long until they would be there (taking nothing).
    pub fn try_take(&mut self, n: f64, now: Instant) -> Result<(), Duration> {
        match self.wait(n, now) {
            Duration::ZERO => {
                self.take(n);
                Ok(())
            }
            w => Err(w),
        }
    }
}

/// What the limiter says about one incoming frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Refuse with `rate_limited`.
    Limited {
        retry_after: Duration,
    },
    /// Past the limits again and again: close the socket (1008).
    Abuse,
}

/// What one frame draws from the buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub bytes: usize,
    /// An edit-like frame: also one token of the edit rate.
    pub edit: bool,
}

impl Cost {
    pub fn frame(bytes: usize) -> Cost {
        Cost { bytes, edit: false }
    }

    pub fn edit(bytes: usize) -> Cost {
        Cost { bytes, edit: true }
    }
}

/// Frames that change a document (or queue a change to it) and so count against the edit rate:
/// edits, suggestions, and accepting a suggestion (which applies it).
pub fn is_edit(m: &ClientMessage) -> bool {
    matches!(
        m,
        ClientMessage::Op { .. }
            | ClientMessage::Suggest { .. }
            | ClientMessage::SuggestionAccept { .. }
    )
}

/// The buckets of one connection (or, scaled by `user_rate_factor`, of one user).
#[derive(Debug, Clone)]
pub struct ConnLimiter {
    messages: TokenBucket,
    edits: TokenBucket,
    bytes: TokenBucket,
    strikes: TokenBucket,
    /// The retry time announced with the last refusal: a refused frame before it is a strike.
    retry_at: Option<Instant>,
}

impl ConnLimiter {
    pub fn new(l: &Limits, now: Instant) -> ConnLimiter {
        ConnLimiter::scaled(l, 1.0, now)
    }

    /// Every rate and burst times `k`.
    pub fn scaled(l: &Limits, k: f64, now: Instant) -> ConnLimiter {
        ConnLimiter {
            messages: TokenBucket::new(l.messages_per_sec * k, l.messages_burst * k, now),
            edits: TokenBucket::new(l.edits_per_sec * k, l.edits_burst * k, now),
            bytes: TokenBucket::new(l.bytes_per_sec * k, l.bytes_burst * k, now),
            strikes: TokenBucket::new(l.strikes_per_sec * k, l.strikes_burst * k, now),
            retry_at: None,
        }
    }

    /// How long until `c` fits every bucket of this limiter; takes nothing.
    fn wait(&mut self, c: Cost, now: Instant) -> Duration {
        let mut w = self
            .messages
            .wait(1.0, now)
            .max(self.bytes.wait(c.bytes as f64, now));
        if c.edit {
            w = w.max(self.edits.wait(1.0, now));
        }
        w
    }

    fn take(&mut self, c: Cost) {
        self.messages.take(1.0);
        self.bytes.take(c.bytes as f64);
        if c.edit {
            self.edits.take(1.0);
        }
    }

    /// Admits a frame costing `c` against this connection's buckets and its user's (`user`):
    /// it passes only when all of them have room, and then takes from all.
    pub fn admit(&mut self, user: Option<&mut ConnLimiter>, c: Cost, now: Instant) -> Verdict {
        self.decide(user, c, now, true)
    }

    /// Like [`admit`](Self::admit) but takes nothing when the frame would pass: a look before
    /// the frame is decoded.
    pub fn check(&mut self, user: Option<&mut ConnLimiter>, c: Cost, now: Instant) -> Verdict {
        self.decide(user, c, now, false)
    }

    fn decide(
        &mut self,
        mut user: Option<&mut ConnLimiter>,
        c: Cost,
        now: Instant,
        take: bool,
    ) -> Verdict {
        let mut wait = self.wait(c, now);
        if let Some(u) = user.as_deref_mut() {
            wait = wait.max(u.wait(c, now));
        }
        if wait.is_zero() {
            if take {
                self.take(c);
                if let Some(u) = user {
                    u.take(c);
                }
            }
            return Verdict::Allow;
        }
        // A frame that came before the announced retry time is a strike; one that waited as
        // told is not (it may still meet a bucket that other frames, or the user's other
        // connections, emptied meanwhile).
        let early = self.retry_at.is_some_and(|at| now < at);
        self.retry_at = Some(now + wait);
        if early && self.strikes.try_take(1.0, now).is_err() {
            return Verdict::Abuse;
        }
        Verdict::Limited { retry_after: wait }
    }
}

/// The shared budget of one user: its connection count and its scaled buckets.
#[derive(Debug)]
pub struct UserEntry {
    pub connections: usize,
    pub limiter: Arc<Mutex<ConnLimiter>>,
}

/// Per-user limits across all of a user's connections.
#[derive(Debug, Default)]
pub struct UserLimits {
    users: Mutex<HashMap<Arc<str>, UserEntry>>,
}

impl UserLimits {
    /// Counts a new connection of `user`, or refuses it when the user is at its limit.
    pub fn connect(&self, user: &Arc<str>, l: &Limits) -> Option<Arc<Mutex<ConnLimiter>>> {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        let e = users.entry(user.clone()).or_insert_with(|| UserEntry {
            connections: 0,
            limiter: Arc::new(Mutex::new(ConnLimiter::scaled(
                l,
                l.user_rate_factor,
                Instant::now(),
            ))),
        });
        if e.connections >= l.connections_per_user {
            return None;
        }
        e.connections += 1;
        Some(e.limiter.clone())
    }

    /// Forgets a closed connection; a user with none left is dropped entirely.
    pub fn disconnect(&self, user: &str) {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = users.get_mut(user) {
            e.connections = e.connections.saturating_sub(1);
            if e.connections == 0 {
                users.remove(user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn bucket_refills_at_its_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 2.0, t0);
        assert!(b.try_take(1.0, t0).is_ok());
        assert!(b.try_take(1.0, t0).is_ok());
        assert_eq!(b.try_take(1.0, t0), Err(ms(100)));
        assert!(b.try_take(1.0, t0 + ms(100)).is_ok());
    }

    #[test]
    fn waits_round_up_to_the_millisecond() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(60.0, 1.0, t0);
        assert!(b.try_take(1.0, t0).is_ok());
        // 16.67 ms: 16 would be too early.
        assert_eq!(b.try_take(1.0, t0), Err(ms(17)));
        assert!(b.try_take(1.0, t0 + ms(17)).is_ok());
    }

    #[test]
    fn a_cost_over_the_burst_empties_a_full_bucket() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 5.0, t0);
        assert!(b.try_take(50.0, t0).is_ok());
        assert_eq!(b.try_take(50.0, t0), Err(ms(500)));
    }

    #[test]
    fn honest_client_passes_cursor_and_typing_rates() {
        // 120 presence and 30 edits a second for 10 seconds, evenly spread.
        let l = Limits::default();
        let t0 = Instant::now();
        let mut lim = ConnLimiter::new(&l, t0);
        for i in 0..1500u64 {
            let now = t0 + Duration::from_micros(i * 1_000_000 / 150);
            let c = if i % 5 == 0 {
                Cost::edit(300)
            } else {
                Cost::frame(300)
            };
            assert_eq!(lim.admit(None, c, now), Verdict::Allow, "frame {i}");
        }
    }

    #[test]
    fn flood_is_limited_then_abuse() {
        let l = Limits::default();
        let t0 = Instant::now();
        let mut lim = ConnLimiter::new(&l, t0);
        let verdicts: Vec<Verdict> = (0..2000)
            .map(|_| lim.admit(None, Cost::frame(10), t0))
            .collect();
        assert_eq!(verdicts[0], Verdict::Allow);
        assert!(
            verdicts
                .iter()
                .any(|v| matches!(v, Verdict::Limited { .. }))
        );
        assert_eq!(verdicts.last(), Some(&Verdict::Abuse));
    }

    #[test]
    fn refused_frames_take_nothing() {
        let l = Limits {
            messages_burst: 10.0,
            edits_burst: 1.0,
            ..Limits::default()
        };
        let t0 = Instant::now();
        let mut lim = ConnLimiter::new(&l, t0);
        let mut user = ConnLimiter::new(&l, t0);
        assert_eq!(
            lim.admit(Some(&mut user), Cost::edit(10), t0),
            Verdict::Allow
        );
        for _ in 0..20 {
            let v = lim.admit(Some(&mut user), Cost::edit(10), t0);
            assert!(matches!(v, Verdict::Limited { .. }), "{v:?}");
        }
        // The refused edits used none of the 9 messages left, here or in the user's budget.
        for i in 0..9 {
            assert_eq!(
                lim.admit(Some(&mut user), Cost::frame(10), t0),
                Verdict::Allow,
                "frame {i}"
            );
        }
    }

    #[test]
    fn a_frame_the_user_refuses_takes_nothing_from_the_connection() {
        let l = Limits {
            messages_burst: 2.0,
            ..Limits::default()
        };
        let t0 = Instant::now();
        let mut lim = ConnLimiter::new(&l, t0);
        let mut user = ConnLimiter::new(
            &Limits {
                messages_burst: 1.0,
                ..l.clone()
            },
            t0,
        );
        assert_eq!(
            lim.admit(Some(&mut user), Cost::frame(1), t0),
            Verdict::Allow
        );
        assert!(matches!(
            lim.admit(Some(&mut user), Cost::frame(1), t0),
            Verdict::Limited { .. }
        ));
        // The connection still has its second message.
        assert_eq!(lim.admit(None, Cost::frame(1), t0), Verdict::Allow);
    }

    #[test]
    fn retry_after_is_the_longest_wait_and_exact() {
        // Edits want 17 ms, the user's bytes 500 ms: the answer is 500, and then it passes.
        let l = Limits {
            edits_per_sec: 60.0,
            edits_burst: 1.0,
            ..Limits::default()
        };
        let u = Limits {
            bytes_per_sec: 2000.0,
            bytes_burst: 1000.0,
            ..Limits::default()
        };
        let t0 = Instant::now();
        let mut lim = ConnLimiter::new(&l, t0);
        let mut user = ConnLimiter::new(&u, t0);
        assert_eq!(
            lim.admit(Some(&mut user), Cost::edit(1000), t0),
            Verdict::Allow
        );
        let v = lim.admit(Some(&mut user), Cost::edit(1000), t0);
        assert_eq!(
            v,
            Verdict::Limited {
                retry_after: ms(500)
            }
        );
        assert!(matches!(
            lim.admit(Some(&mut user), Cost::edit(1000), t0 + ms(499)),
            Verdict::Limited { .. }
        ));
        assert_eq!(
            lim.admit(Some(&mut user), Cost::edit(1000), t0 + ms(999)),
            Verdict::Allow
        );
    }

    #[test]
    fn suggestions_are_edits() {
        let s = |t: &str| {
            montage_protocol::decode_client(t)
                .map(|f| is_edit(&f.msg))
                .ok()
        };
        assert_eq!(
            s(r#"{"type":"suggest","session":"s","base":0,"ops":[]}"#),
            Some(true)
        );
        assert_eq!(
            s(r#"{"type":"op","session":"s","base":0,"seq":1,"ops":[]}"#),
            Some(true)
        );
        assert_eq!(
            s(r#"{"type":"suggestion_accept","session":"s","id":"x"}"#),
            Some(true)
        );
        assert_eq!(
            s(r#"{"type":"presence","session":"s","data":{}}"#),
            Some(false)
        );
    }

    #[test]
    fn only_early_resends_are_strikes() {
        let l = Limits {
            edits_burst: 1.0,
            strikes_burst: 3.0,
            strikes_per_sec: 0.001,
            ..Limits::default()
        };
        let t0 = Instant::now();
        // Waiting as told, a thousand refusals cost no strike.
        let mut lim = ConnLimiter::new(&l, t0);
        let mut now = t0;
        for _ in 0..1000 {
            assert_eq!(lim.admit(None, Cost::edit(10), now), Verdict::Allow);
            match lim.admit(None, Cost::edit(10), now) {
                Verdict::Limited { retry_after } => now += retry_after,
                v => panic!("{v:?}"),
            }
        }
        // Resending 1 ms early, again and again, is abuse once the strikes run out.
        let mut lim = ConnLimiter::new(&l, t0);
        let mut now = t0;
        assert_eq!(lim.admit(None, Cost::edit(10), now), Verdict::Allow);
        let mut verdicts = Vec::new();
        for _ in 0..6 {
            let v = lim.admit(None, Cost::edit(10), now);
            verdicts.push(v);
            if let Verdict::Limited { retry_after } = v {
                now += retry_after - ms(1);
            }
        }
        assert!(matches!(verdicts[0], Verdict::Limited { .. }));
        assert_eq!(verdicts.last(), Some(&Verdict::Abuse), "{verdicts:?}");
    }

    /// A seeded run of clients that send whatever they like, as fast as they like, but always
    /// wait as told: a resend after `retry_after` is accepted, and no one is closed.
    #[test]
    fn clients_that_wait_as_told_are_never_refused_twice_nor_closed() {
        let tight = Limits {
            messages_per_sec: 20.0,
            messages_burst: 5.0,
            edits_per_sec: 7.0,
            edits_burst: 2.0,
            bytes_per_sec: 3000.0,
            bytes_burst: 4000.0,
            strikes_per_sec: 0.0,
            strikes_burst: 0.0,
            ..Limits::default()
        };
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for l in [Limits::default(), tight] {
            let t0 = Instant::now();
            let mut lim = ConnLimiter::new(&l, t0);
            let mut user = ConnLimiter::scaled(&l, 0.5, t0);
            let mut now = t0;
            let mut refused = 0;
            for i in 0..20_000 {
                let c = Cost {
                    bytes: next(5000) as usize,
                    edit: next(3) == 0,
                };
                now += Duration::from_micros(next(20_000));
                match lim.admit(Some(&mut user), c, now) {
                    Verdict::Allow => {}
                    Verdict::Limited { retry_after } => {
                        refused += 1;
                        now += retry_after;
                        assert_eq!(
                            lim.admit(Some(&mut user), c, now),
                            Verdict::Allow,
                            "resend {i} of {c:?} after {retry_after:?}"
                        );
                    }
                    Verdict::Abuse => panic!("frame {i}: closed"),
                }
            }
            assert!(refused > 100, "the run must hit the limits: {refused}");
        }
    }

    #[test]
    fn users_are_limited_across_connections() {
        let l = Limits {
            connections_per_user: 2,
            ..Limits::default()
        };
        let users = UserLimits::default();
        let u: Arc<str> = Arc::from("u");
        let a = users.connect(&u, &l).unwrap();
        let b = users.connect(&u, &l).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "one budget per user");
        assert!(users.connect(&u, &l).is_none());
        users.disconnect("u");
        assert!(users.connect(&u, &l).is_some());
    }
}
